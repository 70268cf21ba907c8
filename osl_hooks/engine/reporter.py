"""What a start tells people while it runs, and what it leaves behind (read back by `osl_hooks.status`).

Each event (`osl_hooks.events`) is written once, and every output derives from it:
- humans reading container logs or a terminal: one line per event on stdout, and (when stdout is not a
  terminal) the event itself as a machine-readable line (`osl-hooks-event: {...}`) just before it;
- the user and admin later: `<state>/start.log`, the human lines plus setup scripts' output;
- the hub's progress page and `osl-hooks status`: `<state>/status.json`, rewritten atomically as the
  start goes (at most every 0.5 s while nothing goes wrong, at once for warnings, errors and the end),
  with the whole event list (so a reader that arrives late can replay it), the current progress (the
  latest copy-progress event), and per-env and per-script results;
- Kubernetes: the termination message, the final event and the last problems as event lines (4 KiB).
"""

from __future__ import annotations

import collections
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from .._records import as_dict, field, record
from ..events import EVENTS_VERSION, OUTPUT_LINE_CHARS, OUTPUT_LINES, Event, termination_text
from ..status import LOG_FILE, STATUS_FILE, STATUS_VERSION, command_file
from .faultpoints import point
from .homepaths import Home
from .outofspace import is_out_of_space
from .redact import Redactor, secret_values
from .summary import PHASES, start_summary

PROGRESS_WRITE_INTERVAL = 0.5
PROGRESS_PRINT_INTERVAL = 5.0
TERMINATION_LOG_ENV_VAR = "OSL_HOOKS_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"  # Kubernetes' default terminationMessagePath
TERMINATION_MESSAGE_LIMIT = 4096  # what Kubernetes keeps of a termination message


@record
class EnvStatus:
    """One env in the status file and the summary: what the start did with it and what it takes."""

    name: str
    mode: str  # what the plan asked for
    effective_mode: str | None = None  # what the user got ("baked" after a fallback)
    state: str = "pending"  # pending, working, ready, fallback, absent, failed
    prefix: str | None = None
    files: int | None = None
    bytes: int | None = None
    seconds: float | None = None
    kernel: str | None = None
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # The figures the hub's metrics and admin report read (the finish event's summary, `summary`):
    action: str | None = None  # copied envs: copy, update, unchanged, compare
    fallback: str | None = None  # why the image's copy is used: disk_full, relocation, unsafe_home, copy_failed
    image_id: str | None = None
    copy_id: str | None = None
    volume_bytes: int | None = None
    linked_bytes: int | None = None
    copied_bytes: int | None = None
    conflicts: int | None = None
    new_conflicts: int | None = None
    not_linked_because: list[str] | None = None  # linked asked: why (some) files are real (linkplan's causes)

    def not_linked(self, cause: str) -> None:
        self.not_linked_because = sorted({*(self.not_linked_because or ()), cause})


class SyncReport(Protocol):
    """What a sync (`osl_hooks.engine.synced.EnvSync`) reports to: the start's `Reporter`, or the background copy
    process's `CopyJournal` (`osl_hooks.engine.background_copy`)."""

    envs: dict[str, EnvStatus]

    def event(self, kind: str, message: str, env: str | None = None, **numbers: Any) -> None: ...

    def info(self, message: str, env: str | None = None) -> None: ...

    def warning(self, message: str, env: str | None = None, **numbers: Any) -> None: ...

    def progress(self, env: str, done: int, total: int, describe: Callable[[int, int], str]) -> None: ...


@record
class ScriptStatus:
    """One setup script's run in the status file: its state, exit code, time, and why when it did not run."""

    path: str
    env: str | None
    state: str
    exit_code: int | None
    seconds: float
    reason: str = ""


