"""What osl-hooks remembers about one synced env's syncs, in `<state_dir>/envs/`.

`NAME.json` (the sync record), `NAME.base.GENERATION.jsonl` (the image's manifest as last synced, named by
the record), `NAME.pending.json` (while an update runs: what it is writing, so an interrupted update can be
finished safely), and `conflicts/NAME/` (the image's versions of files the user changed). Every change of
this state that must be all-or-nothing is one rename.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..plan import Environment
from .faultpoints import point
from .homepaths import Home
from .manifest import Manifest, ManifestError, load
from .trees import remove_tree


@dataclass
class SyncState:
    """The files in `<state_dir>/envs/` that remember one env's syncs.

    The record (`NAME.json`) is the commit point: it names the base manifest it goes with
    (`NAME.base.GENERATION.jsonl`), which is written completely before the record is renamed into place.
    A kill in between leaves a base that no record names, which is ignored and removed; so the record and
    its base change together, in one rename.
    """

    home: Home
    directory: Path
    name: str
    extra: dict = field(default_factory=dict)  # more fields for the record (a linked copy's `links`)

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
        """Every base manifest of this env on disk, current or stray."""
        pattern = re.compile(rf"^{re.escape(self.name)}\.base\.[0-9a-f]{{16}}\.jsonl$")
        found = [p for p in self.directory.glob(f"{self.name}.base.*.jsonl") if pattern.match(p.name)]
        return found + [self.legacy_base_file] if self.legacy_base_file.exists() else found

    def base_file(self, record: dict | None) -> Path:
        name = record.get("base") if record else None
        if isinstance(name, str) and any(p.name == name for p in self.base_files()):
            return self.directory / name
        return self.legacy_base_file

    def forget(self) -> None:
        """Drop everything remembered about this env's syncs (its next sync is a first copy)."""
        self.home.check(self.directory, "state_dir")
        _unlink(self.record_file)
        point("state:record-forgotten")
        for path in [self.pending_file, *self.base_files()]:
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
            self._remove_stray_bases(self.base_file(record))
        return record

    def base(self, record: dict) -> Manifest | None:
        path = self.base_file(record)
        if not _is_regular_file(path):
            return None
        try:
            return load(path)
        except ManifestError:
            return None

    def pending(self) -> set[str]:
        data = _read_json(self.pending_file)
        return set(data.get("paths", [])) if data else set()

    def begin(self, paths: list[str], theirs: Manifest) -> None:
        self.home.write_text(self.pending_file, json.dumps({"source_id": theirs.id, "paths": paths}), "sync state")
        point("update:pending-written")

    def save(self, env: Environment, target: Path, theirs: Manifest, overrides: dict, conflicts: list[str]) -> None:
        """Record a completed sync: a new base manifest first, then the record that names it (the commit)."""
        self.home.makedirs(self.directory, "state_dir")
        base = self.home.check(self.directory / f"{self.name}.base.{os.urandom(8).hex()}.jsonl", "sync state")
        saving = base.with_name(f".{base.name}.saving.tmp")
        try:
            theirs.save_as(saving)
            point("state:base-temp-written")
            os.replace(saving, base)
            point("state:base-saved")
            record = {
                "source": env.source,
                "source_id": theirs.id,
                "target": str(target),
                "base": base.name,
                "built_prefix": theirs.built_prefix,
                "synced_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "files": theirs.files,
                "bytes": theirs.bytes,
                "overrides": {p: list(s) if s else None for p, s in overrides.items()},
                "conflicts": sorted(conflicts),
                **self.extra,
            }
            # One line: json's C encoder (no indent) writes a linked copy's tens of thousands of links in a blink.
            self.home.write_text(self.record_file, json.dumps(record), "sync state")
        except BaseException:
            saving.unlink(missing_ok=True)
            base.unlink(missing_ok=True)
            raise
        point("state:record-saved")
        self.pending_file.unlink(missing_ok=True)
        point("state:pending-removed")
        self._remove_stray_bases(base)

    def _remove_stray_bases(self, current: Path) -> None:
        for path in self.base_files():
            if path != current:
                path.unlink(missing_ok=True)
                point("state:stray-base-removed")


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
