"""A reset or materialize keeps the last start's record: status.json (what the hub and the lab call the last start)
and the start's lines in start.log stay the start's; the command has its own record, and what it did to an env
shows in that env's row until the next start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from osl_hooks.engine.commands import materialize, reset
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


def test_commands_keep_the_last_start_s_record(image, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    environments = [
        {"name": "geo", "mode": "synced", "source": str(image / "envs/geo")},
        {"name": "lgeo", "mode": "linked", "source": str(image / "envs/geo")},
    ]
    plan = Plan.from_dict({"version": 1, "home": str(home), "environments": environments})
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
