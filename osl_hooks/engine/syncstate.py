"""What osl-hooks remembers about one synced env's syncs, in `<state_dir>/envs/`.

`NAME.json` (the sync record), `NAME.base.GENERATION.jsonl` (the image's manifest as last synced, named by
the record), a linked copy's `NAME.links.GENERATION` (its links into the image, named by the record: see
`SyncState.links`), `NAME.pending.json` (while an update runs: what it is writing, so an interrupted update can be
finished safely), and `conflicts/NAME/` (the image's versions of files the user changed). Every change of
this state that must be all-or-nothing is one rename.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from .._records import field, record
from ..plan import Environment
from . import linksfile
from .faultpoints import point
from .homepaths import Home
from .linksfile import LinkChanges, SortedLinks
from .manifest import Manifest, ManifestError, load, read_id
from .trees import remove_tree


@record
class SyncState:
    """The files in `<state_dir>/envs/` that remember one env's syncs.

    The record (`NAME.json`) is the commit point: it names the base manifest it goes with
    (`NAME.base.GENERATION.jsonl`), and a linked copy's links file (`NAME.links.GENERATION`), each written
    completely before the record is renamed into place. A kill in between leaves files that no record names,
    which are ignored and removed; so the record, its base and its links change together, in one rename.
    """

    home: Home
    directory: Path
    name: str
    extra: dict = field(default_factory=dict)  # more fields for the record (a linked copy's figures)
    # A linked copy's links into the image, committed with the record: in a file of their own that the record
    # names (`links_file`), written before it as the base is, so a start that does not need them (nothing new)
    # never reads tens of thousands of paths, and an update that keeps them does not write them again.
    # An update's are the links file's with its changes (`LinkChanges`), a first copy's or a comparison's a set.
    links: set[str] | LinkChanges | None = None
    _links_read: tuple[str, SortedLinks] | None = field(default=None, repr=False)  # (file name, its links)
    # The full base and the delta on it (or None) that the record read last names: a new delta lies on that base.
    _kept_base: tuple[Path, Path | None] | None = field(default=None, repr=False)

    @property
    def record_file(self) -> Path:
        return self.directory / f"{self.name}.json"

    @property
    def legacy_base_file(self) -> Path:
        """Where records written before generations kept their base (still read, never written)."""
        return self.directory / f"{self.name}.base.jsonl"

    @property
    def pending_file(self) -> Path:
        return self.directory / f"{self.name}.pending.json"

    @property
    def conflicts_dir(self) -> Path:
        return self.directory / "conflicts" / self.name

    def base_files(self) -> list[Path]:
        """Every base manifest (or delta on one) of this env on disk, current or stray."""
        found = [p for p in self.directory.glob(f"{self.name}.base.*") if _base_name(self.name, p.name)]
        return found + [self.legacy_base_file] if self.legacy_base_file.exists() else found

    def links_files(self) -> list[Path]:
        """Every links file of this env on disk, current or stray."""
        return [p for p in self.directory.glob(f"{self.name}.links.*") if _links_name(self.name, p.name)]

    def read_links(self, record: dict | None) -> SortedLinks | None:
        """The links the record names (see `read_links`), sorted for lookups (`linksfile`), read once and kept
        (so that a commit of the same links reuses the file)."""
        name = (record or {}).get("links_file")
        if self._links_read is not None and self._links_read[0] == name and "links" not in (record or {}):
            return self._links_read[1]
        links = read_sorted_links(self.directory, self.name, record)
        if links is not None and isinstance(name, str):
            self._links_read = (name, links)
        return links

    def _named_bases(self, record: dict) -> tuple[Path | None, Path | None]:
        """The full base the record names, and the delta on it if any (see `basedelta`); no full base: unusable.

        A record names a delta as its `base` and the full base under it as `base_full`: an older osl-hooks, which
        knows no deltas, finds no base it can read there and makes the safe full comparison, never an update from
        the older version the full base alone is."""
        name = record.get("base")
        if not isinstance(name, str) or not _base_name(self.name, name):
            return self.legacy_base_file, None
        if not name.endswith(".delta"):
            return self.directory / name, None
        full = record.get("base_full")
        usable = isinstance(full, str) and full.endswith(".jsonl") and _base_name(self.name, full)
        return (self.directory / full if usable else None), self.directory / name

    def forget(self) -> None:
        """Drop everything remembered about this env's syncs (its next sync is a first copy)."""
        self.home.check(self.directory, "state_dir")
        _unlink(self.record_file)
        point("state:record-forgotten")
        for path in [self.pending_file, *self.base_files(), *self.links_files()]:
            _unlink(path)
        if self.conflicts_dir.is_dir():
            remove_tree(self.conflicts_dir)

    def record(self) -> dict | None:
        """The record of the last completed sync; drops what an interrupted save left behind."""
        self.home.check(self.directory, "state_dir")
        record = _read_json(self.record_file)
        if record is not None:
            pending = _read_json(self.pending_file)
            if pending is not None and pending.get("source_id") == record.get("source_id"):
                self.pending_file.unlink(missing_ok=True)  # the update it describes was recorded
            full, delta = self._named_bases(record)
            self._remove_stray_bases(full, delta)
            self._remove_stray_links(record.get("links_file"))
            self._kept_base = (full, delta) if full is not None and full != self.legacy_base_file else None
        return record

    def base(self, record: dict) -> Manifest | None:
        """The version the copy was last synced from, as kept (a full base, and the delta on it if the record
        names one: see `basedelta`); None if it is missing or damaged."""
        full, delta = self._named_bases(record)
        if full is None or not _is_regular_file(full) or (delta is not None and not _is_regular_file(delta)):
            return None
        try:
            if delta is None:
                return load(full)
            from . import basedelta  # a base kept with a delta: an update without a usable baked diff

            return basedelta.apply(delta, load(full))
        except ManifestError:
            return None

    def pending(self) -> set[str]:
        data = _read_json(self.pending_file)
        return set(data.get("paths", [])) if data else set()

    def begin(self, paths: list[str], theirs: Manifest) -> None:
        self.home.write_text(self.pending_file, json.dumps({"source_id": theirs.id, "paths": paths}), "sync state")
        point("update:pending-written")

    def save(
        self,
        env: Environment,
        target: Path,
        theirs: Manifest,
        overrides: dict,
        conflicts: list[str],
        differs_at: Iterable[str] | None = None,
    ) -> None:
        """Record a completed sync: its base first, then the record that names it (the commit).

        `differs_at`: every path where `theirs` may differ from the version last recorded, when the sync knows
        them (an update's compared paths): the base is then kept as a delta on the full base the record names
        (`basedelta`), else `theirs` is written whole."""
        self.home.makedirs(self.directory, "state_dir")
        written: list[Path] = []
        try:
            base = self._delta_base(theirs, differs_at, written) or self._full_base(theirs, written)
            point("state:base-saved")
            record = {
                "source": env.source,
                "source_id": theirs.id,
                "target": str(target),
                **base,
                "built_prefix": theirs.built_prefix,
                "synced_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": theirs.files,
                "bytes": theirs.bytes,
                "overrides": {p: list(s) if s else None for p, s in overrides.items()},
                "conflicts": sorted(conflicts),
                **self.extra,
            }
            self.commit(record, self.links)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        self.pending_file.unlink(missing_ok=True)
        point("state:pending-removed")
        self._remove_stray_bases(*(self.directory / name for name in base.values()))
        self._kept_base = None

    def _full_base(self, theirs: Manifest, written: list[Path]) -> dict[str, str]:
        """`theirs` written whole as the new base, under a new name."""
        base = self.home.check(self.directory / f"{self.name}.base.{os.urandom(8).hex()}.jsonl", "sync state")
        saving = base.with_name(f".{base.name}.saving.tmp")
        written += [saving, base]
        theirs.save_as(saving)
        point("state:base-temp-written")
        os.replace(saving, base)
        return {"base": base.name}

    def _delta_base(self, theirs: Manifest, differs_at: Iterable[str] | None, written: list[Path]) -> dict | None:
        """`theirs` as a delta on the full base the record names, if it can be one (see `basedelta`)."""
        if differs_at is None or self._kept_base is None:
            return None
        from . import basedelta

        full, delta = self._kept_base
        full_id = read_id(full) if _is_regular_file(full) else None
        if full_id is None or not basedelta.can_lie_on(theirs):
            return None
        paths = set(differs_at)
        if delta is not None:
            try:
                header, _ = basedelta.read(delta)
            except ManifestError:
                return None
            if header["of"] != full_id:
                return None
            paths.update(header["paths"])
        covered = basedelta.covered(paths, theirs)
        if covered is None:
            return None
        new = self.home.check(self.directory / f"{self.name}.base.{os.urandom(8).hex()}.delta", "sync state")
        written.append(new)
        basedelta.write(new, theirs, full_id, covered)
        point("state:base-delta-written")
        return {"base": new.name, "base_full": full.name}

    def commit(self, record: dict, links: set[str] | LinkChanges | None) -> None:
        """Write `record` in one rename, with `links` (None: the copy has none) in the links file it names.

        A new links file is written first, under a name no record uses yet; the record's rename commits both.
        A kill before it leaves the old record with its own links file, and a file no record names, which the
        next `record()` removes. Links equal to those of the file last read keep that file (nothing written),
        unless it is of an older format. A record of before the links file (its `links` a list in it) loses that
        list here."""
        record.pop("links", None)
        if links is None:
            record.pop("links_file", None)
            record.pop("linked_files", None)
        else:
            kept = self._unchanged_links_file(links)
            record.update(links_file=kept or self._write_links(links), linked_files=len(links))
            if not kept:
                self._links_read = None  # read again if asked for (a commit is the sync's last step)
        # One line: json's C encoder (no indent) writes it in a blink.
        self.home.write_text(self.record_file, json.dumps(record), "sync state")
        point("state:record-saved")
        self._remove_stray_links(record.get("links_file"))

    def _unchanged_links_file(self, links: set[str] | LinkChanges) -> str | None:
        """The name of the links file last read if it holds `links` as the current format writes them."""
        if self._links_read is None or self._links_read[1].rewrite:
            return None
        name, known = self._links_read
        if isinstance(links, LinkChanges):
            same = links.old is known and not links.added and not links.removed
        else:
            same = len(links) == len(known) and set(known) == links
        return name if same else None

    def _write_links(self, links: set[str] | LinkChanges) -> str:
        """A new links file (never a rename: no record names it until the record's rename)."""
        path = self.home.check(self.directory / f"{self.name}.links.{os.urandom(8).hex()}", "sync state")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as f:
            linksfile.write(f, links)
        point("state:links-written")
        return path.name

    def _remove_stray_bases(self, *current: Path | None) -> None:
        for path in self.base_files():
            if path not in current:
                path.unlink(missing_ok=True)
                point("state:stray-base-removed")

    def _remove_stray_links(self, links_file: object) -> None:
        for path in self.links_files():
            if path.name != links_file:
                path.unlink(missing_ok=True)
                point("state:stray-links-removed")


