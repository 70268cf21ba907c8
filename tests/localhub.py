"""Driving a real local JupyterHub from tests: start it, call its REST API, read progress, stop it all.

Everything runs on 127.0.0.1 with free ports; `close()` stops the hub and everything it started, whatever
happened.
"""

from __future__ import annotations

import concurrent.futures
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

import osl_hooks
from osl_hooks.demo.hub import hub_config

BIN = Path(sys.executable).parent
SOURCE_ROOT = Path(osl_hooks.__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """A JupyterHub process started with `command` in `directory`, reachable with an admin service token."""

    def __init__(
        self,
        directory: Path,
        command: list[str],
        port: int,
        token: str,
        env: dict[str, str] | None = None,
        start_timeout: float = 60,
    ):
        self.directory = directory
        self.port = port
        self.token = token
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "hub.log"
        self.log = open(self.log_path, "w")
        env = {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(SOURCE_ROOT),
            "LANG": "C.UTF-8",
            "HOME": str(directory),
            **(env or {}),
        }
        self.process = subprocess.Popen(
            command,
            cwd=directory,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_for(lambda: self.api("GET", "/hub/api/")[0] == 200, start_timeout, "the hub to answer")

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

    @classmethod
    def with_config(cls, directory: Path, config: str) -> Hub:
        """A hub run from a jupyterhub_config.py: the common local settings, then `config`."""
        port, token = free_port(), secrets.token_hex(16)
        base = hub_config(
            directory,
            proxy=shutil.which("configurable-http-proxy") or "configurable-http-proxy",
            port=port,
            hub_port=free_port(),
            api_port=free_port(),
            api_token=token,
        )
        (directory / "jupyterhub_config.py").write_text(
            base + 'c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}\n' + config
        )
        return cls(directory, [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"], port, token)

    def progress(self, user: str, timeout: float = 300) -> list[dict]:
        """Every event of the spawn progress stream (server-sent events) until it ends."""
        req = urllib.request.Request(
            f"{self.url}/hub/api/users/{user}/server/progress", headers={"Authorization": f"token {self.token}"}
        )
        events = []
        with urllib.request.urlopen(req, timeout=timeout) as response:
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    events.append(json.loads(line[len("data:") :]))
                    if events[-1].get("ready") or events[-1].get("failed"):
                        break
        return events


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


def wrap_hub_config(homes: Path, osl: str | None, **spawner: object) -> str:
    """A jupyterhub_config.py body for SimpleLocalProcessSpawner homes under `homes` with osl-hooks' `wrap`
    delivery: `spawner` settings (c.Spawner.NAME = value), then `osl` (c.OSLHooks lines), then install(c);
    `osl=None`: the same hub without osl-hooks (a baseline). As root (CI) the server needs --allow-root,
    and osl-hooks allow_root."""
    lines = [
        'c.JupyterHub.spawner_class = "simple"',
        f"c.SimpleLocalProcessSpawner.home_dir_template = {str(homes / '{username}')!r}",
        f"c.Spawner.cmd = [{str(BIN / 'jupyterhub-singleuser')!r}]",
        'c.Spawner.args = ["--allow-root"]',
        *(f"c.Spawner.{name} = {value!r}" for name, value in spawner.items()),
    ]
    if osl is not None:
        lines += [
            osl.strip(),
            f"c.OSLHooks.command = [{str(BIN / 'osl-hooks')!r}]",
            "c.OSLHooks.allow_root = True",
            "import osl_hooks.hub",
            "osl_hooks.hub.install(c)",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Storm:
    """What a storm of spawns measured: seconds from the request to ready per user, who failed (and the
    message the hub gave), and the hub API's latency (GET /hub/api/) sampled throughout."""

    ready: dict[str, float]
    failed: dict[str, str]
    api_latencies: list[float]
    api_errors: int = 0  # samples the API did not answer with 200

    @staticmethod
    def percentile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def summary(self) -> dict[str, float]:
        times, api = list(self.ready.values()), self.api_latencies
        return {
            "users": len(self.ready) + len(self.failed),
            "ready": len(self.ready),
            "failed": len(self.failed),
            "ready_p50_s": self.percentile(times, 0.5),
            "ready_p95_s": self.percentile(times, 0.95),
            "ready_max_s": max(times, default=float("nan")),
            "api_p50_ms": 1000 * self.percentile(api, 0.5),
            "api_p95_ms": 1000 * self.percentile(api, 0.95),
            "api_max_ms": 1000 * max(api, default=float("nan")),
            "api_errors": self.api_errors,
        }


def storm(hub: Hub, users: list[str], timeout: float) -> Storm:
    """Ask for every user's server at once, and follow them until ready or failed, sampling the API's latency."""
    for user in users:
        hub.api("POST", f"/hub/api/users/{user}")
    latencies: list[float] = []
    errors = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            started = time.perf_counter()
            try:
                ok = hub.api("GET", "/hub/api/")[0] == 200
            except OSError:  # no answer within the request's timeout
                ok = False
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors.append(started)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    requested = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(users)) as pool:
        # the hub may take long to answer each request while it spawns them all: wait for its answers
        answers = list(pool.map(lambda u: hub.request("POST", f"/hub/api/users/{u}/server", timeout=600), users))
    assert all(status in (201, 202) for status, _ in answers), answers
    ready: dict[str, float] = {}
    failed: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(ready) + len(failed) < len(users) and time.monotonic() < deadline:
        for user in users:
            if user in ready or user in failed:
                continue
            status, model = hub.api("GET", f"/hub/api/users/{user}")
            if status != 200 or not isinstance(model, dict):
                continue  # no answer in time: ask again (the sampler counts the API's slowness)
            server = (model.get("servers") or {}).get("")
            if server and server.get("ready"):
                ready[user] = time.monotonic() - requested
            elif server is None:
                failed[user] = _last_log_line(hub, user)
        time.sleep(0.5)
    done.set()
    sampler.join()
    for user in set(users) - set(ready) - set(failed):
        failed[user] = "not ready before the storm's timeout"
    return Storm(ready, failed, latencies, len(errors))


def _last_log_line(hub: Hub, user: str) -> str:
    return next((line for line in reversed(hub.log_text().splitlines()) if user in line), "")
