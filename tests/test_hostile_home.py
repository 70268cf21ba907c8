"""A home set up to trip osl-hooks: links out of it at every level, FIFOs and directories where files should be.

Every case runs a real `osl-hooks start` in a subprocess with a time limit (a FIFO opened for reading would
wait forever), and checks: no traceback, no hang, not one write outside the home (contents, modes and
mtimes of a watched outside directory), a clear message, and a status file that ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import tree_snapshot

from osl_hooks.events import EVENT_LINE_PREFIX

pytestmark = pytest.mark.slow

STATE = ".local/state/osl-hooks"


def link_out(relative: str, target: str = ""):
    def make(home: Path, outside: Path) -> None:
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(outside / target if target else outside)

    return make


def fifo(relative: str):
    def make(home: Path, _outside: Path) -> None:
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)

    return make


def directory(relative: str):
    def make(home: Path, _outside: Path) -> None:
        (home / relative / "x").mkdir(parents=True)

    return make


# what is hostile -> the outcomes a user can accept (the server starts unless the state dir is unusable)
CASES = {
    "envs dir links out": (link_out(".local/envs"), {3}),
    "env dir links out": (link_out(".local/envs/geo", "geo"), {3}),
    "state dir links out": (link_out(STATE), {1}),
    "state envs dir links out": (link_out(f"{STATE}/envs"), {3}),
    "record links out": (link_out(f"{STATE}/envs/geo.json", "precious.txt"), {0}),
    "status file links out": (link_out(f"{STATE}/status.json", "precious.txt"), {0}),
    "log links out": (link_out(f"{STATE}/start.log", "precious.txt"), {0}),
    "lock links out": (link_out(f"{STATE}/start.lock", "precious.txt"), {1}),
    "kernels dir links out": (link_out(".local/share/jupyter/kernels"), {3}),
    "jupyter dir links out": (link_out(".local/share/jupyter"), {3}),
    "condarc links out": (link_out(".condarc", "precious.txt"), {3}),
    "status file is a FIFO": (fifo(f"{STATE}/status.json"), {0}),
    "log is a FIFO": (fifo(f"{STATE}/start.log"), {0}),
    "record is a FIFO": (fifo(f"{STATE}/envs/geo.json"), {0}),
    "pending is a FIFO": (fifo(f"{STATE}/envs/geo.pending.json"), {0, 3}),
    "notices is a FIFO": (fifo(f"{STATE}/notices.json"), {0}),
    "lock is a FIFO": (fifo(f"{STATE}/start.lock"), {0, 1}),
    "condarc is a FIFO": (fifo(".condarc"), {3}),
    "a kernel.json is a FIFO": (fifo(".local/share/jupyter/kernels/osl-old/kernel.json"), {0}),
    "status file is a directory": (directory(f"{STATE}/status.json"), {0, 3}),
    "record is a directory": (directory(f"{STATE}/envs/geo.json"), {3}),
    "log is a directory": (directory(f"{STATE}/start.log"), {0}),
    "lock is a directory": (directory(f"{STATE}/start.lock"), {1}),
    "condarc is a directory": (directory(".condarc"), {3}),
    "notices is a directory": (directory(f"{STATE}/notices.json"), {0}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_home(case, image, tmp_path):
    make, outcomes = CASES[case]
    home, outside = tmp_path / "home", tmp_path / "outside"
    home.mkdir()
    (outside / "geo/bin").mkdir(parents=True)
    (outside / "precious.txt").write_text("not yours\n")
    make(home, outside)
    before = tree_snapshot(outside), {p: p.stat().st_mtime_ns for p in [outside, *outside.rglob("*")]}
    plan = tmp_path / "plan.json"
    environments = [
        {"name": "geo", "mode": "synced", "source": str(image / "envs/geo")},
        {"name": "mine", "mode": "user"},
    ]
    plan.write_text(
        json.dumps({"version": 1, "home": str(home), "environments": environments, "discover_user_envs": True})
    )
    command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode in outcomes, output
    assert (tree_snapshot(outside), {p: p.stat().st_mtime_ns for p in [outside, *outside.rglob("*")]}) == before
    if result.returncode != 0:
        human = [line for line in output.splitlines() if not line.startswith(EVENT_LINE_PREFIX)]  # not the JSON lines
        problems = [line for line in human if "WARNING" in line or "ERROR" in line or "failed" in line]
        assert problems, output
        assert all(len(line.replace(str(tmp_path), "")) < 500 for line in problems), "one clear sentence each"
    status_file = home / STATE / "status.json"
    if status_file.is_file() and not status_file.is_symlink():
        status = json.loads(status_file.read_text())
        assert status["state"] != "running" and status["finished_at"], status
