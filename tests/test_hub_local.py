"""A real JupyterHub (configurable-http-proxy, DummyAuthenticator, SimpleLocalProcessSpawner) with osl-hooks'
'wrap' delivery: the user's server starts through the REST API, its kernelspecs API lists the synced env's
kernel, and a kernel started through the server runs code from the synced env.

Everything runs on 127.0.0.1 with free ports; the hub and everything it started are stopped at the end,
whatever happens. As root (CI), the single-user server needs --allow-root and osl-hooks allow_root.
"""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import wait_for_copy
from localhub import Hub, execute

from osl_hooks.engine.background import is_placeholder

BIN = Path(sys.executable).parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]


@pytest.fixture(params=["before_ready"])
def hub(request, tmp_path, python_image):
    """A hub whose env `py` is synced, its first copy made as `request.param` says (background copies are
    held at their start until the file `hub.hold` is removed)."""
    homes = tmp_path / "homes"
    hold = tmp_path / "hold"
    hold.touch()
    (homes / "alice").mkdir(parents=True)
    source = python_image / "envs/py"
    hub = Hub.with_config(
        tmp_path,
        textwrap.dedent(f"""
        c.JupyterHub.spawner_class = "simple"
        c.SimpleLocalProcessSpawner.home_dir_template = {str(homes / "{username}")!r}
        c.Spawner.cmd = [{str(BIN / "jupyterhub-singleuser")!r}]
        c.Spawner.args = ["--allow-root"]  # CI runs as root
        c.Spawner.start_timeout = 120
        c.Spawner.http_timeout = 60
        c.Spawner.environment = {{"OSL_HOOKS_HOLD_AT": "background:staging-made=" + {str(hold)!r}}}

        def admin_pre_spawn_hook(spawner):  # an admin's own hook: chained, not replaced
            spawner.environment = {{**spawner.environment, "ADMIN_HOOK": "ran for " + spawner.user.name}}
        c.Spawner.pre_spawn_hook = admin_pre_spawn_hook

        c.OSLHooks.environments = [
            {{"name": "py", "mode": "synced", "source": {str(source)!r}, "display_name": "Python (synced)",
              "first_copy": {request.param!r}}},
        ]
        c.OSLHooks.command = [{str(BIN / "osl-hooks")!r}]
        c.OSLHooks.allow_root = True  # only because this throwaway server runs as root

        import osl_hooks.hub
        osl_hooks.hub.install(c)
        """),
    )
    hub.homes = homes
    hub.hold = hold
    try:
        yield hub
    finally:
        hold.unlink(missing_ok=True)
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


@pytest.mark.parametrize("hub", ["background"], indirect=True)
def test_real_hub_ready_before_the_copy_then_new_kernels_use_it_without_a_restart(hub, python_image):
    """The spawn page says the copy is made in the background and the env is read-only until then; a kernel
    started through the server runs from the image; once the copy is complete, the server (not restarted)
    lists the kernel on the user's copy and starts new kernels there, and the first kernel still runs."""

    status, body = hub.api("POST", "/hub/api/users/alice")
    assert status == 201, body
    status, body = hub.api("POST", "/hub/api/users/alice/server")
    assert status in (201, 202), body
    messages = [event.get("message", "") for event in hub.progress("alice")]
    hub.wait_for(lambda: (hub.server("alice") or {}).get("ready"), 120, "alice's server to be ready")
    shown = next(m for m in messages if "in the background" in m)
    assert "Your own copy of py will be made in the background" in shown and "read-only" in shown, messages

    home, image_env = hub.homes / "alice", python_image / "envs/py"
    target = home / ".local/envs/py"
    status, specs = hub.api("GET", "/user/alice/api/kernelspecs")
    assert specs["kernelspecs"]["osl-py"]["spec"]["argv"][0] == str(image_env / "bin/python")
    status, during = hub.api("POST", "/user/alice/api/kernels", {"name": "osl-py"})
    assert status == 201, during
    assert execute(hub, "alice", during["id"], "import sys; print(sys.prefix)").strip() == str(image_env)
    assert is_placeholder(target), "no copy yet: the link to the guards stands where it will be"

    hub.hold.unlink()
    assert wait_for_copy(home, "py")["state"] == "done"
    status, specs = hub.api("GET", "/user/alice/api/kernelspecs")
    assert specs["kernelspecs"]["osl-py"]["spec"]["argv"][0] == str(target / "bin/python")
    status, after = hub.api("POST", "/user/alice/api/kernels", {"name": "osl-py"})
    assert status == 201, after
    assert execute(hub, "alice", after["id"], "import sys; print(sys.prefix)").strip() == str(target)
    assert execute(hub, "alice", during["id"], "import sys; print(sys.prefix)").strip() == str(image_env)
