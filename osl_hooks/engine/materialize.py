"""Making a linked env's links into the image real files: all of them, or the paths a user names.

The sync record's links (`osl_hooks.engine.syncstate.SyncState.links`) name every path where osl-hooks left a
link into the image, and they must be true at every moment (an update tells the user's changes by them). So a
materialize:

1. checks the room first: the blocks of every file it will copy, against the home's free space; without
   room it changes nothing and says how much to free in the home;
2. writes `NAME.materialize.json` (the paths it is about to make real), then copies each file beside its
   link (`.osl-materialize-*`) and renames the copy over the link: a path is a link or a complete copy;
3. commits the record without the paths it made real (one rename), then removes its list.

A copy keeps the image file's size and mtime, which is exactly what the record's base says osl-hooks left
there, so a path already made real counts as osl-hooks' own, never as a user's change, even before the
record says so. A kill anywhere leaves the list: the next start (or materialize) removes the half-written
copies beside those paths and commits what was done, before anything else reads the record.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..status import human_bytes
from .faultpoints import point
from .homepaths import Home
from .linkform import LinkForm, drop_dir_links
from .outofspace import is_out_of_space
from .syncstate import SyncState, names_links, read_links

TEMP_PREFIX = ".osl-materialize-"
BLOCK = 4096


class MaterializeError(Exception):
    """A materialize that cannot be done as asked; nothing was changed (the message says what to do)."""


def is_own_link(target: Path, source: Path, path: str) -> bool:
    return LinkForm(source).is_own(path, _link_at(target / path))


def recorded_links(envs_state_dir: Path, name: str, record: dict | None) -> set[str] | None:
    """The paths the record says are links into the image; None for a copy that was never linked.

    The record names its links file (`osl_hooks.engine.syncstate.read_links`); records of older versions
    listed them in themselves, or beside themselves (`NAME.links.json`).
    """
    links = read_links(envs_state_dir, name, record)
    if links is not None or record is None or names_links(record):
        return links
    try:
        data = json.loads(Home.read_text(envs_state_dir / f"{name}.links.json"))
    except (OSError, ValueError):
        return None
    return {p for p in data if isinstance(p, str)} if isinstance(data, list) else None


def is_linked_copy(envs_state_dir: Path, name: str, record: dict | None) -> bool:
    """Whether the record is of a linked copy, without reading its links (a damaged links file included)."""
    return names_links(record) or recorded_links(envs_state_dir, name, record) is not None


def legacy_links_file(state: SyncState) -> Path:
    return state.directory / f"{state.name}.links.json"


def forget(state: SyncState) -> None:
    """What a reset drops besides the sync record: the list of an older record and a materialize's list."""
    legacy_links_file(state).unlink(missing_ok=True)
    marker_file(state).unlink(missing_ok=True)


def marker_file(state: SyncState) -> Path:
    return state.directory / f"{state.name}.materialize.json"


def commit_links(
    state: SyncState, record: dict, links: set[str] | None, made_real: set[str] | frozenset = frozenset()
) -> None:
    """Write the record with `links` (None: the copy is no longer linked at all), in one rename; the copy's
    figures (what it takes on the volume, what its links serve) count the files `made_real` as real.

    The directories left without a link lose their links into the image first (with no link left, the root's
    too: the copy no longer names the image). A kill before the rename leaves the record of before, whose
    listed paths it made real the next start commits as here, removing the rest of those links."""
    target = Path(record.get("target", ""))
    drop_dir_links(target, recorded_links(state.directory, state.name, record) or (), links or ())
    updated = dict(record)
    if made_real and {"volume_bytes", "linked_bytes"} <= updated.keys():
        for path in made_real:
            try:
                st = os.lstat(target / path)
            except FileNotFoundError:
                continue  # removed since: it takes nothing
            updated["volume_bytes"] += st.st_blocks * 512
            updated["linked_bytes"] -= st.st_size
    state.commit(updated, links)
    point("materialize:record-committed")
    record.clear()
    record.update(updated)
    legacy_links_file(state).unlink(missing_ok=True)


