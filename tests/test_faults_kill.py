"""SIGKILL at every commit point of a first copy, an image update and a reset, on a genuine conda env, for a
synced and a linked copy; and of a linked env's materialize.

The engine marks each of its own writes, renames and unlinks with `faultpoints.point(NAME)`. A first run
of each operation lists the points it reaches (`OSL_HOOKS_FAULT_LIST`); then, for every hit, a fresh
`osl-hooks start` (or `reset`) in a subprocess is killed right there (`OSL_HOOKS_FAULT_AT=NAME:N`), and
the next start must end exactly as an uninterrupted run: the same file hashes and modes as a reference
copy, no leftovers in the env or state directories, the status file finished, exit 0; and a later image
update after it must find no false conflicts.

The image is one path (a symlink) that points at image v1 or v2, both baked for that path, so an image
update is switching the link, and relocated files embed the same prefix in every run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import tree_snapshot

from osl_hooks.demo.envbuild import build_conda_env, demo_packages
from osl_hooks.engine.faultpoints import FAULT_AT_ENV_VAR, FAULT_LIST_ENV_VAR
from osl_hooks.engine.linked import own_links
from osl_hooks.engine.linkform import IMAGE_LINK
from osl_hooks.engine.manifest import bake
from osl_hooks.engine.syncstate import read_links
from osl_hooks.engine.trees import STAGING_PREFIX

pytestmark = pytest.mark.slow

LINK_EVERY_FILE = 1  # the demo env's files are small: a linked lab links every file it may
STATUS_POINTS = ("write:status file:",)  # written on a timer too: a kill run may not reach the n-th write


class Lab:
    """One fixed home path, one image path switched between versions, and references to compare with."""

    def __init__(self, root: Path, plan_extra: dict | None = None, mode: str = "synced"):
        self.root = root
        self.mode = mode
        self.image = root / "image/geo"
        self.home = root / "home"
        self.target = self.home / ".local/envs/geo"
        self.state = self.home / ".local/state/osl-hooks"
        self.versions = {}
        self.kills = 0
        self.image.parent.mkdir(parents=True)
        for version in ("1.0", "2.0"):
            build_conda_env(self.image, demo_packages(version))
            built = root / f"image/geo-{version}"
            self.image.rename(built)
            bake(built, built_prefix=str(self.image))
            self.versions[version] = built
        script = root / "image/setup.sh"
        script.write_text("#!/bin/sh\necho set up\n")
        script.chmod(0o755)
        self.plan = root / "plan.json"
        environments = [{"name": "geo", "mode": mode, "source": str(self.image)}]
        if mode == "linked":
            environments[0]["link_threshold"] = LINK_EVERY_FILE
        self.plan.write_text(
            json.dumps(
                {
                    "version": 1,
                    "home": str(self.home),
                    "environments": environments,
                    "setup_scripts": [{"path": str(script), "run": "once"}],
                    **(plan_extra or {}),
                }
            )
        )
        self.use("1.0")
        self.fresh_home()
        assert self.run("start").returncode == 0
        self.reference = {"1.0": tree_snapshot(self.target)}
        self.synced_v1 = root / "synced-v1"
        shutil.copytree(self.home, self.synced_v1, symlinks=True)  # keeps mtimes: a copy of the same state
        self.use("2.0")
        self.fresh_home()
        assert self.run("start").returncode == 0
        self.reference["2.0"] = tree_snapshot(self.target)
        assert self.reference["1.0"] != self.reference["2.0"]

    def use(self, version: str) -> None:
        if self.image.is_symlink():
            self.image.unlink()
        self.image.symlink_to(self.versions[version])

    def fresh_home(self, like: Path | None = None) -> None:
        if self.home.exists():
            shutil.rmtree(self.home)
        if like is None:
            self.home.mkdir()
        else:
            shutil.copytree(like, self.home, symlinks=True)

    def run(
        self, *args: str, fault: str | None = None, listing: Path | None = None, plan: Path | None = None
    ) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k not in (FAULT_AT_ENV_VAR, FAULT_LIST_ENV_VAR)}
        if fault:
            env[FAULT_AT_ENV_VAR] = fault
        if listing:
            env[FAULT_LIST_ENV_VAR] = str(listing)
        command = [sys.executable, "-m", "osl_hooks.cli", *args, "--allow-root", "--plan", str(plan or self.plan)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    def points(self, *args: str, plan: Path | None = None) -> list[str]:
        """Every point the operation reaches, as NAME:N (the N-th hit of NAME)."""
        listing = self.root / "points.txt"
        listing.unlink(missing_ok=True)
        assert self.run(*args, listing=listing, plan=plan).returncode == 0
        counts: Counter[str] = Counter()
        hits = []
        for name in listing.read_text().splitlines():
            counts[name] += 1
            hits.append(f"{name}:{counts[name]}")
        return hits

    def leftovers(self) -> list[str]:
        """Anything a finished start should not leave in the env's directory or the state directory."""
        found = [p.name for p in self.target.parent.iterdir() if p.name.startswith(STAGING_PREFIX)]
        found += [str(p) for p in self.state.rglob("*.tmp")]
        found += [str(p) for p in self.state.glob("envs/*") if p.name not in self.expected_state_files()]
        return found

    def expected_state_files(self) -> set[str]:
        record = json.loads((self.state / "envs/geo.json").read_text())
        named = [record["base"], record.get("base_full"), record.get("links_file")]
        return {"geo.json", *(name for name in named if name)}

    def check_finished(self, result: subprocess.CompletedProcess, version: str | None) -> None:
        """A finished run, no warnings (no false conflicts), no leftovers, and the tree of `version` if given."""
        assert result.returncode == 0, result.stdout + result.stderr
        assert "WARNING" not in result.stdout and "ERROR" not in result.stdout, result.stdout
        status = json.loads((self.state / "status.json").read_text())
        assert status["state"] == "ok" and status["finished_at"]
        if version is not None:
            assert tree_snapshot(self.target) == self.reference[version]
        assert self.leftovers() == []
        assert not [p for p in self.target.rglob(".osl-*") if p.name != IMAGE_LINK]


