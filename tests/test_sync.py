"""Synced mode on genuine conda envs: staged rsync copy, relocation, no-op restarts, safe interruption."""

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import all_files, kill_during_first_copy, mounted_tmpfs, tree_snapshot

from osl_hooks.demo.envbuild import CONDA_PLACEHOLDER, build_conda_env, demo_packages
from osl_hooks.engine.runner import Outcome
from osl_hooks.engine.trees import STAGING_PREFIX


def synced_plan(source: Path, **extra) -> dict:
    return {"environments": [{"name": "geo", "mode": "synced", "source": str(source), **extra}]}


def recorded_prefix_files(prefix: Path) -> list[dict]:
    records = []
    for meta in (prefix / "conda-meta").glob("*.json"):
        records += [p for p in json.loads(meta.read_text())["paths_data"]["paths"] if p.get("prefix_placeholder")]
    return records


def test_first_sync_relocates_every_recorded_file(image, home, run_start):
    source = image / "envs/geo"
    result = run_start(synced_plan(source))
    assert result.outcome == Outcome.OK, result.output
    target = home / ".local/envs/geo"
    assert len(str(target)) > len(str(source)), "the test must make binary strings grow into their padding"
    records = recorded_prefix_files(target)
    assert {r["file_mode"] for r in records} == {"text", "binary"}
    for record in records:
        data = (target / record["_path"]).read_bytes()
        assert str(target).encode() in data, record["_path"]
        if record["file_mode"] == "binary":
            assert len(data) == (source / record["_path"]).stat().st_size
            assert str(target).encode() + b"/share/geodemo\0" in data
    for path in all_files(target):
        assert str(source).encode() not in path.read_bytes(), f"{path} still refers to the image"
    assert (
        subprocess.run([target / "bin/geodemo"], capture_output=True, text=True).stdout.strip()
        == f"{target}/share/geodemo"
    )
    status = result.env("geo")
    assert status["state"] == "ready" and status["effective_mode"] == "synced"
    assert status["prefix"] == str(target) and status["files"] > 80
    assert any(m.startswith("Synced geo:") and "relocated" in m for m in result.messages())


def test_copy_has_the_same_files_and_belongs_to_the_user(image, home, run_start):
    source = image / "envs/geo"
    run_start(synced_plan(source))
    target = home / ".local/envs/geo"
    source_files = {p.relative_to(source) for p in all_files(source)}
    assert {p.relative_to(target) for p in all_files(target)} == source_files
    assert all(os.access(p, os.W_OK) for p in all_files(target))
    assert not list(target.parent.glob(STAGING_PREFIX + "*"))


def test_second_start_with_nothing_new_copies_nothing(image, home, run_start):
    source = image / "envs/geo"
    run_start(synced_plan(source))
    target = home / ".local/envs/geo"
    (target / "my-notes.txt").write_text("mine")
    before = {p: p.stat().st_ino for p in all_files(target)}
    result = run_start(synced_plan(source))
    assert result.outcome == Outcome.OK
    assert "geo is up to date" in result.messages()
    assert not any(m.startswith("Syncing") for m in result.messages())
    assert {p: p.stat().st_ino for p in all_files(target)} == before


def test_env_baked_at_its_target_path_is_not_rewritten(tmp_path, home, run_start):
    target = home / ".local/envs/geo"
    build_conda_env(target)  # built exactly where it will live...
    source = tmp_path / "image/envs/geo"
    source.parent.mkdir(parents=True)
    target.rename(source)  # ...then moved into the image, as a Dockerfile COPY would
    result = run_start(synced_plan(source, built_prefix=str(target)))
    assert result.outcome == Outcome.OK, result.output
    assert any("(0 files relocated)" in m for m in result.messages())
    assert tree_snapshot(target) == tree_snapshot(source)  # byte for byte, modes included


