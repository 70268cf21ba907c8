"""First copies made after the server started: the env runs read-only from the image meanwhile.

Why: a first copy of a large env takes minutes, and the user would watch the spawn page all along. The
image's env is on the node already and works as it is (what `baked` mode uses). So a first start of an
env copied as real files (`synced`, or `linked` over an image the user can write) with `first_copy: background`, with a delivery that runs the server command (`wrap`), registers
the env's kernel on the image's copy, lets the server start, and makes the user's own copy in a detached,
low-priority process. When that copy is complete it is renamed into place (one rename, as a first copy
before ready) and the kernelspec is switched to it (one rename of kernel.json): kernels started from then
on run from the user's copy, without a server restart; kernels already running keep running.

This module is the start's side (`osl_hooks.engine.copykind` decides when a first copy is made, the runner
reports it): `launch` starts the copy process; the guards, and the places and records both sides share. The copy process is `osl_hooks.engine.background_copy`
(`osl-hooks background-copy NAME`, with the plan in $OSL_HOOKS_PLAN).

What is kept per env (`CopyPlaces`):
- `<state>/background/NAME.json`: the copy's latest `background-copy` event, with the image's id and the
  copy's pid and percentage; read by the next start, `osl-hooks status` and the guards;
- `<state>/background/NAME.lock`: held (flock) by the process making the copy, so there is one copy per env;
  a start never waits for it (the copy process takes the start's lock only for its commit, a moment);
- `<state>/background/NAME.log`: the copy process's own stdout and stderr; its sentences go to start.log;
- `<state>/background/env-NAME/bin/`: `pip`, `conda`... that refuse with a sentence, first on the PATH of
  kernels that run from the image meanwhile (which also run with user site-packages off: an install can never
  land in ~/.local/lib, where it would shadow packages of every env);
- the target itself (`~/.local/envs/NAME`): a symlink to `env-NAME` (the placeholder), so the command the docs
  give, `~/.local/envs/NAME/bin/pip`, answers with the same sentence rather than "No such file or directory".
  A link, made and removed in one step, never a directory: nothing half-made can stand where the copy goes,
  and the copy's commit removes it just before its one rename into place. Starts and the copy process treat
  it as no copy (`in_place`);
- `<state>/background/pip-python`: what `%pip`, `python -m pip` and every other pip run meets (pip's own
  `--python` option, set as `PIP_PYTHON` in such kernels and, with the `wrap` delivery, in the server's
  environment, which terminals inherit): pip hands its command to this "interpreter", which refuses installs
  into an env being copied with the same sentence, and runs anything else with the interpreter pip was
  started with. Kept once written: servers started earlier may still name it;
- `.osl-background-NAME` beside the target: the copy being made. It is kept when the copy is stopped, so
  the next copy resumes (rsync skips what is there), and made afresh when the image changed meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .._records import record
from ..plan import PLAN_ENV_VAR, PLAN_FILE_ENV_VAR, Environment, Plan
from ..status import read_state_text, read_status
from .faultpoints import point
from .homepaths import Home
from .kernels import KernelGuard
from .lock import is_held
from .synced import CopyLater
from .trees import remove_tree

BACKGROUND_DIR = "background"
STAGING_PREFIX = ".osl-background-"
GUARDED_TOOLS = ("pip", "pip3", "conda", "mamba", "micromamba")
PLACEHOLDER_NOTE = "OSL-HOOKS-COPY-IN-PROGRESS.txt"
PIP_GUARD = "pip-python"
NICENESS = 10


@record(frozen=True)
class CopyPlaces:
    """Where one env's background copy keeps its state (see the module's docstring)."""

    directory: Path
    name: str
    target: Path

    @classmethod
    def of(cls, state_dir: Path, env: Environment) -> CopyPlaces:
        assert env.target is not None
        return cls(state_dir / BACKGROUND_DIR, env.name, Path(env.target))

    @property
    def record_file(self) -> Path:
        return self.directory / f"{self.name}.json"

    @property
    def lock_file(self) -> Path:
        return self.directory / f"{self.name}.lock"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    @property
    def placeholder(self) -> Path:
        return self.directory / f"env-{self.name}"

    @property
    def guard_bin(self) -> Path:
        return self.placeholder / "bin"

    @property
    def staging(self) -> Path:
        return self.target.parent / f"{STAGING_PREFIX}{self.target.name}"

    def running(self) -> bool:
        return is_held(self.lock_file)

    def record(self) -> dict[str, Any] | None:
        try:
            data = json.loads(read_state_text(self.record_file))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def is_placeholder(path: str | os.PathLike[str]) -> bool:
    """True for the link a start puts where an env's copy will be while the copy is made (never a copy)."""
    return os.path.islink(path) and os.path.isfile(os.path.join(path, PLACEHOLDER_NOTE))


def in_place(target: str | os.PathLike[str]) -> bool:
    """True if something other than osl-hooks' placeholder is at `target` (a copy, or what the user put)."""
    return os.path.lexists(target) and not is_placeholder(target)


