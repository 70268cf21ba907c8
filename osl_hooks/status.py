"""What a start leaves behind for its readers: the status file and the start log in the user's state folder.

Both sides read these: the engine writes them (`osl_hooks.engine.reporter`), and the hub's progress for local
spawners and `osl-hooks status` read them. The status file holds the start's typed events (`osl_hooks.events`),
so a reader acts on kinds and numbers, never on the human sentences.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
LOG_FILE = "start.log"
LOCK_FILE = "start.lock"  # held by a start, a background copy's commit and the save hook (engine/lock.py)
STATUS_VERSION = 1


def read_status(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last status a start wrote, or None if there is none (or it cannot be read)."""
    try:
        return json.loads(read_state_text(Path(state_dir, STATUS_FILE)))
    except (OSError, ValueError):
        return None


def read_state_text(path: str | os.PathLike[str]) -> str:
    """A state or config file's text; a FIFO, device or directory in its place raises OSError at once
    (opening a FIFO for reading would wait forever for a writer)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return f.read().decode("utf-8")


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
