"""First copies made after the server started: the env runs read-only from the image meanwhile.

Why: a first copy of a large env takes minutes, and the user would watch the spawn page all along. The
image's env is on the node already and works as it is (what `baked` mode uses). So a first start of a
synced env with `first_copy: background`, with a delivery that runs the server command (`wrap`), registers
the env's kernel on the image's copy, lets the server start, and makes the user's own copy in a detached,
low-priority process. When that copy is complete it is renamed into place (one rename, as a first copy
before ready) and the kernelspec is switched to it (one rename of kernel.json): kernels started from then
on run from the user's copy, without a server restart; kernels already running keep running.

The start's side is `BackgroundAwareSync` (which decides) and `launch` (which starts the copy process); the
copy process is `copy_in_background` (`osl-hooks background-copy NAME`, with the plan in $OSL_HOOKS_PLAN).

What is kept per env (`CopyPlaces`):
- `<state>/background/NAME.json`: the copy's latest `background-copy` event, with the image's id and the
  copy's pid and percentage; read by the next start, `osl-hooks status` and the guards;
- `<state>/background/NAME.lock`: held (flock) by the process making the copy, so there is one copy per env;
  a start never waits for it (the copy process takes the start's lock only for its commit, a moment);
- `<state>/background/NAME.log`: the copy process's own stdout and stderr; its sentences go to start.log;
- `<state>/background/bin-NAME/`: `pip`, `conda`... that refuse with a sentence, first on the PATH of kernels
  that run from the image meanwhile (which also run with user site-packages off: an install can never land
  in ~/.local/lib, where it would shadow packages of every env);
- `.osl-background-NAME` beside the target: the copy being made. It is kept when the copy is stopped, so
  the next copy resumes (rsync skips what is there), and made afresh when the image changed meanwhile.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import Event
from ..plan import PLAN_ENV_VAR, PLAN_FILE_ENV_VAR, Environment, Plan
from ..status import LOG_FILE, human_bytes, read_state_text
from .faultpoints import point
from .homepaths import Home
from .kernels import KernelError, KernelRegistry, UsersOwnKernel, has_ipykernel
from .lock import LockTimeout, StartLock, is_held
from .manifest import Manifest
from .reporter import EnvStatus
from .sync import SyncError, copy_files, copy_tree, remove_tree
from .synced import EnvSync, Fallback

BACKGROUND_DIR = "background"
STAGING_PREFIX = ".osl-background-"
GUARDED_TOOLS = ("pip", "pip3", "conda", "mamba", "micromamba")
RECORD_INTERVAL = 1.0  # seconds between progress records of a running copy
NICENESS = 10
SERVER_WAIT = 120.0  # seconds the copy waits at most for the server to be up
SERVER_POLL = 0.2


class CopyingLater(Exception):
    """The env's own copy is (being) made in the background; the start uses the image's copy meanwhile."""

    def __init__(self, running: bool, record: dict[str, Any] | None):
        super().__init__("copying in the background")
        self.running = running
        self.record = record


@dataclass(frozen=True)
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
    def guard_bin(self) -> Path:
        return self.directory / f"bin-{self.name}"

    @property
    def transfer_dir(self) -> Path:
        return self.directory / f"transfer-{self.name}"

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


def records(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Every env's last background-copy record, by env name (for `osl-hooks status`)."""
    directory = state_dir / BACKGROUND_DIR
    found = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = CopyPlaces(directory, path.stem, Path("/")).record()
        if record is not None:
            if record.get("state") in ("queued", "running") and not is_held(directory / f"{path.stem}.lock"):
                record = dict(record, state="stopped")  # no process holds the copy: it resumes at the next start
            found[path.stem] = record
    return found


# -- the start's side ------------------------------------------------------------------------------------