def test_binary_that_cannot_take_a_longer_prefix_falls_back_before_copying(home, run_start):
    """Packages built with conda's old 32-character placeholder leave no room to grow."""
    short = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))  # short (room to grow), fresh whatever a past run left
    packages = [replace(p, placeholder=CONDA_PLACEHOLDER) for p in demo_packages()]
    try:
        build_conda_env(short, packages)
        result = run_start(synced_plan(short))
    finally:
        subprocess.run(["rm", "-rf", str(short)], check=True)
    assert result.outcome == Outcome.DEGRADED
    status = result.env("geo")
    assert status["state"] == "fallback" and status["effective_mode"] == "baked" and status["prefix"] == str(short)
    [warning] = status["warnings"]
    assert "lib/libgeodemo.so" in warning and "Bake the env at a prefix at least as long" in warning
    assert not (home / ".local/envs/geo").exists()
    assert not list((home / ".local/envs").glob(STAGING_PREFIX + "*"))


@pytest.fixture
def small_home(tmp_path):
    """A home on its own 8 MB filesystem."""
    with mounted_tmpfs(tmp_path / "small-home", "8m") as path:
        yield path


def test_env_too_big_for_the_home_falls_back_to_the_image(python_image, small_home):
    import io

    from osl_hooks.engine.runner import start
    from osl_hooks.plan import Plan
    from osl_hooks.status import read_status

    source = python_image / "envs/py"
    plan = Plan.from_dict({"version": 1, "home": str(small_home), **synced_plan(source)})
    assert start(plan, allow_root=True, out=io.StringIO()) == Outcome.DEGRADED
    status = read_status(small_home / ".local/state/osl-hooks")
    env = status["environments"]["geo"]
    assert env["state"] == "fallback" and env["effective_mode"] == "baked"
    assert "your home has" in env["warnings"][0] and "packages you install into it are lost" in env["warnings"][0]
    assert os.listdir(small_home / ".local/envs") == []
    assert status["state"] == "degraded"


def test_interrupted_first_sync_leaves_no_half_env(python_image, home, tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"version": 1, "home": str(home), **synced_plan(python_image / "envs/py")}))
    command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan_file)]
    envs = home / ".local/envs"
    kill_during_first_copy(command, envs)
    assert not (envs / "geo").exists()

    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "left by an interrupted start" in rerun.stdout
    assert not list(envs.glob(STAGING_PREFIX + "*"))
    assert subprocess.run([envs / "geo/bin/python", "-c", "import ipykernel"]).returncode == 0


def test_lock_serialises_two_starts_on_one_home(image, home, tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"version": 1, "home": str(home), **synced_plan(image / "envs/geo")}))
    command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan_file)]
    first, second = (subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2))
    outputs = [first.communicate()[0], second.communicate()[0]]
    assert first.returncode == second.returncode == 0, outputs
    assert sum("Synced geo" in o for o in outputs) == 1
    assert sum("geo is up to date" in o for o in outputs) == 1


def test_copy_files_transfers_exactly_the_given_paths_in_several_rsync_runs(tmp_path, monkeypatch):
    """An update's transfer: exactly the listed paths (and their parents), whatever their names, however
    many rsync runs the list takes; nothing else in the target is touched."""
    from osl_hooks.engine import sync

    source, target = tmp_path / "image", tmp_path / "copy"
    names = ["-rf", "a:b", "sp ace", "üñí", "*glob?", "[x]", "new/deep/er/file", "host:/x"]
    for i, name in enumerate(names + [f"pkg{i}/mod.py" for i in range(40)]):
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"image {i}\n")
    os.symlink("mod.py", source / "pkg0/alias.py")
    target.mkdir()
    (target / "user-file").write_text("mine\n")
    (target / "pkg1").mkdir()
    (target / "pkg1/mod.py").write_text("old\n")
    (target / "pkg2").mkdir()
    (target / "pkg2/mod.py").write_text("not listed: kept\n")
    listed = [*names, "pkg0/alias.py", "pkg1/mod.py", *[f"pkg{i}/mod.py" for i in range(3, 40)]]
    monkeypatch.setattr(sync, "ARGUMENT_BYTES", 600)  # several runs of rsync for this list
    runs = []
    real_run = subprocess.run
    monkeypatch.setattr(sync.subprocess, "run", lambda cmd, **kw: runs.append(cmd) or real_run(cmd, **kw))

    sync.copy_files(source, target, listed)
    assert len(runs) > 2
    for path in listed:
        if (source / path).is_symlink():
            assert os.readlink(target / path) == os.readlink(source / path)
        else:
            assert (target / path).read_text() == (source / path).read_text(), path
    assert (target / "user-file").read_text() == "mine\n"
    assert (target / "pkg2/mod.py").read_text() == "not listed: kept\n"
    copied = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_symlink() or not p.is_dir()}
    assert copied == set(listed) | {"user-file", "pkg2/mod.py"}


