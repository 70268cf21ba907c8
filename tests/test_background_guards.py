"""What a user meets while the env's own copy is made in the background: pip, `%pip` and `%conda` refused with
one sentence (how far the copy is, install once it is complete) in a real kernel and in a shell with the
server's environment, nothing installed anywhere; and `osl-hooks status` (both forms) from the moment the copy
waits for the server until it is complete.

Real starts, a real `osl-hooks start -- SERVER` (the `wrap` delivery, whose server's environment terminals
inherit), real kernels through jupyter_client, real pip installing a real wheel offline. Copies are held where a
test acts (`OSL_HOOKS_HOLD_AT`), or wait for a server that the test ends itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import COPY_WAIT, is_alive, record_of, wait_for_copy
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.multikernelmanager import MultiKernelManager
from test_background import py_plan, run_in_kernel, start_in

from osl_hooks.engine.faultpoints import HOLD_AT_ENV_VAR

pytestmark = pytest.mark.slow

PROBE = "osl_guard_probe"
REFUSED = "cannot change py yet: your own copy of it is being made in the background ("
LATER = "Install packages once the copy is complete"


def probe_wheel(directory: Path) -> Path:
    """A wheel pip installs offline (`--no-index`): what a user's install would put somewhere."""
    wheel = directory / f"{PROBE}-1.0-py3-none-any.whl"
    info = f"{PROBE}-1.0.dist-info"
    files = {
        f"{PROBE}.py": "VALUE = 1\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {PROBE}\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
        z.writestr(f"{info}/RECORD", "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"]))
    return wheel


def installed_anywhere(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob(f"{PROBE}*")]


def test_pip_and_conda_in_a_kernel_during_the_copy_refuse_with_the_guards_sentence(python_image, home, hold):
    """`%pip` runs `sys.executable -m pip`, which no guard on PATH sees; `%conda` finds conda by itself."""
    hold.at("background:staging-made")
    start_in(home, py_plan(python_image))
    wheel = probe_wheel(home.parent)
    image_env = python_image / "envs/py"
    specs = KernelSpecManager(kernel_dirs=[str(home / ".local/share/jupyter/kernels")])
    kernels = MultiKernelManager(kernel_spec_manager=specs)
    try:
        kernel = kernels.start_kernel(kernel_name="osl-py", env={**os.environ, "HOME": str(home)})
        flags = f"--no-index --disable-pip-version-check {wheel}"
        magic = run_in_kernel(kernels, kernel, f"%pip install {flags}")
        assert "pip " + REFUSED in magic and LATER in magic, magic
        by_hand = run_in_kernel(kernels, kernel, f"import sys\n!{{sys.executable}} -m pip install --user {flags}")
        assert REFUSED in by_hand and LATER in by_hand, by_hand
        conda = run_in_kernel(kernels, kernel, "%conda install numpy")
        assert "conda " + REFUSED in conda, conda
        listed = run_in_kernel(kernels, kernel, "%pip list --disable-pip-version-check")
        assert "ipykernel" in listed, listed  # what changes nothing still works
    finally:
        kernels.shutdown_all(now=True)
    assert installed_anywhere(image_env, home) == []


def osl_hooks(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osl_hooks.cli", *args], capture_output=True, text=True, env=env)


def status_of(home: Path) -> tuple[str, dict]:
    state = str(home / ".local/state/osl-hooks")
    text, data = osl_hooks("status", "--state-dir", state), osl_hooks("status", "--state-dir", state, "--json")
    return text.stdout, json.loads(data.stdout)["background_copies"]["py"]


def wait_for_estimate(home: Path) -> dict:
    deadline = time.monotonic() + COPY_WAIT
    while not record_of(home, "py").get("eta_seconds") and time.monotonic() < deadline:
        time.sleep(0.05)
    return record_of(home, "py")


def test_a_terminal_and_status_during_the_wait_for_the_server_and_the_copy(python_image, home, tmp_path):
    """The server a `wrap` start execs waits here until the test lets it end; a background copy begins only
    once its server is up (or gone), so meanwhile the copy waits, and the test acts in a shell with that
    server's environment, as a terminal of the server would."""
    wheel = probe_wheel(tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "home": str(home), **py_plan(python_image)}))
    server_runs, copy_held = tmp_path / "server-runs", tmp_path / "copy-held"
    server_runs.touch()
    copy_held.touch()
    environ = {**os.environ, "HOME": str(home), HOLD_AT_ENV_VAR: f"background:progress-recorded={copy_held}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "osl_hooks.cli", "start", "--plan", str(plan), "--allow-root", "--"]
        + ["sh", "-c", f"while [ -e {server_runs} ]; do sleep 0.05; done"],
        env=environ,
    )
    try:
        waiting = wait_for_copy(home, "py", ("waiting",), "the copy to wait for the server")
        text, data = status_of(home)
        assert data["state"] == "waiting" and data["percent"] == 0, data
        assert "background copy of py: waiting for the server to start, 0% done" in text, text

        terminal = {
            k: v
            for k, v in (
                i.split("=", 1) for i in Path(f"/proc/{server.pid}/environ").read_text().split("\0") if "=" in i
            )
        }
        terminal["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        image_python = python_image / "envs/py/bin/python"
        for command in (
            f"~/.local/envs/py/bin/pip install --no-index {wheel}",  # what docs/users.md says
            f"{image_python} -m pip install --user --no-index {wheel}",
            f"{python_image}/envs/py/bin/pip install --no-index {wheel}",
        ):
            shell = subprocess.run(["sh", "-c", command], env=terminal, capture_output=True, text=True, cwd=home)
            assert shell.returncode != 0 and "pip " + REFUSED in shell.stderr and LATER in shell.stderr, (
                command,
                shell.stderr,
            )
        listed = subprocess.run([str(image_python), "-m", "pip", "list"], env=terminal, capture_output=True, text=True)
        assert listed.returncode == 0 and "ipykernel" in listed.stdout, listed.stderr
        assert installed_anywhere(python_image / "envs/py", home) == []
    finally:
        server_runs.unlink()
        server.wait(timeout=60)
    assert is_alive(waiting["pid"])

    running = wait_for_estimate(home)  # the copy is held right after it recorded one
    text, data = status_of(home)
    assert 0 <= data["percent"] < 100 and data["eta_seconds"] > 0, data
    assert f"background copy of py: running, {data['percent']}% done, about " in text, text
    copy_held.unlink()
    assert wait_for_copy(home, "py")["state"] == "done"
    assert "background copy of py: complete" in status_of(home)[0]

    # The same terminal once the copy is complete: the env's own pip installs into the user's copy.
    installed = subprocess.run(
        ["sh", "-c", f"~/.local/envs/py/bin/pip install --no-index {wheel}"],
        env=terminal,
        capture_output=True,
        text=True,
    )
    assert installed.returncode == 0, installed.stderr
    assert installed_anywhere(home / ".local/envs/py/lib") and not installed_anywhere(home / ".local/lib")
    assert running["pid"] == waiting["pid"]
