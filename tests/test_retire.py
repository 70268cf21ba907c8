"""Retired envs (issue 32, the engine's side): a copy osl-hooks made of an env the hub no longer offers.

Real starts on a genuine conda env, real rsync. A plan of version 2 names every env the hub offers; a copy of an
env outside it is removed when unchanged (after the server is ready, or as the last step where the delivery allows
no background work), kept with one sentence when the user changed it, and never touched when the hub still offers
it elsewhere, the user built it, a user env has its name, its record is damaged or its target leads out of the home.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import fill_to, mounted_tmpfs, tree_snapshot

from osl_hooks.engine.linked import own_links
from osl_hooks.engine.linkform import IMAGE_LINK
from osl_hooks.engine.runner import Outcome

pytestmark = pytest.mark.slow

STATE = ".local/state/osl-hooks"


def synced(image: Path) -> dict:
    return {"environments": [{"name": "geo", "mode": "synced", "source": str(image / "envs/geo")}]}


def retiring(offered: list[str] | None = None, days: float = 0, environments: list | None = None) -> dict:
    """A version-2 plan whose hub offers `offered` (geo is not among them unless named)."""
    return {
        "version": 2,
        "environments": environments or [],
        "retirement": {"offered": offered or [], "remove_after_days": days},
    }


def retired_rows(result) -> dict[str, dict]:
    finish = result.status["events"][-1]
    return {row["name"]: row for row in finish["summary"].get("retired", [])}


def volume_bytes(*roots: Path) -> int:
    """Bytes on the volume under `roots` (blocks, as `du` counts them)."""
    total = 0
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            for name in [*dirs, *files]:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def osl_hooks(home: Path, plan: dict, *args: str) -> subprocess.CompletedProcess:
    plan_file = home.parent / "plan.json"
    plan_file.write_text(json.dumps({"version": 1, "home": str(home), **plan}))
    command = [sys.executable, "-m", "osl_hooks.cli", args[0]]
    command += [*(["--plan", str(plan_file)] if args[0] != "status" else []), *args[1:]]
    environ = dict(os.environ, HOME=str(home))
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=120)


@pytest.fixture
def geo_copy(image, home, run_start) -> Path:
    """A home with osl-hooks' copy of geo, synced by a start."""
    assert run_start(synced(image)).outcome == Outcome.OK
    target = home / ".local/envs/geo"
    assert (home / STATE / "envs/geo.json").is_file()
    return target


def test_an_unchanged_copy_is_removed_at_the_last_step_and_the_volume_is_as_if_it_never_was(
    image, home, geo_copy, run_start, run_start_in, tmp_path
):
    result = run_start(retiring())

    assert result.outcome == Outcome.OK, result.output
    assert not os.path.lexists(geo_copy)
    assert not list((home / STATE / "envs").iterdir())
    assert not list(geo_copy.parent.glob(".osl-removing-*"))
    row = retired_rows(result)["geo"]
    assert row["state"] == "removed" and row["volume_bytes"] == 0 and row["reclaimed_bytes"] > 0
    never = tmp_path / "never" / "home"
    never.mkdir(parents=True)
    assert run_start_in(never, retiring()).outcome == Outcome.OK
    places = (".local/envs", f"{STATE}/envs", ".local/share/jupyter")
    assert volume_bytes(*(home / p for p in places)) == volume_bytes(*(never / p for p in places))


def test_with_the_wrap_delivery_the_removal_comes_after_the_server_is_ready(image, home, geo_copy):
    mark = home.parent / "server-saw-the-copy"
    server = ["sh", "-c", f"test -d {geo_copy} && touch {mark}"]

    result = osl_hooks(home, retiring(), "start", "--allow-root", "--", *server)

    assert result.returncode == 0, result.stdout + result.stderr
    assert mark.exists(), "the copy was removed before the server started"
    deadline = time.monotonic() + 60
    while os.path.lexists(geo_copy) or list(geo_copy.parent.glob(".osl-removing-*")):
        assert time.monotonic() < deadline, (home / STATE / "start.log").read_text()
        time.sleep(0.1)
    state = json.loads((home / STATE / "retired.json").read_text())
    assert state["envs"]["geo"]["state"] == "removed", state
    assert not (home / STATE / "envs/geo.json").exists()


