"""The failures issue #9 found by trying osl-hooks as a new user and an adversary would, each one for real.

Genuine envs, real pip, a real SIGKILL at the engine's own fault points (osl_hooks/engine/faultpoints.py), a real
full filesystem: each test reproduces one failure and checks what the user gets instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import fill_to, mounted_tmpfs
from test_update import Scenario

from osl_hooks.demo.envbuild import PLACEHOLDER, build_conda_env, demo_packages
from osl_hooks.engine.faultpoints import FAULT_AT_ENV_VAR
from osl_hooks.engine.runner import Outcome

pytestmark = pytest.mark.slow


@pytest.fixture
def scenario(tmp_path, home, run_start) -> Scenario:
    s = Scenario(tmp_path, home, run_start)
    s.start()
    return s


def empty_dirs(root: Path) -> set[str]:
    return {Path(d).relative_to(root).as_posix() for d, dirs, files in os.walk(root) if not dirs and not files}


def distributions(prefix: Path) -> dict[str, str | None]:
    """Every installed distribution's name and version, as importlib.metadata sees them in the env."""
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps([[str(d._path), d.metadata['Name'], d.version] for d in m.distributions()]))"
    )
    result = subprocess.run([prefix / "bin/python", "-c", code], capture_output=True, text=True, check=True)
    return {Path(path).name: (name, version) for path, name, version in json.loads(result.stdout)}


