"""What a start tells people while it runs, and what it leaves behind.

Three readers, three outputs, one source of truth:
- humans reading container logs or a terminal: one line per event on stdout;
- the user and admin later: `<state>/start.log`, the same lines plus setup scripts' output;
- the hub's progress page and `osl-hooks status`: `<state>/status.json`, rewritten atomically as the
  start goes (at most every 0.5 s while nothing goes wrong, at once for warnings, errors and the end),
  with the whole event list (so a reader that arrives late can replay it), the current progress, and
  per-env and per-script results.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from .faultpoints import point
from .homepaths import Home
from .redact import Redactor, secret_values

STATUS_FILE = "status.json"
LOG_FILE = "start.log"
STATUS_VERSION = 1
PROGRESS_WRITE_INTERVAL = 0.5
PROGRESS_PRINT_INTERVAL = 5.0
TERMINATION_LOG_ENV_VAR = "OSL_HOOKS_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"  # Kubernetes' default terminationMessagePath
TERMINATION_MESSAGE_LIMIT = 4096  # what Kubernetes keeps of a termination message


@dataclass
class EnvStatus:
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


@dataclass
class ScriptStatus:
    path: str
    env: str | None
    state: str
    exit_code: int | None
    seconds: float
    reason: str = ""


def read_status(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last status a start wrote, or None if there is none (or it cannot be read)."""
    try:
        return json.loads(Home.read_text(Path(state_dir, STATUS_FILE)))
    except (OSError, ValueError):
        return None


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class Reporter:
    """Collects a start's events and writes them to stdout, the log and the status file."""

    def __init__(self, home: Home, state_dir: Path, out: IO[str] = sys.stdout):
        self.home = home
        self.state_dir = state_dir
        self.out = out
        self.started = time.time()
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {
            "version": STATUS_VERSION,
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
        self.redact = Redactor(secret_values(os.environ))
        log_path = state_dir / LOG_FILE
        if os.path.lexists(log_path):  # a link is moved aside itself: nothing is written through it
            os.replace(log_path, state_dir / f"{LOG_FILE}.1")
            point("log:rotated")
        home.check(log_path, "start log")
        self._log = open(log_path, "a", encoding="utf-8", buffering=1)
        self._last_write = 0.0
        self._last_print = 0.0
        self._write_failed = False

    def env(self, name: str, mode: str) -> EnvStatus:
        self.envs[name] = EnvStatus(name, mode)
        return self.envs[name]

    def info(self, message: str, env: str | None = None) -> None:
        self._event("info", message, env)

    def warning(self, message: str, env: str | None = None) -> None:
        if env in self.envs:
            self.envs[env].warnings.append(message)
        self._event("warning", message, env)

    def error(self, message: str, env: str | None = None) -> None:
        if env in self.envs:
            self.envs[env].errors.append(message)
        self._event("error", message, env)

    def progress(self, env: str, done: int, total: int, describe: Callable[[int, int], str]) -> None:
        """Throttled: the status file at most every 0.5 s, stdout at most every 5 s.

        `describe(done, total)` words the progress; it is called only when something is written, since
        rsync reports after every file (tens of thousands of times for a big env).
        """
        now = time.monotonic()
        due_write = now - self._last_write >= PROGRESS_WRITE_INTERVAL
        due_print = now - self._last_print >= PROGRESS_PRINT_INTERVAL
        if not (due_write or due_print):
            return
        message = describe(done, total)
        with self._lock:
            self._status["progress"] = {"env": env, "done": done, "total": total, "message": message}
            self._status["message"] = message
        if due_print:
            self._last_print = now
            self._emit(message)
        if due_write:
            self._write()

    def script_result(self, result: ScriptStatus) -> None:
        with self._lock:
            self._status["scripts"].append(asdict(result))

    def log(self, line: str) -> None:
        """A line for the log and stdout only (setup scripts' output)."""
        line = self.redact(line)
        with self._lock:
            self._to_log(line)
            print(line, file=self.out, flush=True)

    def finish(self, state: str, message: str) -> None:
        with self._lock:
            self._status["state"] = state
            self._status["finished_at"] = _iso(time.time())
        self._event("error" if state == "failed" else "info", message, None, final=True)
        try:
            self._log.close()
        except OSError:
            pass
        self._write_termination_message(message)

    def _write_termination_message(self, message: str) -> None:
        """Leave the outcome where Kubernetes shows it in the pod's status (init container, postStart).

        The hub can read a container's termination message without any extra permission, so this is
        how a user's spawn page learns why a start failed or was degraded. Outside Kubernetes the file
        does not exist and nothing is written.
        """
        path = os.environ.get(TERMINATION_LOG_ENV_VAR, DEFAULT_TERMINATION_LOG)
        if not os.path.exists(path) or not os.access(path, os.W_OK):
            return
        problems = [
            f"{e['level'].upper()}: {e['message']}"
            for e in self._status["events"]
            if e["level"] != "info" and not e["final"]
        ]
        text = "\n".join([message, *problems[-5:]])
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text.encode()[:TERMINATION_MESSAGE_LIMIT].decode(errors="ignore"))
        except OSError:
            pass

    def _event(self, level: str, message: str, env: str | None, final: bool = False) -> None:
        if level != "info" and not final:
            self.problems += 1
        message = self.redact(message)
        with self._lock:
            self._status["events"].append(
                {"time": _iso(time.time()), "level": level, "env": env, "message": message, "final": final}
            )
            self._status["message"] = message
            self._status["progress"] = None
        prefix = {"info": "", "warning": "WARNING: ", "error": "ERROR: "}[level]
        self._emit(prefix + message)
        if final or level != "info" or time.monotonic() - self._last_write >= PROGRESS_WRITE_INTERVAL:
            self._write(final)

    def _emit(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            self._to_log(f"{stamp} {line}")
            print(f"osl-hooks {stamp} {line}", file=self.out, flush=True)

    def _to_log(self, line: str) -> None:
        try:
            self._log.write(line + "\n")
        except (OSError, ValueError):  # a full home (or a log closed at the end) must not stop the start
            pass

    def _write(self, final: bool = False) -> None:
        with self._lock:
            self._status["environments"] = {name: asdict(s) for name, s in self.envs.items()}
            text = json.dumps(self._status, indent=1)
        try:
            self.home.write_text(self.state_dir / STATUS_FILE, text, "status file")
        except OSError as e:  # a full home must not stop the start; stdout still tells the story
            if final and e.errno == errno.ENOSPC and self._overwrite_in_place(text):
                return
            if not self._write_failed:
                print(f"osl-hooks: cannot write {self.state_dir / STATUS_FILE}: {e}", file=self.out, flush=True)
            self._write_failed = True
        self._last_write = time.monotonic()

    def _overwrite_in_place(self, text: str) -> bool:
        """The home is full: the status must still end, so the old file's own blocks take the final status
        (not atomic: a reader at that very moment may find it unreadable, never "running" forever)."""
        path = self.state_dir / STATUS_FILE
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


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
