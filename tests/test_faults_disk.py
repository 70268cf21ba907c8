"""A home that fills up at every write of a first copy and of an image update (a real, size-limited tmpfs).

The free-space check runs with zero margins, so it passes and the volume runs out later: while rsync copies,
while the base manifest, the record or the status file is written. The free space left before the start is
swept a block at a time across all of those writes. Whatever the point: the start ends (exit 0 or 3, no
traceback), an env that could not be copied falls back to the image's copy with a sentence that says what
to free, nothing half-made is left, and the next start, with room, ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import fill_to, tree_snapshot
from test_faults_kill import Lab

from osl_hooks.engine.manifest import MANIFEST_FILE, load

pytestmark = pytest.mark.slow
BLOCK = 4096


class DiskLab(Lab):
    """The kill suite's lab, with its home on its own 32 MB filesystem."""

    def __init__(self, root: Path):
        (root / "home").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(root / "home")], check=True)
        super().__init__(root, {"disk_margin_fraction": 0, "disk_margin_bytes": 0})

    def fresh_home(self, like: Path | None = None) -> None:
        for child in self.home.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if like is not None:
            shutil.copytree(like, self.home, symlinks=True, dirs_exist_ok=True)


@pytest.fixture(scope="module")
def disk_lab(tmp_path_factory):
    import os

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    root = tmp_path_factory.mktemp("disk")
    try:
        yield DiskLab(root)
    finally:
        subprocess.run(["umount", str(root / "home")], check=False)


def check_outcome(lab: DiskLab, result: subprocess.CompletedProcess) -> dict:
    output = result.stdout + result.stderr
    assert result.returncode in (0, 3) and "Traceback" not in output, output
    status = json.loads((lab.state / "status.json").read_text())
    assert status["finished_at"] and status["state"] in ("ok", "degraded"), output
    return status["environments"]["geo"]


def test_disk_full_at_every_write_of_a_first_copy(disk_lab):
    lab = disk_lab
    lab.use("1.0")
    needed = load(lab.versions["1.0"] / MANIFEST_FILE).disk_bytes
    outcomes = set()
    for blocks in range(0, 40, 3):
        lab.fresh_home()
        filler = fill_to(lab.home, needed + blocks * BLOCK)
        env = check_outcome(lab, lab.run("start"))
        outcomes.add(env["state"])
        if env["state"] == "fallback":
            [warning] = env["warnings"]
            assert "free" in warning and "Errno" not in warning, warning
            assert env["effective_mode"] == "baked" and env["prefix"] == str(lab.image)
            assert not lab.target.exists() and lab.leftovers() == []
            assert not list((lab.state / "envs").glob("geo*")), "no record of a copy that is not there"
        filler.unlink()
        lab.check_finished(lab.run("start"), "1.0")
    assert outcomes == {"fallback", "ready"}, "the sweep reaches both a full disk and enough room"


def test_disk_full_at_every_write_of_an_image_update(disk_lab):
    lab = disk_lab
    outcomes = set()
    for blocks in range(0, 24, 3):
        lab.fresh_home(like=lab.synced_v1)
        lab.use("2.0")
        filler = fill_to(lab.home, blocks * BLOCK)
        env = check_outcome(lab, lab.run("start"))
        outcomes.add(env["state"])
        if env["state"] != "ready":
            assert any("free" in problem for problem in env["errors"] + env["warnings"]), env
        filler.unlink()
        lab.check_finished(lab.run("start"), "2.0")
        assert tree_snapshot(lab.target) == lab.reference["2.0"]
    assert "ready" in outcomes and len(outcomes) > 1, outcomes
