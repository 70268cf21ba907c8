"""A linked copy's links file (`NAME.links.GEN`, see `syncstate`): its paths sorted, so that whether a path is a
link into the image is a binary search in the file's bytes.

Format 2: a header line `osl-hooks-links 2 COUNT CRC32` (the number of paths, zero-padded to ten digits, and the
body's CRC-32 as eight hex digits: fixed widths, so a writer streams the body and fills the header in after it),
then every path followed by a NUL (the one byte no path holds), sorted as bytes. An update asks about the few
hundred paths the image changed: it reads the file, checks its CRC-32 (in C), and searches it in place (`sortedbytes`), never splitting,
decoding or hashing the tens of thousands of others (as a set, the 4x env's 149k links took 17 MB and 32 ms to
build; 450 searches take 2-5 ms). Damage (a CRC-32 not the header's) reads as no file. Format 1 (paths in no
order, after `osl-hooks-links 1 COUNT`) is still read, sorted in memory, and written as format 2 at the next
commit.
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .sortedbytes import SortedRecords

FORMAT = b"osl-hooks-links"
_HEADER = "osl-hooks-links 2 {:010d} {:08x}\n"
_SLICE = 4096  # paths joined and written at once


class SortedLinks:
    """The paths of a links file, kept as its bytes (`data[start:]`: each path followed by a NUL, sorted)."""

    def __init__(self, data: bytes, start: int, count: int, rewrite: bool = False):
        """`rewrite`: the file holds another format (the next commit writes it anew, even unchanged)."""
        self._records = SortedRecords(data, b"\0", start)
        self._count, self.rewrite = count, rewrite
        self._known: dict[str, bool] = {}  # the answers so far: an update asks about a path several times

    @classmethod
    def of(cls, paths: Iterable[str], rewrite: bool = False) -> SortedLinks:
        ordered = sorted(map(os.fsencode, paths))
        return cls(b"".join(p + b"\0" for p in ordered), 0, len(ordered), rewrite)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        """Every path, in order (decodes them all: for the rare starts that look at every link)."""
        records = self._records
        return iter(os.fsdecode(records.data[records.start : -1]).split("\0") if self._count else ())

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str) or not self._count:
            return False
        found = self._known.get(path)
        if found is None:
            found = self._known[path] = self._records.find(os.fsencode(path), whole=True) >= 0
        return found

    def under(self, directory: str) -> Iterator[str]:
        """The paths inside `directory` ('' is the root: all), in order: a range of the sorted paths."""
        data, prefix = self._records.data, os.fsencode(f"{directory}/" if directory else "")
        at = self._records.first_not_below(prefix) if self._count else len(data)
        while at < len(data) and data.startswith(prefix, at):
            end = data.find(b"\0", at)
            yield os.fsdecode(data[at:end])
            at = end + 1

    def merged(self, added: Iterable[str], removed: Iterable[str]) -> Iterator[bytes | memoryview]:
        """The body of these paths with `added` (none of them here) put in and `removed` (all here) taken out,
        in pieces: the unchanged runs are slices of the data, never copied path by path."""
        records = self._records
        data, view = records.data, memoryview(records.data)
        # (offset, 0, path): put in before the path at offset; (offset, 1, path): cut out, up to the next path
        edits = [(records.first_not_below(p), 0, p) for p in map(os.fsencode, added)]
        edits += [(records.first_not_below(p), 1, p) for p in map(os.fsencode, removed)]
        at = records.start
        for offset, cut, path in sorted(edits):
            yield view[at:offset]
            if cut:
                at = data.find(b"\0", offset) + 1
            else:
                yield path + b"\0"
                at = offset
        yield view[at:]


class LinkChanges:
    """The links a copy will have: those of its links file (`old`), with the paths an update adds and removes."""

    def __init__(self, old: SortedLinks):
        self.old = old
        self.added: set[str] = set()  # none of them in `old`
        self.removed: set[str] = set()  # all of them in `old`

    def __contains__(self, path: object) -> bool:
        return path in self.added or (path not in self.removed and path in self.old)

    def __len__(self) -> int:
        return len(self.old) + len(self.added) - len(self.removed)

    def __iter__(self) -> Iterator[str]:
        yield from (p for p in self.old if p not in self.removed)
        yield from sorted(self.added)

    def add(self, path: str) -> None:
        if path in self.removed:
            self.removed.discard(path)
        elif path not in self.old:
            self.added.add(path)

    def discard(self, path: str) -> None:
        if path in self.added:
            self.added.discard(path)
        elif path in self.old:
            self.removed.add(path)

    def holds_under(self, directory: str) -> bool:
        """Whether a link is inside `directory` ('' is the root): a search of the file, not a walk of it."""
        prefix = f"{directory}/" if directory else ""
        if any(p.startswith(prefix) for p in self.added):
            return True
        return any(p not in self.removed for p in self.old.under(directory))


def read(path: Path) -> SortedLinks | None:
    """The links file at `path`; None if it cannot be read or does not hold what its header says (damaged)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    start = data.find(b"\n") + 1
    header = data[: start - 1].split(b" ")
    if not start or len(header) < 3 or header[0] != FORMAT or not header[2].isdigit():
        return None
    count = int(header[2])
    if header[1] == b"1" and len(header) == 3:  # no order, no trailing NUL, no checksum
        paths = os.fsdecode(data[start:]).split("\0") if start < len(data) else []
        return SortedLinks.of(paths, rewrite=True) if len(paths) == count else None
    if header[1] != b"2" or len(header) != 4 or (count and data[-1] != 0):
        return None
    try:  # the count is the writer's, not counted again: a body that is not what it wrote fails its CRC-32
        if zlib.crc32(memoryview(data)[start:]) != int(header[3], 16):
            return None
    except ValueError:
        return None
    return SortedLinks(data, start, count)


def write(f: BinaryIO, links: set[str] | LinkChanges) -> None:
    """Write `links` to the new file `f` (format 2): the body streamed, the header filled in after it."""
    if isinstance(links, LinkChanges):
        _write(f, len(links), links.old.merged(links.added, links.removed))
        return
    ordered = sorted(links)  # as strings, which is as UTF-8 bytes: no second list of 149k paths (11 MB)
    try:
        if sys.getfilesystemencoding() == "utf-8":
            _write(f, len(ordered), (_joined(ordered, i).encode() for i in range(0, len(ordered), _SLICE)))
            return
    except UnicodeEncodeError:  # a name that is not UTF-8 (os.fsdecode kept its bytes): its order differs
        f.seek(0)
        f.truncate()
    encoded = sorted(map(os.fsencode, links))
    _write(f, len(encoded), (b"\0".join(encoded[i : i + _SLICE]) + b"\0" for i in range(0, len(encoded), _SLICE)))


def _joined(paths: list[str], start: int) -> str:
    return "\0".join(paths[start : start + _SLICE]) + "\0"


def _write(f: BinaryIO, count: int, pieces: Iterable[bytes | memoryview]) -> None:
    f.write(_HEADER.format(0, 0).encode())
    crc = 0
    for piece in pieces:
        f.write(piece)
        crc = zlib.crc32(piece, crc)
    f.seek(0)
    f.write(_HEADER.format(count, crc).encode())