def cli(scenario: Scenario, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    plan = scenario.home.parent / "plan.json"
    environment = {"name": "py", "mode": "synced", "source": str(scenario.source), "kernel": False}
    plan.write_text(json.dumps({"version": 1, "home": str(scenario.home), "environments": [environment]}))
    env = dict(os.environ, **({FAULT_AT_ENV_VAR: fault} if fault else {}))
    command = [sys.executable, "-m", "osl_hooks.cli", *args, "--allow-root", "--plan", str(plan)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def state_dir(scenario: Scenario) -> Path:
    return scenario.home / ".local/state/osl-hooks"


# -- 1. directories belong to packages too ------------------------------------------------------------


def test_user_upgrade_gets_no_empty_dist_info_from_the_image_update(scenario):
    scenario.pip(scenario.target, "install", "-U", scenario.wheel("oslprobe", "2.0"))
    scenario.image_update("install", "-U", scenario.wheel("oslprobe", "1.5"))
    scenario.start()
    dists = distributions(scenario.target)
    assert not any(name.startswith("oslprobe-1.5") for name in dists), dists
    assert all(name is not None for name, _version in dists.values()), "every dist-info has valid metadata"
    assert ("oslprobe", "2.0") in dists.values()
    assert empty_dirs(scenario.target) <= empty_dirs(scenario.source)


def test_user_upgrade_gets_no_empty_dist_info_from_the_safe_comparison(scenario):
    scenario.pip(scenario.target, "install", "-U", scenario.wheel("oslprobe", "2.0"))
    shutil.rmtree(state_dir(scenario))
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    result = scenario.start()
    assert any(m.startswith("Adopting ") for m in result.messages())  # no record at all: adopted as it is
    dists = distributions(scenario.target)
    assert not any(name.startswith("oslprobe-1.0") for name in dists), dists
    assert ("oslprobe", "2.0") in dists.values() and ("oslnew", "1.0") in dists.values()
    assert empty_dirs(scenario.target) <= empty_dirs(scenario.source)


# -- 2. the base manifest and the record are one step --------------------------------------------------


def test_kill_between_base_and_record_gives_no_false_conflict_later(scenario):
    build_conda_env(scenario.source, demo_packages("2.0"))  # changes relocated files (geodemo.ini)
    scenario.image_update()
    killed = cli(scenario, "start", fault="state:base-saved")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    rerun = cli(scenario, "start")
    assert rerun.returncode == 0, rerun.stdout
    assert (scenario.target / "share/geodemo/VERSION").read_text() == "2.0\n"
    build_conda_env(scenario.source, demo_packages("3.0"))
    scenario.image_update()
    later = cli(scenario, "start")
    assert later.returncode == 0, later.stdout
    assert "changed both in the image and by you" not in later.stdout
    assert "version = 3.0" in (scenario.target / "share/geodemo/geodemo.ini").read_text()


# -- 3. a kill right after the first copy is renamed into place ----------------------------------------


def test_kill_after_the_first_copy_is_in_place_is_finished_silently(scenario):
    shutil.rmtree(scenario.target)
    shutil.rmtree(state_dir(scenario))
    killed = cli(scenario, "start", fault="first-copy:renamed")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    rerun = cli(scenario, "start")
    assert rerun.returncode == 0, rerun.stdout
    assert "WARNING" not in rerun.stdout
    assert scenario.files(scenario.target) == scenario.image_files()


# -- 6. leftovers --------------------------------------------------------------------------------------


def test_no_leftovers_after_kills_and_updates(scenario):
    envs_state = state_dir(scenario) / "envs"
    leftover = envs_state / ".py.base.jsonl.k1ll3d.tmp"  # what a kill while writing the base leaves
    leftover.write_bytes(b"x" * 100_000)
    (state_dir(scenario) / ".status.json.k1ll3d.tmp").write_text("{")
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    result = scenario.start()
    assert any(m.startswith("Updated py") for m in result.messages())
    assert not list(state_dir(scenario).rglob("*.tmp"))
    assert not (envs_state / "transfer").exists()
    record = json.loads((envs_state / "py.json").read_text())
    named = {record["base"], record.get("base_full")} - {None}  # the full base, and the delta on it if any
    assert sorted(p.name for p in envs_state.iterdir()) == sorted({"py.json", *named})


def test_nothing_new_after_an_update(scenario):
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    scenario.start()
    assert "py is up to date" in scenario.start().messages()
    assert Outcome.OK == scenario.start().outcome


# -- 4. a read-only step that fails warns and goes on; the status always ends -------------------------


def test_envs_dir_linked_out_of_the_home_degrades_and_the_image_env_gets_its_kernel(python_image, home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / ".local").mkdir()
    (home / ".local/envs").symlink_to(outside)
    source = python_image / "envs/py"
    plan = tmp_path / "plan.json"
    environments = [{"name": "py", "mode": "synced", "source": str(source)}]
    plan.write_text(
        json.dumps({"version": 1, "home": str(home), "environments": environments, "discover_user_envs": True})
    )
    result = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan), "--", "true"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr  # `wrap`: the server starts
    status = json.loads((home / ".local/state/osl-hooks/status.json").read_text())
    assert status["state"] == "degraded" and status["finished_at"]
    env = status["environments"]["py"]
    assert env["state"] == "fallback" and env["effective_mode"] == "baked" and env["kernel"] == "osl-py"
    spec = json.loads((home / ".local/share/jupyter/kernels/osl-py/kernel.json").read_text())
    assert spec["argv"][0] == str(source / "bin/python")
    assert "outside the home" in env["warnings"][0]
    assert list(outside.iterdir()) == []


def test_a_killed_start_is_not_shown_as_running(scenario):
    scenario.image_update("install", scenario.wheel("oslnew", "1.0"))
    killed = cli(scenario, "start", fault="update:pending-written")
    assert killed.returncode == -9
    shown = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "status", "--state-dir", str(state_dir(scenario))],
        capture_output=True,
        text=True,
    )
    assert "last start: interrupted" in shown.stdout, shown.stdout
    assert cli(scenario, "start").returncode == 0
    assert json.loads((state_dir(scenario) / "status.json").read_text())["state"] == "ok"


# -- 5. disk full after the free-space check ----------------------------------------------------------


@pytest.fixture
def tmpfs_home(tmp_path):
    with mounted_tmpfs(tmp_path / "tmpfs-home", "32m") as path:
        yield path


