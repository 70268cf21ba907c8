"""The plan is the contract between hub and container: strict, explained, round-trippable."""

import json
import subprocess
import sys

import pytest

from osl_hooks.plan import PLAN_ENV_VAR, Plan, PlanError, load_plan, parse_plan


def problems_of(data):
    with pytest.raises(PlanError) as info:
        Plan.from_dict(data)
    return info.value.problems


def test_minimal_plan_gets_documented_defaults():
    plan = Plan.from_dict(
        {"version": 1, "environments": [{"name": "geo", "mode": "synced", "source": "/opt/osl/envs/geo"}]}
    )
    resolved = plan.resolve("/home/jovyan")
    env = resolved.environments[0]
    assert env.target == "/home/jovyan/.local/envs/geo"
    assert env.kernel.name == "osl-geo" and env.kernel.display_name == "geo"
    assert resolved.state_dir == "/home/jovyan/.local/state/osl-hooks"
    assert resolved.jupyter_data_dir == "/home/jovyan/.local/share/jupyter"


FULL_PLAN = {
    "version": 1,
    "home": "/home/jovyan",
    "environments": [
        {
            "name": "geo",
            "mode": "synced",
            "source": "/opt/e/geo",
            "target": "~/envs/geo",
            "kernel": {"display_name": "Geo", "env": {"X": "1"}},
            "setup_scripts": [{"path": "/etc/osl/geo.sh", "run": "once", "on_failure": "fail", "timeout": 5}],
        },
        {"name": "tools", "mode": "baked", "source": "/opt/conda", "kernel": False},
        {"name": "mine", "mode": "user"},
    ],
    "discover_user_envs": True,
    "setup_scripts": [{"path": "/etc/osl/setup.d"}],
}


def test_plan_round_trips_through_json():
    plan = Plan.from_dict(FULL_PLAN)
    again = parse_plan(plan.to_json())
    assert again == plan
    assert again.environments[1].kernel is None
    assert again.resolve("/home/jovyan").environments[0].target == "/home/jovyan/envs/geo"


def test_linked_env_gets_the_default_threshold_and_round_trips():
    plan = Plan.from_dict({"version": 1, "environments": [{"name": "py", "mode": "linked", "source": "/opt/py"}]})
    [env] = plan.resolve("/home/jovyan").environments
    assert env.link_threshold == 1 and env.prefix == "/home/jovyan/.local/envs/py"
    assert parse_plan(plan.to_json()) == plan
    assert "link_threshold" not in json.dumps(Plan.from_dict({"version": 1}).to_dict())


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"name": "a/b", "mode": "synced", "source": "/opt/a"}, "environments[0].name: 'a/b' is not an env name"),
        ({"name": "..", "mode": "synced", "source": "/opt/a"}, "environments[0].name: '..' is not an env name"),
        ({"name": "a", "mode": "copy", "source": "/opt/a"}, "environments[0].mode: 'copy' is not one of"),
        ({"name": "a", "mode": "synced"}, "environments[0].source: required with mode 'synced'"),
        ({"name": "a", "mode": "linked"}, "environments[0].source: required with mode 'linked'"),
        (
            {"name": "a", "mode": "synced", "source": "/opt/a", "link_threshold": 4096},
            "environments[0]: field not allowed with mode 'synced'",
        ),
        (
            {"name": "a", "mode": "linked", "source": "/opt/a", "link_threshold": 0},
            "environments[0].link_threshold: 0 is less than the minimum of 1",
        ),
        ({"name": "a", "mode": "synced", "source": "opt/a"}, "environments[0].source: 'opt/a' is not an absolute path"),
        ({"name": "a", "mode": "user", "source": "/opt/a"}, "environments[0]: field not allowed with mode 'user'"),
        ({"name": "a", "mode": "synced", "source": "/opt/a", "sorce": 1}, "'sorce' was unexpected"),
        (
            {"name": "a", "mode": "synced", "source": "/opt/a", "kernel": {"name": "Bad Name"}},
            "environments[0].kernel.name: 'Bad Name' is not a kernelspec name",
        ),
        (
            {"name": "a", "mode": "synced", "source": "/opt/a", "setup_scripts": [{"path": "/x", "run": "daily"}]},
            "environments[0].setup_scripts[0].run: 'daily' is not one of",
        ),
        (
            {"name": "a", "mode": "synced", "source": "/opt/a", "setup_scripts": [{"path": "/x", "timeout": 0}]},
            "environments[0].setup_scripts[0].timeout",
        ),
    ],
)
def test_bad_environment_is_explained_with_its_field(env, expected):
    problems = problems_of({"version": 1, "environments": [env]})
    assert any(expected in p for p in problems), problems


def test_every_problem_is_reported_at_once():
    problems = problems_of({"version": 9, "home": "relative", "environments": [{"name": "a/b", "mode": "x"}]})
    fields = {p.split(":")[0] for p in problems}
    assert {"version", "home", "environments[0].name", "environments[0].mode"} <= fields


def test_duplicate_names_and_overlapping_targets_are_rejected():
    problems = problems_of(
        {
            "version": 1,
            "environments": [
                {"name": "Geo", "mode": "synced", "source": "/opt/a"},
                {"name": "geo", "mode": "synced", "source": "/opt/b", "target": "/x/geo2"},
                {"name": "c", "mode": "synced", "source": "/opt/c", "target": "/x/geo2/inner"},
            ],
        }
    )
    assert any("environments[1].name: 'geo' is already used by environments[0]" in p for p in problems)
    assert any("environments[2].target" in p and "overlaps environments[1].target" in p for p in problems)