class Reporter:
    """Writes each event of a start once, to every output: stdout, the log, the status file, the
    termination message (see `osl_hooks.events`)."""

    def __init__(self, home: Home, state_dir: Path, out: IO[str] = sys.stdout, command: str | None = None):
        self.home = home
        self.state_dir = state_dir
        # A command on the env `command` (`engine.commands`) leaves the start's records as they are: its status goes
        # to its own file, its lines follow the start's in the log, and the pod's termination message stays the start's.
        self.command = command
        self.status_file = state_dir / (command_file(command) if command is not None else STATUS_FILE)
        self.out = out
        self.started = time.time()
        self._started_monotonic = time.monotonic()
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "version": STATUS_VERSION,
            "events_version": EVENTS_VERSION,
            "state": "running",
            "pid": os.getpid(),
            "started_at": _iso(self.started),
            "finished_at": None,
            "message": "",
            "progress": None,
            "events": [],
            "environments": {},
            "scripts": [],
        }
        self.envs: dict[str, EnvStatus] = {}
        self.problems = 0  # warnings and errors so far: any makes the start "degraded"
        self.phase_seconds: dict[str, float] = dict.fromkeys(PHASES, 0.0)  # the summary's time per phase
        self.retired: list[dict[str, Any]] | None = None  # the summary's rows of retired copies (plan version 2)
        self._events: list[Event] = []
        self._event_lines = not _is_terminal(out)  # machine-readable lines for logs, not for people at a terminal
        self.redact = Redactor(secret_values(os.environ))
        log_path = state_dir / LOG_FILE
        # A link (or a FIFO...) is moved aside itself: nothing is written through it. A command appends to a file.
        appends = command is not None and os.path.isfile(log_path) and not os.path.islink(log_path)
        if os.path.lexists(log_path) and not appends:
            os.replace(log_path, state_dir / f"{LOG_FILE}.1")
            point("log:rotated")
        home.check(log_path, "start log")
        self._log = open(log_path, "a", encoding="utf-8", buffering=1)
        self._last_write = 0.0
        self._last_print = 0.0
        self._progress_shown: set[str] = set()  # envs whose copy progress the status file has shown
        self._write_failed = False
        self._output: collections.deque[str] = collections.deque(maxlen=OUTPUT_LINES)

    @property
    def log_path(self) -> str:
        """The start log's path as the user sees it (`~/...` inside the home)."""
        path = self.state_dir / LOG_FILE
        try:
            return "~/" + str(path.relative_to(self.home.path))
        except ValueError:
            return str(path)

    def env(self, name: str, mode: str) -> EnvStatus:
        self.envs[name] = EnvStatus(name, mode)
        return self.envs[name]

    def event(self, kind: str, message: str, env: str | None = None, **numbers: Any) -> None:
        """One event of the start (`osl_hooks.events.KINDS`), with its numbers, written everywhere."""
        level = {"warning": "warning", "error": "error"}.get(kind, "info")
        self._event(Event(kind, message, env, level, **numbers))

    def info(self, message: str, env: str | None = None) -> None:
        self.event("note", message, env)

    def warning(self, message: str, env: str | None = None, **numbers: Any) -> None:
        if env in self.envs:
            self.envs[env].warnings.append(message)
        self.event("warning", message, env, **numbers)

    def error(self, message: str, env: str | None = None, **numbers: Any) -> None:
        if env in self.envs:
            self.envs[env].errors.append(message)
        self.event("error", message, env, **numbers)

    def progress(self, env: str, done: int, total: int, describe: Callable[[int, int], str]) -> None:
        """A copy-progress event, throttled: the status file's current progress at most every 0.5 s, an
        event (stdout, log, event list) at most every 5 s.

        `describe(done, total)` words the progress; it is called only when something is written, since
        rsync reports after every file (tens of thousands of times for a big env). An env's first tick is
        always written: a reader sees the copy under way, with its bytes, as soon as it is.
        """
        now = time.monotonic()
        due_write = now - self._last_write >= PROGRESS_WRITE_INTERVAL
        due_print = now - self._last_print >= PROGRESS_PRINT_INTERVAL
        first = env not in self._progress_shown
        if not (due_write or due_print or first):
            return
        self._progress_shown.add(env)
        event = Event("copy-progress", describe(done, total), env, bytes_done=int(done), bytes_total=int(total))
        if due_print:
            self._last_print = now
            self._event(event, write_now=first)
            return
        with self._lock:
            event.seq = len(self._events)  # the seq it would get: the status file's live progress only
            self._status["progress"] = event.to_dict()
            self._status["message"] = event.message
        self._write()

    def script_begin(self, label: str, message: str, env: str | None = None) -> None:
        self._output.clear()
        self.event("script-begin", message, env, script=label)

    def script_result(
        self, result: ScriptStatus, label: str | None = None, message: str | None = None, level: str = "info"
    ) -> None:
        """Record a script's result; with `message`, also its script-done event (a problem at `level`
        "warning" or "error", with the script's last output lines, when it did not succeed)."""
        with self._lock:
            self._status["scripts"].append(as_dict(result))
            self.phase_seconds["scripts"] += result.seconds
        if message is None:
            return
        if level != "info" and result.env in self.envs:
            getattr(self.envs[result.env], f"{level}s").append(message)
        output = list(self._output) if result.state in ("failed", "timeout") else None
        event = Event(
            "script-done",
            message,
            result.env,
            level,
            script=label or Path(result.path).name,
            state=result.state,
            exit_code=result.exit_code,
            seconds=result.seconds,
            output=output or None,
        )
        self._event(event)

    def log(self, line: str) -> None:
        """A line for the log and stdout only (setup scripts' output)."""
        line = self.redact(line)
        with self._lock:
            self._output.append(line[:OUTPUT_LINE_CHARS])
            self._to_log(line)
            print(line, file=self.out, flush=True)

    def finish(self, state: str, message: str) -> None:
        with self._lock:
            self._status["state"] = state
            self._status["finished_at"] = _iso(time.time())
        seconds = round(time.monotonic() - self._started_monotonic, 3)
        level = "error" if state == "failed" else "info"
        # A failed start carries the failing script's last output, so a reader that sees only the end (a page
        # opened after the failure, the termination message) still shows it.
        output = next((e.output for e in reversed(self._events) if e.output), None) if state == "failed" else None
        for env in self.envs.values():
            if env.action in ("copy", "update") and env.seconds:
                self.phase_seconds[env.action] += env.seconds
        summary = start_summary(self.envs, self._status["scripts"], self.phase_seconds, self.retired)
        numbers = {"state": state, "seconds": seconds, "log": self.log_path, "output": output, "summary": summary}
        final = Event("finish", message, None, level, **numbers)
        self._event(final)
        try:
            self._log.close()
        except OSError:
            pass
        problems = [e for e in self._events if e.level != "info" and not e.final]
        if self.command is None:
            write_termination_message(termination_text(final, problems, message, TERMINATION_MESSAGE_LIMIT))

    def _event(self, event: Event, write_now: bool = False) -> None:
        if event.level != "info" and not event.final:
            self.problems += 1
        event.message = self.redact(event.message)
        with self._lock:
            event.seq = len(self._events)
            self._events.append(event)
            self._status["events"].append(event.to_dict())
            self._status["message"] = event.message
            self._status["progress"] = None
        self._emit(event)
        # Every step is in the file as soon as it begins (what a reader shows when the start is cut short);
        # only the frequent copy progress is throttled (but an env's first tick is written at once).
        throttled = event.kind == "copy-progress" and time.monotonic() - self._last_write < PROGRESS_WRITE_INTERVAL
        if write_now or not throttled:
            self._write(event.final)

    def _emit(self, event: Event) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            self._to_log(f"{stamp} {event.human()}")
            if self._event_lines:
                print(event.line(), file=self.out)
            print(f"osl-hooks {stamp} {event.human()}", file=self.out, flush=True)

    def _to_log(self, line: str) -> None:
        try:
            self._log.write(line + "\n")
        except (OSError, ValueError):  # a full home (or a log closed at the end) must not stop the start
            pass

    def _write(self, final: bool = False) -> None:
        with self._lock:
            self._status["environments"] = {name: as_dict(s) for name, s in self.envs.items()}
            text = json.dumps(self._status, indent=1)
        try:
            self.home.write_text(self.status_file, text, "status file")
        except OSError as e:  # a full home must not stop the start; stdout still tells the story
            if final and is_out_of_space(e) and self._overwrite_in_place(text):
                return
            if not self._write_failed:
                why = "your home is full" if is_out_of_space(e) else e  # in words, not the C library's
                print(f"osl-hooks: cannot write {self.status_file}: {why}", file=self.out, flush=True)
            self._write_failed = True
        self._last_write = time.monotonic()

    def _overwrite_in_place(self, text: str) -> bool:
        """The home is full: the status must still end, so the old file's own blocks take the final status
        (not atomic: a reader at that very moment may find it unreadable, never "running" forever)."""
        path = self.status_file
        brief = dict(self._status, events=self._status["events"][-3:])
        for attempt in (text, json.dumps(brief)):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    if not stat.S_ISREG(os.fstat(fd).st_mode):
                        return False
                    f.truncate(0)
                    f.write(attempt)
                return True
            except OSError:
                continue
        return False


def write_termination_message(text: str) -> None:
    """Leave the outcome where Kubernetes shows it in the pod's status (init container, postStart).

    The hub can read a container's termination message without any extra permission, so this is
    how a user's spawn page learns why a start failed or was degraded. Outside Kubernetes the file
    does not exist and nothing is written.
    """
    path = os.environ.get(TERMINATION_LOG_ENV_VAR, DEFAULT_TERMINATION_LOG)
    if not os.path.exists(path) or not os.access(path, os.W_OK):
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError:
        pass


def report_failure_without_home(message: str, out: IO[str]) -> None:
    """A start that failed before it could report in the home (unusable home, the lock, an invalid plan):
    the human line and the finish event on `out`, and the termination message."""
    message = Redactor(secret_values(os.environ))(message)
    final = Event("finish", message, None, "error", state="failed", seconds=0.0)
    if not _is_terminal(out):
        print(final.line(), file=out)
    print(f"osl-hooks: {message}", file=out, flush=True)
    write_termination_message(termination_text(final, [], message, TERMINATION_MESSAGE_LIMIT))


def _is_terminal(out: IO[str]) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
