"""Every problem at once, whatever else is wrong: a configuration with several problems reports each of them.

A valid configuration is drawn, then a few defects: several on one environment, between two environments,
or of a setting (a relative source, a duplicate name, a target outside the home, a relative setup-script
path, a mistyped setting, ...). What each defect makes `install(c)` report on its own is what it must report
next to all the others: an admin who fixes every listed problem must not meet another one at the next
restart. Defects that change what another one is about (renaming the env whose name a duplicate copies,
setting the same field twice) are not drawn together, and a mode that is not a mode is an env's only defect
(which fields an env may have depends on its mode).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from test_fuzz_config import FUZZ, SPAWNERS, install_or_problems

Env = dict[str, Any]

# -- defects of one environment: (modes it applies to, fields of the env it sets, how) -----------------------

ALL_MODES = ("baked", "synced", "linked", "user")
OWN_DEFECTS: dict[str, tuple[tuple[str, ...], frozenset[str], Callable[[Env], None]]] = {
    "bad mode": (ALL_MODES, frozenset({"mode"}), lambda e: e.update(mode="copy")),
    "unknown key": (ALL_MODES, frozenset({"sorce"}), lambda e: e.update(sorce="/opt/x")),
    "relative source": (("baked", "synced", "linked"), frozenset({"source"}), lambda e: e.update(source="envs/x")),
    "source for a user env": (("user",), frozenset({"source"}), lambda e: e.update(source="/opt/x")),
    "bad name": (ALL_MODES, frozenset({"name"}), lambda e: e.update(name=e["name"] + " x")),
    "string selector": (ALL_MODES, frozenset({"groups"}), lambda e: e.update(groups="geo")),
    "relative script": (ALL_MODES, frozenset({"setup_scripts"}), lambda e: e.update(setup_scripts=["s.sh"])),
    "bad run policy": (
        ALL_MODES,
        frozenset({"setup_scripts"}),
        lambda e: e.update(setup_scripts=[{"path": "/etc/s.sh", "run": "daily"}]),
    ),
    "target leaves the home": (
        ("synced", "linked", "user"),
        frozenset({"target"}),
        lambda e: e.update(target="../../etc"),
    ),
    "absolute target elsewhere": (
        ("synced", "linked", "user"),
        frozenset({"target"}),
        lambda e: e.update(target="/etc/x"),
    ),
    "bad kernel name": (ALL_MODES, frozenset({"kernel"}), lambda e: e.update(kernel="My K")),
    "display name without kernel": (
        ALL_MODES,
        frozenset({"kernel", "display_name"}),
        lambda e: e.update(kernel=False, display_name="X"),
    ),
    "link threshold": (("linked",), frozenset({"link_threshold"}), lambda e: e.update(link_threshold=0)),
}
# A mode that is not a mode: which fields the env may have depends on it, so it is drawn alone.
ALONE = frozenset({"bad mode"})

# -- defects between two environments: (fields of the other env they depend on, how env i copies it) ---------


def _same_name(env: Env, other: Env) -> None:
    env["name"] = other["name"].upper()  # names are compared without case


def _same_kernel(env: Env, other: Env) -> None:
    env["kernel"] = {"name": f"osl-{other['name'].lower()}"}  # the other's default kernel name


def _target_inside(env: Env, other: Env) -> None:
    env["target"] = f"{other.get('target', '.local/envs/' + other['name'])}/inner"


PAIR_DEFECTS: dict[str, tuple[frozenset[str], frozenset[str], Callable[[Env, Env], None]]] = {
    # name: (fields of the other env it reads, fields of this env it changes, how)
    "duplicate name": (frozenset({"name"}), frozenset({"name"}), _same_name),
    "duplicate kernel": (frozenset({"name", "kernel"}), frozenset({"kernel"}), _same_kernel),
    "target inside another": (frozenset({"name", "target", "mode"}), frozenset({"target"}), _target_inside),
}

# -- defects of a setting ----------------------------------------------------------------------------------

SETTING_DEFECTS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "unknown setting": lambda s, _: s.update(enviroments=[]),
    "relative global script": lambda s, _: s.update(setup_scripts=["setup.sh"]),
    "script_timeout not a number": lambda s, _: s.update(script_timeout="slow"),
    "envs_dir outside the home": lambda s, _: s.update(envs_dir="../envs"),
    "negative disk margin": lambda s, _: s.update(disk_margin_fraction=-1.0),
    "zero lock timeout": lambda s, _: s.update(lock_timeout=0),
    "negative retirement days": lambda s, _: s.update(retired_env_days=-1),
    "delivery for another spawner": lambda s, spawner: s.update(delivery="post_start" if spawner == "simple" else "x"),
}

NAMES = ["py", "gis", "radar", "r-1", "geo.team", "x_2"]


@st.composite
def configurations_with_problems(draw) -> tuple[str, dict[str, Any], list[tuple[Any, ...]]]:
    """(spawner, a valid section, defects): each defect ('own', kind, i), ('pair', kind, i, j) or ('setting', kind)."""
    spawner = draw(SPAWNERS)
    envs: list[Env] = []
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=2, max_size=5)):
        mode = draw(st.sampled_from(["baked", "synced", "linked", "user"]))
        env: Env = {"name": name, "mode": mode}
        if mode != "user":
            env["source"] = f"/opt/conda/envs/{name}"
        if mode != "baked" and draw(st.booleans()):
            env["target"] = f"~/envs/{name}"
        envs.append(env)
    section: dict[str, Any] = {"environments": envs}
    if draw(st.booleans()):
        section["home"] = "/home/jovyan"
    if draw(st.booleans()):
        section["retired_env_days"] = 30  # retirement on: the envs' problems are said once, not again as the offer

    defects: list[tuple[Any, ...]] = []
    changed: dict[int, frozenset[str]] = {}  # env index -> the fields its defects set
    read: dict[int, frozenset[str]] = {}  # env index -> the fields a pair defect reads from it
    for i in draw(st.permutations(range(len(envs)))):
        if i in changed or draw(st.integers(0, 2)) == 0:
            continue
        mode = envs[i]["mode"]
        others = [j for j in range(len(envs)) if j != i and j not in read and j not in changed]
        pairs = [k for k, (reads, _, _) in PAIR_DEFECTS.items() if "target" not in reads or mode != "baked"]
        if others and pairs and draw(st.booleans()):
            kind = draw(st.sampled_from(pairs))
            reads, sets, _ = PAIR_DEFECTS[kind]
            j = draw(st.sampled_from(others))
            if "target" in reads and envs[j]["mode"] == "baked":
                continue
            defects.append(("pair", kind, i, j))
            changed[i], read[j] = sets, reads
            changed.setdefault(j, frozenset())  # j keeps its fields: no defect of its own may change them
            continue
        own = [k for k, (modes, sets, _) in OWN_DEFECTS.items() if mode in modes and not sets & read.get(i, set())]
        kinds = draw(st.lists(st.sampled_from(own), unique=True, min_size=1, max_size=3))
        for kind in kinds:  # several on one env, each setting fields of its own
            sets = OWN_DEFECTS[kind][1]
            if sets & changed.get(i, frozenset()) or (kind in ALONE and i in changed):
                continue
            defects.append(("own", kind, i))
            changed[i] = changed.get(i, frozenset()) | sets
            if kind in ALONE:
                break
    for kind in draw(st.lists(st.sampled_from(sorted(SETTING_DEFECTS)), unique=True, max_size=3)):
        defects.append(("setting", kind))
    return spawner, section, defects


def with_defects(spawner: str, section: dict[str, Any], defects: list[tuple[Any, ...]]) -> dict[str, Any]:
    broken = copy.deepcopy(section)
    envs = broken["environments"]
    for defect in defects:
        if defect[0] == "own":
            OWN_DEFECTS[defect[1]][2](envs[defect[2]])
        elif defect[0] == "pair":
            PAIR_DEFECTS[defect[1]][2](envs[defect[2]], section["environments"][defect[3]])
        else:
            SETTING_DEFECTS[defect[1]](broken, spawner)
    return broken


ISSUE_EXAMPLE = (
    "simple",
    {
        "environments": [
            {"name": "py", "mode": "synced", "source": "/opt/conda/envs/py"},
            {"name": "gis", "mode": "synced", "source": "/opt/conda/envs/gis"},
            {"name": "radar", "mode": "baked", "source": "/opt/conda/envs/radar"},
            {"name": "r-1", "mode": "user"},
        ]
    },
    [("own", "relative source", 0), ("pair", "duplicate name", 3, 1), ("own", "relative script", 2)],
)


@FUZZ
@given(case=configurations_with_problems())
@example(case=ISSUE_EXAMPLE)  # a relative source hid the duplicate name
@example(case=(*ISSUE_EXAMPLE[:2], [("own", "absolute target elsewhere", 1), ("own", "target leaves the home", 3)]))
@example(case=(*ISSUE_EXAMPLE[:2], [("own", "unknown key", 1), ("own", "relative source", 1)]))  # on one env
def test_each_problem_is_reported_whatever_else_is_wrong(case):
    spawner, section, defects = case
    assert install_or_problems(spawner, section) is None, "the drawn base configuration is valid"
    expected: dict[str, list[str]] = {}
    for defect in defects:
        alone = install_or_problems(spawner, with_defects(spawner, section, [defect]))
        assert alone, f"{defect} alone is not reported"
        expected[str(defect)] = alone
    problems = install_or_problems(spawner, with_defects(spawner, section, defects)) or []
    for defect, alone in expected.items():
        missing = [p for p in alone if p not in problems]
        assert not missing, f"with the other defects, {defect} is not reported as {missing}; reported: {problems}"
