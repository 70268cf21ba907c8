"""One `synced` env: decide what the start must do with it, and do it.

- **Nothing new** (the image's env id equals the id last synced, and the copy exists): nothing is walked
  or copied. With a baked manifest, that costs reading one line.
- **No copy yet** (first start, or the user deleted the env): a first copy through a staging directory.
- **The image changed**: a three-way update (`osl_hooks.engine.update`), costing what the change costs.
- **The record of the last sync is missing or damaged**: a safe full comparison that adds what is missing,
  keeps every file that exists, and removes nothing.

What is remembered between syncs is `osl_hooks.engine.syncstate`.
"""

from __future__ import annotations

import enum
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .._records import record
from ..plan import Environment
from ..status import human_bytes
from . import relocate
from .faultpoints import hold, point
from .homepaths import Home
from .manifest import (
    MANIFEST_FILE,
    Entry,
    Manifest,
    ManifestError,
    add_sync_details,
    differing_paths,
    entry_on_disk,
    load,
    read_id,
    scan_tree,
)
from .outofspace import is_out_of_space
from .packages import record_name, record_paths
from .reporter import SyncReport
from .syncstate import SyncState
from .trees import new_staging_dir, remove_partial_files, remove_tree, stale_staging_dirs

if TYPE_CHECKING:
    from . import update


class Fallback(Exception):
    """The env cannot be copied into the home; the user gets the image's copy. The message says why.

    `fingerprint` is set when the cause stays until the image or the plan changes (so it is said once).
    `code` is the cause as data, for the hub's metrics: disk_full, relocation, copy_failed.
    """

    def __init__(self, reason: str, fingerprint: str | None = None, code: str = "copy_failed"):
        super().__init__(reason)
        self.fingerprint = fingerprint
        self.code = code


class EnvProblem(Exception):
    """Something about one env that stops it from being prepared as planned."""


class FirstCopyAt(enum.Enum):
    """When a first copy is made, if the env has none (decided by `osl_hooks.engine.copykind`)."""

    NOW = "now"  # by this start, before the server is ready
    LATER = "later"  # by the background copy process, once the server is up (`osl_hooks.engine.background`)
    RUNNING = "running"  # by the background copy process running already: never doubled


@record(frozen=True)
class CopyLater:
    """What a sync gives when the env's first copy is left to the background copy process: the env runs from
    the image meanwhile. `image_id`: the image's env id (a stopped copy of the same image resumes)."""

    image_id: str | None
    running: bool


