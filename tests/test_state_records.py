"""What a start leaves for its readers (`osl-hooks status`, the lab's API) and who may change it: a state file is
never read through a link (a user's link where osl-hooks keeps its state, to a file of theirs or of another user
outside the home, is not shown as osl-hooks' state); a reset or materialize keeps the last start's record
(status.json, what the hub and the lab call the last start, and the start's lines in start.log) and has its own,
and what it did to an env shows in that env's row until the next start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from osl_hooks.engine.commands import materialize, reset
from osl_hooks.engine.condarc import ensure_envs_dirs
from osl_hooks.engine.homepaths import Home
from osl_hooks.engine.runner import Outcome, start
from osl_hooks.lab.home import HomeEnvs
from osl_hooks.plan import Plan
from osl_hooks.status import command_file

STATE = ".local/state/osl-hooks"


def status_cli(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSL_HOOKS_")}
    env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "status", "--json"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def geo_plan(home: Path, image: Path, *modes: str) -> Plan:
    """geo in each of `modes` (the linked one named lgeo)."""
    names = {"synced": "geo", "linked": "lgeo"}
    environments = [{"name": names[m], "mode": m, "source": str(image / "envs/geo")} for m in modes]
    return Plan.from_dict({"version": 1, "home": str(home), "environments": environments})


def test_linked_status_and_plan_files_are_not_read(image, tmp_path):
    home, outside = tmp_path / "home", tmp_path / "outside"
    home.mkdir()
    outside.mkdir()
    start(geo_plan(home, image, "synced"), allow_root=True, out=open(os.devnull, "w"))
    state = home / STATE
    assert status_cli(home)["last_start"]["state"] == "ok"
    assert HomeEnvs(str(home)).envs(set(), {})["plan_found"]

    # The same files, now outside the home, and links to them where the start left its own.
    for name in ("status.json", "plan.json"):
        text = (state / name).read_text()
        (outside / name).write_text(text.replace('"ok"', '"failed"') if name == "status.json" else text)
        (state / name).unlink()
        (state / name).symlink_to(outside / name)

    shown = status_cli(home)
    assert shown["last_start"] is None
    assert "geo" in shown["synced"]  # the sync record, a file, is still read
    lab = HomeEnvs(str(home)).envs(set(), {})
    assert lab["last_start"] is None and not lab["plan_found"]
    assert [e["name"] for e in lab["envs"]] == ["geo"] and lab["envs"][0]["start"] is None


def test_a_linked_condarc_is_left_as_it_is(tmp_path):
    """A ~/.condarc kept with the user's dotfiles (a link into them) is neither read through nor replaced by a
    file: the user is told, and their link and file stay as they are."""
    home = tmp_path / "home"
    (home / "dotfiles").mkdir(parents=True)
    (home / "dotfiles/condarc").write_text("channels: [conda-forge]\n")
    (home / ".condarc").symlink_to("dotfiles/condarc")
    with pytest.raises(OSError, match="is a symbolic link"):
        ensure_envs_dirs(Home(home), home / ".condarc", [str(home / ".local/envs")])
    assert os.readlink(home / ".condarc") == "dotfiles/condarc"
    assert (home / "dotfiles/condarc").read_text() == "channels: [conda-forge]\n"


def test_commands_keep_the_last_start_s_record(image, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    plan = geo_plan(home, image, "synced", "linked")
    quiet = open(os.devnull, "w")
    assert start(plan, allow_root=True, out=quiet) == Outcome.OK
    assert start(plan, allow_root=True, out=quiet) == Outcome.OK  # nothing new: every env "unchanged"
    state = home / STATE
    status, log = (state / "status.json").read_text(), (state / "start.log").read_text()

    assert reset(plan, "geo", allow_root=True, out=quiet) == Outcome.OK
    assert materialize(plan, "lgeo", allow_root=True, out=quiet) == Outcome.OK
    assert (state / "status.json").read_text() == status
    assert (state / "start.log").read_text().startswith(log)  # the commands' lines follow the start's
    assert json.loads((state / command_file("lgeo")).read_text())["message"] == "Materialized lgeo"

    shown = status_cli(home)
    assert shown["last_start"] == json.loads(status)
    assert [c["message"] for c in shown["commands"]] == ["Reset geo to the image's version", "Materialized lgeo"]
    lab = HomeEnvs(str(home)).envs(set(), {})
    assert lab["last_start"]["message"] == json.loads(status)["message"]
    assert lab["last_command"]["message"] == "Materialized lgeo"
    geo, lgeo = lab["envs"]
    assert geo["start"]["action"] == "copy" and geo["start"]["state"] == "ready"  # the reset copied it again
    assert lgeo["start"]["action"] == "unchanged"  # the start's word: a materialize changes only the record
    assert lgeo["sync"]["linked_files"] == 0

    # The next start is the last word again.
    assert start(plan, allow_root=True, out=quiet) == Outcome.OK
    lab = HomeEnvs(str(home)).envs(set(), {})
    assert lab["last_command"] is None and lab["envs"][0]["start"]["action"] == "unchanged"
