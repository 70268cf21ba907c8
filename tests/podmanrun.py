"""Real containers with podman (Debian's package): the image recipes built by `podman build`, KubeSpawner's pods
run by `podman kube play`, with real volumes, the pod's uid and its security context enforced by the runtime.

No image registry is reachable here, so the images start from a minimal Debian root filesystem made from
Debian's package registry (mmdebstrap, the mirror apt already uses) and imported with `podman import`; the
Jupyter base image the recipes start FROM is a stand-in built on it (tests/standins/jupyter-base-standin.Containerfile)
and tagged with the name the recipes use. `python tests/podmanrun.py base` makes the Debian base (CI does; the
root filesystem is cached between runs on the same machine, and remade whenever it is missing).

What podman 4.3 cannot take from a KubeSpawner pod is changed in one place, `for_podman`, which says why.
Settings the runtime needs on this kind of machine (runc, ulimits a container may set without
CAP_SYS_RESOURCE, no systemd) are in a containers.conf of our own (`CONTAINERS_CONF`), not in /etc.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import podsandbox
import pytest
import yaml
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parent.parent
STANDIN = REPO / "tests" / "standins" / "jupyter-base-standin.Containerfile"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv", "rsync")
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
INIT_CONTAINER_TYPE = "io.podman.annotations.init.container.type"
CI_REQUIRES = "OSL_HOOKS_REQUIRE_PODMAN"  # set by CI: a missing podman or base image fails instead of skipping


@functools.cache
def containers_conf() -> Path:
    """Our containers.conf: runc (crun cannot run with this host's hybrid cgroups), ulimits within the hard limits
    the runtime may set (the defaults fail with EPERM), cgroupfs and file events (no systemd)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    if nproc == resource.RLIM_INFINITY:
        nproc = 32768
    path = Path(tempfile.mkdtemp(prefix="osl-hooks-podman-")) / "containers.conf"
    path.write_text(
        f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
    )
    return path


def podman(*args: str, check: bool = True, timeout: float = 900, stdin: str | None = None):
    """Run `podman ARGS` with our containers.conf; output captured as text."""
    result = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env={**os.environ, "CONTAINERS_CONF": str(containers_conf())},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args[:3])}... exited {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result


def available() -> bool:
    return podsandbox.available(("podman",))


def require() -> None:
    """Skip when podman cannot run here; in CI (`OSL_HOOKS_REQUIRE_PODMAN=1`) fail instead, so CI never skips them."""
    problem = None
    if not available():
        problem = "needs podman (Debian's package) and root"
    elif not image_exists(debian_base_tag()):
        problem = f"needs the Debian base image {debian_base_tag()}: run `python3 tests/podmanrun.py base`"
    if problem and os.environ.get(CI_REQUIRES) == "1":
        pytest.fail(problem)
    if problem:
        pytest.skip(problem)


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag, check=False).returncode == 0


# -- images -------------------------------------------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror apt already uses for the suite (`apt-get indextargets`)."""
    listing = subprocess.run(
        ["apt-get", "indextargets", "--format", "$(REPO_URI) $(RELEASE)"], capture_output=True, text=True, check=True
    ).stdout
    for line in listing.splitlines():
        uri, _, release = line.partition(" ")
        if release == DEBIAN_SUITE:
            return uri
    raise RuntimeError(f"apt has no source for Debian {DEBIAN_SUITE}")


def debian_base_tag() -> str:
    """Named by what goes into it, so a change of the package list makes a new image (and cache entry)."""
    key = hashlib.sha256(" ".join((DEBIAN_SUITE, *DEBIAN_PACKAGES)).encode()).hexdigest()[:12]
    return f"localhost/osl-hooks-ci/debian-{DEBIAN_SUITE}:{key}"


def cache_dir() -> Path:
    return Path(os.environ.get("OSL_HOOKS_CI_CACHE") or "/var/cache/osl-hooks-ci")


def make_debian_base() -> str:
    """The Debian base image: imported from the cached root filesystem, made by mmdebstrap when it is not cached.
    `podman import` gives an image no PATH, which `kube play` needs: it is set here."""
    tag = debian_base_tag()
    if image_exists(tag):
        return tag
    tarball = cache_dir() / f"{tag.rsplit('/', 1)[1].replace(':', '-')}.tar"
    if not tarball.is_file():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        # mmdebstrap chooses its output's format by the name's extension (a directory for an unknown one): the
        # partial file ends in .tar too. A leftover of an interrupted run, or a directory an older version of
        # this function left under the cache's name, is removed first.
        partial = tarball.with_suffix(".partial.tar")
        for leftover in (partial, tarball):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover)
            else:
                leftover.unlink(missing_ok=True)
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                '--aptopt=Acquire::Check-Valid-Until "false"',
                DEBIAN_SUITE,
                str(partial),
                debian_mirror(),
            ],
            check=True,
        )
        partial.rename(tarball)  # a cache entry is whole or absent
    podman(
        "import", "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", str(tarball), tag
    )
    return tag


def build(containerfile: Path | str, tag: str, build_args: dict[str, str] | None = None) -> None:
    """`podman build` from the repository root, as the recipes say to build them (`docker build`), never pulling.
    The host's CA bundle is mounted for pip (see the stand-in's Containerfile); `containerfile` may be its text."""
    # Docker's image format: in podman's default (OCI) format SHELL is ignored, and the recipes' RUN steps would run
    # under /bin/sh instead of their `bash -o pipefail`.
    args = ["build", "--pull=never", "--quiet", "--format", "docker", "-t", tag]
    args += ["-v", f"{HOST_CA_BUNDLE}:/run/osl-hooks-standin/ca.crt:ro"]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    if isinstance(containerfile, Path):
        podman(*args, "-f", str(containerfile), str(REPO))
    else:
        podman(*args, "-f", "-", str(REPO), stdin=containerfile)