class EnvSync:
    """Prepares one synced env: `run` gives its prefix, or `CopyLater` when its first copy is left to the
    background copy process (`first_copy`)."""

    def __init__(
        self,
        env: Environment,
        home: Home,
        state_dir: Path,
        report: SyncReport,
        margins: tuple[float, int],
        first_copy: FirstCopyAt = FirstCopyAt.NOW,
    ):
        assert env.source is not None and env.target is not None
        self.env = env
        self.first_copy_at = first_copy
        self.home = home
        self.report = report
        self.margin_fraction, self.margin_bytes = margins
        self.source = Path(env.source)
        self.target = home.check(env.target, f"environments[{env.name}].target")
        self.state = SyncState(home, state_dir / "envs", env.name)
        self.status = report.envs[env.name]

    def run(self) -> Path | CopyLater:
        if not self.source.is_dir():
            raise EnvProblem(f"{self.source} does not exist in the image")
        self.home.makedirs(self.target.parent, f"environments[{self.env.name}].target")
        for stale in stale_staging_dirs(self.target):
            self.report.info(f"Removing {stale.name}, left by an interrupted start", self.env.name)
            remove_tree(stale)
            point("first-copy:stale-staging-removed")
        record = self.state.record()
        exists = os.path.lexists(self.target)
        self.status.copy_id = record.get("source_id") if record and exists else None
        self.status.image_id = read_id(self.source / MANIFEST_FILE)
        if exists and self._unchanged(record, self.status.image_id):
            return self._up_to_date(record)
        later = not exists and self.first_copy_at is not FirstCopyAt.NOW
        theirs = self.image_manifest(defer_entries=later)
        self.status.files, self.status.bytes, self.status.image_id = theirs.files, theirs.bytes, theirs.id
        if exists and self._unchanged(record, theirs.id):
            return self._up_to_date(record)
        self.complete(theirs)
        if not exists:
            if record:
                self.report.info(f"{self.target} is missing: making a fresh copy of {self.env.name}", self.env.name)
            self.status.action = "copy"
            if self.first_copy_at is FirstCopyAt.RUNNING:
                return CopyLater(theirs.id, running=True)
            if self.first_copy_at is FirstCopyAt.LATER:
                self.check_first_copy(theirs)  # Fallback: the user reads why, as for a copy before ready
                return CopyLater(theirs.id, running=False)
            self.first_copy(theirs)
            return self.target
        base = self.base_manifest(record, theirs) if record else None
        self.status.action = "compare" if base is None else "update"
        if base is None:
            self.full_comparison(theirs)
        else:
            self.three_way_update(base, theirs, record)
        return self.target

    def base_manifest(self, record: dict, theirs: Manifest) -> Manifest | None:
        """The version the copy was last synced from: from the image's baked diff when it starts from exactly
        that version (nothing else is read), else the manifest the sync record keeps (None: not usable)."""
        from . import bakeddiff  # here and below (`update`): for a start that has something to do

        previous, unusable = bakeddiff.previous_version(theirs, record.get("source_id"))
        if unusable:
            self.report.info(
                f"The image's {self.env.name} has a baked diff that this update cannot use: {unusable}; comparing "
                "the whole manifests instead",
                self.env.name,
            )
        return previous or self.state.base(record)

    def _unchanged(self, record: dict | None, image_id: str | None) -> bool:
        return bool(
            record
            and image_id
            and record.get("source_id") == image_id
            and record.get("target") == str(self.target)
            and not self.state.pending_file.exists()
        )

    def _up_to_date(self, record: dict) -> Path:
        self.status.files, self.status.bytes = record.get("files"), record.get("bytes")
        self.status.action = "unchanged"
        self.status.volume_bytes, self.status.linked_bytes = record.get("volume_bytes"), record.get("linked_bytes")
        self.status.conflicts = len(record.get("conflicts") or ())
        self.report.event(
            "env-done", f"{self.env.name} is up to date", self.env.name, state="ready", files=self.status.files
        )
        return self.target

    def image_manifest(self, defer_entries: bool = False) -> Manifest:
        """The baked manifest if there is one, else a stat-only scan (completed later only if needed).

        Its `built_prefix` is settled here, once: the plan's, else the one baked in, else the source path.
        `defer_entries`: read only the header now (see `manifest.load`).
        """
        baked = self.source / MANIFEST_FILE
        manifest = None
        if baked.exists():
            try:
                manifest = load(baked, defer_entries)
            except ManifestError as e:
                self.report.warning(f"{e}; describing the env instead", self.env.name)
        if manifest is None:
            self.report.event(
                "env-begin",
                f"{self.env.name} has no baked manifest: describing it now (run `osl-hooks bake {self.source}` "
                "in the image build to make starts faster)",
                self.env.name,
            )
            manifest = scan_tree(self.source)
        manifest.built_prefix = self.env.built_prefix or manifest.built_prefix or str(self.source)
        return manifest

    def complete(self, theirs: Manifest) -> None:
        """Add what a copy or an update needs (prefix files, packages) to a manifest that was not baked."""
        if not theirs.baked:
            add_sync_details(theirs, self.source, theirs.built_prefix)

    # -- first copy ----------------------------------------------------------------------------------

    def first_copy(self, theirs: Manifest) -> None:
        """rsync into a staging directory, relocate there, record the sync, then rename into place.

        The record is written before the rename, so the rename is the commit point: a kill before it
        leaves a record of a copy that is not there (the next start makes a fresh copy), a kill after it
        a recorded, complete copy.
        """
        from .sync import SyncError  # the rsync driver, here and below: imported by the starts that copy

        total, needed = self.check_first_copy(theirs)
        staging = new_staging_dir(self.target)
        point("first-copy:staging-made")
        started = time.monotonic()
        name = self.env.name
        message = f"Syncing {name}: {human_bytes(total)} to copy into {self.target}"
        self.report.event("env-begin", message, name, bytes_total=total, files=theirs.files)
        try:
            self._fill_staging(staging, theirs, total)
            point("first-copy:copied")
            changed = self.relocate_and_record(staging, theirs)
            os.rename(staging, self.target)
        except BaseException as e:
            remove_tree(staging)
            self.state.forget()
            if is_out_of_space(e):
                raise Fallback(self.out_of_space(needed), code="disk_full") from None
            if isinstance(e, (SyncError, relocate.RelocationError, OSError, ManifestError)):
                raise Fallback(f"copying it failed: {e}") from None
            raise
        point("first-copy:renamed")
        self.status.copy_id, self.status.copied_bytes, self.status.conflicts = theirs.id, total, 0
        seconds = time.monotonic() - started
        message = f"Synced {name}: {human_bytes(total)} in {seconds:.1f} s ({changed} files relocated)"
        self.report.event(
            "env-done", message, name, state="ready", bytes_total=total, files=theirs.files, seconds=round(seconds, 3)
        )

    def check_first_copy(self, theirs: Manifest) -> tuple[int, int]:
        """Raise `Fallback` if a first copy cannot work (relocation, room); else its bytes and bytes on the volume."""
        assert theirs.built_prefix is not None  # settled by image_manifest
        try:
            relocate.check(self.source, theirs.prefix_files, theirs.built_prefix, str(self.target))
        except relocate.RelocationError as e:
            raise Fallback(str(e), f"{theirs.id} {self.target}", "relocation") from None
        total, needed = self._first_copy_size(theirs)
        self._check_space(needed)
        return total, needed

    def relocate_and_record(self, staging: Path, theirs: Manifest) -> int:
        """A complete copy in `staging`: relocate it for the target and record the sync (the rename commits it).
        Returns how many files were relocated."""
        from . import update

        assert theirs.built_prefix is not None
        changed = relocate.relocate(staging, theirs.prefix_files, theirs.built_prefix, str(self.target))
        rewritten = {
            f.path: update.file_stat(staging / f.path) for f in theirs.prefix_files if (staging / f.path).is_file()
        }
        overrides = update.stat_overrides(theirs, theirs.entries.get, set(), rewritten, candidates=())
        self.state.extra.update(self._footprint(theirs))
        self.state.save(self.env, self.target, theirs, overrides, [])
        return changed

    def _first_copy_size(self, theirs: Manifest) -> tuple[int, int]:
        """The bytes a first copy transfers, and the bytes it takes on the volume."""
        return theirs.bytes, theirs.disk_bytes

    def _footprint(self, theirs: Manifest) -> dict[str, int]:
        """What the synced copy takes on the volume (and serves through links: none), for the sync record (so a
        start with nothing new reports it) and the start's summary."""
        self.status.volume_bytes, self.status.linked_bytes = theirs.disk_bytes, 0
        return {"volume_bytes": theirs.disk_bytes, "linked_bytes": 0}

    def _fill_staging(self, staging: Path, theirs: Manifest, total: int) -> None:
        """Put the env's files into the (empty) staging directory; relocation follows."""
        from .sync import copy_tree

        for step in copy_tree(self.source, staging):
            self.report.progress(self.env.name, step.bytes_done, total, self._describe_progress)
            hold("first-copy:progress")  # a test that shows the copy's progress holds the copy here

    def _describe_progress(self, done: int, total: int) -> str:
        share = min(done / total, 1.0) if total else 1.0
        return f"Syncing {self.env.name}: {human_bytes(done)} of {human_bytes(total)} ({share:.0%})"

    def _free_bytes(self) -> int:
        """Free space on the volume that holds (or will hold) the target, for the user (psutil's disk_usage)."""
        volume = os.statvfs(_existing_ancestor(self.target))
        return volume.f_bavail * volume.f_frsize

    def out_of_space(self, needed_bytes: int) -> str:
        """Why a copy ran out of room, and what to free, in one sentence (the half-made copy is gone)."""
        needed = int(needed_bytes * (1 + self.margin_fraction)) + self.margin_bytes
        short = needed - self._free_bytes()
        amount = f"at least {human_bytes(short)}" if short > 0 else "some space"
        return (
            f"your home ran out of space while copying it (it needs about {human_bytes(needed)}); free {amount} "
            "in your home, for example files or envs you no longer use, and restart to get your own copy"
        )

    def _check_space(self, needed_bytes: int) -> None:
        free = self._free_bytes()
        needed = int(needed_bytes * (1 + self.margin_fraction)) + self.margin_bytes
        if needed > free:
            raise Fallback(
                f"your home has {human_bytes(free)} free and {self.env.name} needs {human_bytes(needed_bytes)} "
                f"(plus a margin: {human_bytes(needed)} in all)",
                code="disk_full",
            )

    # -- updates -------------------------------------------------------------------------------------

    def three_way_update(self, base: Manifest, theirs: Manifest, record: dict) -> None:
        from . import update

        overrides = {p: tuple(s) if s else None for p, s in record.get("overrides", {}).items()}
        trusted = self.state.pending()
        changes = update.decide(base, theirs, overrides, self.target, trusted)
        # What osl-hooks left differs from the image's new entries only where the image changed an entry or
        # where the last sync left something else (its overrides): only those are looked at.
        candidates = {*differing_paths(base, theirs), *overrides}
        left = functools.partial(update.left_entry, base, overrides)
        self._apply(changes, theirs, left, record.get("conflicts", []), candidates)

    def full_comparison(self, theirs: Manifest) -> None:
        """No usable record of the last sync: add what is missing, keep everything that exists.

        With no record at all, the copy is adopted: a hub that switches to osl-hooks from its own rsync or cp
        hook left copies that still name the image's prefix. What is still exactly the image's file (whatever
        its times and modes, which `cp -r` loses) is osl-hooks' own: a file that names the image's prefix is
        copied again and relocated, and the rest is recorded as synced. What differs from the image is the
        user's and is kept, counted as their change from then on.
        """
        from . import update

        adopting = not self.state.record_file.exists()
        if not adopting:
            self.report.warning(
                f"There is no usable record of how {self.target} was synced: comparing it with the image "
                "(files that exist are kept, missing ones are added, nothing is removed)",
                self.env.name,
            )
        ours = {p: entry_on_disk(self.target / p) for p in theirs.entries}
        verdicts: dict[str, bool] = {}

        def as_image(path: str) -> bool:
            """`_as_image`, once per path: a `cp -r` copy's content is compared with the image's at most once."""
            if path not in verdicts:
                verdicts[path] = self._as_image(path, theirs.entries[path], ours.get(path))
            return verdicts[path]

        # A package is the user's if the copy has records of it that differ from the image's; a package
        # the copy has no trace of is the image's to add (one the user removed comes back: no data is lost).
        ours_records: dict[str, set[str]] = {}
        for rel in record_paths(self.target):
            ours_records.setdefault(record_name(rel) or "", set()).add(rel)
        user_packages = {
            name
            for name, records in ours_records.items()
            if records != set(theirs.packages.records.get(name, [])) or not all(as_image(r) for r in records)
        }
        changes = update.Changes(user_packages=user_packages)
        relocated = {f.path: f for f in theirs.prefix_files}
        built_prefix = theirs.built_prefix
        assert built_prefix is not None  # settled by image_manifest
        moved = built_prefix != str(self.target)
        for path in sorted(theirs.entries):
            if ours[path] is None:
                owned_by_user = theirs.packages.owners.get(path) in user_packages
                (changes.kept_for_packages if owned_by_user else changes.copy).append(path)
            elif moved and path in relocated and as_image(path):
                changes.copy.append(path)  # the image's file, still naming the image's prefix: relocated anew
        update.withhold_package_dirs(changes, theirs)
        unrelocated = sum(1 for p in changes.copy if ours[p] is not None)

        def left(path: str) -> Entry | None:
            """An existing file counts as osl-hooks' own only if it is exactly what a sync leaves there."""
            now = ours[path]
            if now is None or as_image(path):
                return now
            if path in relocated:
                expected = relocate.relocated_bytes(
                    (self.source / path).read_bytes(), relocated[path], built_prefix, str(self.target)
                )
                if expected == (self.target / path).read_bytes():
                    return now
            return None

        if adopting:
            yours = sum(1 for p, now in ours.items() if now is not None and p not in changes.copy and left(p) is None)
            self.report.info(
                f"Adopting {self.target}, a copy osl-hooks did not make: {unrelocated} files that still named the "
                f"image's env are relocated for your home, {yours} files that differ from the image are kept as "
                "your changes, and from now on it is synced like a copy osl-hooks made",
                self.env.name,
            )
        self._apply(changes, theirs, left, [])

    def _as_image(self, path: str, entry: Entry, now: Entry | None) -> bool:
        """Whether the copy's `path` is the image's, by its stat or, when a copy tool changed only times or
        modes, by its content."""
        if now is None:
            return False
        if entry.same_stat(now):
            return True
        source, copy = self.source / path, self.target / path
        if source.is_symlink() or copy.is_symlink():
            return source.is_symlink() and copy.is_symlink() and os.readlink(source) == os.readlink(copy)
        if not (source.is_file() and copy.is_file()) or source.stat().st_size != copy.stat().st_size:
            return source.is_dir() and copy.is_dir()
        import filecmp  # only when adopting a copy osl-hooks did not make

        return filecmp.cmp(source, copy, shallow=False)

    def _apply(
        self,
        changes: update.Changes,
        theirs: Manifest,
        left: Callable[[str], Entry | None],
        old_conflicts: list[str],
        candidates: set[str] | None = None,
    ) -> None:
        from . import update

        name = self.env.name
        needed = sum(theirs.entries[p].size for p in changes.copy)
        self._check_space_for_update(needed)
        if remove_partial_files(self.target, self.state.pending()):
            point("update:partial-files-removed")  # what a killed update's rsync was writing
        self.state.begin(changes.copy + changes.delete, theirs)
        started = time.monotonic()

        def save_conflict(path: str) -> None:
            update.save_image_version(self.source, self.home.check(self.state.conflicts_dir, "sync state"), path)

        try:
            rewritten = update.apply(changes, self.source, self.target, theirs, str(self.target), save_conflict)
            overrides = update.stat_overrides(theirs, left, set(changes.copy), rewritten, candidates)
            conflicts = sorted(set(old_conflicts) | set(changes.conflicts))
            self.state.extra.update(self._footprint(theirs))
            self.state.save(self.env, self.target, theirs, overrides, conflicts, differs_at=candidates)
        except _transfer_errors() as e:
            if is_out_of_space(e):
                e = f"your home ran out of space (free at least {human_bytes(needed)} in it)"
            raise EnvProblem(
                f"updating {self.target} failed: {e}; your copy works as it is, and the update is "
                "retried at the next start"
            ) from None
        self.status.copy_id, self.status.copied_bytes = theirs.id, needed
        self.status.conflicts, self.status.new_conflicts = len(conflicts), len(changes.conflicts)
        seconds = time.monotonic() - started
        summary = f"Updated {name} from the image in {seconds:.1f} s: {len(changes.copy)} files added or changed"
        summary += f", {len(changes.delete)} removed"
        if changes.user_packages and changes.kept_for_packages:
            summary += f"; kept your versions of {', '.join(sorted(changes.user_packages))}"
        self.report.event("env-done", summary, name, state="ready", seconds=round(seconds, 3))
        if changes.conflicts:
            self.report.warning(
                f"{len(changes.conflicts)} file(s) in {name} changed both in the image and by you; yours are kept "
                f"(e.g. {changes.conflicts[0]}), the image's versions are in {self.state.conflicts_dir}",
                name,
            )

    def _check_space_for_update(self, needed_bytes: int) -> None:
        free = self._free_bytes()
        if needed_bytes + self.margin_bytes > free:
            raise EnvProblem(
                f"your home has {human_bytes(free)} free, not enough for the update of {self.env.name} "
                f"({human_bytes(needed_bytes)}); your copy is kept as it is"
            )


def _transfer_errors() -> tuple[type[BaseException], ...]:
    """What a failed transfer raises. Called by an except clause, so only when something was raised: an update
    copies in its own process, and only a linked env's real files go through rsync (`SyncError`)."""
    from .sync import SyncError

    return (SyncError, relocate.RelocationError, OSError)


def _existing_ancestor(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path
