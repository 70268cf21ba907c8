"""The fleet's rows and metrics from kept records (osl_hooks/hub/fleet.py, metrics.py), including records of an
older engine whose finish event has no summary: the states the report shows and the gauges Prometheus reads."""

from __future__ import annotations

import csv
import io

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from osl_hooks.hub.fleet import LastStart, env_rows, rows_as_csv
from osl_hooks.hub.metrics import FleetCollector
from osl_hooks.hub.start_record import record_from_final, record_from_status


def finish(time: str, outcome: str, envs: list[dict] | None) -> dict:
    event = {"kind": "finish", "final": True, "message": "Ready", "state": outcome, "seconds": 1.5, "time": time}
    if envs is not None:
        event["summary"] = {"phases": {}, "scripts": {}, "envs": envs}
    return event


def copied(name: str, copy_id: str, image_id: str, **more) -> dict:
    return {"name": name, "mode": "synced", "state": "ready", "copy_id": copy_id, "image_id": image_id, **more}


STARTS = [
    LastStart("ann", "", record_from_final(finish("2026-12-02T10:00:00Z", "ok", [copied("geo", "old", "old")]))),
    LastStart("ben", "", record_from_final(finish("2026-12-02T11:00:00Z", "ok", [copied("geo", "new", "new")]))),
    LastStart(
        "cat",
        "gpu",
        record_from_final(
            finish(
                "2026-12-02T11:30:00Z",
                "degraded",
                [
                    copied("geo", "new", "new", conflicts=2, volume_bytes=4096),
                    {"name": "big", "mode": "synced", "state": "failed", "copy_id": "a1", "image_id": "b2"},
                    {"name": "base", "mode": "baked", "state": "ready"},
                    {"name": "mine", "mode": "user", "state": "absent"},
                    {"name": "gis", "mode": "synced", "state": "background", "got": "background", "image_id": "c3"},
                ],
            )
        ),
    ),
    LastStart("dan", "", record_from_final(finish("2026-12-02T09:00:00Z", "ok", None))),  # an older engine
]


def test_states_per_env_from_the_newest_image_id():
    rows = {(r.user, r.server, r.env): r for r in env_rows(STARTS)}
    assert rows[("ann", "", "geo")].state == "behind" and rows[("ann", "", "geo")].image_id == "new"
    assert rows[("ben", "", "geo")].state == "up to date"
    assert (rows[("cat", "gpu", "geo")].state, rows[("cat", "gpu", "geo")].conflicts) == ("conflicts", 2)
    assert rows[("cat", "gpu", "big")].state == "failed"
    assert rows[("cat", "gpu", "base")].state == "ready" and rows[("cat", "gpu", "mine")].state == "absent"
    gis = rows[("cat", "gpu", "gis")]  # a first copy left to the background: not up to date, not behind
    assert (gis.state, gis.got, gis.copy_id) == ("copying", "background", "")
    older = rows[("dan", "", "")]
    assert (older.outcome, older.state, older.started) == ("ok", "", "2026-12-02T09:00:00Z")
    exported = list(csv.DictReader(io.StringIO(rows_as_csv(env_rows(STARTS)))))
    assert [(r["user"], r["env"], r["state"]) for r in exported][:2] == [
        ("ann", "geo", "behind"),
        ("ben", "geo", "up to date"),
    ]


def test_gauges_count_servers_per_state_and_sum_the_volumes():
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: STARTS))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    servers = {k[1]: v for k, v in samples.items() if k[0] == "osl_hooks_env_servers"}
    assert servers[(("env", "geo"), ("mode", "synced"), ("state", "behind"))] == 1
    assert servers[(("env", "geo"), ("mode", "synced"), ("state", "up_to_date"))] == 1
    assert servers[(("env", "geo"), ("mode", "synced"), ("state", "conflicts"))] == 1
    assert servers[(("env", "gis"), ("mode", "synced"), ("state", "copying"))] == 1
    assert sum(servers.values()) == 7  # every env row; dan's start has none
    assert samples[("osl_hooks_env_volume_bytes", (("env", "geo"), ("mode", "synced")))] == 4096


def test_only_a_finished_start_of_this_server_is_recorded():
    final = finish("2026-12-02T11:00:00Z", "failed", [])
    assert record_from_status({"pid": 41, "state": "failed", "events": [final]}, 42) is None  # another server's
    assert record_from_status({"pid": 42, "state": "running", "events": []}, 42) is None
    assert record_from_status({"pid": 42, "state": "failed", "events": [final]}, 42)["outcome"] == "failed"
    assert record_from_final({"kind": "note", "message": "x"}) is None
