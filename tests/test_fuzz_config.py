"""Fuzzed `c.OSLHooks` configurations: whatever an admin writes, the hub either starts or stops with the
documented `OSLHooksConfigError`, whose every problem names the setting it is about, once.

Through the public path only (`osl_hooks.hub.install(c)` on a traitlets Config, as jupyterhub_config.py
calls it), so the checks can move between modules without this test changing. Configurations are drawn
near the valid ones: a valid base, then wrong types, unknown keys (typos and odd names), bad modes,
duplicate names, odd strings and nesting where a value is expected. Valid configurations must install.
"""

from __future__ import annotations

import re
import string
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_hub_support import PROFILES
from traitlets.config import Config

from osl_hooks.hub import OSLHooksConfigError, install
from osl_hooks.hub.config import ENV_KEYS

TRAITS = (
    "environments",
    "setup_scripts",
    "envs_dir",
    "state_dir",
    "jupyter_data_dir",
    "discover_user_envs",
    "home",
    "delivery",
    "profile_delivery",
    "command",
    "allow_root",
    "script_timeout",
    "script_run",
    "script_on_failure",
    "disk_margin_fraction",
    "disk_margin_bytes",
    "lock_timeout",
    "first_copy",
    "init_container_name",
    "init_container_resources",
    "restricted_security_context",
    "read_init_container_logs",
    "env_images",
    "spawn_page",
    "retired_env_days",
)
ENV_FIELDS = ENV_KEYS  # every key an environment entry may have
SLUGS = [p["slug"] for p in PROFILES]

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- values ----------------------------------------------------------------------------------------------

ODD_STRINGS = st.sampled_from(
    ["", " ", "~", "/", ".", "..", "../etc", "/opt/../etc", "a/b", "\x00", "py\n", "é", "x" * 300, "None", "0"]
)
STRINGS = ODD_STRINGS | st.text(max_size=12)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | STRINGS | st.binary(max_size=4)
# Keys an admin could mistype: no '.', '[', ']' or ':' (a problem's location is written with those).
KEY = st.text(alphabet=string.ascii_letters + string.digits + "_- é", min_size=1, max_size=12)
JUNK = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(KEY | st.integers(), inner, max_size=3)
        | st.frozensets(st.text(max_size=4), max_size=3)
    ),
    max_leaves=6,
)


def typo(word: str) -> st.SearchStrategy[str]:
    """The word with one character dropped, doubled or swapped with the next."""
    return st.integers(0, len(word) - 2).flatmap(
        lambda i: st.sampled_from(
            [word[:i] + word[i + 1 :], word[: i + 1] + word[i:], word[:i] + word[i + 1] + word[i] + word[i + 2 :]]
        )
    )