class BackgroundAwareSync(EnvSync):
    """`EnvSync` whose first copy is made in the background when the plan and the delivery allow it.

    A copy already running in the background (a restart during the copy) is never doubled: whatever the
    setting, the start then uses the image's copy too, and does not wait.
    """

    def __init__(self, *args: Any, allowed: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.places = CopyPlaces.of(Path(self.state.directory).parent, self.env)
        self.allowed = allowed

    def first_copy(self, theirs: Manifest) -> None:
        if self.places.running():
            raise CopyingLater(True, self.places.record())
        if not (self.allowed and self.env.first_copy == "background"):
            if os.path.isdir(self.places.staging) and not os.path.islink(self.places.staging):
                remove_tree(self.places.staging)  # a background copy this start will not finish
                point("background:staging-dropped")
            super().first_copy(theirs)
            return
        self.check_first_copy(theirs)  # Fallback: the user reads why, as for a copy before ready
        record = self.places.record()
        if record is not None and (record.get("source_id") != theirs.id or record.get("state") != "running"):
            record = None  # only a stopped copy of this image resumes; any other is made afresh
        raise CopyingLater(False, record)


def guard_script(env_name: str, tool: str, record_file: Path) -> str:
    """A `pip`/`conda` that refuses, with how far the copy is (read from its record without Python)."""
    record = shlex.quote(str(record_file))
    return f"""#!/bin/sh
# osl-hooks: {env_name} runs read-only from the image while your own copy of it is made.
percent=$(sed -n 's/^ *"percent": \\([0-9]*\\).*/\\1/p' {record} 2>/dev/null)
if grep -q '"state": "done"' {record} 2>/dev/null; then
    echo "osl-hooks: your own copy of {env_name} is complete: restart this kernel (or open a new terminal) \
to install packages into it with {tool}" >&2
else
    echo "osl-hooks: {tool} cannot change {env_name} yet: your own copy of it is being made in the \
background (${{percent:-0}}% done), and until it is complete {env_name} runs read-only from the image. \
Install packages once the copy is complete (osl-hooks status shows how far it is), then restart the kernel." >&2
fi
exit 1
"""


def write_guards(home: Home, places: CopyPlaces) -> Path:
    """The guard directory for kernels that run from the image while the copy is made."""
    home.makedirs(places.guard_bin, "state_dir")
    for tool in GUARDED_TOOLS:
        home.write_text(places.guard_bin / tool, guard_script(places.name, tool, places.record_file), "guard", 0o755)
    return places.guard_bin


def describe_pending(name: str, later: CopyingLater) -> tuple[str, dict[str, Any]]:
    """The sentence and numbers of the start's `background-copy` event for an env copied later."""
    record = later.record or {}
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
    replaces this process (`exec`) never has to reap it, and stopping the server does not stop it.
    `server_pid`: the process that becomes the server; the copy waits for the server to be up first.
    """
    places = CopyPlaces.of(state_dir, env)
    home.makedirs(places.directory, "state_dir")
    log = home.check(places.log_file, "background copy log")
    command = [*_low_priority(), sys.executable, "-m", "osl_hooks.cli", "background-copy", env.name]
    if server_pid is not None:
        command += ["--after-server", str(server_pid)]
    environ = {k: v for k, v in os.environ.items() if k != PLAN_FILE_ENV_VAR}
    environ[PLAN_ENV_VAR] = plan.to_json(indent=None)
    with open(log, "ab") as output:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the intermediate process
            code = 0
            try:
                os.setsid()
                subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=environ, cwd="/")
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        os.waitpid(pid, 0)


def _low_priority() -> list[str]:
    prefix = []
    if shutil.which("nice"):
        prefix += ["nice", "-n", str(NICENESS)]
    if shutil.which("ionice"):
        prefix += ["ionice", "-c3"]  # idle class: disk time only when nothing else asks for it
    return prefix


# -- the copy process ------------------------------------------------------------------------------------


class CopyJournal:
    """What the copy process tells: its record (`NAME.json`, a `background-copy` event) and start.log lines.

    It also stands in for the start's reporter where `EnvSync`'s shared steps report (a manifest described
    instead of read).
    """

    def __init__(self, home: Home, state_dir: Path, places: CopyPlaces, env: Environment):
        self.home = home
        self.state_dir = state_dir
        self.places = places
        self.envs = {env.name: EnvStatus(env.name, env.mode)}
        self.source_id: str | None = None
        self._last_record = 0.0
        self._started = time.monotonic()
        self._first_done: int | None = None

    def event(self, kind: str, message: str, env: str | None = None, **numbers: Any) -> None:
        self.line(message)

    def warning(self, message: str, env: str | None = None, **numbers: Any) -> None:
        self.line(f"WARNING: {message}")

    info = event

    def line(self, message: str) -> None:
        """A line of start.log (opened for each line: a start may have rotated the log meanwhile)."""
        with contextlib.suppress(OSError):
            log = self.home.check(self.state_dir / LOG_FILE, "start log")
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    def record(self, state: str, message: str, relocating: bool = False, **numbers: Any) -> None:
        """The copy's record: its latest event, how far in percent, the image it copies, its pid; `relocating`
        once the copy is complete and files are rewritten in place (a resumed copy takes those afresh)."""
        event = Event("background-copy", message, self.places.name, state=state, **numbers)
        data = event.to_dict()
        if relocating:
            data["relocating"] = True
        done, total = numbers.get("bytes_done"), numbers.get("bytes_total")
        if total:
            data["percent"] = min(int(100 * (done or 0) / total), 100)
        data.update(source_id=self.source_id, pid=os.getpid())
        self.home.write_text(self.places.record_file, json.dumps(data, indent=1), "background copy record")
        self._last_record = time.monotonic()

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_record < RECORD_INTERVAL:
            return
        if self._first_done is None:
            self._first_done, self._started = done, now
        rate = (done - self._first_done) / max(now - self._started, 1e-3)
        eta = round((total - done) / rate, 1) if rate > 0 and total > done else None
        share = min(done / total, 1.0) if total else 1.0
        message = (
            f"Copying {self.places.name} in the background: {human_bytes(done)} of {human_bytes(total)} ({share:.0%})"
        )
        self.record("running", message, bytes_done=done, bytes_total=total, eta_seconds=eta)


def copy_in_background(plan: Plan, name: str, server_pid: int | None = None) -> int:
    """`osl-hooks background-copy NAME`: make the env's own copy, unless another process is making it.

    With `server_pid`, the copy begins once that server is up (see `wait_for_server`).
    """
    plan = plan.resolve(plan.home or os.environ.get("HOME", ""))
    env = next((e for e in plan.environments if e.name == name and e.mode == "synced"), None)
    if env is None or plan.home is None:
        print(f"osl-hooks background-copy: {name!r} is not a synced env of the plan", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    home = Home(plan.home)
    state_dir = home.makedirs(plan.state_dir, "state_dir")
    places = CopyPlaces.of(state_dir, env)
    home.makedirs(places.directory, "state_dir")
    with _copy_lock(places.lock_file) as mine:
        if not mine:
            return 0  # another process is making this copy
        if server_pid is not None:
            wait_for_server(server_pid, Path(plan.jupyter_data_dir))
        return BackgroundCopy(plan, env, home, state_dir, places).run()


def wait_for_server(pid: int, jupyter_data_dir: Path, limit: float = SERVER_WAIT) -> None:
    """Wait until the server `pid` is up, so its own start never competes with the copy (many users starting
    at once on a busy node made servers miss the hub's `http_timeout`): jupyter_server writes
    `jpserver-PID.json` in its runtime directory once it listens. Ends early if the process is gone, and after
    `limit` seconds whatever happened (a server that writes no such file)."""
    runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR") or jupyter_data_dir / "runtime")
    files = [runtime / f"jpserver-{pid}.json", runtime / f"nbserver-{pid}.json"]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not any(f.exists() for f in files):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass
        time.sleep(SERVER_POLL)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: rsync is stopped, the copy kept for resuming


@contextlib.contextmanager
def _copy_lock(path: Path) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class BackgroundCopy:
    """One env's copy, made (or resumed) in the staging directory, then committed under the start's lock."""

    def __init__(self, plan: Plan, env: Environment, home: Home, state_dir: Path, places: CopyPlaces):
        self.plan = plan
        self.env = env
        self.home = home
        self.state_dir = state_dir
        self.places = places
        self.journal = CopyJournal(home, state_dir, places, env)
        margins = (plan.disk_margin_fraction, plan.disk_margin_bytes)
        self.sync = EnvSync(env, home, state_dir, self.journal, margins)  # type: ignore[arg-type]

    def run(self) -> int:
        name, target, staging = self.env.name, self.sync.target, self.places.staging
        started = time.monotonic()
        theirs = self.sync._image_manifest()
        self.sync.complete(theirs)
        self.journal.source_id = theirs.id
        if os.path.lexists(target):
            self._drop_staging()
            self.journal.record("done", f"{name} is already in your home at {target}")
            return 0
        previous = self.places.record()
        resuming = staging.is_dir() and previous is not None and previous.get("source_id") == theirs.id
        try:
            if not resuming:
                self.sync.check_first_copy(theirs)
        except Fallback as e:
            return self._failed(f"{name} cannot be copied into your home because {e}", theirs)
        total = theirs.bytes
        self.journal.record("running", f"Copying {name} in the background", bytes_done=0, bytes_total=total)
        if not resuming:
            self._drop_staging()
            staging.mkdir(mode=0o700)
            point("background:staging-made")
        how = "Resuming" if resuming else "Making"
        self.journal.line(f"{how} your own copy of {name} in the background ({human_bytes(total)})")
        try:
            for step in copy_tree(self.sync.source, staging, resume=resuming):
                self.journal.progress(step.bytes_done, total)
            point("background:copied")
            if resuming and previous and previous.get("relocating"):
                # Relocation rewrites files in place, keeping some sizes and times: what a stopped commit
                # relocated is taken afresh from the image (rsync's quick check would keep it).
                self.home.makedirs(self.places.transfer_dir, "state_dir")
                copy_files(self.sync.source, staging, [f.path for f in theirs.prefix_files], self.places.transfer_dir)
                remove_tree(self.places.transfer_dir)
                point("background:prefix-files-copied")
        except (SyncError, OSError) as e:
            if _is_out_of_space(e):
                self._drop_staging()  # the user needs the room more than a copy that cannot finish
                reason = self.sync._out_of_space(theirs.disk_bytes)
                return self._failed(f"{name} stays on the image's copy: {reason}", theirs)
            return self._failed(f"copying {name} in the background failed: {e}; it resumes at the next start", theirs)
        return self._commit(theirs, total, started)

    def _commit(self, theirs: Manifest, total: int, started: float) -> int:
        """Relocate, record, rename into place and switch the kernel, holding the start's lock (a moment):
        a start then sees either no copy and this process running, or the complete copy and its kernel."""
        name, target = self.env.name, self.sync.target
        try:
            with StartLock(self.state_dir / "start.lock", self.plan.lock_timeout):
                if os.path.lexists(target):
                    self._drop_staging()
                    self.journal.record("done", f"{name} is already in your home at {target}")
                    return 0
                message = f"Putting your own copy of {name} in place"
                self.journal.record("running", message, bytes_done=total, bytes_total=total, relocating=True)
                self.sync.relocate_and_record(self.places.staging, theirs)
                os.rename(self.places.staging, target)
                point("background:renamed")
                kernel_note = self._switch_kernel(target)
                seconds = round(time.monotonic() - started, 3)
                message = (
                    f"Your own copy of {name} is complete ({human_bytes(total)} in {seconds:.1f} s): kernels "
                    f"started from now on use it{kernel_note}"
                )
                self.journal.record("done", message, bytes_done=total, bytes_total=total, seconds=seconds)
                self.journal.line(message)
        except (LockTimeout, OSError) as e:
            return self._failed(
                f"your own copy of {name} could not be put in place ({e}); it resumes at the next start", theirs
            )
        remove_tree(self.places.guard_bin, missing_ok=True)
        return 0

    def _switch_kernel(self, prefix: Path) -> str:
        kernel = self.env.kernel
        if kernel is None or not has_ipykernel(prefix):
            return ""
        try:
            self.home.check(Path(self.plan.jupyter_data_dir, "kernels", kernel.name), "kernel directory")
            KernelRegistry(self.plan.jupyter_data_dir).switch(self.env.name, "synced", prefix, kernel)
        except UsersOwnKernel:
            return ""
        except (KernelError, OSError) as e:
            return f" (its kernel could not be switched: {e}; the next start registers it)"
        point("background:kernel-switched")
        return f" (kernel {kernel.display_name})"

    def _failed(self, message: str, theirs: Manifest) -> int:
        self.journal.line(f"WARNING: {message}")
        with contextlib.suppress(OSError):
            self.journal.record("failed", message, bytes_total=theirs.bytes)
        return 1

    def _drop_staging(self) -> None:
        staging = self.places.staging
        if staging.is_dir() and not staging.is_symlink():
            remove_tree(staging)
            point("background:staging-removed")


def _is_out_of_space(error: Exception) -> bool:
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    return f"{seconds / 60:.0f} min"
