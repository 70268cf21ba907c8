"""A real JupyterHub with osl-hooks on this machine: the README's first command.

`python -m osl_hooks.demo` builds a small demo "image" (a conda env built offline, and a Python env with
ipykernel that is also a conda env; both baked with `osl-hooks bake`), writes a jupyterhub_config.py under
./demo-data, installs configurable-http-proxy there with npm if it is not on PATH, and runs JupyterHub on
http://127.0.0.1:8000 with the dummy authenticator (any name, any password) and SimpleLocalProcessSpawner
(homes in ./demo-data/homes/NAME), with osl-hooks' `wrap` delivery. Sign in, watch your envs being synced
on the spawn page (one before the server is ready, one in the background), and land in JupyterLab with their kernels in the launcher. Sign in as `fail-demo` to see
what a failed start looks like. Ctrl-C stops the hub, the proxy and the servers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ..engine.faultpoints import HOLD_AT_ENV_VAR
from ..engine.manifest import MANIFEST_FILE, bake
from .envbuild import build_conda_env, build_python_env

FAILING_USER = "fail-demo"
SETUP_SCRIPT = f"""#!/bin/sh
# A demo setup script: runs as the user at every start, once the envs are ready.
if [ "$JUPYTERHUB_USER" = "{FAILING_USER}" ]; then
    echo "the demo setup script fails on purpose for {FAILING_USER}" >&2
    exit 1
fi
echo "Hello $JUPYTERHUB_USER; your envs: $(ls "$HOME/.local/envs" | tr '\\n' ' ')"
"""


def build_demo_image(root: Path) -> dict:
    """Build (once) the demo image under `root`; return its OSLHooks settings (environments, setup_scripts)."""
    envs = root / "envs"
    if not (envs / "geo" / MANIFEST_FILE).exists():
        print("Building the demo conda env 'geo' (offline, from local packages)...", flush=True)
        build_conda_env(envs / "geo")
        bake(envs / "geo")
    if not (envs / "python" / MANIFEST_FILE).exists():
        print("Building the demo Python env 'python' with ipykernel (about a minute)...", flush=True)
        build_python_env(envs / "python")
        bake(envs / "python")
    setup = root / "setup.d" / "10-hello.sh"
    setup.parent.mkdir(parents=True, exist_ok=True)
    setup.write_text(SETUP_SCRIPT)
    setup.chmod(0o755)
    return {
        "environments": [
            # One first copy made before the server is ready, one in the background: the spawn page shows both.
            {
                "name": "python",
                "mode": "synced",
                "source": str(envs / "python"),
                "display_name": "Python (demo env)",
                "first_copy": "before_ready",
            },
            {"name": "geo", "mode": "synced", "source": str(envs / "geo"), "display_name": "Geo demo"},
        ],
        "setup_scripts": [{"path": str(setup.parent), "on_failure": "fail"}],
    }


def hub_config(
    directory: Path,
    *,
    proxy: str,
    port: int = 8000,
    hub_port: int = 8081,
    api_port: int = 8001,
    api_token: str | None = None,
) -> str:
    """The base of a local hub's jupyterhub_config.py: addresses, state files in `directory`, dummy auth."""
    lines = [
        f'c.JupyterHub.bind_url = "http://127.0.0.1:{port}"',
        f'c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"',
        f'c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"',
        f"c.ConfigurableHTTPProxy.command = [{proxy!r}]",
        f"c.ConfigurableHTTPProxy.pid_file = {str(directory / 'proxy.pid')!r}",
        f'c.JupyterHub.db_url = "sqlite:///{directory / "hub.sqlite"}"',
        f"c.JupyterHub.cookie_secret_file = {str(directory / 'cookie_secret')!r}",
        'c.JupyterHub.authenticator_class = "dummy"',
        "c.Authenticator.allow_all = True",
    ]
    if api_token:
        lines += [
            f'c.JupyterHub.services = [{{"name": "tester", "api_token": {api_token!r}}}]',
            'c.JupyterHub.load_roles = [{"name": "tester", "services": ["tester"], '
            '"scopes": ["admin:users", "admin:servers", "access:servers", "read:users"]}]',
        ]
    return "\n".join(lines) + "\n"


# The JupyterLab extension as `npm run build` in labextension/ leaves it in a source checkout (docs/lab.md).
CHECKOUT_LABEXTENSIONS = Path(__file__).resolve().parent.parent / "labextensions"


