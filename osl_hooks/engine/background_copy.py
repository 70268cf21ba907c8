"""The copy process of a first copy made in the background (`osl-hooks background-copy NAME`).

Started detached by `osl_hooks.engine.background.launch` once a start is done. It takes the env's copy lock
(one copy per env), waits for the server to be up, copies (or resumes copying) the env into its staging
directory at low priority, recording how far it is, then commits under the start's lock: relocation, the sync
record, one rename into place, the kernel switched to the user's copy. See `osl_hooks.engine.background` for
what is kept where.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..events import Event
from ..plan import COPIED_MODES, Environment, Plan
from ..status import LOCK_FILE, LOG_FILE, human_bytes
from .background import NICENESS, CopyPlaces, in_place, remove_placeholder
from .copykind import decide
from .faultpoints import point
from .homepaths import Home
from .kernels import KernelError, KernelRegistry, UsersOwnKernel, has_ipykernel
from .lock import LockTimeout, StartLock
from .manifest import Manifest
from .outofspace import is_out_of_space
from .reporter import EnvStatus
from .sync import SyncError, copy_files, copy_tree
from .synced import EnvSync, Fallback
from .trees import remove_tree

RECORD_INTERVAL = 1.0  # seconds between progress records of a running copy
SERVER_WAIT = 120.0  # seconds the copy waits at most for the server to be up
SERVER_POLL = 0.2


class CopyJournal:
    """What the copy process tells: its record (`NAME.json`, a `background-copy` event) and start.log lines.

    It is what `EnvSync`'s shared steps report to here (`reporter.SyncReport`, as the start's reporter is): a
    manifest described instead of read, the copy's progress.
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
        self._estimated = False

    def event(self, kind: str, message: str, env: str | None = None, **numbers: Any) -> None:
        self.line(message)

    def info(self, message: str, env: str | None = None) -> None:
        self.line(message)

    def warning(self, message: str, env: str | None = None, **numbers: Any) -> None:
        self.line(f"WARNING: {message}")

    def line(self, message: str) -> None:
        append_to_start_log(self.home, self.state_dir, message)

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
        elif state == "waiting":
            data["percent"] = 0  # a copy not begun yet
        data.update(source_id=self.source_id, pid=os.getpid())
        self.home.write_text(self.places.record_file, json.dumps(data, indent=1), "background copy record")
        self._last_record = time.monotonic()

    def waiting(self) -> None:
        """The record while the copy waits for the server to be up (how far a stopped copy got, if it resumes)."""
        previous = self.places.record() or {}
        numbers = {k: previous[k] for k in ("bytes_done", "bytes_total") if previous.get(k) is not None}
        message = f"Your own copy of {self.places.name} begins once the server has started"
        self.source_id = previous.get("source_id")  # what a resumed copy checks, kept as the copy left it
        self.record("waiting", message, relocating=bool(previous.get("relocating")), **numbers)

    def progress(self, env: str, done: int, total: int, describe: Callable[[int, int], str]) -> None:
        """Record how far the copy is and how long it still takes: at the first step that allows an estimate
        (the rate from the first step on, so bytes a resumed copy finds already there do not count), then
        at most every `RECORD_INTERVAL`. `describe(done, total)` words it."""
        now = time.monotonic()
        if self._first_done is None:
            self._first_done, self._started = done, now
            return
        rate = (done - self._first_done) / max(now - self._started, 1e-3)
        eta = round((total - done) / rate, 1) if rate > 0 and total > done else None
        if now - self._last_record < RECORD_INTERVAL and (self._estimated or eta is None):
            return
        self._estimated = self._estimated or eta is not None
        self.record("running", describe(done, total), bytes_done=done, bytes_total=total, eta_seconds=eta)
        point("background:progress-recorded")


def append_to_start_log(home: Home, state_dir: Path, message: str) -> None:
    """A line of start.log from a process after the start (opened for each line: a start may have rotated the
    log meanwhile)."""
    with contextlib.suppress(OSError):
        log = home.check(state_dir / LOG_FILE, "start log")
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {message}\n")