def test_a_changed_copy_is_kept_with_its_sentence_in_the_start_and_in_status(image, home, geo_copy, run_start):
    (geo_copy / "my-notes.txt").write_text("mine")

    first = run_start(retiring())

    assert first.outcome == Outcome.OK, first.output
    assert (geo_copy / "my-notes.txt").read_text() == "mine"
    [said] = [m for m in first.messages() if m.startswith("Your copy of geo")]
    assert "osl-hooks remove geo" in said and "you changed it" in said, said
    assert retired_rows(first)["geo"]["state"] == "kept"
    status = json.loads(osl_hooks(home, {}, "status", "--json").stdout)
    [row] = status["retired"]
    assert row["name"] == "geo" and row["state"] == "kept" and "osl-hooks remove geo" in row["message"]
    assert row["volume_bytes"] >= volume_bytes(geo_copy) // 2  # its size, measured when it was checked
    again = run_start(retiring())  # later starts say it short, and keep it
    assert any(m.startswith("Your changed copy of geo") for m in again.messages()), again.messages()
    assert (geo_copy / "my-notes.txt").exists()


def test_remove_after_days_waits_then_removes(image, home, geo_copy, run_start):
    result = run_start(retiring(days=3))

    row = retired_rows(result)["geo"]
    assert row["state"] == "waiting" and 2.9 < row["days_left"] <= 3, row
    assert geo_copy.is_dir()
    state_file = home / STATE / "retired.json"
    state = json.loads(state_file.read_text())
    state["envs"]["geo"]["since"] -= 3 * 86400  # three days later
    state_file.write_text(json.dumps(state))
    later = run_start(retiring(days=3))
    assert retired_rows(later)["geo"]["state"] == "removed" and not os.path.lexists(geo_copy)


def test_an_env_offered_under_another_profile_is_never_retired(image, home, geo_copy, run_start):
    result = run_start(retiring(offered=["GEO"]))  # offered (case-insensitive), not in this spawn's plan

    assert geo_copy.is_dir() and (home / STATE / "envs/geo.json").is_file()
    assert retired_rows(result) == {}


def test_an_env_that_comes_back_before_its_removal_is_kept_and_synced(image, home, geo_copy, run_start):
    before = tree_snapshot(geo_copy)
    assert retired_rows(run_start(retiring(days=5)))["geo"]["state"] == "waiting"

    back = run_start(retiring(offered=["geo"], environments=synced(image)["environments"]))

    assert back.outcome == Outcome.OK and back.env("geo")["state"] == "ready", back.output
    assert back.env("geo")["action"] == "unchanged"
    assert tree_snapshot(geo_copy) == before
    assert retired_rows(back) == {}


def test_never_touched_user_built_env_user_env_name_damaged_record_link_out_of_home(
    image, home, geo_copy, run_start, tmp_path
):
    built = home / ".local/envs/mine"
    (built / "conda-meta").mkdir(parents=True)  # the user's own env: no record
    (built / "conda-meta/history").write_text("mine")
    result = run_start(retiring(environments=[{"name": "geo", "mode": "user"}]))
    assert geo_copy.is_dir() and built.is_dir()
    assert any("a user env of your plan has its name" in m for m in result.messages()), result.messages()

    record = home / STATE / "envs/geo.json"
    good = record.read_text()
    record.write_text("{damaged")
    result = run_start(retiring())
    assert geo_copy.is_dir() and any("cannot be read" in m for m in result.messages()), result.messages()

    record.write_text(good)
    outside = tmp_path / "outside"
    geo_copy.rename(outside)
    geo_copy.symlink_to(outside)
    result = run_start(retiring())
    assert outside.is_dir() and geo_copy.is_symlink() and (outside / "conda-meta").is_dir()
    assert any("is a link" in m for m in result.messages()), result.messages()
    assert built.is_dir() and (built / "conda-meta/history").read_text() == "mine"


def test_osl_hooks_remove_writes_the_report_then_removes(image, home, geo_copy, run_start):
    (geo_copy / "my-notes.txt").write_text("mine")
    assert retired_rows(run_start(retiring()))["geo"]["state"] == "kept"
    plan = retiring()

    result = osl_hooks(home, plan, "remove", "geo", "--allow-root")

    assert result.returncode == 0, result.stdout + result.stderr
    [report] = (home / STATE / "removed").glob("geo-*.txt")
    assert "my-notes.txt" in report.read_text() and str(report) in result.stdout
    assert not os.path.lexists(geo_copy) and not (home / STATE / "envs/geo.json").exists()
    state = json.loads((home / STATE / "retired.json").read_text())
    assert state["envs"]["geo"]["state"] == "removed" and state["envs"]["geo"]["reclaimed_bytes"] > 0