def test_disk_full_after_the_check_falls_back_cleans_up_and_recovers(image, tmpfs_home, run_start_in):
    source = image / "envs/geo"
    plan = {
        "environments": [{"name": "geo", "mode": "synced", "source": str(source)}],
        "disk_margin_fraction": 0,
        "disk_margin_bytes": 0,
    }
    assert run_start_in(tmpfs_home, {}).outcome == Outcome.OK  # the state dir exists
    from osl_hooks.engine.manifest import scan_tree

    filler = fill_to(tmpfs_home, scan_tree(source).disk_bytes + 8192)  # the copy fits, its record does not
    full = run_start_in(tmpfs_home, plan)
    assert full.outcome == Outcome.DEGRADED, full.output
    env = full.env("geo")
    assert env["state"] == "fallback" and env["effective_mode"] == "baked" and env["prefix"] == str(source)
    [warning] = env["warnings"]
    assert "ran out of space" in warning and "free " in warning and "Errno" not in warning
    assert os.listdir(tmpfs_home / ".local/envs") == []
    assert sorted(os.listdir(tmpfs_home / ".local/state/osl-hooks/envs")) == []
    filler.unlink()
    again = run_start_in(tmpfs_home, plan)
    assert again.outcome == Outcome.OK, again.output
    assert again.env("geo")["effective_mode"] == "synced"
    assert (tmpfs_home / ".local/envs/geo/share/geodemo/VERSION").is_file()


# -- 7. messages: the right numbers, said once, in user terms -----------------------------------------


def test_binary_without_room_is_explained_once_with_the_recorded_room(tmp_path, run_start_in):
    from dataclasses import replace

    placeholder = PLACEHOLDER[:105]  # a 105-character placeholder, recorded in conda-meta
    short = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))  # short (room to grow), fresh whatever a past run left
    home = tmp_path / ("h" * 110)
    home.mkdir()
    try:
        build_conda_env(short, [replace(p, placeholder=placeholder) for p in demo_packages()])
        plan = {"environments": [{"name": "geo", "mode": "synced", "source": str(short)}]}
        first = run_start_in(home, plan)
        second = run_start_in(home, plan)
    finally:
        subprocess.run(["rm", "-rf", str(short)], check=True)
    assert first.outcome == Outcome.DEGRADED
    [warning] = first.env("geo")["warnings"]
    assert "at most 105 characters" in warning and ".." not in warning, warning
    assert len(warning.replace(str(home), "~")) < 400, "short"
    assert second.outcome == Outcome.OK and second.env("geo")["warnings"] == []
    assert second.env("geo")["state"] == "fallback"
    assert sum(len(m) for m in second.messages() if "geo" in m) < 400


def test_a_kernel_the_user_made_with_the_same_name_is_left_alone_quietly(python_image, home, run_start):
    mine = home / ".local/share/jupyter/kernels/osl-py"
    mine.mkdir(parents=True)
    (mine / "kernel.json").write_text(json.dumps({"argv": ["python3"], "display_name": "My own", "language": "python"}))
    plan = {"environments": [{"name": "py", "mode": "synced", "source": str(python_image / "envs/py")}]}
    first = run_start(plan)
    second = run_start(plan)
    assert first.outcome == Outcome.OK and second.outcome == Outcome.OK, first.output
    assert json.loads((mine / "kernel.json").read_text())["display_name"] == "My own"
    said = [m for m in first.messages() if "osl-py" in m]
    assert said and "your own kernel" in said[0] and "admin" not in said[0] and "kernel name" not in said[0]
    assert not any("your own kernel" in m for m in second.messages())


# -- 8. bake fails an image the notebook user could not read -------------------------------------------


def test_bake_fails_when_the_notebook_user_cannot_read_the_env(image, tmp_path):
    source = tmp_path / "envs/geo"
    shutil.copytree(image / "envs/geo", source, symlinks=True)
    records = sorted((source / "conda-meta").glob("*.json"))
    for record in records:
        record.chmod(0o600)  # what py-rattler and some installers leave
    bake = [sys.executable, "-m", "osl_hooks.cli", "bake", str(source)]
    refused = subprocess.run(bake, capture_output=True, text=True)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert all(f"conda-meta/{r.name}" in refused.stderr for r in records)
    assert f"chmod -R a+rX {source}" in refused.stderr
    assert not (source / ".osl-hooks-manifest.jsonl").exists()
    subprocess.run(["chmod", "-R", "a+rX", str(source)], check=True)
    assert subprocess.run(bake, capture_output=True, text=True).returncode == 0
