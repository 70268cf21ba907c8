"""What an env tree holds: one entry per path, one id for the whole tree, and what sync needs besides.

A manifest is what makes a restart with nothing new cost almost nothing, and an image update cost in
proportion to the change: the id answers "is anything new?" without walking the env, and the entries
answer "what changed?" without reading it.

`osl-hooks bake PATH` writes the manifest into the env at image build time (`.osl-hooks-manifest.jsonl`),
with a content hash per file, the files that embed the prefix, and the packages' records. The first line
holds the id and the totals, so a start reads one line to learn that nothing is new. Without a baked
manifest, the engine builds one at start by walking the env (stat only, no hashing; the identity rsync
itself uses).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from .packages import PackageIndex, index_packages
from .relocate import PrefixFile, prefix_files

MANIFEST_FILE = ".osl-hooks-manifest.jsonl"
FORMAT = "osl-hooks-manifest"
FORMAT_VERSION = 1


class ManifestError(Exception):
    """A manifest file that cannot be read; callers fall back to something safe."""


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


@dataclass
class Manifest:
    """An env tree: entries by relative path, totals, and the extras a sync needs."""

    entries: dict[str, Entry]
    bytes: int = 0
    disk_bytes: int = 0
    built_prefix: str | None = None
    prefix_files: list[PrefixFile] = field(default_factory=list)
    packages: PackageIndex = field(default_factory=PackageIndex)
    baked: bool = False
    file: Path | None = None  # the file it was loaded from, if any (a copy of it is a copy of the manifest)

    @cached_property
    def id(self) -> str:
        """Content-based when baked (a rebuilt image with the same files is 'nothing new'), else stat-based."""
        digest = hashlib.sha256()
        for path in sorted(self.entries):
            e = self.entries[path]
            identity = e.digest if self.baked else f"{e.size}\0{e.mtime_ns}"
            digest.update(f"{path}\0{e.kind}\0{e.mode:o}\0{identity}\0{e.link or ''}\n".encode())
        return digest.hexdigest()

    @property
    def files(self) -> int:
        return sum(1 for e in self.entries.values() if e.kind == "f")

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

    def dump(self, path: str | os.PathLike[str]) -> None:
        """Write the manifest atomically: a header line, then all entries as one JSON line.

        One line for the entries, as parallel lists (paths; entries in `Entry`'s field order), because one
        `json.loads` call and `Entry._make` over the rows are several times faster than a call per entry;
        the header carries the entries line's sha256, so damage is found without recomputing the id.
        """
        path = Path(path)
        owners = self.packages.owners
        paths = sorted(self.entries)
        body = {
            "paths": paths,
            "entries": [list(self.entries[p]) for p in paths],  # in Entry's field order
            "owners": {p: owners[p] for p in paths if p in owners},
        }
        entries_line = json.dumps(body, separators=(",", ":"))
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "id": self.id,
            "baked": self.baked,
            "files": self.files,
            "bytes": self.bytes,
            "disk_bytes": self.disk_bytes,
            "built_prefix": self.built_prefix,
            "prefix_files": [[f.path, f.mode, f.placeholder_length] for f in self.prefix_files],
            "packages": self.packages.records,
            "entries_sha256": hashlib.sha256(entries_line.encode()).hexdigest(),
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(header) + "\n" + entries_line + "\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


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


def load(path: str | os.PathLike[str]) -> Manifest:
    """Read a manifest file written by `Manifest.dump`; raise `ManifestError` if it is damaged."""
    try:
        with open(path, encoding="utf-8") as f:
            header = json.loads(f.readline())
            entries_line = f.readline().rstrip("\n")
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise ManifestError(f"{path}: not an osl-hooks manifest of version {FORMAT_VERSION}")
        if hashlib.sha256(entries_line.encode()).hexdigest() != header["entries_sha256"]:
            raise ManifestError(f"{path}: its entries do not match its checksum (damaged)")
        body = json.loads(entries_line)
        entries = dict(zip(body["paths"], map(Entry._make, body["entries"]), strict=True))
        owners = body["owners"]
        manifest = Manifest(
            entries,
            header["bytes"],
            header["disk_bytes"],
            header["built_prefix"],
            [PrefixFile(p, m, n) for p, m, n in header["prefix_files"]],
            PackageIndex(header["packages"], owners),
            header["baked"],
        )
        manifest.__dict__["id"] = str(header["id"])  # checked through entries_sha256, not recomputed
        manifest.file = Path(path)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ManifestError(f"{path}: cannot be read ({e})") from None
    return manifest


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


def bake(root: str | os.PathLike[str], built_prefix: str | None = None) -> Manifest:
    """Describe the env at `root` with content hashes and write the manifest into it (image build time)."""
    root = Path(root).absolute()
    manifest = add_sync_details(scan_tree(root, digests=True), root, built_prefix or str(root))
    manifest.baked = True
    manifest.dump(root / MANIFEST_FILE)
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


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
