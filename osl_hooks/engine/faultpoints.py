"""Named points between the engine's own writes, where tests kill a start for real.

A start must survive being killed anywhere: the next start finishes or undoes what it was doing. To prove
that, the engine calls `point(NAME)` right after each write, rename and unlink that changes the home, and
the fault-finding tests (tests/test_faults_kill.py) run `osl-hooks start` with

- `OSL_HOOKS_FAULT_LIST=FILE`: every point reached is appended to FILE (one name a line), to enumerate them;
- `OSL_HOOKS_FAULT_AT=NAME[:N]`: the process SIGKILLs itself the N-th time (default 1) it reaches NAME
  (point names contain ':' themselves; a trailing ':N' with digits is the count);
- `OSL_HOOKS_HOLD_AT=NAME=FILE[;NAME=FILE...]`: at NAME, the process waits while FILE exists (a test holds a
  start or a background copy at a known step, checks what a user sees or does meanwhile, then lets it go on:
  never a race between the test and the work it watches).

Besides the points, `hold(NAME)` marks places where a test may hold the work but which change nothing in the
home (the first tick of a copy's progress, the moment before the server is started): they are neither listed nor
killed at, since a kill there proves nothing a point next to them does not.

Without any variable `point` and `hold` do nothing but one test, so they can stay in production code.
"""

from __future__ import annotations

import os
import time

FAULT_AT_ENV_VAR = "OSL_HOOKS_FAULT_AT"
FAULT_LIST_ENV_VAR = "OSL_HOOKS_FAULT_LIST"
HOLD_AT_ENV_VAR = "OSL_HOOKS_HOLD_AT"
HOLD_POLL_SECONDS = 0.05

_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(FAULT_AT_ENV_VAR)
    if not spec:
        return None
    name, _, count = spec.rpartition(":")
    return (name, int(count)) if name and count.isdigit() else (spec, 1)


_TARGET = _target()
_LIST = os.environ.get(FAULT_LIST_ENV_VAR)


def _holds() -> dict[str, str]:
    specs = (spec.split("=", 1) for spec in os.environ.get(HOLD_AT_ENV_VAR, "").split(";") if "=" in spec)
    return {name: file for name, file in specs}


_HOLDS = _holds()


def hold(name: str) -> None:
    """Wait here while the file a test named for `name` exists (nothing when no test holds `name`)."""
    file = _HOLDS.get(name) if _HOLDS else None
    while file is not None and os.path.exists(file):
        time.sleep(HOLD_POLL_SECONDS)


def point(name: str) -> None:
    """A place where a kill must leave the home in a state the next start can finish or undo."""
    if _TARGET is None and _LIST is None and not _HOLDS:
        return
    hold(name)
    _hits[name] = _hits.get(name, 0) + 1
    if _LIST is not None:
        with open(_LIST, "a", encoding="utf-8") as f:
            f.write(name + "\n")
    if _TARGET == (name, _hits[name]):
        import signal  # only under a test: every start imports this module

        os.kill(os.getpid(), signal.SIGKILL)
