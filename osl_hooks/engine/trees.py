"""What osl-hooks makes in the home beside a copy: staging directories, the temporary files of a transfer
(removed when a killed one left them), and removing trees it made.

Apart from the rsync driver (`sync`), because every start looks for what an interrupted one left, and a restart
with nothing new imports only what it uses (no rsync, no processes).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

STAGING_PREFIX = ".osl-staging-"
_PARTIAL = re.compile(
    r"\.(.+)\.[A-Za-z0-9]{6}"
)  # the temporary name of NAME in a transfer (rsync receiver.c get_tmpname)


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


def remove_partial_files(target: Path, paths: Iterable[str]) -> int:
    """Remove the partial files a killed `copy_files` of `paths` left in `target` (rsync's `.NAME.XXXXXX`
    beside each NAME it was writing); returns how many. Only regular files of exactly that form, next to a
    path that was being written, are touched."""
    names_by_dir: dict[str, set[str]] = {}
    for path in paths:
        directory, _, name = path.rpartition("/")
        names_by_dir.setdefault(directory, set()).add(name)
    removed = 0
    for directory, names in names_by_dir.items():
        folder = os.path.join(target, directory)
        try:
            entries = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            match = _PARTIAL.fullmatch(entry)
            if match and match.group(1) in names and os.path.isfile(path := os.path.join(folder, entry)):
                if not os.path.islink(path):
                    os.unlink(path)
                    removed += 1
    return removed
