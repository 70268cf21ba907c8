"""Saving a linked file from JupyterLab: the link becomes the user's own file first, then the save writes it.

A linked env's large files are links into the image, which the user cannot write: without this, saving one
from JupyterLab answers "Permission denied". jupyter_server runs `FileContentsManager.pre_save_hook` before
it writes a file; with `pre_save_hook` set to this module's hook (see docs/users.md), a save of a path that
is one of osl-hooks' links into an image env first makes that one file real, exactly as
`osl-hooks materialize NAME PATH` does (a copy of the image's file, the sync record updated in one rename,
under the start lock), and the save then writes the user's content into the user's file. Every other path
(a regular file, a link the user made) is left to jupyter_server as it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..plan import DEFAULT_STATE_DIR
from ..status import LOCK_FILE
from .homepaths import Home, UnsafePath
from .lock import LockTimeout, StartLock
from .materialize import MaterializeError, is_own_link, make_real, recorded_links
from .syncstate import SyncState

LOCK_SECONDS = 20.0


def pre_save_hook(model: dict, path: str, contents_manager: Any, **kwargs: Any) -> None:
    """jupyter_server's pre-save hook: make the saved path real if it is one of osl-hooks' links."""
    os_path = Path(contents_manager._get_os_path(path))
    if os.path.islink(os_path):
        try:
            make_own_file(os_path, Path.home())
        except (MaterializeError, UnsafePath, LockTimeout, OSError) as e:
            from tornado.web import HTTPError  # jupyter_server's own, present wherever this hook runs

            raise HTTPError(507 if isinstance(e, MaterializeError) else 409, f"Cannot save {path}: {e}") from None


def make_own_file(os_path: Path, home_dir: Path, state_dir: str = DEFAULT_STATE_DIR) -> bool:
    """Make `os_path` a real copy of the image's file if it is osl-hooks' link; True if it did."""
    home = Home(home_dir)
    state_root = home_dir / state_dir
    for name, record in _records(state_root / "envs"):
        target, source = Path(record.get("target", "")), Path(record.get("source", ""))
        rel = os.path.relpath(os.path.abspath(os_path), target)
        if rel.startswith("../") or rel == ".." or rel not in (recorded_links(state_root / "envs", name, record) or ()):
            continue
        if not is_own_link(target, source, rel):
            return False
        with StartLock(state_root / LOCK_FILE, LOCK_SECONDS):
            state = SyncState(home, state_root / "envs", name)
            files, _ = make_real(state, home.check(target, f"environments[{name}].target"), source, rel.__eq__)
        return files == 1
    return False


def _records(envs_state_dir: Path) -> Iterator[tuple[str, dict]]:
    """The sync records of the home's envs (only read: a save must not walk any env)."""
    for path in sorted(envs_state_dir.glob("*.json")):
        try:
            record = json.loads(Home.read_text(path))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            yield path.stem, record
