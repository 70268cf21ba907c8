"""Bringing an image update into a user's copy without losing what the user changed.

A three-way decision per path, like a merge: *base* is the image's env as it was last synced, *theirs* the
image's env now, *ours* the user's copy on disk. Only the paths the image changed are looked at (the cost
follows the size of the change, not of the env), and for each:

- the user did not touch it (it still looks as osl-hooks left it): take the image's version, or delete it;
- the user changed or deleted it: keep the user's state, and record a conflict (the image's version is
  saved in the state directory, where the user can find it);
- it belongs to a package the user upgraded, removed or installed themselves: the package is the user's,
  and none of the image's files of that package are added, changed or removed;
- files the user added are never looked at.

"As osl-hooks left it" is the image entry's size and mtime (the transfer keeps both), except for files osl-hooks
rewrote (relocated), whose size and mtime after rewriting are kept in the sync record.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path

from .._records import field, record
from .faultpoints import point
from .manifest import Entry, Manifest, changed_paths, entry_on_disk
from .packages import records_by_name
from .relocate import relocate

Stat = tuple[int, int] | None  # (size, mtime_ns) osl-hooks left at a path, or None: it left nothing there


@record
class Changes:
    """What an update will do to the user's copy."""

    copy: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    remove_dirs: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    user_packages: Collection[str] = field(default_factory=set)  # a set, or `UserPackages` (asked as needed)
    kept_for_packages: list[str] = field(default_factory=list)


def left_entry(base: Manifest, overrides: dict[str, Stat], path: str) -> Entry | None:
    """What osl-hooks left at `path` after the last sync (size and mtime are what matter)."""
    entry = base.entries.get(path)
    if path in overrides:
        stat = overrides[path]
        if stat is None or entry is None:
            return None
        return Entry(entry.kind, stat[0], entry.mode, stat[1], None, entry.link)
    return entry


class UserPackages:
    """The packages the user upgraded, removed or installed (their records differ from what osl-hooks left),
    found package by package as an update asks: it asks only about the owners of the paths the image changed,
    so a 1% update reads the records of the packages it touches, not those of every package in the env.

    Iterating gives the packages found to be the user's so far (what the update kept for them)."""

    def __init__(self, base: Manifest, overrides: dict[str, Stat], target: Path, trusted: set[str]):
        self._base, self._overrides, self._target, self._trusted = base, overrides, target, trusted
        self._answers: dict[str, bool] = {}
        self._on_disk: dict[str, list[str]] | None = None  # where records are on disk, by package

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name not in self._answers:
            self.ask([name])
        return self._answers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(name for name, user in self._answers.items() if user))

    def __len__(self) -> int:
        return sum(self._answers.values())

    def ask(self, names: Iterable[str]) -> None:
        """Find out about `names` at once: their records' entries are read together."""
        names = [n for n in set(names) if n not in self._answers]
        if self._on_disk is None:
            self._on_disk = records_by_name(self._target)
        left = {name: self._base.packages.records.get(name, []) for name in names}
        on_disk = {name: self._on_disk.get(name, []) for name in names}
        self._base.prefetch([rel for name in names for rel in (*left[name], *on_disk[name])])
        for name in names:
            self._answers[name] = self._changed_by_user(left[name], on_disk[name])

    def _changed_by_user(self, left: list[str], on_disk: list[str]) -> bool:
        """A record osl-hooks left is not as it left it, or the copy has a record the base lacks."""
        base, trusted, target = self._base, self._trusted, self._target
        if any(rel not in trusted and not _looks_as_left(base, self._overrides, target, rel) for rel in left):
            return True
        return any(rel not in base.entries and rel not in trusted and (target / rel).is_file() for rel in on_disk)


def decide(base: Manifest, theirs: Manifest, overrides: dict[str, Stat], target: Path, trusted: set[str]) -> Changes:
    """The three-way decision for every path the image changed. `trusted`: paths osl-hooks itself was
    writing when a start was interrupted (they are not user changes)."""
    changes = Changes(user_packages=UserPackages(base, overrides, target, trusted))

    def as_left(path: str, now: Entry | None) -> bool:
        return is_as_left(base, overrides, path, now)

    for path, now in untouched_paths(changes, changed_paths(base, theirs), base, theirs, target, trusted, as_left):
        take_image_side(changes, path, now, theirs)
    withhold_package_dirs(changes, theirs)
    return changes


def untouched_paths(
    changes: Changes,
    paths: Iterable[str],
    base: Manifest,
    theirs: Manifest,
    target: Path,
    trusted: set[str],
    as_left: Callable[[str, Entry | None], bool],
) -> Iterator[tuple[str, Entry | None]]:
    """The head of every three-way decision (synced and linked): of the paths the image changed, record in
    `changes` those of packages the user owns and those the user changed (conflicts), and yield the rest, the
    paths still as osl-hooks left them (`as_left`), with what is on disk there now."""
    paths = list(paths)
    owners = [theirs.packages.owners.get(path) or base.packages.owners.get(path) for path in paths]
    if isinstance(changes.user_packages, UserPackages):
        changes.user_packages.ask(owner for owner in owners if owner)
    for path, owner in zip(paths, owners, strict=True):
        if owner in changes.user_packages:
            changes.kept_for_packages.append(path)
            continue
        now = entry_on_disk(os.path.join(target, path))  # a str: Path objects cost more than the lstat
        if path in trusted or as_left(path, now):
            yield path, now
        elif now is not None or path in theirs.entries:
            changes.conflicts.append(path)


