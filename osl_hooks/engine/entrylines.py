"""The entries of a manifest file: one sorted JSON line per path, looked up and parsed only when asked for.

Kept apart from `manifest` (which reads, writes and compares whole manifests): these are the classes every
lookup of an update goes through, and the one place that knows the lines' order. A manifest file's entry
lines are sorted as bytes (`Manifest.dump` has written them so since the format's version 2), so a path's line
is found by bisection, in the file's bytes as read (`sortedbytes`) or in its lines once they are split.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import NamedTuple

from .sortedbytes import SortedRecords


class Entry(NamedTuple):
    """One path of a tree. A named tuple: manifests hold tens of thousands, built fast from JSON."""

    kind: str  # "f" file, "d" directory, "l" symlink
    size: int = 0
    mode: int = 0
    mtime_ns: int = 0
    digest: str | None = None  # sha256 of a file's content (baked manifests)
    link: str | None = None  # a symlink's target

    def same_content(self, other: Entry | None) -> bool:
        """True if `other` holds the same thing: by hash when both have one, else by size and mtime."""
        if other is None or other.kind != self.kind:
            return False
        if self.kind == "l":
            return self.link == other.link
        if self.kind == "d":
            return True
        if self.mode != other.mode:
            return False
        if self.digest and other.digest:
            return self.digest == other.digest
        return self.size == other.size and self.mtime_ns == other.mtime_ns

    def same_stat(self, other: Entry | None) -> bool:
        """True if a file on disk still looks as it did (size, mtime, link): how user changes are seen."""
        if other is None or other.kind != self.kind:
            return False
        if self.kind == "l":
            return self.link == other.link
        return self.kind == "d" or (self.size == other.size and self.mtime_ns == other.mtime_ns)


class EntryLines(Mapping[str, Entry]):
    """The entries of a manifest file, kept as its sorted raw lines and parsed only when asked for.

    One line per path, `[path, kind, size, mode, mtime_ns, digest, link, owner]`: a lookup is a binary
    search and one `json.loads`, and two manifests are compared as sets of lines (`differing_paths`), so
    the unchanged entries of an update are never parsed. Iterating parses everything (a full comparison).
    `lines` may be a function that reads them: a start that only needs the header never reads the entries.
    `body`: the same lines as one bytes object, as `manifest.load` read and checked them. Lookups bisect it
    (an update's few hundred, without making an object of each of the 33k lines: 7 of a 1% update's 12 ms of
    loading were the splitting); whatever needs every line (a full comparison, a first copy) drops it and
    reads `lines` from their source, a chunk at a time, so the entries are never held twice.
    """

    def __init__(self, lines: list[bytes] | Callable[[], list[bytes]], body: bytes | None = None):
        self._source = lines
        self._body = SortedRecords(body, b"\n") if body is not None else None
        self._parsed: dict[str, tuple[Entry, str | None]] = {}
        self._found: dict[str, bytes | None] = {}  # the lines `line` found, by path
        self._differing: tuple[EntryLines, list[str]] | None = None

    @cached_property
    def lines(self) -> list[bytes]:
        self._body = None  # the lines replace it
        source = self._source
        return sorted(source() if callable(source) else source)  # sorted already by `Manifest.dump`: linear

    def parse(self, lines: Iterable[bytes]) -> list[str]:
        """Parse lines (once each is enough) and return their paths. One `json.loads` of them all as an array:
        for short lines, a call per line costs more than the parsing itself."""
        rows = json.loads(b"[" + b",".join(lines) + b"]")
        for row in rows:
            self._parsed[row[0]] = (Entry._make(row[1:7]), row[7])
        return [row[0] for row in rows]

    def line(self, path: str) -> bytes | None:
        """The entry line of `path` as the file has it, or None; each path's searched for once (an update asks
        for the lines of the paths it changed to parse them, then again to keep them in its base's delta)."""
        if path in self._found:
            return self._found[path]
        key = _line_key(path).encode()
        if self._body is not None:
            at = self._body.find(key)
            found = self._body.record(at) if at >= 0 else None
        else:
            i = bisect.bisect_left(self.lines, key)
            found = self.lines[i] if i < len(self.lines) and self.lines[i].startswith(key) else None
        self._found[path] = found
        return found

    def _lookup(self, path: str) -> tuple[Entry, str | None] | None:
        found = self._parsed.get(path)
        if found is None:
            line = self.line(path)
            if line is None:
                return None
            self.parse([line])
            found = self._parsed[path]
        return found

    def prefetch(self, paths: Iterable[str]) -> None:
        """Parse the lines of `paths` at once, for a caller about to look up each (an update checks every
        package record): one `json.loads` of them all, not one each."""
        lines = [line for path in paths if path not in self._parsed and (line := self.line(path)) is not None]
        if lines:
            self.parse(lines)

    def __getitem__(self, path: str) -> Entry:
        found = self._lookup(path)
        if found is None:
            raise KeyError(path)
        return found[0]

    def get(self, path: str, default: Entry | None = None) -> Entry | None:  # type: ignore[override]
        """As `Mapping.get`, without its exception round trip (an update asks several times per path)."""
        found = self._lookup(path)
        return default if found is None else found[0]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self._lookup(path) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._parse_all())

    def __len__(self) -> int:
        return self._body.data.count(b"\n") if self._body is not None else len(self.lines)

    def owner(self, path: str) -> str | None:
        found = self._lookup(path)
        return found[1] if found else None

    def owners(self) -> dict[str, str]:
        return {p: owner for p, (_, owner) in self._parse_all().items() if owner is not None}

    def _parse_all(self) -> dict[str, tuple[Entry, str | None]]:
        if len(self._parsed) < len(self.lines):
            self.parse(self.lines)
        return self._parsed

    def differing(self, other: EntryLines) -> list[str]:
        """The paths whose lines differ between `self` and `other`, sorted (kept: an update asks twice)."""
        if self._differing is None or self._differing[0] is not other:
            mine, theirs = frozenset(self.lines), frozenset(other.lines)
            paths = {*self.parse(mine - theirs), *other.parse(theirs - mine)}
            self._differing = (other, sorted(paths))
        return self._differing[1]