def remove_placeholder(target: Path) -> None:
    if is_placeholder(target):
        os.unlink(target)
        point("background:placeholder-removed")


def server_environment(state_dir: Path) -> dict[str, str]:
    """Variables for the server (and so its terminals and kernels) of a start that left copies to the
    background: pip run with any interpreter meets the guard (see the module's docstring)."""
    guard = state_dir / BACKGROUND_DIR / PIP_GUARD
    status = read_status(state_dir) or {}
    copying = any(e.get("state") == "background" for e in status.get("environments", {}).values())
    return {"PIP_PYTHON": str(guard)} if copying and os.access(guard, os.X_OK) else {}


def records(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Every env's last background-copy record, by env name (for `osl-hooks status`)."""
    directory = state_dir / BACKGROUND_DIR
    found = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = CopyPlaces(directory, path.stem, Path("/")).record()
        if record is not None:
            if record.get("state") in ("queued", "waiting", "running") and not is_held(directory / f"{path.stem}.lock"):
                record = dict(record, state="stopped")  # no process holds the copy: it resumes at the next start
            found[path.stem] = record
    return found


# -- the start's side ------------------------------------------------------------------------------------


def drop_staging(places: CopyPlaces) -> None:
    """Remove a background copy's staging directory (a copy that will not be finished, or not be needed)."""
    if os.path.isdir(places.staging) and not os.path.islink(places.staging):
        remove_tree(places.staging)
        point("background:staging-dropped")


def pending_record(places: CopyPlaces, later: CopyLater) -> dict[str, Any] | None:
    """The record a start reports for an env copied later: a running copy's, or a stopped copy's of the same
    image (which resumes); any other copy is made afresh."""
    record = places.record()
    if later.running or record is None:
        return record
    if record.get("source_id") != later.image_id or record.get("state") not in ("running", "waiting"):
        return None
    return record


# The guards' sentence, run by the interpreter that runs osl-hooks (`-I`: nothing of the user's is imported), from
# how far the copy's record says it is (read without following a FIFO or a device where the record should be).
REFUSAL = r"""
import json, os, stat, sys
name, tool, path = sys.argv[1:4]
record = {}
try:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            record = json.loads(f.read())
except (OSError, ValueError):
    pass
state = record.get("state") if isinstance(record, dict) else None
if state == "done":
    said = (f"your own copy of {name} is complete: restart this kernel (or open a new terminal) to install "
            f"packages into it with {tool}")
elif state == "failed":
    said = (f"{tool} cannot change {name}: your own copy of it could not be made (osl-hooks status says why), "
            f"so {name} runs read-only from the image until the next start makes it.")
else:
    percent = record.get("percent") if isinstance(record, dict) else None
    percent = percent if isinstance(percent, int) else 0
    said = (f"{tool} cannot change {name} yet: your own copy of it is being made in the background ({percent}% "
            f"done), and until it is complete {name} runs read-only from the image. Install packages once the copy "
            "is complete (osl-hooks status shows how far it is), then restart the kernel.")
print("osl-hooks: " + said, file=sys.stderr)
sys.exit(1)
"""


def _refusal() -> str:
    """The shell line that says the guard's sentence for `$name`, `$tool` and `$record`, and exits 1."""
    import shlex  # here and below: for the guards of copies made later, not at every start

    return f'exec {shlex.quote(sys.executable)} -I -c {shlex.quote(REFUSAL)} "$name" "$tool" "$record"\n'


def guard_script(env_name: str, tool: str, record_file: Path) -> str:
    """A `pip`/`conda` that refuses, with how far the copy is (read from its record by `REFUSAL`)."""
    import shlex

    return f"""#!/bin/sh
# osl-hooks: {env_name} runs read-only from the image while your own copy of it is made.
name={shlex.quote(env_name)} tool={shlex.quote(tool)} record={shlex.quote(str(record_file))}
{_refusal()}"""


def pip_guard_script(copies: dict[str, tuple[str, Path]]) -> str:
    """The interpreter pip's `--python` runs (`PIP_PYTHON`): for an install or uninstall by pip of an env in
    `copies` (name -> (its image prefix, its record)), the guard's sentence; for anything else, the command pip
    was given, run with the interpreter pip was started with (its parent's argv[0], found as it was)."""
    import shlex

    cases = "".join(
        f"    {shlex.quote(os.path.realpath(prefix))}) name={shlex.quote(name)} record={shlex.quote(str(record))} ;;\n"
        for name, (prefix, record) in sorted(copies.items())
    )
    return f"""#!/bin/sh
# osl-hooks: pip hands its command to this interpreter (PIP_PYTHON) while envs are copied in the background.
caller=$(tr '\\0' '\\n' < /proc/$PPID/cmdline 2>/dev/null | head -n 1)
caller=$(command -v "${{caller:-python3}}") || caller=$(readlink /proc/$PPID/exe)
prefix=$(cd "$(dirname "$caller")/.." 2>/dev/null && pwd -P)
name=
case "$prefix" in
{cases}esac
if [ -z "$name" ]; then exec "$caller" "$@"; fi
case " $* " in
    *" install "*|*" uninstall "*) tool=pip ;;
    *) exec "$caller" "$@" ;;
esac
{_refusal()}"""


def write_guards(home: Home, places: CopyPlaces) -> KernelGuard:
    """The guards of kernels that run from the image while the copy is made, and the placeholder link to
    them where the copy will be. Such kernels run with user site-packages off, pip's `--python` set to the
    pip guard (`%pip` runs `sys.executable -m pip`, which no PATH guard sees), and `%conda`'s executable
    (IPython takes `CONDA_EXE`/`MAMBA_EXE` first) set to the guard."""
    home.makedirs(places.guard_bin, "state_dir")
    for tool in GUARDED_TOOLS:
        home.write_text(places.guard_bin / tool, guard_script(places.name, tool, places.record_file), "guard", 0o755)
    note = (
        f"osl-hooks: your own copy of {places.name} is being made in the background (osl-hooks status shows how "
        f"far it is); it takes this place once it is complete.\n"
    )
    home.write_text(places.placeholder / PLACEHOLDER_NOTE, note, "guard")
    if not os.path.lexists(places.target):
        os.symlink(os.path.relpath(places.placeholder, places.target.parent), places.target)
        point("background:placeholder-made")
    variables = {"PYTHONNOUSERSITE": "1", "PIP_PYTHON": str(places.directory / PIP_GUARD)}
    variables.update(CONDA_EXE=str(places.guard_bin / "conda"), MAMBA_EXE=str(places.guard_bin / "mamba"))
    return KernelGuard(places.guard_bin, variables)


def write_pip_guard(home: Home, state_dir: Path, copies: dict[str, tuple[str, Path]]) -> Path:
    """The interpreter `PIP_PYTHON` names for the envs this start copies later (see `pip_guard_script`)."""
    return home.write_text(state_dir / BACKGROUND_DIR / PIP_GUARD, pip_guard_script(copies), "guard", 0o755)


def describe_pending(name: str, later: CopyLater, record: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The sentence and numbers of the start's `background-copy` event for an env copied later (`record`: see
    `pending_record`)."""
    record = record or {}
    numbers: dict[str, Any] = {"state": "running" if later.running else "queued"}
    for key in ("bytes_done", "bytes_total", "eta_seconds"):
        if record.get(key) is not None:
            numbers[key] = record[key]
    how_far = ""
    if record.get("percent") is not None:
        how_far = f" ({record['percent']}% done"
        how_far += f", about {_duration(record['eta_seconds'])} left)" if record.get("eta_seconds") else ")"
    doing = "is being made" if later.running else "will be made"
    message = (
        f"Your own copy of {name} {doing} in the background{how_far}; until it is complete, {name} runs "
        "read-only from the image (installing packages into it is refused), and kernels started after it "
        "is complete use your copy"
    )
    return message, numbers


def launch(plan: Plan, env: Environment, home: Home, state_dir: Path, server_pid: int | None = None) -> None:
    """Start the copy process, detached: its own session, low CPU and I/O priority, output to its log.

    A double fork: the copy process is nobody's child here (its parent exits at once), so a server that
    replaces this process (`exec`) never has to reap it, and stopping the server does not stop it. The
    intermediate process starts it with `posix_spawn` (a vfork, not a copy of this process), so the start
    waits only a moment for it.
    `server_pid`: the process that becomes the server; the copy waits for the server to be up first.
    """
    places = CopyPlaces.of(state_dir, env)
    home.makedirs(places.directory, "state_dir")
    spawn_detached(plan, home, places.log_file, ["background-copy", env.name], server_pid)


def spawn_detached(plan: Plan, home: Home, log_file: Path, arguments: list[str], server_pid: int | None) -> None:
    """Run `osl-hooks ARGUMENTS` detached, as `launch` says (also the removal of retired copies after ready)."""
    log = home.check(log_file, "background log")
    command = [*_low_priority(), sys.executable, "-m", "osl_hooks.cli", *arguments]
    if server_pid is not None:
        command += ["--after-server", str(server_pid)]
    environ = {k: v for k, v in os.environ.items() if k != PLAN_FILE_ENV_VAR}
    environ[PLAN_ENV_VAR] = plan.to_json(indent=None)
    with open(log, "ab") as output:
        outputs = [(os.POSIX_SPAWN_DUP2, output.fileno(), 1), (os.POSIX_SPAWN_DUP2, output.fileno(), 2)]
        stdin = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the intermediate process
            code = 0
            try:
                os.chdir("/")
                os.posix_spawn(command[0], command, environ, file_actions=[stdin, *outputs], setsid=True)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.waitpid(pid, 0)


def _low_priority() -> list[str]:
    """`nice` and `ionice` (full paths: `posix_spawn` does not search the PATH) when the image has them."""
    prefix: list[str] = []
    nice, ionice = shutil.which("nice"), shutil.which("ionice")
    if nice:
        prefix += [nice, "-n", str(NICENESS)]
    if ionice:
        prefix += [ionice, "-c3"]  # idle class: disk time only when nothing else asks for it
    return prefix


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"
