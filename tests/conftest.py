"""Shared fixtures: a user's home, a read-only 'image', and a way to run a start against them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from osl_hooks.engine.faultpoints import HOLD_AT_ENV_VAR
from osl_hooks.engine.runner import Outcome, start
from osl_hooks.engine.trees import STAGING_PREFIX
from osl_hooks.plan import Plan
from osl_hooks.status import read_status


@dataclass
class StartResult:
    outcome: Outcome
    output: str
    status: dict

    def env(self, name: str) -> dict:
        return self.status["environments"][name]

    def messages(self) -> list[str]:
        return [e["message"] for e in self.status["events"]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def run_start_in():
    """Run `osl-hooks start` in-process for a home with a plan given as a dict (home filled in)."""

    def run(home: Path, plan: dict) -> StartResult:
        data = {"version": 1, "home": str(home), **plan}
        out = io.StringIO()
        # Tests run as root in CI; the sandbox tests (test_sandbox.py) run the same start as uid 1000.
        outcome = start(Plan.from_dict(data), allow_root=True, out=out)
        status = read_status(home / ".local/state/osl-hooks") or {}
        return StartResult(outcome, out.getvalue(), status)

    return run


@pytest.fixture
def run_start(home: Path, run_start_in):
    """Run `osl-hooks start` in-process for `home`."""
    return lambda plan: run_start_in(home, plan)


def tree_snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its type, size, mode and content hash: to prove nothing changed."""
    import hashlib

    snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            if path.is_symlink():
                snapshot[str(path.relative_to(root))] = ("l", os.readlink(path))
            elif path.is_file():
                snapshot[str(path.relative_to(root))] = ("f", st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                snapshot[str(path.relative_to(root))] = ("d", st.st_mode)
    return snapshot


COPY_WAIT = 300  # seconds: a generous bound for a background copy to end, never a speed expectation


def record_of(home: Path, name: str) -> dict:
    path = home / f".local/state/osl-hooks/background/{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def wait_for_copy(home: Path, name: str, states=("done", "failed"), what: str = "the background copy to end") -> dict:
    deadline = time.monotonic() + COPY_WAIT
    while time.monotonic() < deadline:
        record = record_of(home, name)
        if record.get("state") in states and (record.get("state") != "running" or is_alive(record.get("pid"))):
            return record
        time.sleep(0.05)
    raise AssertionError(f"waited {COPY_WAIT} s for {what}: {record_of(home, name)}")


def is_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def write_script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def image(tmp_path_factory) -> Path:
    """A read-only 'image' directory holding a genuine conda env, `envs/geo` (demo packages v1.0)."""
    from osl_hooks.demo.envbuild import build_conda_env

    root = tmp_path_factory.mktemp("image")
    build_conda_env(root / "envs" / "geo")
    return root


@pytest.fixture(scope="session")
def python_image(tmp_path_factory) -> Path:
    """An 'image' with `envs/py`: a working Python with ipykernel that is also a conda env."""
    from osl_hooks.demo.envbuild import build_python_env

    root = tmp_path_factory.mktemp("python-image")
    build_python_env(root / "envs" / "py")
    return root


def all_files(root: Path):
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                yield path


@contextmanager
def mounted_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A directory on its own small filesystem (a home that can really fill up)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill_to(directory: Path, free_bytes: int) -> Path:
    """Leave exactly `free_bytes` (rounded to the filesystem's blocks) free on the volume of `directory`."""
    filler = directory / "filler.bin"
    st = os.statvfs(directory)
    with open(filler, "wb") as f:
        f.write(b"\0" * max(st.f_bavail * st.f_frsize - free_bytes, 0))
    return filler


def kill_during_first_copy(command: list, envs: Path, timeout: float = 120) -> None:
    """Run `command` (a start) and SIGKILL it, rsync included, once its staging directory holds 100 files."""
    import signal
    import subprocess
    import time

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not any(
        sum(1 for _ in all_files(s)) > 100 for s in envs.glob(STAGING_PREFIX + "*")
    ):
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert list(envs.glob(STAGING_PREFIX + "*")), "the kill came too late to test an interruption"


@pytest.fixture
def hold(tmp_path, monkeypatch):
    """Hold the copy process at a named step until `release()`."""

    class Hold:
        file = tmp_path / "hold"

        def at(self, name: str) -> None:
            self.file.touch()
            monkeypatch.setenv(HOLD_AT_ENV_VAR, f"{name}={self.file}")

        def release(self) -> None:
            self.file.unlink(missing_ok=True)

    h = Hold()
    yield h
    h.release()


@pytest.fixture
def kube(monkeypatch):
    """KubeSpawners built without a cluster (no kubeconfig is read, the API is never called). The hub's test modules
    use it for every test: `pytestmark = pytest.mark.usefixtures("kube")`."""
    from test_hub_support import no_kubeconfig

    no_kubeconfig(monkeypatch)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Path:
    """Two pip packages with modules big enough to be linked (bigprobe, bigother), 1.0 and 2.0 of each, as wheels
    in a directory the pod's user can read."""
    from linkedenv import big_wheel

    directory = tmp_path_factory.mktemp("wheels")
    for name in ("bigprobe", "bigother"):
        for version in ("1.0", "2.0"):
            big_wheel(directory, name, version)
    directory.chmod(0o755)
    return directory
