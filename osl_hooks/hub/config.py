"""`OSLHooks`: the hub-side settings, as a traitlets Configurable, and their validation at hub start.

Everything an admin writes about osl-hooks lives in ``c.OSLHooks`` in ``jupyterhub_config.py`` (or
``hub.config.OSLHooks`` in a z2jh values file). `check_config` reads that section, checks every setting and
returns the problems as ``OSLHooks.<trait>[...]: what is wrong`` lines, all at once; `validate_config` raises
`OSLHooksConfigError` with them. `osl_hooks.hub.install(c)` calls it while JupyterHub loads its config
file, so a bad configuration stops the hub at start, never at someone's first spawn.

Plan-level rules (env names, kernel names, paths, overlapping targets, ...) are not repeated here: a
sample plan with *every* configured environment is built with `Plan.from_dict`, the same check the
engine makes in the pod, and its problems are reported under the ``OSLHooks.`` trait they come from.
Every per-spawn plan selects a subset of those environments, and every rule the plan enforces
(uniqueness, no overlap) holds for a subset when it holds for the whole.
"""

from __future__ import annotations

import copy
import difflib
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from traitlets import Bool, Dict, Float, Integer, List, TraitError, Unicode, Union, validate
from traitlets.config import Config, LoggingConfigurable
from traitlets.config.loader import LazyConfigValue

from ..plan import (
    DEFAULT_ENVS_DIR,
    DEFAULT_JUPYTER_DATA_DIR,
    DEFAULT_SCRIPT_TIMEOUT,
    DEFAULT_STATE_DIR,
    Plan,
    PlanError,
    plan_schema,
)

DELIVERIES = ("post_start", "init_container", "wrap")
"""How `osl-hooks start` is run for a spawn (see docs/hub.md for which to choose)."""
AUTO = "auto"
MODES = ("baked", "synced", "linked", "user")
SCRIPT_RUN = ("always", "once", "on_change")
SCRIPT_ON_FAILURE = ("continue", "fail")

ENV_PLAN_KEYS = (
    "name",
    "mode",
    "source",
    "target",
    "built_prefix",
    "link_threshold",
    "kernel",
    "display_name",
    "setup_scripts",
)
ENV_SELECTOR_KEYS = ("users", "groups", "profiles", "profile_options")
ENV_KEYS = ENV_PLAN_KEYS + ENV_SELECTOR_KEYS
SCRIPT_KEYS = ("path", "timeout", "run", "on_failure")
KERNEL_KEYS = ("name", "display_name", "env")

SECTION = "OSLHooks"


