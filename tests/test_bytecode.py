"""`osl-hooks bake` reports an env that ships no bytecode, and `--compile` ships bytecode a copy can use.

Without `.pyc` files in the image, every user's fresh copy compiles each module at its first import, which
makes the first kernel start slow for everyone. Compiled at bake time, the `.pyc` files travel with the
copy and stay valid there, relocated to another prefix.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from osl_hooks.demo.envbuild import build_python_env, build_wheel
from osl_hooks.engine.manifest import load
from osl_hooks.engine.runner import Outcome

pytestmark = pytest.mark.slow


def bake(*args):
    return subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "bake", *map(str, args)], capture_output=True, text=True
    )


def test_bake_reports_missing_bytecode_and_compile_ships_bytecode_valid_in_the_copy(tmp_path, run_start, home):
    source = tmp_path / "image/envs/py"
    build_python_env(source, ipykernel=False)
    pip = [source / "bin/python", "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-index"]
    subprocess.run([*pip, "--no-compile", build_wheel(tmp_path / "wheels", "oslprobe", "1.0")], check=True)
    [site] = source.glob("lib/python3*/site-packages")
    assert not list(site.glob("__pycache__/oslprobe.*.pyc")), "pip --no-compile wrote no bytecode"

    reported = bake(source)
    assert reported.returncode == 0, reported.stderr
    assert "Python sources have no usable bytecode" in reported.stdout and "bake --compile" in reported.stdout

    compiled = bake(source, "--compile")
    assert compiled.returncode == 0, compiled.stderr
    assert "no usable bytecode" not in compiled.stdout
    [pyc] = site.glob("__pycache__/oslprobe.*.pyc")
    assert pyc.relative_to(source).as_posix() in load(source / ".osl-hooks-manifest.jsonl").entries
    assert "no usable bytecode" not in bake(source).stdout, "a second bake finds nothing to report"

    started = run_start({"environments": [{"name": "py", "mode": "synced", "source": str(source), "kernel": False}]})
    assert started.outcome == Outcome.OK, started.output
    copy = home / ".local/envs/py"
    [copied_pyc] = copy.glob("lib/python3*/site-packages/__pycache__/oslprobe.*.pyc")
    before = (copied_pyc.read_bytes(), copied_pyc.stat().st_mtime_ns)
    # Imported in the copy by its own interpreter, which writes a new .pyc whenever it finds it stale.
    imported = subprocess.run(
        [copy / "bin/python", "-c", "import oslprobe; print(oslprobe.__file__, oslprobe.__spec__.cached)"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    module_file, cached = imported.stdout.split()
    assert module_file.startswith(str(copy)) and cached == str(copied_pyc)
    assert (copied_pyc.read_bytes(), copied_pyc.stat().st_mtime_ns) == before, "the image's .pyc was used as it is"
