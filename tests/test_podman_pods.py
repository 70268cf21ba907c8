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
from pathlib import Path

import localhub
import podmanrun
import pytest
from conftest import wait_for_copy
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
    """examples/image/Dockerfile, built as its header says, FROM the stand-in Jupyter base (podman's layer cache
    reuses the steps whose inputs did not change since the last build on this machine)."""
    podmanrun.require()
    podmanrun.jupyter_standin()
    tag = "localhost/osl-hooks-test/notebook:latest-build"
    podmanrun.build(RECIPE, tag)
    return tag


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


def kube_pod(image: str, hub: tuple[str, int], username: str, delivery: str, env: str = ENV, **osl) -> dict:
    """The pod a real KubeSpawner with osl-hooks asks Kubernetes for, for a spawn of `username`."""
    source = f"/opt/osl/synced-environments/{env}"
    c = kube_config(
        delivery=delivery,
        environments=[{"name": env, "mode": "synced", "source": source, "display_name": "Python (synced)"}],
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


def play(pod: dict, tmp_path) -> tuple[podmanrun.PlayedPod, int]:
    port = localhub.free_port()
    played = podmanrun.PlayedPod(podmanrun.for_podman(pod, port), tmp_path)
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
    # `wrap` would make this first copy in the background by default: here both deliveries are asked to have the
    # env ready before the server starts (the background copy is tested in tests/test_background*.py).
    played, port = play(kube_pod(notebook_image, hub, user, delivery, first_copy="before_ready"), tmp_path)
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


def test_wrap_serves_on_the_image_env_and_makes_the_users_copy_in_the_background(notebook_image, hub, user, tmp_path):
    """The `wrap` delivery's default: the server starts without waiting for the first copy, the copy process
    outlives the start inside the running container (as uid 1000, at low priority), and once it is complete a
    new kernel runs from the user's copy, without a restart."""
    played, port = play(kube_pod(notebook_image, hub, user, "wrap"), tmp_path)
    result = played.play()
    assert result.returncode == 0, result.stdout + result.stderr
    assert_serves(played, port, user)
    output = played.logs("notebook")
    assert f"Your own copy of {ENV} will be made in the background" in output, output

    started = played.state("notebook")["StartedAt"]
    home = podmanrun.volume_path(f"claim-{user}")
    done = wait_for_copy(home, ENV)
    assert done["state"] == "done", done
    env_copy = home / ".local/envs" / ENV
    assert env_copy.stat().st_uid == 1000 and (env_copy / "conda-meta").stat().st_uid == 1000
    assert f"Your own copy of {ENV} is complete" in (home / ".local/state/osl-hooks/start.log").read_text()
    assert_serves(played, port, user)
    assert played.state("notebook")["StartedAt"] == started  # the same server: not restarted for the copy
    probe = played.exec("notebook", ["python", "-c", kernel_probe(f"osl-{ENV}", "sys.prefix, os.getuid()")])
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert probe.stdout.split()[-2:] == [HOME_COPY, "1000"]


def test_a_new_image_tag_updates_the_env_in_the_volume_and_keeps_the_users_change(notebook_image, hub, user, tmp_path):
    data = f"{ENV_SOURCE}/share/geodemo-data"
    played, port = play(kube_pod(notebook_image, hub, user, "init_container"), tmp_path)
    assert played.play().returncode == 0
    assert_serves(played, port, user)
    # The user changes the env in their running server, as uid 1000.
    changed = played.exec(
        "notebook",
        [
            "sh",
            "-c",
            f"echo 'my note' >> {HOME_COPY}/share/geodemo/data/CHANGELOG.txt && echo mine > {HOME_COPY}/mine.txt",
        ],
    )
    assert changed.returncode == 0, changed.stderr
    played.down()

    # The admin's next image: the env changed (a file changed, one added) and baked again, under a new tag.
    updated = derived_image(
        notebook_image,
        f"echo 2.0 > {data}/VERSION && echo 'new in 2.0' > {data}/NEWS.txt && osl-hooks bake {ENV_SOURCE}",
    )
    try:
        next_pod, port = play(kube_pod(updated, hub, user, "init_container"), tmp_path)
        result = next_pod.play()
        assert result.returncode == 0, result.stdout + result.stderr
        assert_serves(next_pod, port, user)
        assert f"Updated {ENV} from the image" in next_pod.logs("osl-hooks")
        env_copy = podmanrun.volume_path(f"claim-{user}") / ".local/envs" / ENV
        assert (env_copy / "share/geodemo-data/VERSION").read_text() == "2.0\n"
        assert (env_copy / "share/geodemo-data/NEWS.txt").read_text() == "new in 2.0\n"
        assert (env_copy / "share/geodemo/data/CHANGELOG.txt").read_text().endswith("my note\n")
        assert (env_copy / "mine.txt").read_text() == "mine\n"
        assert (env_copy / "share/geodemo-data/NEWS.txt").stat().st_uid == 1000
    finally:
        podmanrun.podman("pod", "rm", "--force", "--time", "0", f"jupyter-{user}", check=False)
        podmanrun.podman("rmi", "--force", updated, check=False)


def test_a_failing_setup_script_shows_in_the_init_containers_log_and_state(notebook_image, hub, user, tmp_path):
    failing = derived_image(
        notebook_image,
        f"printf '#!/bin/sh\\necho licence server unreachable >&2\\nexit 7\\n' > {SETUP_SCRIPTS}/20-fail.sh"
        f" && chmod 0755 {SETUP_SCRIPTS}/20-fail.sh",
    )
    try:
        played, _ = play(kube_pod(failing, hub, user, "init_container", script_on_failure="fail"), tmp_path)
        result = played.play()
        assert result.returncode != 0 and "exited with code 1" in result.stderr, result.stdout + result.stderr
        log = played.logs("osl-hooks")  # what `kubectl logs -c osl-hooks` shows an admin
        assert "20-fail.sh" in log and "exited with code 7" in log and "licence server unreachable" in log, log
        state = played.state("osl-hooks")
        assert state["ExitCode"] == 1 and not state["Running"]
        assert not played.state("notebook")["Running"]  # the server was not started
    finally:
        played.down()
        podmanrun.podman("rmi", "--force", failing, check=False)


def test_a_home_volume_too_small_for_the_env_falls_back_to_the_image_copy_and_serves(
    notebook_image, hub, user, tmp_path
):
    # The PVC's volume made beforehand, on a 40 MB filesystem: less than the env plus the free-space margin.
    podmanrun.small_volume(f"claim-{user}", tmp_path / "small-volume.img", 40)
    played, port = play(kube_pod(notebook_image, hub, user, "init_container"), tmp_path)
    result = played.play()
    assert result.returncode == 0, result.stdout + result.stderr
    assert_serves(played, port, user)
    log = played.logs("osl-hooks")
    assert f"{ENV} is not copied into your home because" in log and "You get the image's copy" in log, log
    home = podmanrun.volume_path(f"claim-{user}")
    assert not (home / ".local/envs" / ENV).exists()
    kernel = json.loads((home / ".local/share/jupyter/kernels" / f"osl-{ENV}" / "kernel.json").read_text())
    assert kernel["argv"][0] == f"{ENV_SOURCE}/bin/python"
    probe = played.exec("notebook", ["python", "-c", kernel_probe(f"osl-{ENV}", "sys.prefix, os.getuid()")])
    assert probe.stdout.split()[-2:] == [ENV_SOURCE, "1000"], probe.stdout + probe.stderr


def test_an_env_image_is_synced_from_its_volume(notebook_image, hub, user, tmp_path):
    """examples/env-image/Dockerfile built for real (its root is the env); podman 4.3 has no image volumes, so
    the pod's `image` volume is that image mounted by `podman image mount` (podmanrun.for_podman)."""
    env_image = "localhost/osl-hooks-test/envs/gis:latest-build"
    podmanrun.build(podmanrun.REPO / "examples/env-image/Dockerfile", env_image, {"ENV_NAME": "gis"})
    try:
        image_root = Path(podmanrun.podman("image", "mount", env_image).stdout.strip())
        assert (image_root / ".osl-hooks-manifest.jsonl").is_file() and (image_root / "conda-meta").is_dir()
        played, port = play(
            kube_pod(notebook_image, hub, user, "init_container", "gis", env_images={"gis": env_image}), tmp_path
        )
        result = played.play()
        assert result.returncode == 0, result.stdout + result.stderr
        assert_serves(played, port, user)
        assert "Synced gis" in played.logs("osl-hooks")
        mounts = json.loads(podmanrun.podman("inspect", played.container("osl-hooks")).stdout)[0]["Mounts"]
        [mount] = [m for m in mounts if m["Destination"] == "/opt/osl/synced-environments/gis"]
        assert mount["Source"] == str(image_root) and not mount["RW"]
        env_copy = podmanrun.volume_path(f"claim-{user}") / ".local/envs/gis"
        assert env_copy.stat().st_uid == 1000
        library = (env_copy / "lib/libgeodemo.so").read_bytes()
        assert b"/home/jovyan/.local/envs/gis/share/geodemo" in library
    finally:
        podmanrun.podman("pod", "rm", "--force", "--time", "0", f"jupyter-{user}", check=False)
        podmanrun.podman("image", "unmount", env_image, check=False)
