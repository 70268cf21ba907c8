"""State files are never read through a link: a user's link where osl-hooks keeps its state (to a file of theirs,
or of another user, outside the home) is not shown as osl-hooks' state by `osl-hooks status` nor by the lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from osl_hooks.engine.condarc import ensure_envs_dirs
from osl_hooks.engine.homepaths import Home
from osl_hooks.engine.runner import start
from osl_hooks.lab.home import HomeEnvs
from osl_hooks.plan import Plan

STATE = ".local/state/osl-hooks"


def status_cli(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSL_HOOKS_")}
    env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "status", "--json"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_linked_status_and_plan_files_are_not_read(image, tmp_path):
    home, outside = tmp_path / "home", tmp_path / "outside"
    home.mkdir()
    outside.mkdir()
    plan = {
        "version": 1,
        "home": str(home),
        "environments": [{"name": "geo", "mode": "synced", "source": str(image / "envs/geo")}],
    }
    start(Plan.from_dict(plan), allow_root=True, out=open(os.devnull, "w"))
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