class OSLHooksConfigError(ValueError):
    """The ``c.OSLHooks`` configuration cannot be used; `problems` lists each as 'OSLHooks.trait: why'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"invalid osl-hooks configuration ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )


def _one_of(value: Any, allowed: Iterable[str]) -> str:
    return f"{value!r} is not one of " + ", ".join(repr(a) for a in allowed)


class OSLHooks(LoggingConfigurable):
    """Which conda environments each user gets, and how `osl-hooks start` reaches their server.

    Configure in jupyterhub_config.py, then call ``osl_hooks.hub.install(c)`` as the last line.
    """

    environments = List(
        help="""
        The conda environments, one dict each, in the order they are prepared::

            c.OSLHooks.environments = [
                {"name": "base-py", "mode": "synced", "source": "/opt/conda/envs/base-py",
                 "display_name": "Python 3 (synced)"},
                {"name": "gis", "mode": "synced", "source": "/opt/conda/envs/gis",
                 "groups": ["geo"], "profiles": ["gis"]},
                {"name": "mine", "mode": "user", "users": ["alice"]},
            ]

        Keys:
        - name (required): letters, digits, '.', '_', '-'; also the default kernel name (osl-<name>).
        - mode (required): 'baked' (use the image's copy), 'synced' (copied into the home once, kept
          there; users can change it), 'linked' (like synced, but files of at least `link_threshold`
          bytes are symlinks into the image's env until the user changes them), 'user' (the user builds
          it at `target`).
        - source: the env's path in the image (baked, synced).
        - target: where a synced/user env lives in the home (default `<envs_dir>/<name>`).
        - built_prefix: the prefix the env was built at, when it is not `source`.
        - link_threshold (linked): files of at least this many bytes stay links into the image (16384).
        - display_name: the kernel's name in the launcher (default: name).
        - kernel: False for no kernel; a kernelspec name; or a dict with name, display_name, env.
        - setup_scripts: scripts for this env (see `setup_scripts`); they run with the env activated.
        Who gets it (all users when no selector is given; `users` and `groups` widen each other,
        `profiles` and `profile_options` narrow the result):
        - users: JupyterHub user names.
        - groups: JupyterHub group names.
        - profiles: KubeSpawner profile slugs (the profile the user chose, or the default one).
        - profile_options: {option: [choices]}, e.g. {"image": ["gis"]}: the chosen profile option.
        """,
    ).tag(config=True)

    setup_scripts = List(
        Union([Unicode(), Dict()]),
        help="""
        Setup scripts run after every environment is ready, in order. Each is an absolute path in the
        image (a file, or a directory whose executable files run in name order), or a dict with
        path, timeout (seconds), run ('always', 'once', 'on_change') and on_failure ('continue', 'fail').
        """,
    ).tag(config=True)

    envs_dir = Unicode(
        DEFAULT_ENVS_DIR, help="Where synced and user envs live, relative to the home (or absolute inside it)."
    ).tag(config=True)
    state_dir = Unicode(
        DEFAULT_STATE_DIR, help="Where osl-hooks keeps its status, log and records, relative to the home."
    ).tag(config=True)
    jupyter_data_dir = Unicode(
        DEFAULT_JUPYTER_DATA_DIR,
        help="The Jupyter data directory kernels are registered in, relative to the home.",
    ).tag(config=True)
    discover_user_envs = Bool(
        False, help="Also register kernels for the envs users built themselves in `envs_dir`."
    ).tag(config=True)

    home = Unicode(
        "",
        help="""
        The home directory as the single-user server sees it (an absolute path). Empty: found per spawn:
        KubeSpawner: the notebook container's HOME variable if the pod sets one, else /home/jovyan;
        SimpleLocalProcessSpawner: its home_dir; other local spawners: the process's $HOME.
        """,
    ).tag(config=True)

    delivery = Unicode(
        AUTO,
        help="""
        How `osl-hooks start` runs: 'init_container' (KubeSpawner: an init container, same image, home
        and user as the notebook container, finishes before the server starts), 'post_start' (KubeSpawner:
        the container's postStart hook, as OpenSARlab does; runs alongside the server), 'wrap' (the server
        command becomes `osl-hooks start -- <command>`; KubeSpawner and local spawners).
        'auto': init_container with KubeSpawner, wrap with other spawners.
        """,
    ).tag(config=True)

    profile_delivery = Dict(
        value_trait=Unicode(),
        help="Delivery per KubeSpawner profile slug, overriding `delivery`: {'legacy': 'post_start'}.",
    ).tag(config=True)

    command = List(
        Unicode(),
        default_value=["osl-hooks"],
        help="The osl-hooks command in the single-user image (or on the local PATH), e.g. ['/opt/conda/bin/osl-hooks'].",
    ).tag(config=True)

    allow_root = Bool(
        False,
        help="Pass --allow-root to osl-hooks start. Only for throwaway demos whose server runs as root.",
    ).tag(config=True)

    script_timeout = Float(DEFAULT_SCRIPT_TIMEOUT, help="Default timeout of a setup script, in seconds.").tag(
        config=True
    )
    script_run = Unicode("always", help="Default `run` of a setup script: 'always', 'once' or 'on_change'.").tag(
        config=True
    )
    script_on_failure = Unicode(
        "continue", help="Default `on_failure` of a setup script: 'continue' (warn) or 'fail' (fail the start)."
    ).tag(config=True)

    disk_margin_fraction = Float(
        0.05, help="Free space a synced env needs beyond its size, as a fraction of its size."
    ).tag(config=True)
    disk_margin_bytes = Integer(
        200 * 1024 * 1024, help="Free space that must remain in the home after copying an env, in bytes."
    ).tag(config=True)
    lock_timeout = Float(
        900.0, help="Seconds a start waits for another start on the same home (two servers, one volume)."
    ).tag(config=True)

    init_container_name = Unicode("osl-hooks", help="Name of the init container (delivery 'init_container').").tag(
        config=True
    )
    init_container_resources = Union(
        [Dict()],
        default_value=None,
        allow_none=True,
        help="Resources of the init container (k8s ResourceRequirements); default: the notebook container's.",
    ).tag(config=True)
    restricted_security_context = Bool(
        True,
        help="""
        Give the init container the Kubernetes 'restricted' Pod Security Standard settings the notebook
        container's own securityContext leaves unset: runAsNonRoot, allowPrivilegeEscalation false,
        capabilities drop ALL, seccompProfile RuntimeDefault. What the admin set is kept.
        """,
    ).tag(config=True)

    read_init_container_logs = Bool(
        False,
        help="""
        Show the init container's log lines (what is being synced, how far) on the spawn page, with the
        'init_container' delivery. The hub then needs 'get' on pods/log, which z2jh does not grant:
        apply helm/osl-hooks-pods-log-rbac.yaml. Without it, the page shows the init container's state and
        termination message, which the hub can always read.
        """,
    ).tag(config=True)

    @validate("delivery")
    def _validate_delivery(self, proposal: Any) -> str:
        if proposal.value not in (AUTO, *DELIVERIES):
            raise TraitError(_one_of(proposal.value, (AUTO, *DELIVERIES)))
        return proposal.value

    @validate("profile_delivery")
    def _validate_profile_delivery(self, proposal: Any) -> dict[str, str]:
        for slug, value in proposal.value.items():
            if value not in DELIVERIES:
                raise TraitError(f"[{slug!r}]: {_one_of(value, DELIVERIES)}")
        return proposal.value

    @validate("script_run")
    def _validate_script_run(self, proposal: Any) -> str:
        if proposal.value not in SCRIPT_RUN:
            raise TraitError(_one_of(proposal.value, SCRIPT_RUN))
        return proposal.value

    @validate("script_on_failure")
    def _validate_script_on_failure(self, proposal: Any) -> str:
        if proposal.value not in SCRIPT_ON_FAILURE:
            raise TraitError(_one_of(proposal.value, SCRIPT_ON_FAILURE))
        return proposal.value

    @validate("command")
    def _validate_command(self, proposal: Any) -> list[str]:
        if not proposal.value or not proposal.value[0]:
            raise TraitError("must name the osl-hooks executable, e.g. ['osl-hooks']")
        return proposal.value

    @validate("home")
    def _validate_home(self, proposal: Any) -> str:
        if proposal.value and not posixpath.isabs(proposal.value):
            raise TraitError(f"{proposal.value!r} is not an absolute path")
        return proposal.value

    @validate("script_timeout", "lock_timeout")
    def _validate_positive(self, proposal: Any) -> float:
        if not proposal.value > 0:
            raise TraitError(f"{proposal.value!r} is not a positive number of seconds")
        return proposal.value

    @validate("disk_margin_bytes")
    def _validate_margin_bytes(self, proposal: Any) -> int:
        if proposal.value < 0:
            raise TraitError(f"{proposal.value!r} is negative")
        return proposal.value

    @validate("disk_margin_fraction")
    def _validate_margin_fraction(self, proposal: Any) -> float:
        if not 0 <= proposal.value <= 10:
            raise TraitError(f"{proposal.value!r} is not between 0 and 10")
        return proposal.value


# -- the environments, parsed once at hub start ------------------------------------------------------


@dataclass(frozen=True)
class EnvRule:
    """One configured environment: its plan entry and who gets it."""

    index: int
    plan_entry: dict[str, Any]
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    profiles: frozenset[str] | None = None
    profile_options: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def applies(self, user: str, groups: Iterable[str], profile: str | None, options: Mapping[str, str]) -> bool:
        if self.users or self.groups:
            if user not in self.users and self.groups.isdisjoint(groups):
                return False
        if self.profiles is not None and profile not in self.profiles:
            return False
        for option, choices in self.profile_options.items():
            if options.get(option) not in choices:
                return False
        return True


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{SECTION}.{where}: {message}")


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
    if entry["run"] not in SCRIPT_RUN:
        problems.add(f"{where}.run", _one_of(entry["run"], SCRIPT_RUN))
    if entry["on_failure"] not in SCRIPT_ON_FAILURE:
        problems.add(f"{where}.on_failure", _one_of(entry["on_failure"], SCRIPT_ON_FAILURE))
    return entry


def _check_kernel_name(name: Any, where: str, problems: Problems) -> None:
    """Kernel names are checked here, not left to the plan: its schema can only say the kernel is invalid."""
    kernel_schema = plan_schema()["definitions"]["kernel"]["properties"]["name"]
    if not isinstance(name, str) or not re.fullmatch(kernel_schema["pattern"], name):
        problems.add(f"{where}.name", f"{name!r} is not {kernel_schema['description']}")


def env_rule(index: int, value: Any, hooks: OSLHooks, problems: Problems) -> EnvRule | None:
    """Parse `OSLHooks.environments[index]`; report problems and return None if it cannot be used."""
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
    for key, modes, why in (
        ("source", ("user",), "a user env has no copy in the image"),
        ("built_prefix", ("user",), "a user env has no copy in the image"),
        ("target", ("baked",), "a baked env stays where it is in the image"),
    ):
        if key in value and mode in modes:
            problems.add(f"{where}.{key}", f"not allowed with mode {mode!r} ({why})")
    copied = ("name", "mode", "source", "target", "built_prefix", "link_threshold")
    entry: dict[str, Any] = {k: value[k] for k in copied if k in value}

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
    if len(problems.items) > before:
        return None
    return EnvRule(index, entry, users or frozenset(), groups or frozenset(), profiles, options)


# -- the whole section ---------------------------------------------------------------------------------


@dataclass
class CheckedConfig:
    """The result of checking ``c.OSLHooks``: the configurable, its parsed rules, and what is wrong."""

    hooks: OSLHooks
    rules: tuple[EnvRule, ...]
    setup_scripts: tuple[dict[str, Any], ...]
    problems: list[str]
    warnings: list[str]


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


def check_config(config: Config) -> CheckedConfig:
    """Check ``c.OSLHooks`` on its own (not against the spawner: see `check_spawner_config`)."""
    problems = Problems()
    hooks = load_hooks(config, problems)
    rules = tuple(r for i, env in enumerate(hooks.environments) if (r := env_rule(i, env, hooks, problems)))
    scripts = [
        (i, s)
        for i, raw in enumerate(hooks.setup_scripts)
        if (s := script_entry(raw, hooks, f"setup_scripts[{i}]", problems))
    ]
    # The plan-level rules, on what could be parsed; its indices are mapped back to the configuration's.
    env_index = {str(k): str(rule.index) for k, rule in enumerate(rules)}
    script_index = {str(k): str(i) for k, (i, _) in enumerate(scripts)}
    sample = plan_data(hooks, [r.plan_entry for r in rules], [s for _, s in scripts], hooks.home or None)
    try:
        plan = Plan.from_dict(sample, SECTION)
        if hooks.home:
            plan.resolve(hooks.home)
    except PlanError as e:
        for problem in e.problems:
            problem = re.sub(r"^environments\[(\d+)\]", lambda m: f"environments[{env_index[m[1]]}]", problem)
            problem = re.sub(r"^setup_scripts\[(\d+)\]", lambda m: f"setup_scripts[{script_index[m[1]]}]", problem)
            problem = re.sub(
                r"already used by environments\[(\d+)\]|overlaps environments\[(\d+)\]",
                lambda m: m[0].replace(f"[{m[1] or m[2]}]", f"[{env_index[m[1] or m[2]]}]"),
                problem,
            )
            problems.items.append(f"{SECTION}.{problem}")
    return CheckedConfig(hooks, rules, tuple(s for _, s in scripts), problems.items, [])


def plan_data(
    hooks: OSLHooks, environments: list[dict[str, Any]], scripts: Iterable[dict[str, Any]], home: str | None
) -> dict[str, Any]:
    """The plan (as data for `Plan.from_dict`) for these environments."""
    data: dict[str, Any] = {"version": 1}
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
    return data


# -- the section against the rest of the config (the spawner) ------------------------------------------


def is_kubespawner(cls: type) -> bool:
    """True for KubeSpawner and its subclasses (checked by name: the hub side never needs to import it)."""
    return any(k.__name__ == "KubeSpawner" for k in getattr(cls, "__mro__", ()))


_MISSING = object()


def effective_config(config: Config, cls: type, name: str, default: Any = _MISSING) -> Any:
    """The value `name` gets on an instance of `cls` from `config`, following traitlets' precedence.

    The most specific class in `cls`'s MRO whose section sets `name` wins, as in
    `Configurable._load_config`. Returns `default` when nothing sets it (the trait's default if not given).
    """
    for klass in cls.__mro__:
        section = klass.__name__
        if section in config and name in config[section]:
            value = config[section][name]
            if isinstance(value, LazyConfigValue):
                value = copy.deepcopy(value).get_value(_trait_default(cls, name))
            return value
    return _trait_default(cls, name) if default is _MISSING else default


def _trait_default(cls: type, name: str) -> Any:
    traits = cls.class_traits() if hasattr(cls, "class_traits") else {}
    return traits[name].default() if name in traits else None


def static_profiles(profile_list: Any) -> dict[str, dict[str, Any]] | None:
    """{slug: profile} for a static `KubeSpawner.profile_list` (slugs as KubeSpawner makes them), else None."""
    if callable(profile_list):
        return None
    if isinstance(profile_list, dict):  # KubeSpawner accepts a dict, sorted by key
        profile_list = [profile_list[k] for k in sorted(profile_list)]
    profiles: dict[str, dict[str, Any]] = {}
    for profile in profile_list or []:
        if not isinstance(profile, dict):
            continue
        slug = profile.get("slug")
        if not slug and profile.get("display_name"):
            from slugify import slugify  # what KubeSpawner._get_initialized_profile_list uses

            slug = slugify(profile["display_name"])
        if slug:
            profiles[slug] = profile
    return profiles


def _profile_options(profile: dict[str, Any]) -> dict[str, set[str] | None]:
    """Option name -> its choice slugs (None when any unlisted value is allowed)."""
    options: dict[str, set[str] | None] = {}
    for name, option in (profile.get("profile_options") or {}).items():
        if (option.get("unlisted_choice") or {}).get("enabled"):
            options[name] = None
        else:
            options[name] = set(option.get("choices") or {})
    return options


def check_spawner_config(config: Config, spawner_class: type, checked: CheckedConfig) -> None:
    """Check ``c.OSLHooks`` against the spawner it will run with; adds to checked.problems / warnings."""
    problems = Problems(checked.problems)
    hooks = checked.hooks
    name = spawner_class.__name__
    if not is_kubespawner(spawner_class):
        if hooks.delivery in ("post_start", "init_container"):
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
        _check_timeouts(config, spawner_class, checked, ["wrap"])
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

    default = "init_container" if hooks.delivery == AUTO else hooks.delivery
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

    if "wrap" in uses:
        cmd = effective_config(config, spawner_class, "cmd")
        if not cmd and not all(override.get("cmd") for override in uses["wrap"]):
            problems.add(
                "delivery",
                f"'wrap' needs the server command, but {name}.cmd is not set (the image's default command "
                "cannot be seen from the hub); set it, e.g. c.KubeSpawner.cmd = ['jupyterhub-singleuser'] "
                "(z2jh: singleuser.cmd)",
            )
    if "post_start" in uses:
        base = effective_config(config, spawner_class, "lifecycle_hooks", {}) or {}
        for override in [{}] + uses["post_start"]:
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


def _check_timeouts(config: Config, spawner_class: type, checked: CheckedConfig, deliveries: Iterable[str]) -> None:
    """Warn when the start may outlast the timeout it runs under.

    init_container and post_start run before the pod is ready: they count against start_timeout.
    wrap runs after the spawner has reported the server started (KubeSpawner: the container is running;
    local spawners: the process exists), so it counts against http_timeout, JupyterHub's wait for the
    server to answer.
    """
    name = spawner_class.__name__
    scripts = list(checked.setup_scripts) + [s for r in checked.rules for s in r.plan_entry.get("setup_scripts", [])]
    total = sum(float(s.get("timeout", 0)) for s in scripts)
    for delivery in sorted(set(deliveries)):
        trait, default = ("http_timeout", 30) if delivery == "wrap" else ("start_timeout", 60)
        timeout = effective_config(config, spawner_class, trait, default)
        if timeout and total > timeout:
            checked.warnings.append(
                f"the setup scripts' timeouts add up to {total:.0f} s, more than {name}.{trait} ({timeout} s), "
                f"which the {delivery!r} delivery runs under: a slow script would make the spawn time out"
            )
        if (
            delivery == "wrap"
            and timeout
            and timeout < 120
            and any(r.plan_entry["mode"] == "synced" for r in checked.rules)
        ):
            checked.warnings.append(
                f"with the 'wrap' delivery the first sync of an env runs within {name}.http_timeout ({timeout} s); "
                "copying a large env can take longer: raise it (e.g. c.Spawner.http_timeout = 300)"
            )


def validate_config(config: Config, spawner_class: type) -> CheckedConfig:
    """Check everything; raise `OSLHooksConfigError` listing all problems. Returns the checked config."""
    checked = check_config(config)
    check_spawner_config(config, spawner_class, checked)
    if checked.problems:
        raise OSLHooksConfigError(checked.problems)
    for warning in checked.warnings:
        checked.hooks.log.warning("osl-hooks: %s", warning)
    return checked
