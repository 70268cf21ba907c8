"""Fuzzed plans (hypothesis): whatever the hub or an admin sends, never a traceback, always the field named.

Valid plans are mutated one field at a time (replaced by any JSON value, removed, or joined by an unknown
field); the result must either be a plan or a PlanError whose every problem starts with a field path, one
of them the mutated field or a parent of it. Plans that pass are then run by a real start, in a fresh
home, with their paths kept inside it (no fuzzed source or script is ever copied or run).
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_plan import FULL_PLAN

from osl_hooks.cli import main
from osl_hooks.engine.runner import Outcome, start
from osl_hooks.plan import Plan, PlanError, parse_plan

VALID = {**FULL_PLAN, "envs_dir": ".local/envs", "disk_margin_fraction": 0.05, "lock_timeout": 10}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def fields(value, path=()):
    """Every place in a plan a mutation can hit, as a path of keys and indexes."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from fields(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from fields(child, (*path, index))


PLACES = [p for p in fields(VALID) if p]


def spelled(path) -> str:
    """A field path as problems spell it: environments[0].kernel.env."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@st.composite
def mutated_plans(draw):
    data = json.loads(json.dumps(VALID))
    place = draw(st.sampled_from(PLACES))
    *parents, last = place
    holder = data
    for part in parents:
        holder = holder[part]
    action = draw(st.sampled_from(["replace", "remove", "unknown field"]))
    if action == "replace":
        holder[last] = draw(json_values)
    elif action == "remove" and isinstance(holder, dict):
        del holder[last]
    elif isinstance(holder, dict):
        holder[draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in holder))] = draw(json_values)
    else:
        holder[last] = draw(json_values)
    return data, tuple(parents)


def _with_env0_target(target: str) -> tuple[dict, tuple]:
    data = json.loads(json.dumps(VALID))
    data["environments"][0]["target"] = target
    return data, ("environments", 0)


def names(problem: str, field: str) -> bool:
    """The problem is about `field`: where it is, or the other side of a rule across envs (a later env's name or
    target collides with it: '... is already used by environments[0]', '... overlaps environments[0].target')."""
    collides = re.search(rf"(?:used by|overlaps) {re.escape(field)}(?![\w\[])", problem)
    return problem.startswith(field) or collides is not None


@settings(max_examples=300, deadline=None)
@given(mutated_plans())
@example(_with_env0_target("."))  # the home itself: a later env's target, inside it, is the one reported
def test_a_mutated_plan_is_a_plan_or_its_problems_name_the_field(case):
    data, parents = case
    try:
        plan = Plan.from_dict(data)
        plan.resolve("/home/jovyan")
    except PlanError as e:
        assert e.problems, "an error lists its problems"
        for problem in e.problems:
            field, sep, why = problem.partition(": ")
            assert sep and why and field.strip(), problem
        parent = spelled(parents)
        assert not parent or any(names(p, parent) for p in e.problems), (parent, e.problems)
        return
    assert parse_plan(plan.to_json()) == plan, "a valid plan round-trips"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_any_text_is_a_plan_or_a_named_problem(text):
    try:
        parse_plan(text, "plan.json")
    except PlanError as e:
        assert e.problems and str(e).startswith("invalid plan.json:")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_plans())
def test_the_start_and_plan_check_never_trace_back(tmp_path, capsys, case):
    data, _parents = case
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(data))
    assert main(["plan", "--check", str(plan_file)]) in (0, 2)
    assert "Traceback" not in capsys.readouterr().err
    try:
        plan = Plan.from_dict(data)
    except PlanError:
        return
    with tempfile.TemporaryDirectory(dir=tmp_path) as home:
        safe = _kept_inside(data, Path(home))
        try:
            outcome = start(Plan.from_dict(safe), allow_root=True, out=io.StringIO())
        except PlanError:  # a path the plan puts outside this home: refused before anything happens
            return
        assert outcome in (Outcome.OK, Outcome.DEGRADED, Outcome.FAILED)
    assert plan is not None


def _kept_inside(data: dict, home: Path) -> dict:
    """The plan, with its home replaced and nothing from the image to copy or run."""
    safe = json.loads(json.dumps(data))
    safe["home"] = str(home)
    safe.pop("setup_scripts", None)
    for env in safe.get("environments", []):
        if isinstance(env, dict):
            env.pop("setup_scripts", None)
            if "source" in env:
                env["source"] = str(home / "no-such-image-env")
    return safe