@pytest.fixture(scope="module", params=["synced", "linked"])
def lab(tmp_path_factory, request) -> Lab:
    return Lab(tmp_path_factory.mktemp(f"kill-{request.param}"), mode=request.param)


def kill_and_recover(lab: Lab, args: tuple[str, ...], hit: str) -> subprocess.CompletedProcess | None:
    """Kill the operation at `hit`; return the next start's result (None if the kill run never got there)."""
    killed = lab.run(*args, fault=hit)
    if killed.returncode != -9:
        assert hit.startswith(STATUS_POINTS), f"{hit}: not reached ({killed.returncode}) {killed.stdout}"
        return None
    lab.kills += 1
    return lab.run("start")


def assert_killed_everywhere(lab: Lab, hits: list[str]) -> None:
    assert lab.kills >= sum(1 for h in hits if not h.startswith(STATUS_POINTS)), (lab.kills, hits)


def test_kill_at_every_point_of_a_first_copy(lab):
    lab.use("1.0")
    lab.fresh_home()
    hits = lab.points("start")
    assert len(hits) >= 15, hits
    lab.kills = 0
    for hit in hits:
        lab.use("1.0")
        lab.fresh_home()
        rerun = kill_and_recover(lab, ("start",), hit)
        if rerun is None:
            continue
        lab.check_finished(rerun, "1.0")
        lab.use("2.0")
        lab.check_finished(lab.run("start"), "2.0")  # the image update after it: no false conflict
    assert_killed_everywhere(lab, hits)


