"""What an env tree holds: one entry per path, one id for the whole tree, and what sync needs besides.

A manifest is what makes a restart with nothing new cost almost nothing, and an image update cost in
proportion to the change: the id answers "is anything new?" without walking the env, and the entries
answer "what changed?" without reading it.

`osl-hooks bake PATH` writes the manifest into the env at image build time (`.osl-hooks-manifest.jsonl`),
with a content hash per file, the files that embed the prefix, and the packages' records. The first line
holds the id and the totals, so a start reads one line to learn that nothing is new. Then comes one JSON
line per path, sorted: two manifests are compared as sets of raw lines, and only the lines that differ
are parsed, so an update of 1% of an env parses 1% of its entries. Without a baked manifest, the engine
builds one at start by walking the env (stat only, no hashing; the identity rsync itself uses).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

from .._records import field, record
from .entrylines import Entry, EntryLines, LineOwners, line_path
from .packages import PackageIndex, index_packages
from .relocate import PrefixFile, prefix_files

MANIFEST_FILE = ".osl-hooks-manifest.jsonl"
FORMAT = "osl-hooks-manifest"
FORMAT_VERSION = 2


class ManifestError(Exception):
    """A manifest file that cannot be read; callers fall back to something safe."""


@record
class Manifest:
    """An env tree: entries by relative path, totals, and the extras a sync needs."""

    entries: Mapping[str, Entry]  # a dict when scanned, `EntryLines` when loaded from a file
    bytes: int = 0
    disk_bytes: int = 0
    built_prefix: str | None = None
    prefix_files: list[PrefixFile] = field(default_factory=list)
    packages: PackageIndex = field(default_factory=PackageIndex)
    baked: bool = False
    file: Path | None = None  # the file it was loaded from, if any (a copy of it is a copy of the manifest)
    baked_diff: tuple[bytes, int] | None = None  # the diff from the previous version, and its CRC-32 (`bakeddiff`)

    @cached_property
    def id(self) -> str:
        """Content-based when baked (a rebuilt image with the same files is 'nothing new'), else stat-based."""
        digest = _sha256()
        for path in sorted(self.entries):
            e = self.entries[path]
            identity = e.digest if self.baked else f"{e.size}\0{e.mtime_ns}"
            digest.update(f"{path}\0{e.kind}\0{e.mode:o}\0{identity}\0{e.link or ''}\n".encode())
        return digest.hexdigest()

    @cached_property
    def files(self) -> int:
        return sum(1 for e in self.entries.values() if e.kind == "f")

    def prefetch(self, paths: Iterable[str]) -> None:
        """Ready the entries of `paths` for lookups (see `EntryLines.prefetch`; scanned entries are ready)."""
        if isinstance(self.entries, EntryLines):
            self.entries.prefetch(paths)

    def save_as(self, path: str | os.PathLike[str]) -> None:
        """Write the manifest to `path`: a plain file copy when it was loaded from a file, else `dump`."""
        if self.file is None:
            self.dump(path)
            return
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(self.file, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def header_fields(self) -> dict:
        """What a manifest file's header says of the env (besides the file's format and checksums)."""
        return {
            "id": self.id,
            "baked": self.baked,
            "files": self.files,
            "bytes": self.bytes,
            "disk_bytes": self.disk_bytes,
            "built_prefix": self.built_prefix,
            "prefix_files": [[f.path, f.mode, f.placeholder_length] for f in self.prefix_files],
            "packages": self.packages.records,
        }

    @classmethod
    def from_header(cls, header: dict, entries: Mapping[str, Entry], owners: Mapping[str, str]) -> Manifest:
        """The manifest a header (`header_fields`) describes, with its entries (checked by the caller)."""
        manifest = cls(
            entries,
            header["bytes"],
            header["disk_bytes"],
            header["built_prefix"],
            [PrefixFile(p, m, n) for p, m, n in header["prefix_files"]],
            PackageIndex(header["packages"], owners),
            header["baked"],
        )
        # Checked through the entries' checksum, not recomputed (the id's definition is the same in both versions).
        manifest.__dict__.update(id=str(header["id"]), files=int(header["files"]))
        return manifest

    def dump(self, path: str | os.PathLike[str], since: Manifest | None = None) -> None:
        """Write the manifest atomically: a header line, then one line per entry, sorted (see `EntryLines`),
        and with `since` (the previous version's manifest) a last line, the diff from it (`bakeddiff`).

        The header carries the entry lines' CRC-32, so damage is found without recomputing the id (CRC-32
        finds accidental damage, which is what a manifest meets, at 1/20 of sha256's cost).
        """
        path = Path(path)
        owners = self.packages.owners
        lines = sorted(
            json.dumps([p, *e, owners.get(p)], ensure_ascii=False, separators=(",", ":")).encode()
            for p, e in self.entries.items()
        )
        body = b"".join(line + b"\n" for line in lines)
        diff = b""
        if since is not None:
            diff = json.dumps(since_section(since, lines), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **self.header_fields(),
            "entries_crc32": zlib.crc32(body),
            **({"since_bytes": len(diff), "since_crc32": zlib.crc32(diff)} if diff else {}),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(json.dumps(header).encode() + b"\n" + body + diff)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def differing_paths(base: Manifest, theirs: Manifest) -> list[str]:
    """Every path whose entry differs between two manifests (added, removed, or any field changed), sorted.

    For manifests loaded from files, the raw lines are compared as sets (in C, no parsing) and only the
    differing lines are parsed: the cost of the Python work follows the size of the change.
    """
    old, new = base.entries, theirs.entries
    if isinstance(old, EntryLines) and isinstance(new, EntryLines):
        return old.differing(new)
    return sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))


def changed_paths(base: Manifest, theirs: Manifest) -> list[str]:
    """The paths whose content the image changed (added, removed or different), sorted: what an update decides."""
    paths = differing_paths(base, theirs)
    base.prefetch(paths)
    theirs.prefetch(paths)
    return [p for p in paths if not same_content(base.entries.get(p), theirs.entries.get(p))]


def same_content(old: Entry | None, new: Entry | None) -> bool:
    # Equal tuples (the common case, one C comparison) are the same content; else compare properly.
    return old is not None and (old == new or old.same_content(new))


def read_id(path: str | os.PathLike[str]) -> str | None:
    """The id in a manifest file's first line, or None if there is no readable manifest there."""
    try:
        with open(path, encoding="utf-8") as f:
            header = json.loads(f.readline())
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
        return None
    value = header.get("id")
    return value if isinstance(value, str) else None


def load(path: str | os.PathLike[str], defer_entries: bool = False) -> Manifest:
    """Read a manifest file written by `Manifest.dump`; raise `ManifestError` if it is damaged.

    Reads the whole file and checks it, but parses only the header: entries are parsed when used. With
    `defer_entries`, only the header line is read now; the entries are read and checked when first used (and
    raise `ManifestError` then): a first start that leaves the copy to a later process needs only the header's
    totals, and the copy process reads and checks the entries itself. Manifests of version 1 (one line of
    parallel lists, written by osl-hooks 0.1) are still read, so that the base a user's last sync kept, or an
    env image baked by an older osl-hooks, is not mistaken for a damaged one.
    """
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            version = header.get("version") if header.get("format") == FORMAT else None
            diff_bytes = int(header.get("since_bytes", 0)) if version == FORMAT_VERSION else 0
            baked_diff = None
            body: bytes | None = None
            if version == FORMAT_VERSION:
                lines = functools.partial(_entry_lines, path, header["entries_crc32"], diff_bytes)
                if not defer_entries:
                    body = _read_body(path, f, header["entries_crc32"], diff_bytes)
                    if diff_bytes:
                        baked_diff = (f.read(), int(header["since_crc32"]))
            elif version == 1:
                body = f.read()
        if version == FORMAT_VERSION:
            entries: Mapping[str, Entry] = EntryLines(lines, body)
            owners: Mapping[str, str] = LineOwners(entries)
        elif version == 1 and body is not None:
            entries, owners = _version_1_entries(path, header, body)
        else:
            raise ManifestError(f"{path}: not an osl-hooks manifest of version {FORMAT_VERSION} (or 1)")
        manifest = Manifest.from_header(header, entries, owners)
        manifest.file = Path(path)
        manifest.baked_diff = baked_diff
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ManifestError(f"{path}: cannot be read ({e})") from None
    return manifest


def _entry_lines(path: str | os.PathLike[str], crc: int, diff_bytes: int = 0) -> list[bytes]:
    """The entry lines of a version 2 manifest, read a chunk at a time when something first needs them all (a
    manifest `load`ed with `defer_entries` never read them; one loaded without read its body for lookups)."""
    try:
        with open(path, "rb") as f:
            f.readline()
            return _read_entry_lines(path, f, crc, diff_bytes)
    except OSError as e:
        raise ManifestError(f"{path}: cannot be read ({e})") from None


READ_CHUNK = 1 << 20


def _read_body(path: str | os.PathLike[str], f: BinaryIO, crc: int, diff_bytes: int) -> bytes:
    """The entry lines from `f` as they are in the file (just past the header line; the baked diff, its last
    `diff_bytes`, left to read), checked against the header's CRC-32: one object, for `EntryLines` to bisect."""
    body = f.read(os.fstat(f.fileno()).st_size - f.tell() - diff_bytes)
    if zlib.crc32(body) != crc:
        raise ManifestError(f"{path}: its entries do not match its checksum (damaged)")
    return body


def _read_entry_lines(path: str | os.PathLike[str], f: BinaryIO, crc: int, diff_bytes: int) -> list[bytes]:
    """The entry lines from `f` (just past the header line; the last `diff_bytes` of the file, the baked diff, are
    left to read), checked against the header's CRC-32.

    Read and split a chunk at a time, never as one string of the whole body: a manifest of 131k entries is 26 MB,
    which with its lines made a first copy's peak memory (90 MB) mostly the manifest held twice."""
    left = os.fstat(f.fileno()).st_size - f.tell() - diff_bytes
    lines: list[bytes] = []
    found = 0
    rest = b""
    while left > 0:
        chunk = f.read(min(READ_CHUNK, left))
        if not chunk:
            break
        left -= len(chunk)
        found = zlib.crc32(chunk, found)
        *complete, rest = (rest + chunk).split(b"\n")  # json escapes every control character: only \n ends lines
        lines += complete
    if rest:
        lines.append(rest)
    if found != crc or left:
        raise ManifestError(f"{path}: its entries do not match its checksum (damaged)")
    return lines


def _version_1_entries(path: str | os.PathLike[str], header: dict, body: bytes) -> tuple[dict, dict]:
    """Entries and owners of a version 1 manifest: one JSON line of parallel lists, checked by sha256."""
    entries_line = body.split(b"\n", 1)[0]
    if _sha256(entries_line).hexdigest() != header["entries_sha256"]:
        raise ManifestError(f"{path}: its entries do not match its checksum (damaged)")
    lists = json.loads(entries_line)
    return dict(zip(lists["paths"], map(Entry._make, lists["entries"]), strict=True)), lists["owners"]


def scan_tree(root: str | os.PathLike[str], digests: bool = False) -> Manifest:
    """Walk `root` without following symlinks and describe every path under it (the manifest file excepted)."""
    entries: dict[str, Entry] = {}
    total = disk = 0
    pending = [""]
    root = os.fspath(root)
    while pending:
        rel_dir = pending.pop()
        with os.scandir(os.path.join(root, rel_dir)) as it:
            for item in it:
                rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
                if rel == MANIFEST_FILE:
                    continue
                st = item.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    entries[rel] = Entry("l", link=os.readlink(item.path))
                elif stat.S_ISDIR(st.st_mode):
                    entries[rel] = Entry("d", mode=stat.S_IMODE(st.st_mode))
                    pending.append(rel)
                elif stat.S_ISREG(st.st_mode):
                    digest = _file_digest(item.path) if digests else None
                    entries[rel] = Entry("f", st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime_ns, digest)
                    total += st.st_size
                    disk += st.st_blocks * 512
    return Manifest(entries, total, disk)


def add_sync_details(manifest: Manifest, root: str | os.PathLike[str], built_prefix: str) -> Manifest:
    """Complete a scanned manifest with what a copy or update needs: prefix files and packages.

    Kept apart from `scan_tree` because it reads files (conda's records, pip's RECORDs), which a start
    with nothing new must not pay for.
    """
    manifest.built_prefix = built_prefix
    manifest.prefix_files = prefix_files(root, built_prefix)
    manifest.packages = index_packages(root)
    return manifest


def bake(
    root: str | os.PathLike[str], built_prefix: str | None = None, since: str | os.PathLike[str] | None = None
) -> Manifest:
    """Describe the env at `root` with content hashes and write the manifest into it (image build time);
    `since`: the previous version's manifest file, whose diff to this one is baked in too (`bakeddiff`)."""
    root = Path(root).absolute()
    previous = load(since) if since is not None else None  # first: a bad file stops the bake before it writes
    manifest = add_sync_details(scan_tree(root, digests=True), root, built_prefix or str(root))
    manifest.baked = True
    manifest.dump(root / MANIFEST_FILE, previous)
    return manifest


def entry_on_disk(path: str | os.PathLike[str]) -> Entry | None:
    """What is at `path` now (stat only), or None if nothing is."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return Entry("l", link=os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return Entry("d", mode=stat.S_IMODE(st.st_mode))
    return Entry("f", st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime_ns)


def _sha256(data: bytes = b""):  # returns hashlib._Hash, a private name
    """hashlib's sha256, imported when a manifest is made or an old one checked: a restart reads only an id."""
    import hashlib

    return hashlib.sha256(data)


def _file_digest(path: str) -> str:
    digest = _sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def since_section(old: Manifest, new_lines: list[bytes]) -> dict:
    """The baked diff (`bakeddiff`, the manifest's last line) of a manifest of `new_lines` (sorted entry lines)
    baked after `old`: old's id and packages, the paths whose lines differ, and old's lines for them."""
    if not isinstance(old.entries, EntryLines):
        raise ValueError("the previous manifest must be a manifest file (osl-hooks bake wrote it)")
    before, after = frozenset(old.entries.lines), frozenset(new_lines)
    removed = sorted(before - after)
    paths = sorted({line_path(line) for line in (*removed, *(after - before))})
    return {
        "id": old.id,
        "packages": old.packages.records,
        "paths": paths,
        "lines": [line.decode() for line in removed],
    }