def test_osl_hooks_remove_refuses_offered_user_built_and_unknown_envs(image, home, geo_copy):
    (home / ".local/envs/mine/conda-meta").mkdir(parents=True)
    for name, plan, words in [
        ("geo", retiring(offered=["geo"]), "still offers it"),
        ("mine", retiring(), "never removes an env you built"),
        ("nothere", retiring(), "has no copy of an env of that name"),
    ]:
        result = osl_hooks(home, plan, "remove", name, "--allow-root")
        assert result.returncode == Outcome.FAILED and words in result.stdout, result.stdout
    assert geo_copy.is_dir() and (home / ".local/envs/mine").is_dir()


def test_a_version_1_plan_changes_nothing(image, home, geo_copy, run_start):
    before = tree_snapshot(geo_copy)

    result = run_start({"environments": []})

    assert result.outcome == Outcome.OK
    assert tree_snapshot(geo_copy) == before and (home / STATE / "envs/geo.json").is_file()
    assert "retired" not in result.status["events"][-1]["summary"]
    assert not (home / STATE / "retired.json").exists()


def test_a_changed_linked_copy_loses_its_links_into_the_image_and_keeps_what_the_user_made(image, home, run_start):
    source = image / "envs/geo"
    linked = {"environments": [{"name": "geo", "mode": "linked", "source": str(source), "link_threshold": 1}]}
    assert run_start(linked).outcome == Outcome.OK
    target = home / ".local/envs/geo"
    assert own_links(target, source), "the copy links into the image"
    (target / "my-notes.txt").write_text("mine")

    result = run_start(retiring())

    assert retired_rows(result)["geo"]["state"] == "kept", result.output
    assert own_links(target, source) == {} and not list(target.rglob(IMAGE_LINK))
    assert (target / "my-notes.txt").read_text() == "mine"
    record = json.loads((home / STATE / "envs/geo.json").read_text())
    assert "links" not in record and not record.get("links_file"), "the record names no links into the image"


def test_a_full_home_removes_nothing_and_says_so_then_a_start_with_room_removes(image, tmp_path, run_start_in):
    with mounted_tmpfs(tmp_path / "volume", "8m") as volume:
        home = volume / "home"
        home.mkdir()
        no_margin = {"disk_margin_fraction": 0, "disk_margin_bytes": 0}
        first = run_start_in(home, {**synced(image), **no_margin})
        assert first.outcome == Outcome.OK, first.output
        target = home / ".local/envs/geo"
        before = tree_snapshot(target)
        filler = fill_to(volume, 0)

        full = run_start_in(home, retiring())

        assert tree_snapshot(target) == before and (home / STATE / "envs/geo.json").is_file()
        assert "your home is full" in full.output, full.output
        filler.unlink()
        assert retired_rows(run_start_in(home, retiring()))["geo"]["state"] == "removed"
        assert not os.path.lexists(target)


def test_the_kernel_of_a_retired_env_goes_at_once_and_its_changed_copy_waits(python_image, home, run_start):
    plan = {"environments": [{"name": "py", "mode": "synced", "source": str(python_image / "envs/py")}]}
    assert run_start(plan).outcome == Outcome.OK
    kernel = home / ".local/share/jupyter/kernels/osl-py"
    assert kernel.is_dir()
    target = home / ".local/envs/py"
    (target / "my-notes.txt").write_text("mine")

    result = run_start(retiring(days=30))

    assert not kernel.exists() and target.is_dir(), result.output
    assert retired_rows(result)["py"]["state"] == "waiting"


def test_an_edited_retirement_state_never_points_a_deletion_at_the_users_files(image, home, geo_copy, run_start):
    """retired.json is the user's own file: a `removing` place in it that osl-hooks did not name (an edit, damage)
    is never deleted; the user's directory stays whole."""
    mine = home / "projects/data"
    mine.mkdir(parents=True)
    (mine / "results.csv").write_text("kept\n")
    run_start(retiring(days=30))  # geo retired and waiting: the state file exists
    state_file = home / STATE / "retired.json"
    state = json.loads(state_file.read_text())
    state["envs"]["geo"].update(state="removed", removing=str(mine))
    state_file.write_text(json.dumps(state))

    assert run_start(retiring(days=30)).outcome in (Outcome.OK, Outcome.DEGRADED)
    assert (mine / "results.csv").read_text() == "kept\n"