def labextension_args() -> list[str]:
    """Server arguments that make JupyterLab load the extension this package holds (built by `npm run build` in a
    checkout's labextension/, or carried by the wheel) ahead of any other copy: an editable install gets no data
    files, and a copy installed or linked into the Python's prefix may be another checkout's or stale."""
    built = CHECKOUT_LABEXTENSIONS / "osl-hooks" / "package.json"
    return [f"--LabApp.extra_labextensions_path={CHECKOUT_LABEXTENSIONS}"] if built.is_file() else []


def demo_config(directory: Path, image: dict, *, proxy: str, ports: tuple[int, int, int], api_token: str | None) -> str:
    """The demo's whole jupyterhub_config.py."""
    bin_dir = Path(sys.executable).parent
    as_root = os.geteuid() == 0
    args = ["--ServerApp.jpserver_extensions=osl_hooks.lab=True", *labextension_args()]
    spawner = f"""
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(directory / "homes" / "{username}")!r}
c.Spawner.cmd = [{str(bin_dir / "jupyterhub-singleuser")!r}]
c.Spawner.default_url = "/lab"
c.Spawner.args = {args + (["--allow-root"] if as_root else [])!r}
c.Spawner.start_timeout = 600  # a first start copies the envs (docs/hub.md, "Timeouts")
c.Spawner.http_timeout = 120  # then JupyterLab itself starts: give it more than 30 s on a busy machine
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # straight to the progress page

c.OSLHooks.environments = {image["environments"]!r}
c.OSLHooks.setup_scripts = {image["setup_scripts"]!r}
c.OSLHooks.command = [{str(bin_dir / "osl-hooks")!r}]
c.OSLHooks.allow_root = {as_root!r}  # only because this demo runs as root; real servers run as their user

import osl_hooks.hub
osl_hooks.hub.install(c)
"""
    if HOLD_AT_ENV_VAR in os.environ:  # tests hold a start at a known step (osl_hooks/engine/faultpoints.py)
        spawner += f"c.Spawner.env_keep.append({HOLD_AT_ENV_VAR!r})\n"
    port, hub_port, api_port = ports
    return (
        hub_config(directory, proxy=proxy, port=port, hub_port=hub_port, api_port=api_port, api_token=api_token)
        + spawner
    )


def find_or_install_proxy(directory: Path) -> str:
    """configurable-http-proxy from PATH, else installed with npm under `directory`."""
    found = shutil.which("configurable-http-proxy")
    if found:
        return found
    local = directory / "node_modules" / ".bin" / "configurable-http-proxy"
    if not local.exists():
        if shutil.which("npm") is None:
            sys.exit("osl-hooks demo: configurable-http-proxy is needed: install Node.js and npm, then run again")
        print("Installing configurable-http-proxy with npm...", flush=True)
        subprocess.run(
            ["npm", "install", "--silent", "--prefix", str(directory), "configurable-http-proxy"], check=True
        )
    return str(local)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m osl_hooks.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("demo-data"), help="where the demo keeps its files")
    parser.add_argument("--port", type=int, default=8000, help="the hub's public port")
    parser.add_argument("--hub-port", type=int, default=8081, help="the hub's internal port")
    parser.add_argument("--proxy-api-port", type=int, default=8001, help="the proxy's API port")
    args = parser.parse_args(argv)
    if shutil.which("rsync") is None:
        sys.exit("osl-hooks demo: rsync is needed (e.g. apt-get install rsync), then run again")
    directory = args.dir.absolute()
    (directory / "homes").mkdir(parents=True, exist_ok=True)
    image = build_demo_image(directory / "image")
    proxy = find_or_install_proxy(directory)
    api_token = os.environ.get("OSL_HOOKS_DEMO_API_TOKEN")  # lets tests drive the demo through the REST API
    config = directory / "jupyterhub_config.py"
    ports = (args.port, args.hub_port, args.proxy_api_port)
    config.write_text(demo_config(directory, image, proxy=proxy, ports=ports, api_token=api_token))
    print(f"\nJupyterHub with osl-hooks: open http://127.0.0.1:{args.port} and sign in with any name and password")
    print(f"(sign in as {FAILING_USER} to see a failed start). Ctrl-C stops everything.\n", flush=True)
    # Its own session: Ctrl-C reaches the hub once, through `forward`, and the hub stops what it started.
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=directory, start_new_session=True
    )

    def forward(signum: int, _frame: object) -> None:
        hub.send_signal(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    return hub.wait()
