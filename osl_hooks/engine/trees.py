"""The directories osl-hooks makes in the home beside a copy: staging directories, and removing trees it made.

Apart from the rsync driver (`sync`), because every start looks for what an interrupted one left, and a restart
with nothing new imports only what it uses (no rsync, no processes).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

STAGING_PREFIX = ".osl-staging-"


def new_staging_dir(target: Path) -> Path:
    """A fresh, empty directory beside `target`, private to this start."""
    staging = target.parent / f"{STAGING_PREFIX}{target.name}-{os.urandom(4).hex()}"
    staging.mkdir(mode=0o700)
    return staging


def stale_staging_dirs(target: Path) -> list[Path]:
    """Staging directories left for `target` by interrupted starts (ours to remove)."""
    if not target.parent.is_dir():
        return []
    pattern = f"{STAGING_PREFIX}{target.name}-*"
    return [p for p in target.parent.glob(pattern) if p.is_dir() and not p.is_symlink()]


def remove_tree(path: Path, missing_ok: bool = False) -> None:
    """Remove a tree osl-hooks created, making read-only directories writable on the way."""

    def make_writable_and_retry(function, failed_path, excinfo):  # type: ignore[no-untyped-def]
        if missing_ok and isinstance(excinfo[1], FileNotFoundError):
            return
        os.chmod(os.path.dirname(failed_path), 0o700)
        function(failed_path)

    shutil.rmtree(path, onerror=make_writable_and_retry)
