"""The start's summary in its finish event (what the hub's metrics and admin report read), on genuine envs:
first copies, nothing new, linked copies, a full home, an image update with a conflict, a failing script.
Every expected figure is derived from the envs the test built, never typed in."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from conftest import StartResult, mounted_tmpfs, wait_for_copy, write_script

from osl_hooks.demo.envbuild import PackageSpec, build_conda_env, demo_packages
from osl_hooks.engine.linked import own_links
from osl_hooks.engine.manifest import bake, read_id, scan_tree
from osl_hooks.engine.runner import Outcome, start
from osl_hooks.engine.summary import SUMMARY_ID_CHARS
from osl_hooks.events import Event, parse_line, termination_text
from osl_hooks.hub.fleet import LastStart, env_rows
from osl_hooks.hub.start_record import record_from_final
from osl_hooks.plan import Plan
from osl_hooks.status import read_status

STATE = ".local/state/osl-hooks"


def summary_of(result) -> dict:
    final = result.status["events"][-1]
    assert final["kind"] == "finish"
    return final["summary"]


def env_row(result, name: str) -> dict:
    return next(e for e in summary_of(result)["envs"] if e["name"] == name)


def test_first_copy_then_nothing_new(tmp_path, image, run_start, monkeypatch):
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    monkeypatch.setenv("OSL_HOOKS_TERMINATION_LOG", str(termination_log))
    source = image / "envs/geo"
    plan = {"environments": [{"name": "geo", "mode": "synced", "source": str(source), "kernel": False}]}
    described = scan_tree(source)
    first = run_start(plan)
    assert first.outcome == Outcome.OK
    row = env_row(first, "geo")
    short_id = described.id[:SUMMARY_ID_CHARS]
    assert row == {
        "name": "geo",
        "mode": "synced",
        "state": "ready",
        "action": "copy",
        "image_id": short_id,
        "copy_id": short_id,
        "volume_bytes": described.disk_bytes,
        "linked_bytes": 0,
        "copied_bytes": described.bytes,
        "conflicts": 0,
        "seconds": row["seconds"],
    }
    assert summary_of(first)["phases"]["copy"] > 0 and summary_of(first)["phases"]["update"] == 0
    # the termination message (what the hub reads from a pod) carries the same summary
    assert parse_line(termination_log.read_text().splitlines()[-1])["summary"] == summary_of(first)

    again = run_start(plan)
    row = env_row(again, "geo")
    assert (row["action"], row["copy_id"], row["volume_bytes"]) == ("unchanged", short_id, described.disk_bytes)
    assert "copied_bytes" not in row and summary_of(again)["phases"]["copy"] == 0


def test_a_first_copy_left_to_the_background_shows_as_copying_until_a_start_finds_it_done(tmp_path, image, home):
    """The report must not call a copy that is still being made "up to date": the start that left it to the
    background says so, and the next start (the copy done) reports it as an ordinary copy."""
    source = image / "envs/geo"
    plan = Plan.from_dict(
        {"version": 1, "home": str(home), "environments": [{"name": "geo", "mode": "synced", "source": str(source)}]}
    )
    first = start(plan, allow_root=True, out=io.StringIO(), background=True)
    assert first == Outcome.OK
    row = summary_of(StartResult(first, "", read_status(home / STATE)))["envs"][0]
    assert (row["state"], row["got"]) == ("background", "background")
    record = record_from_final(read_status(home / STATE)["events"][-1])
    assert [r.state for r in env_rows([LastStart("ann", "", record)])] == ["copying"]

    assert wait_for_copy(home, "geo")["state"] == "done"
    again = start(plan, allow_root=True, out=io.StringIO(), background=True)
    row = summary_of(StartResult(again, "", read_status(home / STATE)))["envs"][0]
    assert (row["state"], row["copy_id"]) == ("ready", scan_tree(source).id[:SUMMARY_ID_CHARS])
    record = record_from_final(read_status(home / STATE)["events"][-1])
    assert [r.state for r in env_rows([LastStart("ann", "", record)])] == ["up to date"]


def test_linked_copy_reports_the_bytes_its_links_serve(tmp_path, run_start):
    source = tmp_path / "image/envs/geo"
    data = PackageSpec(name="bigdata", version="1.0", files={f"share/bigdata/{i}.txt": "x" * 40000 for i in range(3)})
    build_conda_env(source, [*demo_packages(), data])
    plan = {
        "environments": [
            {"name": "geo", "mode": "linked", "source": str(source), "kernel": False, "link_threshold": 16384}
        ]
    }
    result = run_start(plan)
    row = env_row(result, "geo")
    target = Path(result.status["environments"]["geo"]["prefix"])
    links = own_links(target, source)
    assert links, "the env needs files above the link threshold"
    assert row["linked_bytes"] == sum(os.stat(target / p).st_size for p in links)
    assert row["copied_bytes"] == scan_tree(source).bytes - row["linked_bytes"]
    assert row["volume_bytes"] < scan_tree(source).disk_bytes


def test_a_full_home_falls_back_with_its_reason(tmp_path, image, run_start_in):
    with mounted_tmpfs(tmp_path / "small-home", "1m") as home:
        plan = {"environments": [{"name": "geo", "mode": "synced", "source": str(image / "envs/geo"), "kernel": False}]}
        result = run_start_in(home, plan)
    assert result.outcome == Outcome.DEGRADED
    row = env_row(result, "geo")
    assert (row["state"], row["got"], row["fallback"]) == ("fallback", "baked", "disk_full")
    assert "copy_id" not in row and "volume_bytes" not in row


def test_an_image_update_with_a_conflict_and_a_failing_script(tmp_path, home, run_start):
    source = tmp_path / "image/envs/geo"
    build_conda_env(source)
    bake(source)
    failing = write_script(tmp_path / "setup.sh", 'test -e "$HOME/ok" || { echo "no $HOME/ok" >&2; exit 4; }')
    plan = {
        "environments": [{"name": "geo", "mode": "synced", "source": str(source), "kernel": False}],
        "setup_scripts": [{"path": str(failing)}],
    }
    (home / "ok").write_text("")
    first = run_start(plan)
    old_id = read_id(source / ".osl-hooks-manifest.jsonl")
    assert env_row(first, "geo")["copy_id"] == old_id[:SUMMARY_ID_CHARS]
    assert summary_of(first)["scripts"] == {"ok": 1}

    (home / ".local/envs/geo/share/geodemo/geodemo.ini").write_text("data_dir = /mine\n")
    build_conda_env(source, demo_packages("2.0"))
    bake(source)
    (home / "ok").unlink()
    updated = run_start(plan)
    assert updated.outcome == Outcome.DEGRADED
    row = env_row(updated, "geo")
    record = json.loads((home / STATE / "envs/geo.json").read_text())
    new_id = read_id(source / ".osl-hooks-manifest.jsonl")
    assert new_id != old_id
    assert row["action"] == "update" and row["copy_id"] == row["image_id"] == new_id[:SUMMARY_ID_CHARS]
    assert row["conflicts"] == row["new_conflicts"] == len(record["conflicts"]) >= 1
    assert row["copied_bytes"] > 0 and summary_of(updated)["phases"]["update"] > 0
    assert summary_of(updated)["scripts"] == {"failed": 1}
    # the next start finds nothing new: the conflicts stay listed, none is new
    again = env_row(run_start(plan), "geo")
    assert (again["action"], again["conflicts"]) == ("unchanged", len(record["conflicts"]))
    assert "new_conflicts" not in again


def test_a_summary_too_big_for_the_termination_message_goes_before_the_outcome():
    envs = [{"name": f"env{i}", "mode": "synced", "state": "ready", "image_id": "0" * 12} for i in range(200)]
    final = Event("finish", "Ready in 3.0 s", None, seq=4, state="ok", seconds=3.0, summary={"envs": envs})
    text = termination_text(final, [], final.message, 4096)
    assert len(text.encode()) <= 4096
    kept = parse_line(text.splitlines()[-1])
    assert kept["state"] == "ok" and "summary" not in kept