class OverlaidEntries(EntryLines):
    """The entries of `under`, but for `paths`, whose lines are `lines` (a path of `paths` with no line there is
    absent): a version known by how it differs from another, such as the previous version an image's baked diff
    gives, or a sync's base kept as a full base and a delta (`osl_hooks.engine.basedelta`). Only what is asked
    for is parsed."""

    def __init__(self, under: EntryLines, paths: list[str], lines: list[bytes]):
        super().__init__(lambda: self._all_lines())
        self.under = under
        self.paths = paths
        self._named = frozenset(paths)
        self._over = EntryLines(lines)

    def line(self, path: str) -> bytes | None:
        return self._over.line(path) if path in self._named else self.under.line(path)

    def _lookup(self, path: str) -> tuple[Entry, str | None] | None:
        if path in self._named:
            return self._over._lookup(path)
        return self.under._lookup(path)

    def prefetch(self, paths: Iterable[str]) -> None:
        """As `EntryLines.prefetch`, each path from where its lookup reads it (never building every line)."""
        paths = list(paths)
        self._over.prefetch(path for path in paths if path in self._named)
        self.under.prefetch(path for path in paths if path not in self._named)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(p for p in {*self.under, *self._over} if self._lookup(p) is not None))

    def _all_lines(self) -> list[bytes]:
        """Every line of this version (a full comparison, never an update's path)."""
        kept = [line for line in self.under.lines if line_path(line) not in self._named]
        return sorted(kept + self._over.lines)


class LineOwners(Mapping[str, str]):
    """Which package owns each path, read from the same lines as the entries (parsed on demand)."""

    def __init__(self, entries: EntryLines):
        self._entries = entries

    def __getitem__(self, path: str) -> str:
        owner = self._entries.owner(path)
        if owner is None:
            raise KeyError(path)
        return owner

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self._entries.owner(path) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries.owners())

    def __len__(self) -> int:
        return len(self._entries.owners())


def _line_key(path: str) -> str:
    """How an entry line for `path` begins: its path as `json.dumps` writes it (a path with no quote, backslash or
    control character is written as it is: most are, and an update looks up a thousand of them)."""
    if path.isprintable() and '"' not in path and "\\" not in path:
        return f'["{path}",'
    return f"[{json.dumps(path, ensure_ascii=False)},"


def line_path(line: bytes) -> str:
    """The path of one entry line of a manifest file."""
    return json.loads(line)[0]