def read_links(directory: Path, name: str, record: dict | None) -> set[str] | None:
    """The paths a linked copy's record says are links into the image; None for a copy that has none listed
    (or whose links file is damaged: see `linksfile`)."""
    links = read_sorted_links(directory, name, record)
    return None if links is None else set(links)


def read_sorted_links(directory: Path, name: str, record: dict | None) -> SortedLinks | None:
    """As `read_links`, sorted for lookups (`linksfile.SortedLinks`). Records written before the links file list
    them in `links` (read until the next commit rewrites them)."""
    if record is None:
        return None
    if isinstance(record.get("links"), list):
        return SortedLinks.of((p for p in record["links"] if isinstance(p, str)), rewrite=True)
    file = record.get("links_file")
    if not isinstance(file, str) or not _links_name(name, file) or not _is_regular_file(directory / file):
        return None
    return linksfile.read(directory / file)


def names_links(record: dict | None) -> bool:
    """Whether the record is of a linked copy (it names a links file, or lists links), without reading them."""
    return record is not None and (isinstance(record.get("links"), list) or isinstance(record.get("links_file"), str))


def _base_name(name: str, file_name: str) -> bool:
    """Whether `file_name` is one of this env's base files: a full base, or a delta on one."""
    return re.fullmatch(rf"{re.escape(name)}\.base\.[0-9a-f]{{16}}\.(jsonl|delta)", file_name) is not None


