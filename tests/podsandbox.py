"""A pod-like sandbox for running pod-side commands for real, with bubblewrap.

What a single-user pod looks like from inside, and what this reproduces:
- the image is read-only (here: the host's root, read-only, with /home, /root and /opt emptied);
- image directories the test provides (envs, setup scripts) are mounted read-only at their pod paths;
- the user's home volume is a writable bind mount at its pod path (default /home/jovyan);
- the process runs as the pod's uid/gid (default 1000:100, as in z2jh), really: bwrap sets up the mounts as
  root, then `setpriv` drops to the uid before the command runs, so files are created with that owner and
  permission checks are the kernel's, not an emulation;
- only the environment variables given (plus a minimal PATH) are set.
The Python that runs osl-hooks and this checkout of osl-hooks are mounted read-only at their own paths,
standing in for the packages a real image has installed.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import osl_hooks

POD_HOME = "/home/jovyan"
SOURCE_MOUNT = "/opt/osl-hooks-src"
LAUNCHER_MOUNT = "/opt/osl-hooks-bin"
HIDDEN = ("/home", "/root", "/opt")


def available(programs: tuple[str, ...] = ("bwrap", "setpriv")) -> bool:
    """The tests run as root and `programs` are installed (by default what the pod sandbox needs; the image build
    sandbox and podman ask for theirs)."""
    return os.geteuid() == 0 and all(shutil.which(program) is not None for program in programs)


needed = pytest.mark.skipif(not available(), reason="needs bubblewrap, setpriv and root")
"""Skips a test (or, as `pytestmark`, a module) where the pod sandbox cannot run."""


@dataclass
class PodSandbox:
    home: Path  # host directory that plays the home volume
    mounts: dict[str, Path] = field(default_factory=dict)  # pod path -> host path, read-only
    writable: set[str] = field(default_factory=set)  # pod paths of `mounts` that are writable (an image's own)
    env: dict[str, str] = field(default_factory=dict)
    uid: int = 1000
    gid: int = 100
    home_mount: str = POD_HOME

    def command(self, argv: list[str]) -> list[str]:
        python_bin = str(Path(sys.executable).parent)
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for hidden in HIDDEN:
            args += ["--tmpfs", hidden]
        for path in sorted({os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}):
            args += _parents(path) + ["--ro-bind", path, path]
        args += ["--ro-bind", str(Path(osl_hooks.__file__).resolve().parent.parent), SOURCE_MOUNT]
        args += ["--ro-bind", str(_launcher_dir()), LAUNCHER_MOUNT]
        for pod_path, host_path in sorted(self.mounts.items()):
            bind = "--bind" if pod_path in self.writable else "--ro-bind"
            args += _parents(pod_path) + [bind, str(host_path), pod_path]
        args += _parents(self.home_mount) + ["--bind", str(self.home), self.home_mount]
        args += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--clearenv", "--chdir", self.home_mount]
        environment = {
            "HOME": self.home_mount,
            "PATH": f"{LAUNCHER_MOUNT}:{python_bin}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": SOURCE_MOUNT,
            "LANG": "C.UTF-8",
            **self.env,
        }
        for key, value in environment.items():
            args += ["--setenv", key, value]
        return args + ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *argv]

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run `argv` in the pod and return its result (stdout and stderr captured as text)."""
        self.give_home_to_user()
        return subprocess.run(
            self.command(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def give_home_to_user(self) -> None:
        """A fresh home volume belongs to the pod's user, as z2jh's fsGroup / init makes it."""
        if os.stat(self.home).st_uid != self.uid:
            for dirpath, dirnames, filenames in os.walk(self.home):
                for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                    os.lchown(name, self.uid, self.gid)


def _parents(path: str) -> list[str]:
    """World-readable directories on the way to a mount inside an emptied directory (bwrap makes them 0700)."""
    args: list[str] = []
    parent = Path(path).parent
    ancestors = [p for p in [parent, *parent.parents] if any(str(p).startswith(h + "/") for h in HIDDEN)]
    for directory in reversed(ancestors):
        args += ["--perms", "0755", "--dir", str(directory)]
    return args


@functools.cache
def _launcher_dir() -> Path:
    """The image's `osl-hooks` console script, standing in for `pip install osl-hooks` in the image."""
    directory = Path(tempfile.mkdtemp(prefix="osl-hooks-launcher-"))
    script = directory / "osl-hooks"
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom osl_hooks.cli import main\nsys.exit(main())\n")
    directory.chmod(0o755)
    script.chmod(0o755)
    return directory


def kernel_probe(kernel_name: str, expression: str) -> str:
    """A Python script that starts `kernel_name` from its kernelspec, as Jupyter does, and prints what the
    kernel gives for `print(expression)`."""
    return f"""
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name={kernel_name!r}, startup_timeout=60)
out = []
kc.execute_interactive("import os, sys; print({expression})",
                       output_hook=lambda m: out.append(m["content"].get("text", "")), timeout=60)
kc.stop_channels(); km.shutdown_kernel(now=True)
print("".join(out).strip())
"""
