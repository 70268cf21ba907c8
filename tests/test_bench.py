"""The benchmark runs (`--quick`, as in CI), so it cannot rot. No timing is asserted: speed lives in the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCH = Path(__file__).parent.parent / "benchmarks" / "bench_sync.py"


def test_quick_benchmark_measures_every_row_next_to_its_reference(tmp_path):
    result_file = tmp_path / "result.json"
    environ = dict(os.environ, PYTHONPATH=str(BENCH.parent.parent))
    run = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--rounds",
            "1",
            "--workdir",
            str(tmp_path),
            "--json",
            str(result_file),
        ],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(result_file.read_text())
    measures = [row["measure"] for row in result["rows"]]
    for wanted in ("restart, nothing new (env)", "restart, nothing new (4x env)", "image update, 1% of files"):
        assert wanted in measures
    assert "re-baked image, new id, no file changed" in measures and "cold first sync" in measures
    for row in result["rows"]:
        assert result["samples"][row["osl_hooks"]] and result["samples"][row["reference"]], row
        assert row["ratio"] > 0 and f"| {row['measure']} |" in run.stdout
    assert result["env_4x"]["files"] > 3 * result["env"]["files"]
    assert result["updates"]["10%"]["files_changed"] > result["updates"]["1%"]["files_changed"] > 0
    assert not (tmp_path / "runs").exists(), "the run's copies are deleted"


def test_quick_fleet_benchmark_measures_each_cost_next_to_its_reference(tmp_path):
    result_file = tmp_path / "fleet.json"
    environ = dict(os.environ, PYTHONPATH=str(BENCH.parent.parent))
    command = [sys.executable, str(BENCH.parent / "bench_fleet.py"), "--quick", "--workdir", str(tmp_path)]
    run = subprocess.run([*command, "--json", str(result_file)], capture_output=True, text=True, env=environ)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = json.loads(result_file.read_text())["rows"]
    assert [row["reference"] for row in rows] == [
        "modify_pod_hook",
        "modify_pod_hook",
        "/hub/metrics without the fleet",
    ]
    for row in rows:
        assert row["ms"] > 0 and row["ratio"] > 0 and f"| {row['measure']} |" in run.stdout


def test_quick_background_benchmark_measures_both_ratios(tmp_path):
    """bench_background.py --quick: each round's background first start, its copy, the restart and the copy
    before ready are measured, and every background copy ended with the user's copy in place."""
    result_file = tmp_path / "result.json"
    environ = dict(os.environ, PYTHONPATH=str(BENCH.parent.parent))
    script = BENCH.with_name("bench_background.py")
    command = [
        sys.executable,
        str(script),
        "--quick",
        "--rounds",
        "2",
        "--workdir",
        str(tmp_path),
        "--json",
        str(result_file),
    ]
    run = subprocess.run(command, capture_output=True, text=True, env=environ)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(result_file.read_text())
    assert [row["measure"] for row in result["rows"]][:2] == [
        "first start, copy in the background: ready",
        "background copy, start to copy in place",
    ]
    for key in ("background ready", "background copy", "restart", "before ready"):
        assert len(result["samples"][key]) == 2, key
    assert not (tmp_path / "runs").exists(), "the run's copies are deleted"


def test_quick_lab_benchmark_measures_the_api_and_the_server_start(tmp_path):
    """bench_lab.py --quick: `GET .../envs` with and without walking the copies, and the server's start with the
    extension and without it (the run checks that the flag really turns it on and off)."""
    environ = dict(os.environ, PYTHONPATH=str(BENCH.parent.parent))
    script = BENCH.with_name("bench_lab.py")
    run = subprocess.run(
        [sys.executable, str(script), "--quick", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environ,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["envs"] == 2 and result["get_envs_ms"] > 0 and result["ready_ratio"] > 0