def _links_name(name: str, file_name: str) -> bool:
    return re.fullmatch(rf"{re.escape(name)}\.links\.[0-9a-f]{{16}}", file_name) is not None


def sync_records(state_dir: Path, measure: bool = True) -> dict[str, dict]:
    """What `osl-hooks status` shows per synced env: the sync record, with the bytes the copy uses now.

    `measure=False` leaves `bytes_on_volume` None without walking the copy (a reader that must answer in
    milliseconds, such as the Jupyter server's REST API, for envs of tens of thousands of files)."""
    records = {}
    for path in sorted((state_dir / "envs").glob("*.json")):
        record = _read_json(path)
        if record is None or path.name.endswith(".pending.json"):
            continue
        target = Path(record.get("target", ""))
        record["bytes_on_volume"] = _disk_usage(target) if measure and target.is_dir() else None
        record["conflicts_dir"] = str(state_dir / "envs" / "conflicts" / path.stem)
        records[path.stem] = record
    return records


def _disk_usage(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                continue
    return total


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(Home.read_text(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _unlink(path: Path) -> None:
    """Remove a state file; a directory in its place (not osl-hooks' doing) is left alone."""
    if not os.path.isdir(path) or os.path.islink(path):
        path.unlink(missing_ok=True)


def _is_regular_file(path: Path) -> bool:
    """True for a regular file: a FIFO or device where a state file should be is never opened (it could block)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