def from_name(dockerfile: Path) -> str:
    """The image a recipe starts FROM, with its ARG default (what `docker build` without --build-arg uses)."""
    return DockerfileParser(path=str(dockerfile)).baseimage


@functools.cache
def jupyter_standin() -> str:
    """The stand-in Jupyter base, tagged with the name examples/image/Dockerfile starts FROM."""
    name = from_name(REPO / "examples" / "image" / "Dockerfile")
    build(STANDIN, name, {"DEBIAN_BASE": debian_base_tag()})
    return name


# -- pods ---------------------------------------------------------------------------------------------------


def for_podman(pod: dict, host_port: int) -> dict:
    """The KubeSpawner pod with the only changes podman 4.3 needs, each for a reason of podman's:

    - `restartPolicy: Never`: with KubeSpawner's `OnFailure` podman restarts a failing init container in a tight
      loop, without the kubelet's back-off;
    - the init containers are kept after they succeed (annotation `io.podman.annotations.init.container.type:
      always`), so their logs and exit code stay readable as they do with kubectl;
    - the notebook port is published on 127.0.0.1 (`hostPort`): no Service or proxy reaches it otherwise;
    - `image` volumes (Kubernetes 1.33+) become read-only `hostPath` volumes of the same image, mounted with
      `podman image mount`: podman 4.3 has no image volumes (an emulation: the kubelet would mount the image).
    Not changed, and not run by podman: a `lifecycle.postStart` hook (podman ignores it silently).
    """
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    spec["restartPolicy"] = "Never"
    pod["metadata"].setdefault("annotations", {})[INIT_CONTAINER_TYPE] = "always"
    for container in spec["containers"]:
        for port in container.get("ports", []):
            port.update(hostPort=host_port, hostIP="127.0.0.1")
    for volume in spec.get("volumes", []):
        if "image" in volume:
            mounted = podman("image", "mount", volume.pop("image")["reference"]).stdout.strip()
            volume["hostPath"] = {"path": mounted, "type": "Directory"}
    return pod


KUBE_NETWORK = "podman-default-kube-network"  # the network `podman kube play` puts pods on


def kube_network_gateway() -> str:
    """The host's address on the pods' network: where a pod reaches a hub running on the host."""
    if podman("network", "exists", KUBE_NETWORK, check=False).returncode != 0:
        podman("network", "create", KUBE_NETWORK, check=False)  # what the first `kube play` would do
    [network] = json.loads(podman("network", "inspect", KUBE_NETWORK).stdout)
    return network["subnets"][0]["gateway"]


class PlayedPod:
    """A pod run by `podman kube play`; `down()` removes its containers and keeps its volumes (the PVCs)."""

    def __init__(self, pod: dict, directory: Path):
        self.pod = pod
        self.name = pod["metadata"]["name"]
        self.file = directory / f"{self.name}.yaml"
        self.file.write_text(yaml.safe_dump(pod))

    def play(self) -> subprocess.CompletedProcess[str]:
        return podman("kube", "play", str(self.file), check=False)

    def down(self) -> None:
        """The pod's containers stopped and removed (as a server stop deletes the pod); its volumes stay."""
        podman("pod", "rm", "--force", "--time", "0", self.name, check=False)

    def container(self, name: str) -> str:
        return f"{self.name}-{name}"

    def logs(self, name: str) -> str:
        result = podman("logs", self.container(name))
        return result.stdout + result.stderr

    def state(self, name: str) -> dict:
        return json.loads(podman("inspect", self.container(name)).stdout)[0]["State"]

    def exec(self, name: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.container(name), *argv, check=False)

    def wait_for_http(self, url: str, container: str = "notebook", deadline: float = 180) -> bytes:
        """The body `url` answers with once the server is up; fails (with the container's log) if the container
        stops first or nothing answers within the deadline."""
        stop = time.monotonic() + deadline
        while time.monotonic() < stop:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.read()
            except urllib.error.HTTPError as error:
                raise AssertionError(f"{url} answered {error.code}; {container} log:\n{self.logs(container)}") from None
            except OSError:
                if not self.state(container)["Running"]:
                    break
                time.sleep(0.5)
        raise AssertionError(f"{url} did not answer; {container} log:\n{self.logs(container)}")


def volume_path(name: str) -> Path:
    """Where a named volume (a PVC under podman) lives on the host."""
    return Path(podman("volume", "mount", name).stdout.strip())


def small_volume(name: str, image_file: Path, megabytes: int) -> None:
    """A named volume on a filesystem of its own of `megabytes` (ext4 in a loop-mounted file), as a small PV.
    Not tmpfs: podman unmounts a volume when its last container stops, so a tmpfs would lose what the init
    container wrote before the notebook container starts. (podman 4.3 also takes tmpfs' `size=` for an XFS
    quota option and refuses it.)"""
    with open(image_file, "wb") as f:
        f.truncate(megabytes * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-E", "root_owner=1000:100", str(image_file)], check=True)
    podman("volume", "create", "--opt", "type=ext4", "--opt", f"device={image_file}", "--opt", "o=loop", name)


def remove_volume(name: str) -> None:
    podman("volume", "rm", "--force", name, check=False)


if __name__ == "__main__":
    if sys.argv[1:] != ["base"]:
        sys.exit("usage: podmanrun.py base   (make the Debian base image, from the cache when it is there)")
    print(make_debian_base())
