"""KubeSpawner's pods run by a real container runtime: `podman kube play` (tests/podmanrun.py).

The notebook image is examples/image/Dockerfile built by `podman build` (on the stand-in Jupyter base); a real
KubeSpawner builds each pod with osl-hooks installed, as the hub would; `podmanrun.for_podman` changes only what
podman cannot take. The runtime enforces the pod's uid 1000, dropped capabilities, no new privileges and seccomp;
the home is the pod's `persistentVolumeClaim`, which podman keeps as a named volume between plays, as a PVC
outlives its pods. Deliveries: `init_container` and `wrap`; podman ignores `postStart` hooks, so that delivery
is not run here (tests/test_hub_pod_emulation.py runs its command in the pod sandbox).
"""

from __future__ import annotations

import asyncio
import json
import uuid

import localhub
import podmanrun
import pytest
from podsandbox import kernel_probe
from test_hub_support import hub_user, kube_config, make_spawner, no_kubeconfig, run_spawn_hooks, serialise

import osl_hooks.hub

pytestmark = [pytest.mark.podman, pytest.mark.slow]

RECIPE = podmanrun.REPO / "examples" / "image" / "Dockerfile"
ENV = "base-py"
ENV_SOURCE = f"/opt/osl/synced-environments/{ENV}"
HOME_COPY = f"/home/jovyan/.local/envs/{ENV}"
SETUP_SCRIPTS = "/etc/osl-hooks/setup.d"  # where the recipe puts them


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A real JupyterHub on the host, its API reachable from the pods' network: jupyterhub-singleuser checks
    its hub before it serves (and exits when there is none). (address, port) of its API for the pods."""
    podmanrun.require()
    port = localhub.free_port()
    running = localhub.Hub.with_config(
        tmp_path_factory.mktemp("hub"), f'c.JupyterHub.hub_bind_url = "http://0.0.0.0:{port}"\n'
    )
    yield podmanrun.kube_network_gateway(), port
    running.close()


@pytest.fixture(scope="module")
def notebook_image():
    """examples/image/Dockerfile, built as its header says, FROM the stand-in Jupyter base."""
    podmanrun.require()
    podmanrun.jupyter_standin()
    tag = f"localhost/osl-hooks-test/notebook:{uuid.uuid4().hex[:8]}"
    podmanrun.build(RECIPE, tag)
    yield tag
    podmanrun.podman("rmi", "--force", tag, check=False)


def derived_image(base: str, run: str) -> str:
    """A new tag of the notebook image with one more step run as root: an admin's next image."""
    tag = f"{base.rsplit(':', 1)[0]}:{uuid.uuid4().hex[:8]}"
    podmanrun.build(f"FROM {base}\nUSER 0\nRUN {run}\nUSER 1000\n", tag)
    return tag


@pytest.fixture
def user(monkeypatch):
    """A user of its own per test, so its pod and home volume (claim-NAME) are new; both removed afterwards."""
    no_kubeconfig(monkeypatch)
    name = f"pod{uuid.uuid4().hex[:8]}"
    yield name
    podmanrun.podman("pod", "rm", "--force", "--time", "0", f"jupyter-{name}", check=False)
    podmanrun.remove_volume(f"claim-{name}")


def kube_pod(image: str, hub: tuple[str, int], username: str, delivery: str, **osl) -> dict:
    """The pod a real KubeSpawner with osl-hooks asks Kubernetes for, for a spawn of `username`."""
    c = kube_config(
        delivery=delivery,
        environments=[{"name": ENV, "mode": "synced", "source": ENV_SOURCE, "display_name": "Python (synced)"}],
        setup_scripts=[SETUP_SCRIPTS],
        **osl,
    )
    c.KubeSpawner.image = image
    c.KubeSpawner.profile_list = []

    async def spawn():
        from jupyterhub.objects import Hub, Server

        spawner = make_spawner(c, hub_user(username))
        # What JupyterHub gives a spawner and KubeSpawner's test mode leaves out: the hub's address as the pod
        # sees it (z2jh's is the hub Service), and the server's URL prefix (User.spawn sets spawner.server).
        spawner.hub = Hub(ip=hub[0], port=hub[1], base_url="/hub/")
        spawner.server = Server(base_url=spawner.user.url)
        return await serialise(await run_spawn_hooks(spawner))

    osl_hooks.hub.install(c)
    return asyncio.run(spawn())


def play(pod: dict, tmp_path, **kwargs) -> tuple[podmanrun.PlayedPod, int]:
    port = podmanrun.free_port()
    played = podmanrun.PlayedPod(podmanrun.for_podman(pod, port, **kwargs), tmp_path)
    return played, port


def start_output(played: podmanrun.PlayedPod, delivery: str) -> str:
    """What `osl-hooks start` printed: the init container's log, or the notebook container's (wrap)."""
    return played.logs("osl-hooks" if delivery == "init_container" else "notebook")


def assert_serves(played: podmanrun.PlayedPod, port: int, username: str) -> None:
    """The single-user server answers on its published port (the API root needs no token)."""
    body = played.wait_for_http(f"http://127.0.0.1:{port}/user/{username}/api")
    assert "version" in json.loads(body)


@pytest.mark.parametrize("delivery", ["init_container", "wrap"])
def test_pod_syncs_the_env_registers_the_kernel_and_serves(delivery, notebook_image, hub, user, tmp_path):
    played, port = play(kube_pod(notebook_image, hub, user, delivery), tmp_path)
    result = played.play()
    assert result.returncode == 0, result.stdout + result.stderr
    assert_serves(played, port, user)
    output = start_output(played, delivery)
    assert f"Synced {ENV}" in output and "Registered kernel Python (synced)" in output, output

    home = podmanrun.volume_path(f"claim-{user}")
    env_copy = home / ".local/envs" / ENV
    assert env_copy.stat().st_uid == 1000 and (env_copy / "conda-meta").stat().st_uid == 1000
    kernel = json.loads((home / ".local/share/jupyter/kernels" / f"osl-{ENV}" / "kernel.json").read_text())
    assert kernel["argv"][0] == f"{HOME_COPY}/bin/python"
    assert (home / "notebooks").is_dir()  # the recipe's setup script ran

    # In the notebook container, Jupyter starts the kernel from the user's copy, as uid 1000.
    probe = played.exec("notebook", ["python", "-c", kernel_probe(f"osl-{ENV}", "sys.prefix, os.getuid()")])
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.split()[-2:] == [HOME_COPY, "1000"]

    # The next server start, same volume: nothing new to copy, and it serves again.
    played.down()
    again = played.play()
    assert again.returncode == 0, again.stdout + again.stderr
    assert_serves(played, port, user)
    assert f"{ENV} is up to date" in start_output(played, delivery)
