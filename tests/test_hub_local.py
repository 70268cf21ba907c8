"""A real JupyterHub (configurable-http-proxy, DummyAuthenticator, SimpleLocalProcessSpawner) with osl-hooks'
'wrap' delivery: the user's server starts through the REST API, its kernelspecs API lists the synced env's
kernel, and a kernel started through the server runs code from the synced env.

Everything runs on 127.0.0.1 with free ports; the hub and everything it started are stopped at the end,
whatever happens. As root (CI), the single-user server needs --allow-root and osl-hooks allow_root.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

import osl_hooks

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]

BIN = Path(sys.executable).parent
SOURCE_ROOT = Path(osl_hooks.__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, directory: Path, config: str):
        self.directory = directory
        self.port, self.hub_port, self.api_port = free_port(), free_port(), free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "hub.log"
        (directory / "jupyterhub_config.py").write_text(
            textwrap.dedent(
                f"""
                c.JupyterHub.bind_url = "{self.url}"
                c.JupyterHub.hub_bind_url = "http://127.0.0.1:{self.hub_port}"
                c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{self.api_port}"
                c.ConfigurableHTTPProxy.command = [{shutil.which("configurable-http-proxy")!r}]
                c.ConfigurableHTTPProxy.pid_file = {str(directory / "proxy.pid")!r}
                c.JupyterHub.db_url = "sqlite:///{directory / "hub.sqlite"}"
                c.JupyterHub.cookie_secret_file = {str(directory / "cookie_secret")!r}
                c.JupyterHub.authenticator_class = "dummy"
                c.Authenticator.allow_all = True
                c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
                c.JupyterHub.services = [{{"name": "tester", "api_token": {self.token!r}}}]
                c.JupyterHub.load_roles = [{{
                    "name": "tester",
                    "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
                    "services": ["tester"],
                }}]
                """
            )
            + textwrap.dedent(config)
        )
        self.log = open(self.log_path, "w")
        env = {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(SOURCE_ROOT),
            "LANG": "C.UTF-8",
            "HOME": str(directory),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            cwd=directory,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_for(lambda: self.api("GET", "/hub/api/")[0] == 200, 60, "the hub to answer")

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict | str]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, ""
        try:
            return status, json.loads(text) if text else {}
        except ValueError:
            return status, text

    api = request

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the hub exited ({self.process.returncode}) waiting for {what}:\n{self.log_text()}")
            if condition():
                return
            time.sleep(0.5)
        pytest.fail(f"timed out waiting for {what}:\n{self.log_text()[-6000:]}")

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def server(self, user: str) -> dict | None:
        status, model = self.api("GET", f"/hub/api/users/{user}")
        return (model.get("servers") or {}).get("") if status == 200 and isinstance(model, dict) else None

    def start_server(self, user: str, timeout: float = 120) -> None:
        status, body = self.api("POST", f"/hub/api/users/{user}/server")
        assert status in (201, 202), (status, body)
        self.wait_for(lambda: (self.server(user) or {}).get("ready"), timeout, f"{user}'s server to be ready")

    def stop_server(self, user: str, timeout: float = 60) -> None:
        status, body = self.api("DELETE", f"/hub/api/users/{user}/server")
        assert status in (202, 204), (status, body)
        self.wait_for(lambda: self.server(user) is None, timeout, f"{user}'s server to stop")

    def close(self) -> None:
        """Stop the hub, then anything it started that is still running (the proxy, user servers, kernels)."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(children, timeout=10)
        self.log.close()


def execute(hub: Hub, user: str, kernel_id: str, code: str, timeout: float = 60) -> str:
    """Run `code` in a kernel through the server's websocket API (Jupyter messaging protocol over JSON)."""
    import websocket

    ws = websocket.create_connection(
        f"ws://127.0.0.1:{hub.port}/user/{user}/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {hub.token}"],
        timeout=timeout,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": "tester",
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        output, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                output.append(msg["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(output)
        raise AssertionError(f"no reply to the execute request in {timeout} s")
    finally:
        ws.close()


@pytest.fixture
def hub(tmp_path, python_image):
    homes = tmp_path / "homes"
    (homes / "alice").mkdir(parents=True)
    source = python_image / "envs/py"
    hub = Hub(
        tmp_path,
        f"""
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = {str(homes / "{username}")!r}
        c.Spawner.cmd = [{str(BIN / "jupyterhub-singleuser")!r}]
        c.Spawner.args = ["--allow-root"]  # CI runs as root
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 60

        def admin_pre_spawn_hook(spawner):  # an admin's own hook: chained, not replaced
            spawner.environment = {{**spawner.environment, "ADMIN_HOOK": "ran for " + spawner.user.name}}
        c.Spawner.pre_spawn_hook = admin_pre_spawn_hook

        c.OSLHooks.environments = [
            {{"name": "py", "mode": "synced", "source": {str(source)!r}, "display_name": "Python (synced)"}},
        ]
        c.OSLHooks.command = [{str(BIN / "osl-hooks")!r}]
        c.OSLHooks.allow_root = True  # only because this throwaway server runs as root

        import osl_hooks.hub
        osl_hooks.hub.install(c)
        """,
    )
    hub.homes = homes
    try:
        yield hub
    finally:
        hub.close()


def test_real_hub_wrap_delivery_syncs_and_runs_the_env(hub):
    status, body = hub.api("POST", "/hub/api/users/alice")
    assert status == 201, body
    started = time.monotonic()
    hub.start_server("alice")
    first_start = time.monotonic() - started
    home = hub.homes / "alice"
    target = home / ".local/envs/py"
    assert (target / "bin/python").exists()

    status, specs = hub.api("GET", "/user/alice/api/kernelspecs")
    assert status == 200, specs
    assert specs["kernelspecs"]["osl-py"]["spec"]["display_name"] == "Python (synced)"
    assert specs["kernelspecs"]["osl-py"]["spec"]["argv"][0] == str(target / "bin/python")

    status, kernel = hub.api("POST", "/user/alice/api/kernels", {"name": "osl-py"})
    assert status == 201, kernel
    output = execute(hub, "alice", kernel["id"], "import os, sys; print(sys.prefix); print(os.environ['ADMIN_HOOK'])")
    assert output.splitlines() == [str(target), "ran for alice"]

    log = hub.log_text()
    assert "Synced py" in log and "Registered kernel Python (synced)" in log
    status_file = json.loads((home / ".local/state/osl-hooks/status.json").read_text())
    assert status_file["state"] == "ok"

    # A second start: the env is already there; the command is wrapped once, not twice.
    hub.stop_server("alice")
    started = time.monotonic()
    hub.start_server("alice")
    second_start = time.monotonic() - started
    assert "py is up to date" in hub.log_text()
    spawned = [line for line in hub.log_text().splitlines() if "Spawning " in line]
    assert len(spawned) == 2 and all(line.count(" start --allow-root -- ") == 1 for line in spawned), spawned
    print(f"\nreal hub, wrap delivery: first start {first_start:.1f} s, second start {second_start:.1f} s")
