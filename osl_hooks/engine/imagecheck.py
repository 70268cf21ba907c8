"""Checks `osl-hooks bake` makes on an image env, for what every start will need.

bake runs as root at image build time; starts run as the notebook user. An env the user cannot read
(some installers, py-rattler among them, write `conda-meta/*.json` with mode 0600) makes every start's
rsync fail, so the image build must fail instead, naming the files. The notebook user is given as
UID:GID (docker-stacks' default 1000:100). An env the user can *write* (docker-stacks' `fix-permissions`
gives `/opt/conda` to the notebook user) works, but a `linked` env over it is copied in full, so bake says
how to make it read-only. A path is readable when the permission bits for that user
(owner, group or others, as the kernel decides) allow it, and directories must also be searchable.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

DEFAULT_NOTEBOOK_USER = (1000, 100)


def parse_user(text: str) -> tuple[int, int]:
    """`UID` or `UID:GID` (GID defaults to docker-stacks' 100)."""
    uid, _, gid = text.partition(":")
    return int(uid), int(gid or DEFAULT_NOTEBOOK_USER[1])


def unreadable_paths(root: str | os.PathLike[str], user: tuple[int, int] = DEFAULT_NOTEBOOK_USER) -> list[str]:
    """Paths under `root` (relative) that `user` cannot read, or cannot list and enter for directories."""

    def unreadable(st: os.stat_result) -> bool:
        needed = 0o5 if stat.S_ISDIR(st.st_mode) else 0o4
        return _bits_for(st, user) & needed != needed

    return _paths_where(root, unreadable)


def writable_paths(root: str | os.PathLike[str], user: tuple[int, int] = DEFAULT_NOTEBOOK_USER) -> list[str]:
    """Paths under `root` (relative, `.` for root itself) that `user` can write: a `linked` env never links
    into those (the user's writes through a link would land in the image), so it is copied in full."""
    root = Path(root)
    writable = ["."] if _bits_for(root.lstat(), user) & 0o2 else []
    return writable + _paths_where(root, lambda st: bool(_bits_for(st, user) & 0o2))


def _paths_where(root: str | os.PathLike[str], test: Callable[[os.stat_result], bool]) -> list[str]:
    """Paths under `root` (relative, symlinks skipped) whose lstat passes `test`, in walk order."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames) + sorted(filenames):
            path = Path(dirpath, name)
            st = path.lstat()
            if not stat.S_ISLNK(st.st_mode) and test(st):
                found.append(path.relative_to(root).as_posix())
    return found


def _bits_for(st: os.stat_result, user: tuple[int, int]) -> int:
    uid, gid = user
    if st.st_uid == uid:
        return (st.st_mode >> 6) & 0o7
    if st.st_gid == gid:
        return (st.st_mode >> 3) & 0o7
    return st.st_mode & 0o7