def maybe_junk(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return valid | JUNK


NAMES = st.sampled_from(["py", "PY", "gis", "r-1", "my env", "a" * 70, "..", "osl"]) | STRINGS
PATHS = st.sampled_from(["/opt/conda/envs/py", "/opt/gis", "~/envs", "~/envs/b", "relative"]) | STRINGS
NAME_LISTS = st.lists(st.sampled_from(["alice", "geo", *SLUGS, "gsi", ""]), max_size=3)
SCRIPT = maybe_junk(
    PATHS
    | st.fixed_dictionaries(
        {},
        optional={
            "path": maybe_junk(PATHS),
            "timeout": maybe_junk(st.floats(-10, 1000)),
            "run": maybe_junk(st.sampled_from(["always", "once", "on_change", "daily"])),
            "on_failure": maybe_junk(st.sampled_from(["continue", "fail", "ignore"])),
        },
    )
)
KERNEL = maybe_junk(
    st.booleans()
    | st.sampled_from(["k", "My Kernel", "osl-py"])
    | st.fixed_dictionaries({}, optional={"name": maybe_junk(st.just("k")), "display_name": STRINGS, "env": JUNK})
)
ENV_VALUES = {
    "name": maybe_junk(NAMES),
    "mode": maybe_junk(st.sampled_from(["baked", "synced", "linked", "user", "copy", "Synced"])),
    "source": maybe_junk(PATHS),
    "target": maybe_junk(PATHS),
    "built_prefix": maybe_junk(PATHS),
    "link_threshold": maybe_junk(st.integers(0, 1 << 20)),
    "first_copy": maybe_junk(st.sampled_from(["background", "before_ready", "eventually"])),
    "kernel": KERNEL,
    "display_name": maybe_junk(STRINGS),
    "setup_scripts": maybe_junk(st.lists(SCRIPT, max_size=2)),
    "users": maybe_junk(NAME_LISTS | st.just("alice")),
    "groups": maybe_junk(NAME_LISTS | st.just("geo")),
    "profiles": maybe_junk(NAME_LISTS),
    "profile_options": maybe_junk(
        st.dictionaries(st.sampled_from(["flavour", "image"]), maybe_junk(st.lists(st.sampled_from(["radar", "sar"]))))
    ),
}


@st.composite
def env_entry(draw) -> Any:
    """An environment dict: some of its fields (each valid or not), maybe an unknown key, or not a dict."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JUNK)
    fields = draw(st.lists(st.sampled_from(ENV_FIELDS), unique=True, max_size=6))
    entry = {"name": draw(NAMES), "mode": draw(st.sampled_from(["baked", "synced", "linked", "user"]))}
    entry.update({f: draw(ENV_VALUES[f]) for f in fields})
    if draw(st.booleans()):
        entry.pop(draw(st.sampled_from(["name", "mode"])), None)
    if draw(st.integers(0, 3)) == 0:
        entry[draw(typo(draw(st.sampled_from(ENV_FIELDS))) | KEY)] = draw(JUNK)
    return entry


TRAIT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "environments": maybe_junk(st.lists(env_entry(), max_size=4)),
    "setup_scripts": maybe_junk(st.lists(SCRIPT, max_size=3)),
    "envs_dir": maybe_junk(PATHS),
    "state_dir": maybe_junk(PATHS),
    "jupyter_data_dir": maybe_junk(PATHS),
    "discover_user_envs": JUNK,
    "home": maybe_junk(st.sampled_from(["/home/jovyan", "home/jovyan"])),
    "delivery": maybe_junk(st.sampled_from(["auto", "wrap", "post_start", "init_container", "copy"])),
    "profile_delivery": maybe_junk(st.dictionaries(st.sampled_from([*SLUGS, "gsi"]), maybe_junk(st.just("wrap")))),
    "command": maybe_junk(st.lists(STRINGS, max_size=2)),
    "allow_root": JUNK,
    "script_timeout": maybe_junk(st.floats()),
    "script_run": maybe_junk(st.sampled_from(["always", "daily"])),
    "script_on_failure": maybe_junk(st.sampled_from(["fail", "ignore"])),
    "disk_margin_fraction": maybe_junk(st.floats()),
    "disk_margin_bytes": maybe_junk(st.integers()),
    "lock_timeout": maybe_junk(st.floats()),
    "first_copy": maybe_junk(st.sampled_from(["background", "before_ready", "later"])),
    "init_container_name": maybe_junk(STRINGS),
    "init_container_resources": maybe_junk(st.dictionaries(st.sampled_from(["limits", "requests"]), JUNK)),
    "restricted_security_context": JUNK,
    "read_init_container_logs": JUNK,
    "spawn_page": JUNK,
    "retired_env_days": maybe_junk(st.none() | st.floats()),
    "env_images": maybe_junk(
        st.dictionaries(
            NAMES,
            maybe_junk(
                st.sampled_from(["registry.example/envs/gis:1", "not a reference"])
                | st.fixed_dictionaries(
                    {"reference": maybe_junk(st.just("registry.example/envs/gis:1"))},
                    optional={"pull_policy": maybe_junk(st.just("Never")), "sub_path": maybe_junk(PATHS)},
                )
            ),
            max_size=2,
        )
    ),
}


@st.composite
def oslhooks_section(draw) -> dict[str, Any]:
    """The settings of c.OSLHooks: a few traits, each valid or not, maybe a mistyped or unknown one."""
    traits = draw(st.lists(st.sampled_from(TRAITS), unique=True, min_size=1, max_size=4))
    section = {t: draw(TRAIT_VALUES[t]) for t in traits}
    if draw(st.integers(0, 4)) == 0:
        section[draw(typo(draw(st.sampled_from(TRAITS))) | st.sampled_from(["environment", "env", "osl_hooks"]))] = (
            draw(JUNK)
        )
    return section


def hub_config(spawner: str, section: dict[str, Any]) -> Config:
    c = Config()
    if spawner == "kube":
        c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
        c.Spawner.cmd = ["jupyterhub-singleuser"]
        c.KubeSpawner.profile_list = PROFILES
    else:
        c.JupyterHub.spawner_class = "simple"
    for name, value in section.items():
        c.OSLHooks[name] = value
    return c


SPAWNERS = st.sampled_from(["simple", "kube"])

# -- where a problem says it is --------------------------------------------------------------------------

LOCATION = re.compile(r"OSLHooks\.(?P<trait>[^.\[:]+)(?P<rest>(?:\[[^\]]*\]|\.[^.\[:]+)*): \S")
ITEM = re.compile(r"\[(?P<index>\d+)\](?:\.(?P<field>[^.\[:]+))?")


def check_location(problem: str, section: dict[str, Any]) -> None:
    """The problem starts with `OSLHooks.<a setting the config set>`, and an item it names exists."""
    where = LOCATION.match(problem)
    assert where, f"names no setting: {problem!r}"
    trait, rest = where["trait"], where["rest"]
    assert trait in section, f"names {trait!r}, which the configuration did not set: {problem!r}"
    value = section[trait]
    if isinstance(value, str):
        value = [value]  # traitlets takes a string for a List trait as a list of that one string
    item = ITEM.match(rest)
    if trait in ("environments", "setup_scripts") and item:
        index = int(item["index"])
        assert isinstance(value, (list, tuple)) and index < len(value), f"no such item: {problem!r}"
        if trait == "environments" and item["field"]:
            known = set(ENV_FIELDS) | (set(map(str, value[index])) if isinstance(value[index], dict) else set())
            assert item["field"] in known, f"no such field: {problem!r}"


def install_or_problems(spawner: str, section: dict[str, Any]) -> list[str] | None:
    """None when `install(c)` accepted the configuration, else the problems it raised."""
    try:
        install(hub_config(spawner, section))
    except OSLHooksConfigError as error:
        assert error.problems, "a configuration error with no problem in it"
        for problem in error.problems:
            assert problem in str(error)
        return list(error.problems)
    return None


# -- the properties --------------------------------------------------------------------------------------


@FUZZ
@given(spawner=SPAWNERS, section=oslhooks_section())
def test_any_configuration_installs_or_names_every_problem_once(spawner, section):
    problems = install_or_problems(spawner, section)
    if problems is None:
        return
    assert len(problems) == len(set(problems)), f"a problem reported twice: {problems}"
    for problem in problems:
        check_location(problem, section)


@FUZZ
@given(spawner=SPAWNERS, section=oslhooks_section())
@example(spawner="simple", section={"environments": [], "enviroments": None})  # already held the typo
def test_an_unknown_setting_is_named_and_the_rest_still_checked(spawner, section):
    """A typo in a setting's name is reported as unknown, next to whatever else is wrong (not instead)."""
    # The generated section can hold the typo already: the expectation comes from the section without it.
    without_typo = {name: value for name, value in section.items() if name != "enviroments"}
    alone = install_or_problems(spawner, without_typo) or []
    misspelt = {**without_typo, "enviroments": []}
    problems = install_or_problems(spawner, misspelt)
    assert problems is not None
    unknown = [p for p in problems if p.startswith("OSLHooks.enviroments: unknown setting")]
    assert len(unknown) == 1, problems
    assert sorted(p for p in problems if p not in unknown) == sorted(alone)


VALID_NAMES = st.lists(st.sampled_from(["py", "gis", "radar", "r-1", "geo.team", "x_2"]), unique=True, max_size=4)


@st.composite
def valid_section(draw, spawner: str) -> dict[str, Any]:
    """Configurations the docs call valid: distinct names, known modes, absolute sources, lists of names."""
    environments = []
    for name in draw(VALID_NAMES):
        mode = draw(st.sampled_from(["baked", "synced", "linked", "user"]))
        env: dict[str, Any] = {"name": name, "mode": mode}
        if mode != "user":
            env["source"] = f"/opt/conda/envs/{name}"
        kernel = draw(st.sampled_from([True, False, None]))
        if kernel is not None:
            env["kernel"] = kernel
        if kernel is not False and draw(st.booleans()):
            env["display_name"] = draw(st.text(min_size=1, max_size=20))
        for selector in ("users", "groups"):
            if draw(st.booleans()):
                env[selector] = draw(st.lists(st.sampled_from(["alice", "bob", "geo"]), min_size=1, max_size=2))
        if spawner == "kube" and draw(st.booleans()):
            env["profiles"] = draw(st.lists(st.sampled_from(SLUGS), unique=True, min_size=1))
        if spawner == "kube" and "gis" in env.get("profiles", ["gis"]) and draw(st.booleans()):
            env["profile_options"] = {"flavour": draw(st.sampled_from([["radar"], ["standard", "radar"], "radar"]))}
        if draw(st.booleans()):
            env["setup_scripts"] = [f"/etc/osl-hooks/{name}.sh"]
        environments.append(env)
    section: dict[str, Any] = {"environments": environments}
    if draw(st.booleans()):
        section["setup_scripts"] = [
            draw(st.sampled_from(["/etc/osl-hooks/setup.d", {"path": "/s", "run": "once", "timeout": 5}]))
        ]
    deliveries = ["auto", "wrap"] + (["post_start", "init_container"] if spawner == "kube" else [])
    section["delivery"] = draw(st.sampled_from(deliveries))
    if draw(st.booleans()):
        section["script_timeout"] = draw(st.floats(0.5, 600))
    return section


@FUZZ
@given(data=st.data(), spawner=SPAWNERS)
def test_every_valid_configuration_installs(data, spawner):
    section = data.draw(valid_section(spawner))
    assert install_or_problems(spawner, section) is None


def test_the_fuzzer_reaches_every_setting():
    """The strategies cover every trait the configurable has (a new trait must be fuzzed too)."""
    from osl_hooks.hub import OSLHooks

    assert set(TRAITS) == set(OSLHooks.class_trait_names(config=True))
    assert set(TRAITS) == set(TRAIT_VALUES)
