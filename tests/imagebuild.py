"""A Dockerfile's steps without Docker: parse it (dockerfile-parse), copy its COPY sources and run its RUN steps
in a build sandbox (bubblewrap, as root), in order, with the Dockerfile's ENV.

What stands in for what:
- the base image is the host's root, read-only, with the paths the Dockerfile writes (`writable`) bound to a
  temporary directory (`root`), so what the build leaves behind can be inspected afterwards;
- the base image's own tools are provided by the test (`tools`: executables put on the PATH, e.g. a Python
  venv standing in for the image's conda Python, and a `mamba` that builds genuine envs from a local channel);
- the base image's ENV (PATH, ...) is `base_env`.
Not emulated: layers, image sizes, pulling the base image; nothing here talks to a registry.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import podsandbox
from dockerfile_parse import DockerfileParser


@dataclass(frozen=True)
class Step:
    instruction: str  # RUN or COPY
    value: str  # the instruction's text, continuation lines joined
    line: int  # 1-based, where it starts in the Dockerfile
    env: dict[str, str]  # ENV and ARG values in effect
    user: str
    shell: tuple[str, ...]


def build_steps(dockerfile: Path, build_args: dict[str, str] | None = None, stage: int = 0) -> list[Step]:
    """The COPY and RUN steps of one stage (counted from 0) of a Dockerfile, with the ENV, ARG, USER and SHELL
    each runs under. ARG and ENV references in COPY are substituted, as Docker does."""
    parser = DockerfileParser(path=str(dockerfile), build_args=build_args or {})
    shell: tuple[str, ...] = ("/bin/sh", "-c")
    user = "0"
    steps = []
    current = -1
    for item, context in zip(parser.structure, parser.context_structure, strict=True):
        instruction = item["instruction"]
        if instruction == "FROM":
            current += 1
        if current != stage:
            continue
        if instruction == "COPY":
            env = {**context.args, **context.envs}
            value = string.Template(item["value"]).safe_substitute(env)
            steps.append(Step(instruction, value, item["startline"] + 1, env, user, shell))
        elif instruction == "SHELL":
            shell = tuple(json.loads(item["value"]))
        elif instruction == "USER":
            user = item["value"]
        elif instruction == "RUN":
            env = {**context.args, **context.envs}
            steps.append(Step(instruction, item["value"], item["startline"] + 1, env, user, shell))
    return steps


def copy_arguments(step: Step) -> tuple[list[str], str]:
    """(sources, destination) of a COPY step (no flags such as --chown are used in the recipe)."""
    words = step.value.split()
    if any(w.startswith("--") for w in words):
        raise ValueError(f"line {step.line}: COPY flags are not emulated: {step.value}")
    return words[:-1], words[-1]


@dataclass
class BuildSandbox:
    root: Path  # host directory holding what the build writes at the `writable` paths
    context: Path  # the build context (docker build's last argument)
    writable: tuple[str, ...] = ("/opt", "/tmp", "/etc/osl-hooks", "/etc/jupyter", "/usr/local/bin")
    base_env: dict[str, str] = field(default_factory=dict)
    # Host paths the build's stand-ins read (the repository: osl-hooks itself and tests/mamba_standin.py). They
    # stay visible read-only at their own path even where a writable path covers them (a clone under /tmp).
    visible: tuple[Path, ...] = ()

    def host_path(self, image_path: str) -> Path:
        if not any(_is_within(image_path, w) for w in self.writable):
            raise ValueError(f"{image_path} is not a path this sandbox lets the build write")
        return self.root / image_path.lstrip("/")

    def copy(self, step: Step) -> None:
        """COPY as Docker does it: a directory source copies its contents; several sources need a directory."""
        sources, destination = copy_arguments(step)
        into_directory = destination.endswith("/") or len(sources) > 1
        target = self.host_path(destination)
        for source in sources:
            path = self.context / source
            if path.is_dir():
                shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
            elif into_directory:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)

    def command(self, argv: list[str], env: dict[str, str], user: str = "0") -> list[str]:
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        made_writable_parents: set[str] = set()
        for path in self.writable:
            host = self.host_path(path)
            host.mkdir(parents=True, exist_ok=True)
            if not os.path.isdir(path):
                parent = os.path.dirname(path)
                # one tmpfs per parent: a second would hide the mounts made under the first (/etc/osl-hooks, /etc/jupyter)
                args += ["--dir", path] if parent in made_writable_parents else _with_mount_point(path)
                made_writable_parents.add(parent)
            args += ["--bind", str(host), path]
        for path in self.visible:
            if any(_is_within(str(path), covered) for covered in self.writable):
                args += ["--ro-bind", str(path), str(path)]
        args += ["--unshare-pid", "--unshare-ipc", "--die-with-parent", "--clearenv", "--chdir", "/"]
        for key, value in {**self.base_env, **env}.items():
            args += ["--setenv", key, value]
        if user not in ("0", "root"):
            args += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]
        return args + argv

    def run(self, step: Step, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a RUN step (shell form) as Docker would: `SHELL + [text]`, with the ENV in effect."""
        return self.execute([*step.shell, step.value], step.env, step.user, timeout)

    def execute(
        self, argv: list[str], env: dict[str, str] | None = None, user: str = "0", timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(argv, env or {}, user),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )


