"""Admin-provided setup scripts: found, ordered, run as the user with a time limit, and logged.

A script entry names a file or a directory; a directory stands for its executable files in name order
(like run-parts, so admins can order them with `10-`, `20-` prefixes). Each script runs in its own
process group, so a timeout kills the script and everything it started. Run policies rely on small
marker files in the state directory, written only after a successful run:
`once` runs until it has succeeded once, `on_change` whenever the script's content differs from the last
successful run, `always` every start.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..plan import Script
from ..status import LOG_FILE
from .homepaths import Home
from .reporter import Reporter, ScriptStatus

KILL_GRACE_SECONDS = 5.0
_IGNORED_SUFFIXES = ("~", ".bak", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".rpmnew", ".rpmsave", ".swp")


@dataclass(frozen=True)
class ScriptRun:
    """One script file to run, with the policies of the entry that named it."""

    path: Path
    entry: Script
    env_name: str | None

    @property
    def label(self) -> str:
        return f"{self.env_name}/{self.path.name}" if self.env_name else self.path.name


@dataclass(frozen=True)
class ScriptResult:
    state: str  # "ok", "failed", "timeout", "skipped", "missing"
    exit_code: int | None
    seconds: float
    reason: str = ""


def expand(entry: Script, env_name: str | None = None) -> Iterator[ScriptRun]:
    """The script files an entry stands for, in the order they run."""
    path = Path(entry.path)
    if path.is_dir():
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            if child.name.startswith(".") or child.name.endswith(_IGNORED_SUFFIXES):
                continue
            if child.is_file() and os.access(child, os.X_OK):
                yield ScriptRun(child, entry, env_name)
    else:
        yield ScriptRun(path, entry, env_name)


class MarkerStore:
    """Remembers which scripts succeeded, and with which content, in `<state>/scripts/`."""

    def __init__(self, directory: Path, write: Callable[[Path, str], object]):
        self.directory = directory
        self._write = write

    def _marker(self, run: ScriptRun) -> Path:
        key = hashlib.sha256(f"{run.env_name or ''}\0{run.path}".encode()).hexdigest()[:16]
        return self.directory / f"{key}.json"

    def skip_reason(self, run: ScriptRun, digest: str) -> str | None:
        """Why this script need not run now, or None if it must."""
        if run.entry.run == "always":
            return None
        try:
            marker = json.loads(Home.read_text(self._marker(run)))
        except (OSError, ValueError):
            return None
        if run.entry.run == "once":
            return f"ran once already ({marker.get('finished', 'earlier')})"
        if marker.get("sha256") == digest:
            return "unchanged since its last successful run"
        return None

    def record_success(self, run: ScriptRun, digest: str) -> None:
        marker = {"path": str(run.path), "env": run.env_name, "sha256": digest, "finished": _now()}
        self._write(self._marker(run), json.dumps(marker))


def run_script(run: ScriptRun, env: dict[str, str], log: Callable[[str], None], cwd: str) -> ScriptResult:
    """Run one script to completion or timeout, sending each output line to `log`."""
    if not run.path.is_file():
        return ScriptResult("missing", None, 0.0, f"{run.path} does not exist in the image")
    if not os.access(run.path, os.X_OK):
        return ScriptResult("failed", None, 0.0, f"{run.path} is not executable (chmod +x it in the image)")
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            [str(run.path)],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as e:
        return ScriptResult("failed", None, 0.0, f"{run.path} could not be started: {e.strerror}")
    assert process.stdout is not None
    reader = threading.Thread(target=_relay, args=(process.stdout, run.label, log), daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=run.entry.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        reader.join(timeout=KILL_GRACE_SECONDS)
        seconds = time.monotonic() - started
        return ScriptResult("timeout", None, seconds, f"killed after the {run.entry.timeout:g} s timeout")
    except BaseException:  # the start itself is interrupted (SIGINT): the script must not outlive it
        _kill_group(process)
        raise
    reader.join(timeout=KILL_GRACE_SECONDS)
    seconds = time.monotonic() - started
    if code != 0:
        reason = f"exited with code {code}" if code > 0 else f"killed by signal {-code}"
        return ScriptResult("failed", code, seconds, reason)
    return ScriptResult("ok", 0, seconds)


def script_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _relay(stream, label: str, log: Callable[[str], None]) -> None:  # type: ignore[no-untyped-def]
    with stream:
        for raw in stream:
            log(f"[{label}] {raw.decode(errors='replace').rstrip()}")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the script's whole process group, then SIGKILL whatever is left after a grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(process.pid, signal.SIGKILL)  # the script, or children that ignored SIGTERM
    process.wait()


def _signal_group(group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ScriptSteps:
    """A start's setup-script steps: an env's scripts right after it is ready, the global ones at the end."""

    def __init__(self, home: Home, state_dir: Path, report: Reporter):
        self.home = home
        self.state_dir = state_dir
        self.report = report
        self.markers = MarkerStore(state_dir / "scripts", lambda path, text: home.write_text(path, text, "state file"))

    def run(
        self, entries: tuple[Script, ...], env_name: str | None = None, prefix: Path | None = None, mode: str = ""
    ) -> str | None:
        """Run `entries` (an env's, with its prefix and the mode it got); the failure that stops the start, if
        an `on_failure: fail` script failed (then the scripts after it do not run)."""
        environ = dict(os.environ, HOME=str(self.home.path), OSL_HOOKS_STATE_DIR=str(self.state_dir))
        if env_name is not None and prefix is not None:
            environ.update(
                OSL_ENV_NAME=env_name,
                OSL_ENV_PREFIX=str(prefix),
                OSL_ENV_MODE=mode,
                CONDA_PREFIX=str(prefix),
                PATH=f"{prefix}/bin:{environ.get('PATH', '')}",
            )
        for entry in entries:
            for run in expand(entry, env_name):
                failure = self._run_one(run, environ)
                if failure is not None:
                    return failure
        return None

    def _run_one(self, run: ScriptRun, environ: dict[str, str]) -> str | None:
        digest = script_digest(run.path)
        skip = self.markers.skip_reason(run, digest)
        if skip:
            skipped = ScriptStatus(str(run.path), run.env_name, "skipped", None, 0.0, skip)
            self.report.script_result(skipped, run.label, f"Skipping setup script {run.label}: {skip}")
            return None
        self.report.script_begin(run.label, f"Running setup script {run.label}", run.env_name)
        result = run_script(run, environ, self.report.log, cwd=str(self.home.path))
        status = ScriptStatus(
            str(run.path), run.env_name, result.state, result.exit_code, round(result.seconds, 3), result.reason
        )
        if result.state == "ok":
            try:
                self.markers.record_success(run, digest)
            except OSError as e:
                self.report.warning(
                    f"Setup script {run.label} ran, but that could not be remembered ({e.strerror}); "
                    "it runs again at the next start",
                    run.env_name,
                )
            self.report.script_result(status, run.label, f"Setup script {run.label} finished in {result.seconds:.1f} s")
            return None
        message = f"Setup script {run.label} {result.reason}"
        if run.entry.on_failure == "fail":
            self.report.script_result(status, run.label, message, level="error")
            return message
        continuing = f"{message}; continuing (see {self.state_dir / LOG_FILE})"
        self.report.script_result(status, run.label, continuing, level="warning")
        return None
