"""Named points between the engine's own writes, where tests kill a start for real.

A start must survive being killed anywhere: the next start finishes or undoes what it was doing. To prove
that, the engine calls `point(NAME)` right after each write, rename and unlink that changes the home, and
the fault-finding tests (tests/test_faults_kill.py) run `osl-hooks start` with

- `OSL_HOOKS_FAULT_LIST=FILE`: every point reached is appended to FILE (one name a line), to enumerate them;
- `OSL_HOOKS_FAULT_AT=NAME[:N]`: the process SIGKILLs itself the N-th time (default 1) it reaches NAME
  (point names contain ':' themselves; a trailing ':N' with digits is the count);
- `OSL_HOOKS_HOLD_AT=NAME=FILE`: at NAME, the process waits while FILE exists (a test holds a background
  copy at a known step, does what a user would do meanwhile, then lets it go on).

Without either variable `point` does nothing but one dictionary test, so it can stay in production code.
"""

from __future__ import annotations

import os
import signal
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
_HOLD = tuple(os.environ[HOLD_AT_ENV_VAR].split("=", 1)) if "=" in os.environ.get(HOLD_AT_ENV_VAR, "") else None


def point(name: str) -> None:
    """A place where a kill must leave the home in a state the next start can finish or undo."""
    if _TARGET is None and _LIST is None and _HOLD is None:
        return
    if _HOLD is not None and _HOLD[0] == name:
        while os.path.exists(_HOLD[1]):
            time.sleep(HOLD_POLL_SECONDS)
    _hits[name] = _hits.get(name, 0) + 1
    if _LIST is not None:
        with open(_LIST, "a", encoding="utf-8") as f:
            f.write(name + "\n")
    if _TARGET == (name, _hits[name]):
        os.kill(os.getpid(), signal.SIGKILL)