# The ENV of a Jupyter Docker Stacks base image, as far as the recipes rely on it.
JUPYTER_BASE_ENV = {
    "PATH": "/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "CONDA_DIR": "/opt/conda",
    "NB_USER": "jovyan",
    "NB_UID": "1000",
    "NB_GID": "100",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    # No package index here: pip finds osl-hooks' dependencies already installed (the venv sees this
    # machine's site-packages) and builds it with the setuptools present.
    "PIP_NO_INDEX": "1",
    "PIP_NO_BUILD_ISOLATION": "0",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "OSL_HOOKS_ENVBUILD_CACHE": "/tmp/osl-hooks-envbuild",
}


def stand_in_jupyter_base(sandbox: BuildSandbox, repo: Path) -> None:
    """/opt/conda of a Jupyter base image: a venv of this machine's Python and packages, with the `mamba`
    stand-in (tests/mamba_standin.py) that builds genuine envs from osl-hooks' local demo channel. The repository
    stays visible in the sandbox wherever it is cloned."""
    sandbox.visible = (*sandbox.visible, repo.resolve())
    made = sandbox.execute([sys.executable, "-m", "venv", "--system-site-packages", "/opt/conda"])
    if made.returncode != 0:
        raise RuntimeError(f"could not make the stand-in /opt/conda: {made.stderr}")
    mamba = sandbox.host_path("/opt/conda/bin/mamba")
    mamba.write_text(
        "#!/opt/conda/bin/python\nimport sys\n"
        f"sys.path[:0] = [{str(repo)!r}, {str(repo / 'tests')!r}]\n"
        "from mamba_standin import run\nrun()\n"
    )
    mamba.chmod(0o755)


def run_stage(sandbox: BuildSandbox, steps: list[Step]) -> list[str]:
    """Every step in order (COPY copies, RUN runs); the stdout of each RUN step. Fails on the first error."""
    outputs = []
    for step in steps:
        if step.instruction == "COPY":
            sandbox.copy(step)
            continue
        result = sandbox.run(step)
        if result.returncode != 0:
            raise AssertionError(f"Dockerfile line {step.line}: {step.value}\n{result.stdout}{result.stderr}")
        outputs.append(result.stdout)
    return outputs


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _with_mount_point(path: str) -> list[str]:
    """A mount point for `path` where the read-only host has none: its parent becomes a tmpfs holding the
    host's entries (bound read-only, links as links) plus the new, empty directory."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ValueError(f"{parent} does not exist on this machine: cannot make {path} writable")
    args = ["--tmpfs", parent]
    for name in sorted(os.listdir(parent)):
        entry = os.path.join(parent, name)
        if os.path.islink(entry):
            args += ["--symlink", os.readlink(entry), entry]
        else:
            args += ["--ro-bind", entry, entry]
    return args + ["--dir", path]


def available() -> bool:
    return podsandbox.available(("bwrap",))
