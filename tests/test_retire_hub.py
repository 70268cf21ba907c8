"""Retiring envs, the hub's side (issue 32): `c.OSLHooks.retired_env_days` and the plans it makes; the fleet report
and `/hub/metrics` from finish events whose summary has `retired` rows, as the engine writes them.

The plans are built by real KubeSpawners from a real traitlets config (tests/test_hub_support.py), for users in
different groups and profiles; every plan is read back with the engine's own `Plan.from_dict`.
"""

from __future__ import annotations

import copy
import json

import pytest
from test_hub_config import KUBE, SIMPLE, load
from test_hub_support import ENVIRONMENTS, container, hub_user, kube_config, plan_of, spawn_pod

import osl_hooks.hub
from osl_hooks.hub import OSLHooksConfigError
from osl_hooks.plan import PLAN_VERSION, RETIREMENT_PLAN_VERSION, Plan

pytestmark = pytest.mark.usefixtures("kube")

# (user, groups, spawn options): spawns that between them get different subsets of ENVIRONMENTS
SPAWNS = [
    ("carol", [], {"profile": "python"}),
    ("dave", ["geo"], {"profile": "gis"}),
    ("alice", ["geo"], {"profile": "gis", "flavour": "radar"}),
]


def plans(c) -> dict[str, dict]:
    """Each spawn's plan, as the pod receives it."""
    osl_hooks.hub.install(c)
    return {
        user: plan_of(container(spawn_pod(c, hub_user(user, groups), options)[1], "osl-hooks"))
        for user, groups, options in SPAWNS
    }


def test_every_plan_offers_every_configured_env_whoever_and_wherever_it_is_for():
    """An env this spawn's profile or groups leave out is still offered: only a dropped env is retired."""
    configured = [e["name"] for e in ENVIRONMENTS]
    by_user = plans(kube_config(retired_env_days=30))
    selected = {user: [e["name"] for e in plan["environments"]] for user, plan in by_user.items()}
    assert selected["carol"] == ["py"] and len(selected["alice"]) == len(configured)  # the spawns differ...
    for user, plan in by_user.items():  # ...the offer does not
        assert plan["version"] == RETIREMENT_PLAN_VERSION
        assert plan["retirement"] == {"offered": configured, "remove_after_days": 30}
        parsed = Plan.from_dict(plan)
        assert parsed.retirement is not None and all(parsed.retirement.offers(name) for name in configured), user
        assert not parsed.retirement.offers("dropped")


def test_unset_the_plans_are_exactly_todays_version_1():
    """Retirement off (the default): the same JSON, byte for byte, as a hub that has no such setting."""
    default = plans(kube_config())
    assert all(plan["version"] == PLAN_VERSION and "retirement" not in plan for plan in default.values())
    assert default == plans(kube_config(retired_env_days=None))
    with_days = plans(kube_config(retired_env_days=0))
    for user, plan in default.items():
        assert {k: v for k, v in with_days[user].items() if k not in ("version", "retirement")} == {
            k: v for k, v in plan.items() if k != "version"
        }
        assert with_days[user]["retirement"]["remove_after_days"] == 0


def test_the_plan_cache_serves_one_offer_for_every_plan():
    c = kube_config(retired_env_days=7)
    runtime = osl_hooks.hub.install(c)
    for user, groups, options in SPAWNS * 2:
        spawn_pod(c, hub_user(user, groups), options)
    cached = list(runtime.planner._cache.values())
    assert len(cached) == len(SPAWNS)  # the second round was served from the cache
    assert len({Plan.from_dict(json.loads(text)).retirement for text in cached}) == 1


@pytest.mark.parametrize(
    "value, message",
    [
        ("-1", "OSLHooks.retired_env_days: -1.0 is not a number of days (0 or more; None keeps every copy)"),
        ("float('inf')", "OSLHooks.retired_env_days: inf is not a number of days"),
        ("'30 days'", "OSLHooks.retired_env_days: expected a float, not the str '30 days'"),
    ],
)
def test_a_bad_number_of_days_stops_the_hub_in_one_sentence(tmp_path, value, message):
    with pytest.raises(OSLHooksConfigError) as failure:
        load(tmp_path, SIMPLE + f"c.OSLHooks.retired_env_days = {value}")
    (problem,) = [p for p in failure.value.problems if p.startswith("OSLHooks.retired_env_days")]
    assert problem.startswith(message)


def test_a_bad_env_name_is_said_once_not_again_as_part_of_the_offer(tmp_path):
    body = SIMPLE + 'c.OSLHooks.retired_env_days = 0\nc.OSLHooks.environments = [{"name": "bad name", "mode": "user"}]'
    with pytest.raises(OSLHooksConfigError) as failure:
        load(tmp_path, body)
    assert [p.split(":")[0] for p in failure.value.problems] == ["OSLHooks.environments[0].name"]


def test_z2jh_values_set_it_too(tmp_path):
    values = {"OSLHooks": {"environments": copy.deepcopy(ENVIRONMENTS[:1]), "retired_env_days": 30}}
    body = KUBE + f"for section, settings in {values!r}.items():\n    c[section].update(settings)\n"
    app = load(tmp_path, body)
    assert app.config.KubeSpawner.modify_pod_hook._osl_hooks_runtime.hooks.retired_env_days == 30