def test_kill_at_every_point_of_an_image_update(lab):
    lab.fresh_home(like=lab.synced_v1)
    lab.use("2.0")
    hits = lab.points("start")
    assert len(hits) >= 15, hits
    lab.kills = 0
    for hit in hits:
        lab.fresh_home(like=lab.synced_v1)
        lab.use("2.0")
        rerun = kill_and_recover(lab, ("start",), hit)
        if rerun is None:
            continue
        lab.check_finished(rerun, "2.0")
        lab.use("1.0")
        lab.check_finished(lab.run("start"), "1.0")
    assert_killed_everywhere(lab, hits)


def test_kill_at_every_point_of_a_reset(lab):
    if lab.mode == "linked":
        pytest.skip("a linked env's reset is a synced env's reset followed by a linked first copy, both swept")
    lab.use("1.0")
    lab.fresh_home(like=lab.synced_v1)
    (lab.target / "my-notes.txt").write_text("mine")
    hits = lab.points("reset", "geo")
    assert len(hits) >= 15, hits
    lab.kills = 0
    for hit in hits:
        lab.use("1.0")
        lab.fresh_home(like=lab.synced_v1)
        (lab.target / "my-notes.txt").write_text("mine")
        rerun = kill_and_recover(lab, ("reset", "geo"), hit)
        if rerun is None:
            continue
        backups = list((lab.state / "backups").glob("geo-*/my-notes.txt")) if (lab.state / "backups").is_dir() else []
        kept = (lab.target / "my-notes.txt").exists()
        assert kept or [b.read_text() for b in backups] == ["mine"], f"{hit}: the user's copy is lost"
        if kept:  # killed before the copy was moved aside: the reset did not happen, nothing else changed
            (lab.target / "my-notes.txt").unlink()
        assert rerun.returncode == 0, rerun.stdout
        lab.check_finished(rerun if not kept else lab.run("start"), "1.0")
        lab.use("2.0")
        lab.check_finished(lab.run("start"), "2.0")
    assert_killed_everywhere(lab, hits)


def test_kill_at_every_point_of_a_retired_copys_removal(lab):
    """The hub no longer offers geo (plan version 2, removal at once): the start's last step checks the copy and
    removes it. Killed anywhere, the copy is whole where it was or gone from use, and the next start finishes the
    removal: no copy, no hidden tree, no record, the bytes counted once."""
    retire = lab.root / "retire-plan.json"
    retirement = {"offered": [], "remove_after_days": 0}
    retire.write_text(json.dumps({"version": 2, "home": str(lab.home), "environments": [], "retirement": retirement}))
    lab.use("1.0")
    lab.fresh_home(like=lab.synced_v1)
    hits = lab.points("start", plan=retire)
    assert any(h.startswith("retire:moved-aside") for h in hits) and len(hits) >= 8, hits
    reclaimed = json.loads((lab.state / "retired.json").read_text())["envs"]["geo"]["reclaimed_bytes"]
    assert reclaimed > 0
    lab.kills = 0
    for hit in hits:
        lab.fresh_home(like=lab.synced_v1)
        killed = lab.run("start", fault=hit, plan=retire)
        if killed.returncode != -9:
            assert hit.startswith(STATUS_POINTS), f"{hit}: not reached ({killed.returncode}) {killed.stdout}"
            continue
        lab.kills += 1
        if os.path.lexists(lab.target):  # not moved aside yet: the copy is whole
            assert tree_snapshot(lab.target) == lab.reference["1.0"], hit
        rerun = lab.run("start", plan=retire)
        assert rerun.returncode == 0, f"{hit}: {rerun.stdout}"
        assert not os.path.lexists(lab.target), hit
        assert not list(lab.target.parent.glob(".osl-*")), hit
        assert not [p for p in (lab.state / "envs").rglob("*") if p.is_file()], hit
        row = json.loads((lab.state / "retired.json").read_text())["envs"]["geo"]
        assert row["state"] == "removed" and row["reclaimed_bytes"] == reclaimed, (hit, row)
    assert_killed_everywhere(lab, hits)


