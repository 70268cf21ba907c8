"""``c.OSLHooks`` against the spawner it runs with: deliveries, profiles, commands, timeouts."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from traitlets.config import Config

from ..plan import COPIED_MODES
from .config import AUTO, INIT_CONTAINER, POST_START, SECTION, WRAP
from .selection import CheckedConfig, Problems
from .spawner_config import _profile_options, effective_config, is_kubespawner
from .spawner_internals import static_profiles


def check_spawner_config(config: Config, spawner_class: type, checked: CheckedConfig) -> None:
    """Check ``c.OSLHooks`` against the spawner it will run with; adds to checked.problems / warnings."""
    problems = Problems(checked.problems)
    hooks = checked.hooks
    name = spawner_class.__name__
    if not is_kubespawner(spawner_class):
        if hooks.delivery in (POST_START, INIT_CONTAINER):
            problems.add(
                "delivery",
                f"{hooks.delivery!r} needs KubeSpawner, but the spawner is {name}; use 'wrap' (or 'auto')",
            )
        if hooks.profile_delivery:
            problems.add("profile_delivery", f"profiles are a KubeSpawner feature; the spawner is {name}")
        for rule in checked.rules:
            for key in ("profiles", "profile_options"):
                if getattr(rule, key):
                    problems.add(
                        f"environments[{rule.index}].{key}",
                        f"profiles are a KubeSpawner feature; the spawner is {name}",
                    )
        if not effective_config(config, spawner_class, "cmd"):
            problems.add("delivery", f"'wrap' needs the server command, but {name}.cmd is empty")
        _check_timeouts(config, spawner_class, checked, [WRAP], local=True)
        return

    profile_list = effective_config(config, spawner_class, "profile_list", [])
    profiles = static_profiles(profile_list)
    if profiles is None:
        checked.warnings.append(
            f"{name}.profile_list is a callable: the profile slugs named in c.{SECTION} cannot be checked at hub start"
        )
    else:
        known = ", ".join(repr(s) for s in profiles) or "none: profile_list is empty"
        for slug in hooks.profile_delivery:
            if slug not in profiles:
                problems.add(
                    f"profile_delivery[{slug!r}]", f"no profile with this slug in {name}.profile_list (known: {known})"
                )
        for rule in checked.rules:
            where = f"environments[{rule.index}]"
            for slug in sorted(rule.profiles or ()):
                if slug not in profiles:
                    problems.add(
                        f"{where}.profiles",
                        f"{slug!r}: no profile with this slug in {name}.profile_list (known: {known})",
                    )
            candidates = [profiles[s] for s in (rule.profiles or profiles) if s in profiles]
            for option, choices in rule.profile_options.items():
                offered = [_profile_options(p) for p in candidates if option in _profile_options(p)]
                if not offered:
                    problems.add(
                        f"{where}.profile_options[{option!r}]", "no such profile option in the profiles it can apply to"
                    )
                    continue
                if any(o[option] is None for o in offered):
                    continue  # an unlisted choice (free text) is allowed
                possible = set().union(*(o[option] for o in offered))
                for choice in sorted(choices - possible):
                    problems.add(
                        f"{where}.profile_options[{option!r}]",
                        f"{choice!r} is not a choice of this option (choices: {', '.join(sorted(possible))})",
                    )

    default = INIT_CONTAINER if hooks.delivery == AUTO else hooks.delivery
    uses: dict[str, list[dict[str, Any]]] = {}  # delivery -> the overrides of the profiles using it
    if profiles:
        for slug, profile in profiles.items():
            uses.setdefault(hooks.profile_delivery.get(slug, default), []).append(
                profile.get("kubespawner_override") or {}
            )
    else:
        uses[default] = [{}]
        for delivery in hooks.profile_delivery.values():
            uses.setdefault(delivery, []).append({})

    _say_where_first_copies_wait(config, checked, uses)
    if WRAP in uses:
        cmd = effective_config(config, spawner_class, "cmd")
        if not cmd and not all(override.get("cmd") for override in uses[WRAP]):
            problems.add(
                "delivery",
                f"'wrap' needs the server command, but {name}.cmd is not set (the image's default command "
                "cannot be seen from the hub); set it, e.g. c.KubeSpawner.cmd = ['jupyterhub-singleuser'] "
                "(z2jh: singleuser.cmd)",
            )
    if POST_START in uses:
        base = effective_config(config, spawner_class, "lifecycle_hooks", {}) or {}
        for override in [{}] + uses[POST_START]:
            hooks_value = override.get("lifecycle_hooks", base)
            handler = (hooks_value or {}).get("postStart") if isinstance(hooks_value, dict) else None
            if handler and "exec" not in handler:
                kind = ", ".join(sorted(handler)) or "empty"
                problems.add(
                    "delivery",
                    f"'post_start' must share the container's postStart hook with the one set in {name}.lifecycle_hooks, "
                    f"but that one is not an exec hook ({kind}) and cannot be chained; use 'init_container'",
                )
                break
    _check_timeouts(config, spawner_class, checked, uses)


def _say_where_first_copies_wait(config: Config, checked: CheckedConfig, uses: Iterable[str]) -> None:
    """Background first copies need the server command ('wrap'): where the admin asked for them and a
    delivery cannot run them, say that those first copies are made before the server is ready."""
    section = config[SECTION] if SECTION in config else {}
    configured = section.get("environments") or []
    asked = [
        rule.plan_entry["name"]
        for rule in checked.rules
        if rule.plan_entry.get("first_copy") == "background"
        and ("first_copy" in configured[rule.index] or "first_copy" in section)
    ]
    waiting = sorted(set(uses) & {INIT_CONTAINER, POST_START})
    if asked and waiting:
        checked.warnings.append(
            f"first_copy 'background' ({', '.join(asked)}) needs the 'wrap' delivery; with "
            f"{' and '.join(repr(d) for d in waiting)} these envs' first copies are made before the server is ready"
        )


FIRST_COPY_SECONDS = 120  # room for one synced env's first copy (a few GB; longer when many users start at once)
SERVER_SECONDS = 30  # room for the server itself to start


def timeout_trait(delivery: str, local: bool) -> tuple[str, float]:
    """The spawner setting (and its JupyterHub default) a delivery's start runs under.

    init_container and post_start run before the pod is ready, and local spawners' start() waits for the
    engine (`OSLHooksSpawnerMixin`): start_timeout. wrap on KubeSpawner runs once the container is running,
    after start() returned: http_timeout, JupyterHub's wait for the server to answer.
    """
    if delivery == WRAP and not local:
        return "http_timeout", 30
    return "start_timeout", 60


def work_seconds(checked: CheckedConfig, background_copies: bool = False) -> tuple[float, int, float]:
    """(setup scripts' timeouts, synced envs, the time a first start may need) for the largest plan.

    `background_copies`: the delivery runs the server command ('wrap'), so envs with first_copy 'background'
    are copied after the server started and cost the start nothing."""
    scripts = list(checked.setup_scripts) + [s for r in checked.rules for s in r.plan_entry.get("setup_scripts", [])]
    # A timeout that is not a number is reported as a problem already; it adds nothing here.
    total = sum(t for s in scripts if isinstance(t := s.get("timeout"), (int, float)) and not isinstance(t, bool))
    synced = sum(
        1
        for r in checked.rules
        if r.plan_entry["mode"] in COPIED_MODES
        and not (background_copies and r.plan_entry.get("first_copy") == "background")
    )
    return total, synced, total + FIRST_COPY_SECONDS * synced + SERVER_SECONDS


def _check_timeouts(
    config: Config, spawner_class: type, checked: CheckedConfig, deliveries: Iterable[str], local: bool = False
) -> None:
    """Warn when the configured work may outlast the timeout it runs under, naming the setting and a value."""
    name = spawner_class.__name__
    for delivery in sorted(set(deliveries)):
        scripts, synced, needed = work_seconds(checked, background_copies=delivery == WRAP)
        trait, default = timeout_trait(delivery, local)
        timeout = effective_config(config, spawner_class, trait, default)
        suggestion = f"c.{'KubeSpawner' if not local else 'Spawner'}.{trait} = {math.ceil(needed / 60) * 60}"
        if timeout and scripts > timeout:
            checked.warnings.append(
                f"the setup scripts' timeouts add up to {scripts:.0f} s, more than {name}.{trait} ({timeout} s), "
                f"which the {delivery!r} delivery runs under: a slow script would make the spawn time out; "
                f"raise it (e.g. {suggestion})"
            )
        elif timeout and synced and timeout < needed:
            checked.warnings.append(
                f"with the {delivery!r} delivery the first sync of an env runs within {name}.{trait} ({timeout} s); "
                f"the first start here may take {needed:.0f} s ({synced} synced env(s) to copy, "
                f"{scripts:.0f} s of setup script timeouts): raise it (e.g. {suggestion})"
            )