def copy_in_background(plan: Plan, name: str, server_pid: int | None = None) -> int:
    """`osl-hooks background-copy NAME`: make the env's own copy, unless another process is making it.

    With `server_pid`, the copy begins once that server is up (see `wait_for_server`).
    """
    plan = plan.resolve(plan.home or os.environ.get("HOME", ""))
    env = next((e for e in plan.environments if e.name == name and e.mode in COPIED_MODES), None)
    home = None if env is None or plan.home is None else Home(plan.home)
    state_dir = None if home is None else home.makedirs(plan.state_dir, "state_dir")
    # Only a copy of real files is ever left to this process: the start's own decision says which those are.
    if env is None or home is None or state_dir is None or decide(env, home, state_dir, True).mode != "synced":
        print(f"osl-hooks background-copy: {name!r} is not an env of the plan copied as real files", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    lower_session_priority(NICENESS)
    places = CopyPlaces.of(state_dir, env)
    home.makedirs(places.directory, "state_dir")
    with try_lock(places.lock_file) as mine:
        if not mine:
            return 0  # another process is making this copy
        copy = BackgroundCopy(plan, env, home, state_dir, places)
        if server_pid is not None:
            copy.journal.waiting()
            wait_for_server(server_pid, Path(plan.jupyter_data_dir))
        return copy.run()


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


def lower_session_priority(niceness: int, autogroup: Path = Path("/proc/self/autogroup")) -> None:
    """Give this process's session the niceness `nice` gave the process.

    The copy runs in a session of its own (so a server's stop does not stop it). Where the kernel groups
    processes by session for CPU time (`sched_autogroup`, on by default on desktops and many servers; not for
    tasks in a cgroup of their own, as a pod's are), a process's niceness only ranks it within its session's
    group, and each session gets an equal share: the copy would take as much CPU as a whole server of the hub.
    The session's own niceness ranks the group (an unprivileged process may raise it). Nothing to do where the
    kernel has no autogroups."""
    try:
        autogroup.write_text(f"{niceness}\n")
    except OSError:
        pass


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: rsync is stopped, the copy kept for resuming


@contextlib.contextmanager
def try_lock(path: Path) -> Iterator[bool]:
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
        self.sync = EnvSync(env, home, state_dir, self.journal, margins)

    def run(self) -> int:
        name, target, staging = self.env.name, self.sync.target, self.places.staging
        started = time.monotonic()
        theirs = self.sync.image_manifest()
        self.sync.complete(theirs)
        self.journal.source_id = theirs.id
        if in_place(target):
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
                self.journal.progress(name, step.bytes_done, total, self._describe_progress)
            point("background:copied")
            if resuming and previous and previous.get("relocating"):
                # Relocation rewrites files in place, keeping some sizes and times: what a stopped commit
                # relocated is taken afresh from the image (rsync's quick check would keep it).
                copy_files(self.sync.source, staging, [f.path for f in theirs.prefix_files])
                point("background:prefix-files-copied")
        except (SyncError, OSError) as e:
            if is_out_of_space(e):
                self._drop_staging()  # the user needs the room more than a copy that cannot finish
                reason = self.sync.out_of_space(theirs.disk_bytes)
                return self._failed(f"{name} stays on the image's copy: {reason}", theirs)
            return self._failed(f"copying {name} in the background failed: {e}; it resumes at the next start", theirs)
        return self._commit(theirs, total, started)

    def _commit(self, theirs: Manifest, total: int, started: float) -> int:
        """Relocate, record, rename into place and switch the kernel, holding the start's lock (a moment):
        a start then sees either no copy and this process running, or the complete copy and its kernel."""
        name, target = self.env.name, self.sync.target
        try:
            with StartLock(self.state_dir / LOCK_FILE, self.plan.lock_timeout):
                if in_place(target):
                    self._drop_staging()
                    self.journal.record("done", f"{name} is already in your home at {target}")
                    return 0
                message = f"Putting your own copy of {name} in place"
                self.journal.record("running", message, bytes_done=total, bytes_total=total, relocating=True)
                self.sync.relocate_and_record(self.places.staging, theirs)
                remove_placeholder(target)
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
        remove_tree(self.places.placeholder, missing_ok=True)
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

    def _describe_progress(self, done: int, total: int) -> str:
        share = min(done / total, 1.0) if total else 1.0
        return f"Copying {self.env.name} in the background: {human_bytes(done)} of {human_bytes(total)} ({share:.0%})"

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
