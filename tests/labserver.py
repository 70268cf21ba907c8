"""A real jupyter_server for one home, with osl-hooks' extension enabled the way the package enables it.

The server finds the extension through `osl_hooks/lab/jupyter-config/jupyter_server_config.d/osl_hooks.json`
(the file the package installs into `etc/jupyter/`), on $JUPYTER_CONFIG_PATH: if that file did not enable it, every
API test would get 404s.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import requests
from localhub import SOURCE_ROOT, free_port

CONFIG_PATH = SOURCE_ROOT / "osl_hooks/lab/jupyter-config"


class LabServer:
    def __init__(
        self, home: Path, workdir: Path, extra_env: dict[str, str] | None = None, server_args: list[str] | None = None
    ):
        self.token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.api = self.url + "osl-hooks/api/"
        workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OSL_HOOKS_", "JUPYTER"))}
        env.update(
            HOME=str(home),
            JUPYTER_CONFIG_PATH=str(CONFIG_PATH),
            JUPYTER_CONFIG_DIR=str(workdir / "config"),  # nobody's own config
            JUPYTER_RUNTIME_DIR=str(workdir / "runtime"),
            PYTHONPATH=str(SOURCE_ROOT),
            **(extra_env or {}),
        )
        self.log_path = workdir / "server.log"
        self.log = open(self.log_path, "w")
        command = [sys.executable, "-m", "jupyter_server", f"--port={self.port}", "--ip=127.0.0.1", "--no-browser"]
        command += [f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={home}"]
        command += server_args or []
        if os.geteuid() == 0:
            command.append("--allow-root")  # CI runs as root; the extension passes it on to the CLI only then
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=home)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.log_path.read_text()}")
            try:
                if self.session.get(self.url + "api/status", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server was not ready in {timeout} s: {self.log_path.read_text()}")

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.api + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.api + path, timeout=30, **kwargs)

    def wait_task(self, location: str, timeout: float = 300) -> dict:
        """Poll a task until it ended (a bound for a copy to end, never a speed expectation)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.session.get(self.url.rstrip("/") + location, timeout=30).json()
            if task["state"] != "running":
                return task
            time.sleep(0.1)
        raise AssertionError(f"the task at {location} did not end in {timeout} s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
