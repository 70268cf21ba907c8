"""Run exactly what a generated pod would run, in a pod-like sandbox (tests/podsandbox.py).

For each delivery, a real KubeSpawner builds the pod (hooks run as the hub runs them); the test takes the
command the pod would execute — the init container's command, the postStart exec command, or the wrapped
container args — with that container's env vars, uid/gid and home volume mount, and runs it as is, with
the env images mounted read-only at their pod paths. The env was built elsewhere (under a tmp dir), so the
configuration says `built_prefix`, as it would for an image whose envs were built in another prefix.
"""

from __future__ import annotations

import json

import podsandbox
import pytest
from podsandbox import PodSandbox, kernel_probe
from test_hub_support import container, hub_user, kube_config, spawn_pod, validate_pod

import osl_hooks.hub

pytestmark = [pytest.mark.usefixtures("kube"), pytest.mark.slow, podsandbox.needed]

ENV_PATH = "/opt/conda/envs/py"
SETUP_PATH = "/opt/osl-setup"
# The 'server' of the wrap delivery: Jupyter's own view of the kernels, printed as JSON, then exit.
SERVER = ["jupyter", "kernelspec", "list", "--json"]
KERNEL_CHECK = kernel_probe("osl-py", "sys.prefix, os.getuid()")


@pytest.fixture
def setup_scripts(tmp_path):
    directory = tmp_path / "osl-setup"
    directory.mkdir()
    script = directory / "10-record.sh"
    script.write_text(
        '#!/bin/sh\necho "setup uid=$(id -u) home=$HOME env=${OSL_ENV_NAME:-global}" >> "$HOME/setup-trace"\n'
    )
    script.chmod(0o755)
    return directory


def pod_for(delivery, python_image, **osl):
    c = kube_config(
        delivery=delivery,
        environments=[
            {
                "name": "py",
                "mode": "synced",
                "source": ENV_PATH,
                "built_prefix": str(python_image / "envs/py"),
                "display_name": "Python (synced)",
            }
        ],
        setup_scripts=[SETUP_PATH],
        **osl,
    )
    if delivery == "wrap":
        c.Spawner.cmd = SERVER
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("alice", ["geo"]))
    validate_pod(pod)
    return pod


def sandbox_for(pod, c, home, python_image, setup_scripts):
    """The sandbox a container of `pod` would be: its env vars, uid/gid, home volume mount, image mounts."""
    sc = c.get("securityContext") or {}
    psc = pod["spec"].get("securityContext") or {}
    (home_mount,) = [m["mountPath"] for m in c["volumeMounts"] if m["name"].startswith("volume-")]
    return PodSandbox(
        home=home,
        mounts={ENV_PATH: python_image / "envs/py", SETUP_PATH: setup_scripts},
        env={e["name"]: e["value"] for e in c.get("env", []) if "value" in e},
        uid=sc.get("runAsUser", psc.get("runAsUser", 1000)),
        gid=sc.get("runAsGroup", psc.get("fsGroup", 100)),
        home_mount=home_mount,
    )


def pod_command(pod, delivery):
    """(container, argv) the pod runs for osl-hooks: exactly what the kubelet would exec."""
    if delivery == "init_container":
        init = container(pod, "osl-hooks")
        return init, init["command"] + init.get("args", [])
    notebook = container(pod)
    if delivery == "post_start":
        return notebook, notebook["lifecycle"]["postStart"]["exec"]["command"]
    return notebook, notebook.get("command", []) + notebook["args"]  # no image ENTRYPOINT in the sandbox


def assert_prepared(home):
    kernel = json.loads((home / ".local/share/jupyter/kernels/osl-py/kernel.json").read_text())
    assert kernel["display_name"] == "Python (synced)"
    assert kernel["argv"][0].startswith("/home/jovyan/.local/envs/py/bin/python")
    assert (home / ".local/envs/py/bin/python").exists()
    assert (home / "setup-trace").read_text().splitlines() == ["setup uid=1000 home=/home/jovyan env=global"]
    assert home.joinpath(".local/envs/py").stat().st_uid == 1000


@pytest.mark.parametrize("delivery", ["init_container", "post_start", "wrap"])
def test_pod_command_syncs_envs_and_registers_kernels(delivery, python_image, setup_scripts, tmp_path):
    # `wrap` would make this first copy in the background by default (tests/test_background*.py check that): here
    # every delivery's pod command is asked to have the env ready before the server starts.
    pod = pod_for(delivery, python_image, first_copy="before_ready")
    c, argv = pod_command(pod, delivery)
    home = tmp_path / "home-volume"
    home.mkdir()
    sandbox = sandbox_for(pod, c, home, python_image, setup_scripts)

    result = sandbox.run(argv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Synced py" in result.stdout and "Registered kernel Python (synced)" in result.stdout
    assert_prepared(home)

    if delivery == "wrap":  # osl-hooks exec'd the server, which sees the kernel
        listing = json.loads(result.stdout[result.stdout.index("\n{") :])
        assert listing["kernelspecs"]["osl-py"]["resource_dir"] == "/home/jovyan/.local/share/jupyter/kernels/osl-py"

    # The notebook container (same home volume, its own env) sees the kernel and can run it.
    notebook = container(pod)
    check = sandbox_for(pod, notebook, home, python_image, setup_scripts).run(["python", "-c", KERNEL_CHECK])
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.split() == ["/home/jovyan/.local/envs/py", "1000"]

    again = sandbox.run(argv)  # the next server start: nothing to copy
    assert again.returncode == 0, again.stdout + again.stderr
    assert "py is up to date" in again.stdout, again.stdout


def test_init_container_failure_reaches_the_termination_message(python_image, setup_scripts, tmp_path):
    """A failing start exits non-zero; with FallbackToLogsOnError the kubelet takes the end of the
    container's output (last 80 lines / 2048 bytes) as its termination message, shown in the pod status."""
    failing = setup_scripts / "20-fail.sh"
    failing.write_text("#!/bin/sh\necho 'licence server unreachable' >&2\nexit 7\n")
    failing.chmod(0o755)
    pod = pod_for("init_container", python_image, script_on_failure="fail")
    c, argv = pod_command(pod, "init_container")
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    home = tmp_path / "home-volume"
    home.mkdir()
    result = sandbox_for(pod, c, home, python_image, setup_scripts).run(argv)
    assert result.returncode == 1
    logs = result.stdout + result.stderr
    termination_message = "\n".join(logs.splitlines()[-80:])[-2048:]
    assert "Start failed: Setup script" in termination_message and "20-fail.sh" in termination_message