def early_middle_and_late(hits: list[str]) -> list[str]:
    """Of a point reached once per file, its first, second, 10%, 50%, 90% and last hit: a kill in the middle
    leaves whole directories made real beside directories still linked, which the first and last hits never do."""
    counts = Counter(h.rsplit(":", 1)[0] for h in hits)

    def kept(hit: str) -> bool:
        name, n = hit.rsplit(":", 1)
        return int(n) in {1, 2, counts[name]} | {max(1, counts[name] * tenths // 10) for tenths in (1, 5, 9)}

    return [h for h in hits if kept(h)]


def image_names(root: Path, image: Path) -> list[str]:
    """The links under `root` that dangle or name the image (directly or through an `.osl-image` link)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                target = os.readlink(path)
                if not os.path.exists(path) or IMAGE_LINK in target or target.startswith(str(image)):
                    found.append(f"{os.path.relpath(path, root)} -> {target}")
    return sorted(found)


def test_kill_at_every_point_of_a_materialize(lab):
    """A materialize killed anywhere: the next start leaves a true link record and no half-written copy, the
    next materialize finishes the job (the whole tree, hidden entries and links included, is an uninterrupted
    run's: no link into the image is left, dangling or not), and the image update after it finds no false
    conflicts."""
    if lab.mode != "linked":
        pytest.skip("materialize is for linked envs")
    lab.use("1.0")
    lab.fresh_home(like=lab.synced_v1)
    assert own_links(lab.target, lab.image)
    hits = early_middle_and_late(lab.points("materialize", "geo"))
    assert len(hits) >= 8 and not own_links(lab.target, lab.image), hits
    assert any(h.startswith("link:dir-link-dropped:") for h in hits), hits  # killed between those unlinks too
    materialized = tree_snapshot(lab.target)
    assert image_names(lab.target, lab.image) == []
    lab.kills = 0
    for hit in hits:
        lab.use("1.0")
        lab.fresh_home(like=lab.synced_v1)
        rerun = kill_and_recover(lab, ("materialize", "geo"), hit)
        if rerun is None:
            continue
        lab.check_finished(rerun, None)
        record = json.loads((lab.state / "envs/geo.json").read_text())
        assert read_links(lab.state / "envs", "geo", record) == set(own_links(lab.target, lab.image))
        assert lab.run("materialize", "geo").returncode == 0
        assert image_names(lab.target, lab.image) == [], hit
        assert tree_snapshot(lab.target) == materialized, hit
        lab.use("2.0")
        lab.check_finished(lab.run("start"), None)
    assert_killed_everywhere(lab, hits)


def test_kill_while_a_kernel_is_replaced_never_leaves_half_a_kernel(python_image, tmp_path):
    """jupyter_client replaces a kernel by delete-then-copy; osl-hooks stages it and renames instead."""
    home = tmp_path / "home"
    home.mkdir()
    plan = tmp_path / "plan.json"
    kernels = home / ".local/share/jupyter/kernels"

    def run(display_name: str, fault: str | None = None) -> subprocess.CompletedProcess:
        environment = {"name": "py", "mode": "baked", "source": str(python_image / "envs/py")}
        environment["kernel"] = {"display_name": display_name}
        plan.write_text(json.dumps({"version": 1, "home": str(home), "environments": [environment]}))
        env = {k: v for k, v in os.environ.items() if k != FAULT_AT_ENV_VAR}
        env.update({FAULT_AT_ENV_VAR: fault} if fault else {})
        command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)

    assert run("Py 0").returncode == 0
    for n, point in enumerate(["kernel:staged", "kernel:old-moved-aside", "kernel:installed"], start=1):
        assert run(f"Py {n}", fault=point).returncode == -9, point
        rerun = run(f"Py {n}")
        assert rerun.returncode == 0 and "your own kernel" not in rerun.stdout, rerun.stdout
        assert json.loads((kernels / "osl-py/kernel.json").read_text())["display_name"] == f"Py {n}"
        assert sorted(p.name for p in kernels.iterdir()) == ["osl-py"], point
