"""A home that fills up at every write of a first copy and of an image update (a real, size-limited tmpfs).

The free-space check runs with zero margins, so it passes and the volume runs out later: while rsync copies,
while the base manifest, the record or the status file is written. The free space left before the start is
swept a block at a time across all of those writes. Whatever the point: the start ends (exit 0 or 3, no
traceback), an env that could not be copied falls back to the image's copy with a sentence that says what
to free, nothing half-made is left, and the next start, with room, ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import fill_to, tree_snapshot
from test_faults_kill import Lab

from osl_hooks.engine.faultpoints import HOLD_AT_ENV_VAR
from osl_hooks.engine.manifest import MANIFEST_FILE, load
from osl_hooks.engine.trees import STAGING_PREFIX

pytestmark = pytest.mark.slow
BLOCK = 4096


class MountedHomeLab(Lab):
    """The kill suite's lab, with its home a filesystem mounted there (emptied, never removed)."""

    def fresh_home(self, like: Path | None = None) -> None:
        for child in self.home.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if like is not None:
            shutil.copytree(like, self.home, symlinks=True, dirs_exist_ok=True)


class DiskLab(MountedHomeLab):
    """The lab with its home on its own 32 MB filesystem."""

    def __init__(self, root: Path):
        (root / "home").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(root / "home")], check=True)
        super().__init__(root, {"disk_margin_fraction": 0, "disk_margin_bytes": 0})


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


def run_held(lab: MountedHomeLab, hold: str, meanwhile) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    """Run a start held at the point `hold` until `meanwhile()` (what another writer does then) has run."""
    held = lab.root / "hold"
    held.touch()
    env = dict(os.environ, **{HOLD_AT_ENV_VAR: f"{hold}={held}"})
    command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(lab.plan)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not list(lab.home.glob(f".local/envs/{STAGING_PREFIX}*")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
            time.sleep(0.05)
        meanwhile()
    finally:
        held.unlink()
    output = process.communicate(timeout=120)[0]
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def test_a_home_another_writer_fills_during_rsync_falls_back_as_full(disk_lab):
    """The preflight saw room; then another writer takes it while rsync copies. The start falls back with the
    sentence about what to free and the fleet's reason `disk_full`, not rsync's own words and `copy_failed`."""
    lab = disk_lab
    lab.use("1.0")
    lab.fresh_home()
    fillers = []
    result = run_held(lab, "first-copy:staging-made", lambda: fillers.append(fill_to(lab.home, 0)))
    env = check_outcome(lab, result)
    assert env["state"] == "fallback" and env["fallback"] == "disk_full", env
    [warning] = env["warnings"]
    assert "ran out of space while copying it" in warning and "free" in warning, warning
    assert "rsync" not in warning, warning
    assert not lab.target.exists() and lab.leftovers() == []
    fillers[0].unlink()
    lab.check_finished(lab.run("start"), "1.0")


def test_a_used_up_quota_refuses_a_materialize_with_a_sentence(tmp_path):
    """A per-user quota (EDQUOT while the filesystem still has room: tests/quotafs.py, a real FUSE filesystem)
    is a lack of room like a full disk: making a linked env's files real stops with the sentence about what to
    free, not the C library's words, and the env keeps working; with room again, it completes."""
    import os

    if os.geteuid() != 0 or not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None:
        pytest.skip("needs root, /dev/fuse and fuse3")
    from quotafs import mounted

    with mounted(tmp_path / "backing", tmp_path / "lab" / "home", budget=64 * 2**20):
        lab = MountedHomeLab(tmp_path / "lab", mode="linked")
        lab.use("1.0")
        lab.fresh_home()
        assert lab.run("start").returncode == 0
        links = [p for p in lab.target.rglob("*") if p.is_symlink()]
        assert links, "the linked copy has links into the image"
        # The quota is used up, while the filesystem has far more free than the links' files need.
        filler = fill_to_quota(lab.home, 64 * 2**20)
        assert os.statvfs(lab.home).f_bavail * os.statvfs(lab.home).f_frsize > 2**30
        result = lab.run("materialize", "geo")
        output = result.stdout + result.stderr
        assert result.returncode != 0 and "Traceback" not in output and "Errno" not in output, output
        assert re.search(r"your home (is|became) full .*free (some )?space in it", output), output
        assert all(os.path.exists(p) for p in links), "every file still opens: real or still a link"
        filler.unlink()
        result = lab.run("materialize", "geo")
        assert result.returncode == 0, result.stdout + result.stderr
        image = os.path.realpath(lab.image)
        assert not [p for p in links if os.path.realpath(p).startswith(image + os.sep)], "all made real"


def fill_to_quota(directory: Path, used_bytes: int) -> Path:
    """A file that takes the home's usage to `used_bytes` under the quota (its filesystem's free space aside)."""
    filler = directory / "quota-filler.bin"
    used = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file() and not p.is_symlink())
    filler.write_bytes(b"\0" * max(used_bytes - used, 0))
    return filler
