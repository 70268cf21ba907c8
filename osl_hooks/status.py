"""What a start leaves behind for its readers: the status file and the start log in the user's state folder.

Both sides read these: the engine writes them (`osl_hooks.engine.reporter`), and the hub's progress for local
spawners and `osl-hooks status` read them. The status file holds the start's typed events (`osl_hooks.events`),
so a reader acts on kinds and numbers, never on the human sentences.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote

STATUS_FILE = "status.json"
# Per env, the last command on it (`osl-hooks reset`, `materialize`, `remove`), in status.json's format: their own
# files, so status.json stays the last start's (the hub's start record, the lab's "last start").
COMMANDS_DIR = "commands"
LOG_FILE = "start.log"
LOCK_FILE = "start.lock"  # held by a start, a background copy's commit and the save hook (engine/lock.py)
RETIRED_FILE = "retired.json"  # copies of envs the hub no longer offers, since when (engine/retire.py)
STATUS_VERSION = 1


def command_file(env: str) -> str:
    """The status file of the last command on `env`, relative to the state folder (any name: a command names the
    env it was given, which may be none of the plan's)."""
    return f"{COMMANDS_DIR}/{quote(env, safe='')}.json"


def read_status(state_dir: str | os.PathLike[str], name: str = STATUS_FILE) -> dict[str, Any] | None:
    """The last status a start wrote (`name`: a command's, `command_file`), or None if there is none (or it cannot
    be read)."""
    try:
        return json.loads(read_state_text(Path(state_dir, name)))
    except (OSError, ValueError):
        return None


def read_state_text(path: str | os.PathLike[str], private: bool = False) -> str:
    """A state or config file's text, never read through a link: a symlink in its place raises OSError, as a
    FIFO, device or directory does, at once (opening a FIFO for reading would wait forever for a writer, and a
    link could show the user's or another user's file as osl-hooks' state). `private`: only the user's own file
    of mode 0600, else OSError (a record osl-hooks rewrites when it is not exactly what it wrote)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise OSError(f"{path} is a symbolic link: osl-hooks never reads through one (left as it is)") from None
        raise
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        if private and (st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) != 0o600):
            raise OSError(f"{path} is not the user's own file of mode 0600")
        return f.read().decode("utf-8")


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
