"""``c.OSLHooks`` to problems: every setting checked at hub start, all problems at once, one line each.

`check_config` reads the section, checks every setting and returns the problems as ``OSLHooks.<trait>[...]:
what is wrong`` lines, in the order of the settings and their indices, each once; `validate_config` adds
the checks against the spawner (`spawner_checks`) and raises `OSLHooksConfigError` with them.
`osl_hooks.hub.install(c)` calls it while JupyterHub loads its config file, so a bad configuration stops
the hub at start, never at someone's first spawn.

Plan-level rules (env names, kernel names, paths, overlapping targets, ...) are not repeated here: they
are the engine's own (`Plan.from_dict`, `Plan.resolve`), run by `plan_checks` on every configured
environment so that each is reported whatever else is wrong, under the ``OSLHooks.`` trait it comes from.
Every per-spawn plan selects a subset of those environments, and every rule the plan enforces
(uniqueness, no overlap) holds for a subset when it holds for the whole.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from traitlets import TraitError
from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from ..plan import BAKED, FIRST_COPIES, MODES, PLAN_VERSION, RETIREMENT_PLAN_VERSION, SYNCED, USER, plan_schema
from .config import (
    ENV_KEYS,
    KERNEL_KEYS,
    SCRIPT_KEYS,
    SCRIPT_ON_FAILURE,
    SCRIPT_RUN,
    SECTION,
    OSLHooks,
    OSLHooksConfigError,
    _one_of,
)
from .env_images import env_image_problems
from .plan_checks import plan_problems
from .selection import CheckedConfig, EnvRule, Problems
from .spawner_checks import check_spawner_config
from .spawner_config import spawn_home


def _strings(value: Any, where: str, problems: Problems) -> frozenset[str] | None:
    """A selector list (users, groups, profiles), or None after reporting why it is not one."""
    if isinstance(value, str):
        problems.add(where, f"{value!r} is a string; give a list, e.g. [{value!r}]")
        return None
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) and v for v in value):
        problems.add(where, f"{value!r} is not a list of names")
        return None
    return frozenset(value)


def _unknown_keys(data: Mapping[str, Any], known: tuple[str, ...], where: str, problems: Problems) -> None:
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.add(f"{where}.{key}", f"unknown key; {hint}known keys: {', '.join(known)}")


def script_entry(value: Any, hooks: OSLHooks, where: str, problems: Problems) -> dict[str, Any] | None:
    """A setup script setting as a plan script (defaults filled in from the script_* traits)."""
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict):
        problems.add(where, f"{value!r} is neither a path nor a dict with path, timeout, run, on_failure")
        return None
    _unknown_keys(value, SCRIPT_KEYS, where, problems)
    if "path" not in value:
        problems.add(f"{where}.path", "required")
        return None
    entry = {
        "path": value["path"],
        "timeout": value.get("timeout", hooks.script_timeout),
        "run": value.get("run", hooks.script_run),
        "on_failure": value.get("on_failure", hooks.script_on_failure),
    }
    # Reported here, in the configuration's words; the plan check then sees a valid value (the problem
    # stops the hub anyway), so it reports the entry's other problems and not this one a second time.
    if entry["run"] not in SCRIPT_RUN:
        problems.add(f"{where}.run", _one_of(entry["run"], SCRIPT_RUN))
        entry["run"] = SCRIPT_RUN[0]
    if entry["on_failure"] not in SCRIPT_ON_FAILURE:
        problems.add(f"{where}.on_failure", _one_of(entry["on_failure"], SCRIPT_ON_FAILURE))
        entry["on_failure"] = SCRIPT_ON_FAILURE[0]
    return entry


def _check_kernel_name(name: Any, where: str, problems: Problems) -> None:
    """Kernel names are checked here, not left to the plan: its schema can only say the kernel is invalid."""
    kernel_schema = plan_schema()["definitions"]["kernel"]["properties"]["name"]
    if not isinstance(name, str) or not re.fullmatch(kernel_schema["pattern"], name):
        problems.add(f"{where}.name", f"{name!r} is not {kernel_schema['description']}")


def env_rule(
    index: int, value: Any, hooks: OSLHooks, problems: Problems, entries: list[tuple[int, dict[str, Any]]]
) -> EnvRule | None:
    """Parse `OSLHooks.environments[index]`; report problems and return None if it cannot be used.

    Its plan entry goes to `entries` even then, for the plan's own rules (`plan_checks`), unless its mode is
    not one of the modes (which fields an entry may have depends on it): a problem here hides none there.
    """
    where = f"environments[{index}]"
    if not isinstance(value, dict):
        problems.add(where, f"{value!r} is not a dict")
        return None
    before = len(problems.items)
    _unknown_keys(value, ENV_KEYS, where, problems)
    for key in ("name", "mode"):
        if key not in value:
            problems.add(f"{where}.{key}", "required")
    if "mode" in value and value["mode"] not in MODES:
        problems.add(f"{where}.mode", _one_of(value["mode"], MODES))
    mode = value.get("mode")
    refused = set()
    for key, modes, why in (
        ("source", (USER,), "a user env has no copy in the image"),
        ("built_prefix", (USER,), "a user env has no copy in the image"),
        ("target", (BAKED,), "a baked env stays where it is in the image"),
    ):
        if key in value and mode in modes:
            problems.add(f"{where}.{key}", f"not allowed with mode {mode!r} ({why})")
            refused.add(key)
    copied = ("name", "mode", "source", "target", "built_prefix", "link_threshold")
    entry: dict[str, Any] = {k: value[k] for k in copied if k in value and k not in refused}
    if "first_copy" in value:
        if value["first_copy"] not in FIRST_COPIES:
            problems.add(f"{where}.first_copy", _one_of(value["first_copy"], FIRST_COPIES))
        elif mode != SYNCED:
            problems.add(f"{where}.first_copy", f"only for mode {SYNCED!r} (this env is {mode!r})")
    if mode == SYNCED:
        entry["first_copy"] = value.get("first_copy", hooks.first_copy)

    kernel = value.get("kernel", True)
    display_name = value.get("display_name")
    if kernel is False:
        if display_name is not None:
            problems.add(f"{where}.display_name", "given, but kernel is False (no kernel)")
        entry["kernel"] = False
    elif kernel is True or kernel is None:
        entry["kernel"] = {} if display_name is None else {"display_name": display_name}
    elif isinstance(kernel, str):
        _check_kernel_name(kernel, f"{where}.kernel", problems)
        entry["kernel"] = {"name": kernel} if display_name is None else {"name": kernel, "display_name": display_name}
    elif isinstance(kernel, dict):
        _unknown_keys(kernel, KERNEL_KEYS, f"{where}.kernel", problems)
        if "name" in kernel:
            _check_kernel_name(kernel["name"], f"{where}.kernel", problems)
        entry["kernel"] = dict(kernel)
        if display_name is not None:
            if "display_name" in kernel:
                problems.add(f"{where}.display_name", "given twice (also as kernel.display_name)")
            entry["kernel"]["display_name"] = display_name
    else:
        problems.add(
            f"{where}.kernel", f"{kernel!r} is not False, a kernel name, or a dict with name, display_name, env"
        )

    scripts = value.get("setup_scripts", [])
    if not isinstance(scripts, list):
        problems.add(f"{where}.setup_scripts", f"{scripts!r} is not a list")
        scripts = []
    entry["setup_scripts"] = [
        s for i, raw in enumerate(scripts) if (s := script_entry(raw, hooks, f"{where}.setup_scripts[{i}]", problems))
    ]

    users = _strings(value.get("users", []), f"{where}.users", problems)
    groups = _strings(value.get("groups", []), f"{where}.groups", problems)
    profiles = _strings(value["profiles"], f"{where}.profiles", problems) if "profiles" in value else None
    if profiles is not None and not profiles:
        problems.add(f"{where}.profiles", "empty: no spawn would get this env (leave it out for every profile)")
    options: dict[str, frozenset[str]] = {}
    raw_options = value.get("profile_options", {})
    if not isinstance(raw_options, dict):
        problems.add(f"{where}.profile_options", f"{raw_options!r} is not a dict of option name to choices")
    else:
        for option, choices in raw_options.items():
            if isinstance(choices, str):
                choices = [choices]
            parsed = _strings(choices, f"{where}.profile_options[{option!r}]", problems)
            if parsed is not None and not parsed:
                problems.add(f"{where}.profile_options[{option!r}]", "empty: no spawn would get this env")
            elif parsed is not None:
                options[option] = parsed
    if "mode" not in value or value["mode"] in MODES:
        entries.append((index, entry))
    if len(problems.items) > before:
        return None
    return EnvRule(index, entry, users or frozenset(), groups or frozenset(), profiles, options)


def config_section(config: Config) -> dict[str, Any]:
    """The ``OSLHooks`` section of a config, without creating it."""
    section = config[SECTION] if SECTION in config else {}
    return dict(section)


def load_hooks(config: Config, problems: Problems) -> OSLHooks:
    """An `OSLHooks` with every valid setting of the section applied, reporting each invalid one."""
    hooks = OSLHooks()
    traits = hooks.traits(config=True)
    for name, value in config_section(config).items():
        if name not in traits:
            close = difflib.get_close_matches(name, list(traits), n=1)
            hint = f" (did you mean {SECTION}.{close[0]}?)" if close else ""
            problems.add(name, f"unknown setting{hint}")
            continue
        if isinstance(value, LazyConfigValue):
            value = copy.deepcopy(value).get_value(getattr(hooks, name))
        try:
            setattr(hooks, name, copy.deepcopy(value))
        except TraitError as e:
            message = str(e)
            if message.startswith("The '"):  # traitlets' own type errors: keep only the reason
                message = message.split(" expected ", 1)[-1]
                message = f"expected {message}"
            problems.add(name, message)
    return hooks


def check_config(config: Config, spawner_class: type | None = None) -> CheckedConfig:
    """Check ``c.OSLHooks`` on its own (not against the spawner: see `check_spawner_config`); its paths against
    the home the spawner gives when the spawner is known."""
    problems = Problems()
    hooks = load_hooks(config, problems)
    entries: list[tuple[int, dict[str, Any]]] = []
    rules = tuple(r for i, e in enumerate(hooks.environments) if (r := env_rule(i, e, hooks, problems, entries)))
    scripts = [
        (i, s)
        for i, raw in enumerate(hooks.setup_scripts)
        if (s := script_entry(raw, hooks, f"setup_scripts[{i}]", problems))
    ]
    # The plan-level rules, each checked whatever else is wrong (plan_checks). Not retirement: its days are the
    # trait's own check, and its names are the environments' names, each checked with its environment.
    settings = {**plan_data(hooks, [], [], None), "version": PLAN_VERSION}
    settings.pop("retirement", None)
    home = spawn_home(config, spawner_class, hooks.home) if spawner_class else hooks.home or None
    problems.items.extend(plan_problems(settings, scripts, entries, hooks.environments, home))
    problems.items.extend(env_image_problems(hooks.env_images, [e for e in hooks.environments if isinstance(e, dict)]))
    warnings = []
    if hooks.retired_env_days is not None and not hooks.environments:
        warnings.append(
            "retired_env_days is set and no env is configured: every copy osl-hooks made in users' homes is retired"
            " (those the users did not change are removed)"
        )
    return CheckedConfig(hooks, rules, tuple(s for _, s in scripts), problems.items, warnings)


def in_order(problems: list[str], settings: Iterable[str] = ()) -> list[str]:
    """Each problem once, by setting (in `settings` order, the order the config file sets them; others in the
    order first reported), then by index."""
    position = {name: i for i, name in enumerate(settings)}
    first = {p: i for i, p in reversed(list(enumerate(problems)))}

    def key(problem: str) -> tuple[int, int, int]:
        m = re.match(rf"{SECTION}\.(\w+)(?:\[(\d+)\])?", problem)
        setting, index = (m[1], int(m[2]) if m[2] else -1) if m else ("", -1)
        return position.setdefault(setting, len(position)), index, first[problem]

    unique = list(dict.fromkeys(problems))
    for problem in unique:
        key(problem)
    return sorted(unique, key=key)


def plan_data(
    hooks: OSLHooks, environments: list[dict[str, Any]], scripts: Iterable[dict[str, Any]], home: str | None
) -> dict[str, Any]:
    """The plan (as data for `Plan.from_dict`) for these environments.

    With `retired_env_days` set, the plan (version 2) also carries the hub's whole offer: every env any rule of
    `environments` offers to anyone, so the engine retires a copy only when no configuration offers its env, never
    because this spawn's user, groups or profile leave it out. The offer is the same for every plan of the hub.
    """
    retirement = None if hooks.retired_env_days is None else offered_retirement(hooks)
    data: dict[str, Any] = {"version": PLAN_VERSION if retirement is None else RETIREMENT_PLAN_VERSION}
    if home:
        data["home"] = home
    data.update(
        envs_dir=hooks.envs_dir,
        state_dir=hooks.state_dir,
        jupyter_data_dir=hooks.jupyter_data_dir,
        environments=environments,
        discover_user_envs=hooks.discover_user_envs,
        setup_scripts=list(scripts),
        disk_margin_fraction=hooks.disk_margin_fraction,
        disk_margin_bytes=hooks.disk_margin_bytes,
        lock_timeout=hooks.lock_timeout,
    )
    if retirement is not None:
        data["retirement"] = retirement
    return data


def offered_retirement(hooks: OSLHooks) -> dict[str, Any]:
    """The plan's `retirement`: the name of every configured env (whoever it is for) and the days a copy waits."""
    names = [e["name"] for e in hooks.environments if isinstance(e, dict) and isinstance(e.get("name"), str)]
    return {"offered": list(dict.fromkeys(names)), "remove_after_days": hooks.retired_env_days}


def validate_config(config: Config, spawner_class: type) -> CheckedConfig:
    """Check everything; raise `OSLHooksConfigError` listing all problems. Returns the checked config."""
    checked = check_config(config, spawner_class)
    check_spawner_config(config, spawner_class, checked)
    if checked.problems:
        raise OSLHooksConfigError(in_order(checked.problems, config_section(config)))
    for warning in checked.warnings:
        checked.hooks.log.warning("osl-hooks: %s", warning)
    return checked