def test_copy_files_splits_a_long_list_over_rsyncs_running_at_once(tmp_path, monkeypatch):
    """A long update list goes to two rsyncs at the same time; both may need the same new directories (the cut
    falls inside a tree the copy does not have yet), and the result is exactly the image's files and modes."""
    from osl_hooks.engine import parts, sync

    source, target = tmp_path / "image", tmp_path / "copy"
    listed = [f"new/deep/d{i % 7}/f{i}.py" for i in range(300)]
    for i, path in enumerate(listed):
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(f"image {i}\n" * (i % 50))
        (source / path).chmod(0o755 if i % 3 else 0o644)
    target.mkdir()
    monkeypatch.setattr(parts, "available_cpus", lambda: 2)
    monkeypatch.setattr(sync, "ARGUMENT_BYTES", 2000)  # several runs per rsync: the two overlap in time
    in_flight, most = [0], [0]
    real_run = subprocess.run

    def counting_run(cmd, **kw):
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            return real_run(cmd, **kw)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(sync.subprocess, "run", counting_run)
    sync.copy_files(source, target, sorted(listed), [(source / p).stat().st_size for p in sorted(listed)])
    assert most[0] == 2
    for path in listed:
        assert (target / path).read_text() == (source / path).read_text(), path
        assert (target / path).stat().st_mode == (source / path).stat().st_mode, path
    assert {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} == set(listed)


def test_copy_files_reports_a_failed_rsync_after_every_rsync_ended(tmp_path, monkeypatch):
    """One part failing (a file gone from the image) fails the transfer with rsync's message; the other part's
    files are complete, none half-written."""
    from osl_hooks.engine import parts, sync

    source, target = tmp_path / "image", tmp_path / "copy"
    listed = [f"pkg/f{i:03d}.py" for i in range(200)]
    for path in listed:
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text("x\n")
    target.mkdir()
    (source / listed[-1]).unlink()  # in the second part
    monkeypatch.setattr(parts, "available_cpus", lambda: 2)
    with pytest.raises(sync.SyncError, match="rsync exited with code 23"):
        sync.copy_files(source, target, listed)
    assert all((target / p).read_text() == "x\n" for p in listed[:100])
    assert not [p for p in (target / "pkg").iterdir() if p.name.startswith(".")]


def test_balanced_parts_keep_runs_consecutive_and_weigh_bytes():
    from osl_hooks.engine.parts import PER_FILE_COST, balanced_parts

    paths = [f"p{i:03d}" for i in range(100)]
    assert balanced_parts(paths, None, 1) == [paths]
    even = balanced_parts(paths, None, 2)
    assert [len(p) for p in even] == [50, 50] and sum(even, []) == paths
    # One big file first: it is a part of its own, the small files the other.
    sizes = [99 * PER_FILE_COST] + [0] * 99
    assert [len(p) for p in balanced_parts(paths, sizes, 2)] == [1, 99]
