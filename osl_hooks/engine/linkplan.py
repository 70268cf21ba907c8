"""Which files of an env a `linked` copy makes real, and which it makes symlinks into the image.

A linked copy is worth it only for large files (on ext4 a symlink to a long path costs a 4 KiB block, as
much as a small file), and only for files that work the same through a link. These must always be real:

- files relocation rewrites (they embed the prefix: scripts, `pyvenv.cfg`, conda's recorded files), since
  the home's copy must say the home's prefix;
- `conda-meta/` and `*.dist-info/RECORD` (the package records: an update compares them, pip and conda
  rewrite them);
- ELF programs (executables with an interpreter, or static ones), `bin/python*` first: the kernel finds an
  executable's `$ORIGIN` (and CPython its `sys.prefix`) from the real file, so a linked program would load
  the image's libraries and report the image's prefix. Shared libraries may be links: the loader gives a
  library loaded through a link the link's directory as `$ORIGIN`, so it finds its neighbours in the home.

Everything is decided from the image's manifest, plus a read of the ELF header of large executable files
(a few hundred bytes each, from the image).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from .manifest import Manifest
from .packages import record_name

ELF_MAGIC = b"\x7fELF"
_PT_INTERP = 3
_ET_EXEC = 2
ALWAYS_REAL_DIRS = ("conda-meta/",)
ALWAYS_REAL_FILES = ("pyvenv.cfg",)


def is_elf_program(path: str | os.PathLike[str]) -> bool:
    """True for an ELF executable (ET_EXEC, or a PIE with a PT_INTERP program header), not a library."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 52 or head[:4] != ELF_MAGIC or head[5] not in (1, 2):
                return False
            order = "<" if head[5] == 1 else ">"
            if struct.unpack_from(order + "H", head, 16)[0] == _ET_EXEC:
                return True
            if head[4] == 2:  # 64-bit
                (phoff,) = struct.unpack_from(order + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
            else:
                (phoff,) = struct.unpack_from(order + "I", head, 28)
                phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
            if phentsize < 4 or phnum > 4096:
                return False
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return any(struct.unpack_from(order + "I", table, i)[0] == _PT_INTERP for i in range(0, len(table) - 3, phentsize))


def must_be_real(path: str, relocated: set[str]) -> bool:
    """True for paths that are never links, whatever their size (their content is not the deciding part)."""
    if path in relocated or path in ALWAYS_REAL_FILES or path.startswith(ALWAYS_REAL_DIRS):
        return True
    if record_name(path) is not None:  # an update tells the user's packages by their records' size and mtime
        return True
    return path.startswith("bin/python")


class Classifier:
    """Decides, one path at a time, whether a linked copy makes the image's file a link."""

    def __init__(self, theirs: Manifest, source: Path, threshold: int):
        self.theirs, self.source, self.threshold = theirs, source, threshold
        self.relocated = {f.path for f in theirs.prefix_files}

    def is_link(self, path: str) -> bool:
        entry = self.theirs.entries[path]
        if entry.kind != "f" or entry.size < self.threshold or must_be_real(path, self.relocated):
            return False
        return not (entry.mode & 0o111 and is_elf_program(self.source / path))


def linked_paths(theirs: Manifest, source: Path, threshold: int) -> set[str]:
    """The image's files a linked copy makes symlinks: large, and nothing that must be real."""
    classifier = Classifier(theirs, source, threshold)
    return {path for path in theirs.entries if classifier.is_link(path)}


def link_target(source: Path, path: str) -> str:
    """What a link osl-hooks makes for `path` points at: the file's absolute path in the image."""
    return f"{source}/{path}"


def volume_bytes(theirs: Manifest, links: set[str], block: int = 4096) -> int:
    """What a linked copy takes on the volume: real files by their blocks, one block per link and directory.

    A symlink whose target is longer than 60 bytes takes a block on ext4 (shorter ones live in the inode).
    """
    total = 0
    for path, entry in theirs.entries.items():
        if entry.kind == "f" and path not in links:
            total += -(-entry.size // block) * block
        elif entry.kind == "d" or path in links:
            total += block
    return total
