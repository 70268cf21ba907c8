"""The plan's own rules for a configuration, each checked whatever else is wrong with it.

The engine validates every plan with `Plan.from_dict` (the schema, then the rules across envs) and
`Plan.resolve` (paths inside the home). Run once on one sample plan, a problem anywhere hides others: a
schema problem in one env stops the rules across envs for all (a duplicate name went unseen next to a
relative source), and an env with a problem of its own was left out of them. So the same code is run in
three independent parts, and every problem is reported under the ``OSLHooks.`` setting it comes from:
1. the settings, in a plan with nothing else;
2. the global setup scripts, and each environment's own fields, in a plan of that environment alone;
3. the rules across envs (unique names and kernels, targets that do not overlap, inside the home), on
   stand-ins for *every* configured env, built from its fields that are valid on their own.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..plan import (
    BAKED,
    COPIED_MODES,
    KERNEL_NAME_PREFIX,
    MODES,
    USER,
    Environment,
    Kernel,
    Plan,
    PlanError,
    plan_schema,
)
from .config import SECTION

Renumber = Callable[[str], str]


def plan_problems(
    settings: dict[str, Any],
    scripts: list[tuple[int, dict[str, Any]]],
    entries: list[tuple[int, dict[str, Any]]],
    environments: list[Any],
    home: str | None,
) -> list[str]:
    """Problems of the plans this configuration makes, as ``OSLHooks.<setting>...: why`` lines.

    `settings`: the plan's top-level fields (as `checks.plan_data` makes them, without environments and
    scripts); `scripts` and `entries`: the global scripts and environments that parsed, with their index in
    the configuration; `environments`: every configured environment as written; `home`: the home to check
    paths against (`spawner_config.spawn_home`), None when only the spawn knows it.
    """
    problems: list[str] = []
    # 1. The settings; one found wrong is left at its default below (its consequences are not problems).
    top = dict(settings)
    for check_home in dict.fromkeys((None, home)):  # the values first: a wrong one would hide the paths' problems
        wrong = _problems({**top, "environments": [], "setup_scripts": []}, check_home, str)
        problems += wrong
        top = {k: v for k, v in top.items() if not any(p.startswith(f"{k}:") for p in wrong)}
    # 2. The global setup scripts, and each environment alone (its own fields; the rules across envs are 3.).
    script_index = {str(k): str(i) for k, (i, _) in enumerate(scripts)}
    data = {**top, "environments": [], "setup_scripts": [s for _, s in scripts]}
    problems += _problems(data, None, _renumber("setup_scripts", script_index))
    for index, entry in entries:
        alone = {**top, "environments": [entry], "setup_scripts": []}
        problems += _problems(alone, None, _renumber("environments", {"0": str(index)}))
    # 3. Every env against the others, and inside the home.
    stand_ins = [(i, s) for i, value in enumerate(environments) if (s := stand_in(value))]
    env_index = {str(k): str(i) for k, (i, _) in enumerate(stand_ins)}
    try:
        plan = Plan.from_dict({**top, "environments": [], "setup_scripts": []})
    except PlanError:  # a setting part 1 could not tie to its name: the defaults, for the rules across envs
        plan = Plan()
    plan = replace(plan, environments=tuple(s for _, s in stand_ins))
    try:
        across = plan.semantic_problems() if home is None else plan.resolve(home).semantic_problems()
    except PlanError as e:  # resolve: paths outside the home, and the rules across envs on the resolved paths
        # A resolved path is shown as the admin writes one: '~/envs/b', not '/tmp/{username}/envs/b'.
        across = [p.replace(f"'{posixpath.normpath(home or '/')}/", "'~/") for p in e.problems]
    problems += map(_renumber("environments", env_index), across)
    if home is None:
        problems += _leaving_the_home(top, environments)
    return [f"{SECTION}.{p}" for p in problems]


def _problems(data: dict[str, Any], home: str | None, renumber: Renumber) -> list[str]:
    try:
        plan = Plan.from_dict(data, SECTION)
        if home:
            plan.resolve(home)
    except PlanError as e:
        return [renumber(p) for p in e.problems]
    return []


def _renumber(field: str, index: Mapping[str, str]) -> Renumber:
    """Problems of a plan made of some of the configured items, with the configuration's indices."""

    def renumber(problem: str) -> str:
        problem = re.sub(rf"^{field}\[(\d+)\]", lambda m: f"{field}[{index[m[1]]}]", problem)
        return re.sub(
            rf"(already used by|overlaps) {field}\[(\d+)\]", lambda m: f"{m[1]} {field}[{index[m[2]]}]", problem
        )

    return renumber


def _matches(rule: dict[str, Any], value: Any) -> bool:
    return isinstance(value, str) and re.match(rule["pattern"], value) is not None


def stand_in(value: Any) -> Environment | None:
    """What the rules across envs compare of a configured env, from its fields that are valid on their own.

    An env with problems of its own still takes part: its name (any text: two envs spelt alike are one
    problem more), its kernel name, its target and source. One whose mode is not valid takes part with its
    name and kernel only (whether it has a target in the home depends on its mode).
    """
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not value["name"]:
        return None
    name, mode = value["name"], value.get("mode")
    kernel_name = value.get("kernel", True)
    if isinstance(kernel_name, dict):
        kernel_name = kernel_name.get("name", True)
    if kernel_name is True or kernel_name is None:
        kernel_name = KERNEL_NAME_PREFIX + name.lower()
    definitions = plan_schema()["definitions"]
    kernel = Kernel(kernel_name, name) if _matches(definitions["kernel"]["properties"]["name"], kernel_name) else None
    if mode not in MODES:
        return Environment(name, BAKED, kernel=kernel)
    source = value.get("source") if mode != USER and _matches(definitions["imagePath"], value.get("source")) else None
    target = value.get("target") if mode != BAKED and isinstance(value.get("target"), str) else None
    return Environment(name, mode, source=source and posixpath.normpath(source), target=target or None, kernel=kernel)


def _leaving_the_home(settings: dict[str, Any], environments: Iterable[Any]) -> list[str]:
    """With no home known at hub start, a path relative to the home can still be seen to leave it."""
    paths = [(k, settings.get(k)) for k in ("envs_dir", "state_dir", "jupyter_data_dir")]
    for i, env in enumerate(environments):
        if isinstance(env, dict) and env.get("mode") in (*COPIED_MODES, USER):
            paths.append((f"environments[{i}].target", env.get("target")))
    problems = []
    for where, value in paths:
        if isinstance(value, str) and not value.startswith("/"):
            relative = posixpath.normpath(value[2:] if value.startswith("~/") else value)
            if relative == ".." or relative.startswith("../"):
                problems.append(f"{where}: {value!r} leads out of the home (it is relative to the home)")
    return problems