def take_image_side(changes: Changes, path: str, now: Entry | None, theirs: Manifest) -> None:
    """A path the user did not touch becomes what the image has now: copied, or removed if the image dropped it."""
    if path in theirs.entries:
        changes.copy.append(path)
    elif now is not None and now.kind == "d":
        changes.remove_dirs.append(path)
    elif now is not None:
        changes.delete.append(path)


def withhold_package_dirs(changes: Changes, theirs: Manifest) -> None:
    """Directories belong to packages too: one the image has only for files of a package the user owns
    (`pkg-1.5.dist-info/` when the user upgraded pkg to 2.0) is not created either; an empty dist-info
    directory breaks `importlib.metadata` and pip."""
    if not changes.kept_for_packages:
        return
    withheld = _ancestors(changes.kept_for_packages)
    needed = _ancestors(p for p in changes.copy if theirs.entries[p].kind != "d")
    dropped = [p for p in changes.copy if p in withheld and p not in needed and theirs.entries[p].kind == "d"]
    if dropped:
        changes.kept_for_packages += dropped
        changes.copy = [p for p in changes.copy if p not in set(dropped)]


def _ancestors(paths) -> set[str]:  # type: ignore[no-untyped-def]
    """Every directory above the given relative paths."""
    found: set[str] = set()
    for path in paths:
        while "/" in path:
            path = path.rsplit("/", 1)[0]
            if path in found:
                break
            found.add(path)
    return found


def apply(
    changes: Changes,
    source: Path,
    target: Path,
    theirs: Manifest,
    new_prefix: str,
    save_conflict: Callable[[str], None],
) -> dict[str, Stat]:
    """Carry out `changes`; return the stats of the rewritten files (for the next sync's overrides).

    Each file is written beside its place and renamed into place (`filecopy`); what a killed update leaves
    half-written is removed by the next one (`trees.remove_partial_files` on the paths it recorded as pending).
    """
    for path in changes.delete:
        (target / path).unlink(missing_ok=True)
        point("update:unlinked")
    for path in sorted(changes.remove_dirs, key=lambda p: p.count("/"), reverse=True):
        try:
            (target / path).rmdir()
        except OSError:
            pass  # the user keeps files in it: the directory stays
        point("update:dir-removed")
    for path in changes.conflicts:
        save_conflict(path)
        point("update:conflict-saved")
    if changes.copy:
        from .filecopy import copy_paths  # threads and the transfer's cut: for an update that copies

        paths = sorted(changes.copy)
        copy_paths(source, target, paths, [theirs.entries[p].size for p in paths])
        point("update:copied")
    copied = set(changes.copy)
    to_rewrite = [f for f in theirs.prefix_files if f.path in copied]
    assert theirs.built_prefix is not None  # settled when the image's manifest was read
    relocate(target, to_rewrite, theirs.built_prefix, new_prefix)
    return {f.path: file_stat(target / f.path) for f in to_rewrite}


def stat_overrides(
    theirs: Manifest,
    left: Callable[[str], Entry | None],
    copied: set[str],
    rewritten: dict[str, Stat],
    candidates: Iterable[str] | None = None,
) -> dict[str, Stat]:
    """The overrides to store with `theirs` as the new base: where what osl-hooks left differs from it.

    `copied` paths now hold the image's version (the transfer keeps size and mtime), `rewritten` ones were
    relocated after copying, and every other path still holds what `left` says osl-hooks left there.
    `candidates`, when given, are the only paths where `left` can differ from `theirs` (the rest are
    not looked at, so an update does not parse every entry); by default every path is looked at.
    """
    overrides: dict[str, Stat] = {}
    for path in theirs.entries if candidates is None else set(candidates) | rewritten.keys():
        entry = theirs.entries.get(path)
        if entry is None or entry.kind != "f":
            continue
        if path in rewritten:
            stat = rewritten[path]
        elif path in copied:
            continue
        else:
            was = left(path)
            stat = (was.size, was.mtime_ns) if was is not None and was.kind == "f" else None
        if stat != (entry.size, entry.mtime_ns):
            overrides[path] = stat
    return overrides


def _looks_as_left(base: Manifest, overrides: dict[str, Stat], target: Path, path: str) -> bool:
    return is_as_left(base, overrides, path, entry_on_disk(target / path))


def is_as_left(base: Manifest, overrides: dict[str, Stat], path: str, now: Entry | None) -> bool:
    """Whether `now` (what is on disk at `path`) is still what osl-hooks left there."""
    left = left_entry(base, overrides, path)
    return now is None if left is None else left.same_stat(now)


def file_stat(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return (st.st_size, st.st_mtime_ns)


def save_image_version(source: Path, conflicts_dir: Path, path: str) -> None:
    """Keep the image's version of a conflicting file where the user can find it."""
    image_file = source / path
    if not image_file.is_file() or image_file.is_symlink():
        return
    destination = conflicts_dir / path
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(image_file, destination)
    os.chmod(destination, 0o644)
