"""What an env tree holds: one entry per path, and one id for the whole tree.

The id is what lets a start with nothing new skip an env, and the entries are what a later sync compares.
Entries record type, size, mode and mtime (the identity rsync itself uses by default); the walk uses
`os.scandir`, whose cached `stat` results make it about as cheap as rsync's own walk.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    kind: str  # "f" file, "d" directory, "l" symlink
    size: int
    mode: int
    mtime_ns: int
    link: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A tree's entries by relative path, with its byte and block totals."""

    entries: dict[str, Entry]
    bytes: int
    disk_bytes: int

    @property
    def id(self) -> str:
        digest = hashlib.sha256()
        for path in sorted(self.entries):
            e = self.entries[path]
            digest.update(f"{path}\0{e.kind}\0{e.size}\0{e.mode:o}\0{e.mtime_ns}\0{e.link or ''}\n".encode())
        return digest.hexdigest()

    @property
    def files(self) -> int:
        return sum(1 for e in self.entries.values() if e.kind == "f")


def scan_tree(root: str | os.PathLike[str]) -> Manifest:
    """Walk `root` without following symlinks and describe every path under it."""
    entries: dict[str, Entry] = {}
    total = disk = 0
    pending = [""]
    root = os.fspath(root)
    while pending:
        rel_dir = pending.pop()
        with os.scandir(os.path.join(root, rel_dir)) as it:
            for item in it:
                rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
                st = item.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    entries[rel] = Entry("l", 0, 0o777, st.st_mtime_ns, os.readlink(item.path))
                elif stat.S_ISDIR(st.st_mode):
                    entries[rel] = Entry("d", 0, stat.S_IMODE(st.st_mode), 0)
                    pending.append(rel)
                elif stat.S_ISREG(st.st_mode):
                    entries[rel] = Entry("f", st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime_ns)
                    total += st.st_size
                    disk += st.st_blocks * 512
    return Manifest(entries, total, disk)