def test_target_outside_home_is_rejected_when_resolved():
    plan = Plan.from_dict(
        {"version": 1, "environments": [{"name": "a", "mode": "synced", "source": "/opt/a", "target": "../../etc/a"}]}
    )
    with pytest.raises(PlanError) as info:
        plan.resolve("/home/jovyan")
    assert "environments[0].target: '../../etc/a' is outside the home /home/jovyan" in str(info.value)


def test_malformed_json_names_line_and_column():
    with pytest.raises(PlanError) as info:
        parse_plan('{"version": 1,\n "environments": [}', "plan.json")
    assert "plan.json" in str(info.value) and "line 2" in str(info.value)


def test_plan_from_environment_variable():
    plan = load_plan(environ={PLAN_ENV_VAR: json.dumps({"version": 1, "discover_user_envs": True})})
    assert plan.discover_user_envs


def test_plan_check_command_explains_a_bad_file(tmp_path):
    bad = tmp_path / "plan.json"
    bad.write_text(json.dumps({"version": 1, "environments": [{"name": "x/y", "mode": "synced"}]}))
    result = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "plan", "--check", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "environments[0].name" in result.stderr and "environments[0].source: required" in result.stderr
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"version": 1}))
    result = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "plan", "--check", str(good)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_pregenerated_validator_matches_the_schema():
    """Regenerate with: python -c "from osl_hooks.plan import write_validator_module; write_validator_module()" """
    from osl_hooks import _plan_validator
    from osl_hooks.plan import _fast_validator, schema_digest

    assert _plan_validator.SCHEMA_DIGEST == schema_digest()
    assert _fast_validator() is _plan_validator.validate


def test_first_copy_is_a_synced_setting_defaulting_to_background():
    plan = Plan.from_dict(
        {
            "version": 1,
            "environments": [
                {"name": "a", "mode": "synced", "source": "/opt/a"},
                {"name": "b", "mode": "synced", "source": "/opt/b", "first_copy": "before_ready"},
                {"name": "c", "mode": "baked", "source": "/opt/c"},
            ],
        }
    )
    assert [e.first_copy for e in plan.environments[:2]] == ["background", "before_ready"]
    data = plan.to_dict()
    assert [e.get("first_copy") for e in data["environments"]] == ["background", "before_ready", None]
    assert Plan.from_dict(data) == plan
    with pytest.raises(PlanError) as failure:
        Plan.from_dict(
            {
                "version": 1,
                "environments": [{"name": "l", "mode": "linked", "source": "/opt/l", "first_copy": "background"}],
            }
        )
    assert failure.value.problems == ["environments[0]: field not allowed with mode 'linked'"]
    with pytest.raises(PlanError) as failure:
        Plan.from_dict(
            {"version": 1, "environments": [{"name": "a", "mode": "synced", "source": "/a", "first_copy": "x"}]}
        )
    assert failure.value.problems == ["environments[0].first_copy: 'x' is not one of ['background', 'before_ready']"]


def test_the_plans_names_are_one_set_across_the_schema_the_engine_and_the_hub():
    """A mode, first-copy policy or script policy the hub accepts is one the schema and the engine know: the
    hub's traits take the plan module's tuples, and those match the published schema's enums."""
    from osl_hooks import plan
    from osl_hooks.hub import config

    defs = plan.plan_schema()["definitions"]
    environment, script = defs["environment"]["properties"], defs["script"]["properties"]
    assert tuple(environment["mode"]["enum"]) == plan.MODES
    assert tuple(environment["first_copy"]["enum"]) == plan.FIRST_COPIES
    assert tuple(script["run"]["enum"]) == plan.RUN_POLICIES == config.SCRIPT_RUN
    assert tuple(script["on_failure"]["enum"]) == plan.FAILURE_POLICIES == config.SCRIPT_ON_FAILURE
    assert set(plan.COPIED_MODES) < set(plan.MODES)


def test_a_plan_with_retirement_is_version_2_and_round_trips():
    """Version 2 adds the hub's whole offer; a plan without it stays version 1, which every engine reads."""
    data = {
        "version": 2,
        "environments": [{"name": "geo", "mode": "synced", "source": "/opt/envs/geo"}],
        "retirement": {"offered": ["geo", "Climate"], "remove_after_days": 30},
    }
    plan = Plan.from_dict(data)
    assert plan.version == 2 and plan.retirement is not None
    assert plan.retirement.offers("climate") and plan.retirement.offers("GEO") and not plan.retirement.offers("old")
    assert parse_plan(plan.to_json()) == plan
    without = Plan.from_dict({"version": 1, "environments": data["environments"]})
    assert without.retirement is None and without.to_dict()["version"] == 1 and "retirement" not in without.to_dict()


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"version": 1, "retirement": {"offered": [], "remove_after_days": 0}}, "version: unsupported plan version 1"),
        ({"version": 3}, "version: unsupported plan version 3"),
        ({"version": 2, "retirement": {"offered": ["../x"], "remove_after_days": 1}}, "retirement.offered[0]"),
        ({"version": 2, "retirement": {"offered": [], "remove_after_days": -1}}, "retirement.remove_after_days"),
        ({"version": 2, "retirement": {"offered": []}}, "retirement.remove_after_days: required"),
    ],
)
def test_bad_retirement_is_explained_with_its_field(data, expected):
    with pytest.raises(PlanError) as caught:
        Plan.from_dict(data)
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems
