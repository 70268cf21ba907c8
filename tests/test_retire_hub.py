"""Retiring envs, the hub's side (issue 32): `c.OSLHooks.retired_env_days` and the plans it makes; the fleet report
and `/hub/metrics` from finish events whose summary has `retired` rows, as the engine writes them.

The plans are built by real KubeSpawners from a real traitlets config (tests/test_hub_support.py), for users in
different groups and profiles; every plan is read back with the engine's own `Plan.from_dict`.
"""

from __future__ import annotations

import copy
import csv
import io
import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from test_hub_config import KUBE, SIMPLE, load
from test_hub_support import ENVIRONMENTS, container, hub_user, kube_config, plan_of, spawn_pod

import osl_hooks.hub
from osl_hooks.hub import OSLHooksConfigError
from osl_hooks.hub.fleet import LastStart, env_rows, retired_by_user, rows_as_csv
from osl_hooks.hub.metrics import FleetCollector
from osl_hooks.hub.start_record import record_from_final
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


# -- the fleet: finish summaries with `retired` rows, as the engine reports them ----------------------------------


def finish(time: str, envs: list[dict], retired: list[dict] | None) -> dict:
    """A finish event; `retired=None`: an engine older than retirement (no such key in its summary)."""
    summary = {"phases": {}, "scripts": {}, "envs": envs}
    if retired is not None:
        summary["retired"] = retired
    event = {"kind": "finish", "final": True, "message": "Ready", "state": "ok", "seconds": 1.0, "time": time}
    return record_from_final({**event, "summary": summary})


GEO = {"name": "geo", "mode": "synced", "state": "ready", "copy_id": "v2", "image_id": "v2", "volume_bytes": 100}
WAITING = {"name": "old", "state": "waiting", "volume_bytes": 1000, "days_left": 12.5}
STARTS = [
    # ann's default server started last; her "gpu" server (the same home) saw the same copy earlier
    LastStart(
        "ann",
        "",
        finish(
            "2026-12-07T10:00:00Z",
            [GEO],
            [WAITING, {"name": "older", "state": "removed", "volume_bytes": 0, "reclaimed_bytes": 5000}],
        ),
    ),
    LastStart("ann", "gpu", finish("2026-12-06T10:00:00Z", [GEO], [{**WAITING, "volume_bytes": 900}])),
    # ben's start had no env to prepare; one copy he changed, one in a state a newer engine knows
    LastStart(
        "ben",
        "",
        finish(
            "2026-12-07T09:00:00Z",
            [],
            [
                {"name": "old", "state": "kept", "volume_bytes": 3000},
                {"name": "x", "state": "shredded", "volume_bytes": 7},
            ],
        ),
    ),
    LastStart("cat", "", finish("2026-12-07T08:00:00Z", [GEO], None)),  # an engine older than retirement
    LastStart(
        "dan", "", finish("2026-12-07T11:00:00Z", [GEO], [{"name": "old", "state": "due", "volume_bytes": 2000}])
    ),
]


def samples(starts: list[LastStart]) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: starts))
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def test_each_retired_copy_is_a_row_with_its_state_and_bytes():
    rows = {(r.user, r.server, r.env): r for r in env_rows(STARTS)}
    ann = rows[("ann", "", "old")]
    assert (ann.state, ann.retired, ann.volume_bytes, ann.days_left, ann.mode) == (
        "retired waiting",
        "waiting",
        1000,
        12.5,
        "",
    )
    removed = rows[("ann", "", "older")]
    assert (removed.state, removed.reclaimed_bytes) == ("removed", 5000)
    assert (rows[("ben", "", "old")].state, rows[("ben", "", "x")].state) == ("retired kept", "retired other")
    assert rows[("dan", "", "old")].state == "retired due"
    assert ("ben", "", "") not in rows  # his retired copies list his server: no empty row
    assert {env for user, _, env in rows if user == "cat"} == {"geo"}  # an older engine: its envs, nothing more
    assert rows[("cat", "", "geo")].state == "up to date" and rows[("cat", "", "geo")].retired == ""
    exported = list(csv.DictReader(io.StringIO(rows_as_csv(env_rows(STARTS)))))
    assert {(r["user"], r["env"], r["retired"], r["reclaimed_bytes"]) for r in exported if r["retired"]} >= {
        ("ann", "older", "removed", "5000"),
        ("ben", "x", "other", ""),
    }


def test_per_user_the_bytes_held_and_freed_counting_a_shared_home_once():
    by_user = retired_by_user(env_rows(STARTS))
    assert by_user == {
        "ann": {"held_bytes": 1000, "reclaimed_bytes": 5000, "states": {"retired waiting": 1, "removed": 1}},
        "ben": {"held_bytes": 3007, "reclaimed_bytes": 0, "states": {"retired kept": 1, "retired other": 1}},
        "dan": {"held_bytes": 2000, "reclaimed_bytes": 0, "states": {"retired due": 1}},
    }


def test_metrics_total_the_retired_bytes_per_state_and_the_bytes_freed_without_per_user_labels():
    metrics = samples(STARTS)
    held = {dict(k[1])["state"]: v for k, v in metrics.items() if k[0] == "osl_hooks_retired_bytes"}
    assert held == {"waiting": 1000, "due": 2000, "kept": 3000, "other": 7}
    assert metrics[("osl_hooks_reclaimed_bytes", ())] == 5000
    # the env gauges follow the envs the hub offers: a retired copy is not an env's server or volume
    assert {dict(k[1])["env"] for k in metrics if k[0] == "osl_hooks_env_servers"} == {"geo"}
    assert metrics[("osl_hooks_env_volume_bytes", (("env", "geo"), ("mode", "synced")))] == 4 * 100
    assert not any("user" in dict(labels) for _, labels in metrics)


def test_a_fleet_without_retirement_shows_zero_not_no_data():
    metrics = samples([LastStart("cat", "", finish("2026-12-07T08:00:00Z", [GEO], None))])
    assert {k: v for k, v in metrics.items() if "retired" in k[0] or "reclaimed" in k[0]} == {
        **{("osl_hooks_retired_bytes", (("state", s),)): 0.0 for s in ("waiting", "due", "kept", "other")},
        ("osl_hooks_reclaimed_bytes", ()): 0.0,
    }
    assert retired_by_user(env_rows([LastStart("cat", "", finish("2026-12-07T08:00:00Z", [GEO], None))])) == {}


def test_retirement_with_nothing_configured_is_said_at_hub_start(tmp_path, caplog):
    """Every copy would be retired: an environments list lost on the way (a values file not merged) must show."""
    load(tmp_path, SIMPLE + "c.OSLHooks.retired_env_days = 30")
    assert "retired_env_days is set and no env is configured" in caplog.text
    caplog.clear()
    load(
        tmp_path,
        SIMPLE + "c.OSLHooks.environments = [{'name': 'mine', 'mode': 'user'}]\nc.OSLHooks.retired_env_days = 30",
    )
    assert "retired_env_days" not in caplog.text