def settle_interrupted(state: SyncState, target: Path, source: Path) -> None:
    """Finish what a killed materialize left: remove its half-written copies, commit what it made real."""
    marker = marker_file(state)
    try:
        listed = json.loads(Home.read_text(marker))
    except (OSError, ValueError):
        marker.unlink(missing_ok=True)
        return
    for directory in {(target / p).parent for p in listed if isinstance(p, str)}:
        for temporary in directory.glob(TEMP_PREFIX + "*") if directory.is_dir() else []:
            if temporary.is_file() and not temporary.is_symlink():
                temporary.unlink()
    record = state.record()
    links = recorded_links(state.directory, state.name, record)
    if record is not None and links is not None:
        made_real = {p for p in listed if p in links and not os.path.islink(target / p)}
        if made_real or not names_links(record):
            commit_links(state, record, links - made_real, made_real)
    marker.unlink(missing_ok=True)
    point("materialize:settled")


def make_real(
    state: SyncState,
    target: Path,
    source: Path,
    wanted: Callable[[str], bool] | None = None,
    margin_bytes: int = 0,
    keep_linked: bool = True,
) -> tuple[int, int]:
    """Replace osl-hooks' links (those `wanted` selects, default all) with copies; return (files, bytes).

    `keep_linked=False` (the env is becoming `synced`) drops the links from the record once none are left.
    """
    settle_interrupted(state, target, source)
    record = state.record()
    links = recorded_links(state.directory, state.name, record)
    if record is None or links is None:
        return 0, 0
    form = LinkForm(source)
    chosen = sorted(p for p in links if (wanted is None or wanted(p)) and form.is_own(p, _link_at(target / p)))
    sizes = {p: os.stat(source / p).st_size for p in chosen}
    _check_room(state.home, target, sum(-(-s // BLOCK) * BLOCK for s in sizes.values()) + margin_bytes, len(chosen))
    state.home.write_text(marker_file(state), json.dumps(chosen), "sync state")
    done: set[str] = set()
    try:
        for path in chosen:
            _replace_link(state.home, target, source, path)
            done.add(path)
            point("materialize:file-replaced")
    except OSError as e:
        if is_out_of_space(e):
            raise MaterializeError(
                f"your home {state.home.path} became full while copying ({len(done)} of {len(chosen)} files are "
                "real now, the rest are still links); free space in it and run it again"
            ) from None
        raise
    finally:
        left = links - done
        commit_links(state, record, left if keep_linked or left else None, done)
        marker_file(state).unlink(missing_ok=True)
        point("materialize:marker-removed")
    return len(done), sum(sizes[p] for p in done)


def _link_at(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def path_selector(target: Path, paths: tuple[str, ...]) -> Callable[[str], bool] | None:
    """Which env paths the user's PATHs (files or directories, relative to the env or absolute) select."""
    chosen = []
    for given in paths:
        rel = os.path.relpath(os.path.abspath(target / given), target)
        if rel == ".." or rel.startswith("../"):
            raise MaterializeError(f"{given} is not in your copy of the env ({target})")
        chosen.append(rel)
    if not chosen:
        return None
    return lambda path: any(c == "." or path == c or path.startswith(c + "/") for c in chosen)


def _check_room(home: Home, target: Path, needed: int, files: int) -> None:
    volume = os.statvfs(target)
    free = volume.f_bavail * volume.f_frsize
    if needed > free:
        raise MaterializeError(
            f"your home {home.path} has {human_bytes(free)} free, and making {files} files real needs "
            f"{human_bytes(needed)}; nothing was changed: free at least {human_bytes(needed - free)} in your home "
            "and run it again"
        )


def _replace_link(home: Home, target: Path, source: Path, path: str) -> None:
    """A copy of the image's file beside the link, renamed over it (same mode, plus the owner's write bit)."""
    destination = home.check((target / path).parent, "materialize") / Path(path).name
    temporary = destination.parent / f"{TEMP_PREFIX}{os.urandom(4).hex()}"
    try:
        shutil.copy2(source / path, temporary)
        os.chmod(temporary, os.stat(temporary).st_mode | 0o200)
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
