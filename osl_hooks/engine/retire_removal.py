"""Removing a retired copy: the check that the user did not change it, the removal, and `osl-hooks remove NAME`.

Runs after the server is ready (`osl-hooks retire-after-ready`, detached, where the delivery runs the server;
else as the start's last step, see `osl_hooks.engine.retire`). The check walks the copy and compares it with
what osl-hooks left there, by the rule every sync uses (`update.is_as_left`: the record's base manifest and
overrides; osl-hooks' own links into the image count as left). A file the user added, changed or removed is a
change; Python's bytecode caches (`__pycache__/*.pyc`) are not: running the env writes them.

A removal, each step followed by a fault point, so a kill anywhere is finished or undone by the next start
(`Retiring.finish_interrupted`, before any env step reads records):
1. the row becomes `removing`, naming the hidden place the copy moves to (`.osl-removing-NAME-ID` beside it);
2. the copy moves there in ONE rename: from here on it is gone for every reader (never registered as an env);
3. its sync record and the rest of its state are forgotten;
4. the row becomes `removed`, its bytes added to `reclaimed_bytes`;
5. the tree is deleted (with no lock held: a start never waits for it; a killed deletion is redone later).
A full home stops at step 1 with nothing changed (the out-of-space sentence says so).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..plan import Plan
from ..status import LOCK_FILE, human_bytes
from .faultpoints import point
from .homepaths import Home, UnsafePath
from .linkform import IMAGE_LINK, LinkForm
from .lock import LockTimeout, StartLock
from .manifest import scan_tree
from .materialize import commit_links, recorded_links
from .materialize import forget as forget_materialize
from .outofspace import is_out_of_space
from .retire import RetiredState, kept_sentence, read_record, record_key
from .syncstate import SyncState
from .trees import remove_tree
from .update import is_as_left

REMOVING_PREFIX = ".osl-removing-"
LOCK = "retired.lock"  # held by the process checking and removing retired copies: one at a time
LOG = "retired.log"


def user_changes(home: Home, state_dir: Path, name: str, record: dict) -> tuple[list[str], int]:
    """The paths of the copy the user changed (added, changed, removed) and the bytes it takes (one walk)."""
    target = Path(record["target"])
    scanned = scan_tree(target)
    base = SyncState(home, state_dir / "envs", name).base(record)
    if base is None:
        return [
            "(the record of the last sync is incomplete: osl-hooks cannot tell what you changed)"
        ], scanned.disk_bytes
    overrides = {p: tuple(s) if s else None for p, s in record.get("overrides", {}).items()}
    links = recorded_links(state_dir / "envs", name, record) or set()
    form = LinkForm(record.get("source") or "")
    changed = []
    for path in sorted({*base.entries, *scanned.entries}):
        now = scanned.entries.get(path)
        if now is not None and now.kind == "l" and (path.endswith(IMAGE_LINK) or form.is_own(path, now.link)):
            continue  # osl-hooks' own link into the image
        if path in links and now is None:
            continue  # a link of osl-hooks' that a removal of links already dropped
        if path.endswith(".pyc") and "__pycache__/" in path:
            continue  # what running the env writes, not a change of the user's
        if not is_as_left(base, overrides, path, now):  # type: ignore[arg-type]
            changed.append(path)
    return changed, scanned.disk_bytes


def commit_removal(home: Home, state: RetiredState, name: str, record: dict, volume_bytes: int) -> Path:
    """Steps 1 to 4 of a removal (see the module's docstring); returns the place of the tree to delete."""
    target = Path(record["target"])
    place = target.parent / f"{REMOVING_PREFIX}{target.name}-{os.urandom(4).hex()}"
    row = state.rows.setdefault(name, {})
    row.update(state="removing", removing=str(place), volume_bytes=volume_bytes)
    row.pop("days_left", None)
    state.save()
    os.rename(target, place)
    point("retire:moved-aside")
    finish_removal(home, state, name)
    return place


def finish_removal(home: Home, state: RetiredState, name: str) -> None:
    """Steps 3 and 4 for a row `removing` whose copy was moved aside; a row whose copy was never moved goes back
    to `waiting` (the survey decides again)."""
    row = state.rows[name]
    if not os.path.lexists(row.get("removing") or ""):
        row["state"] = "waiting"
        state.save()
        return
    sync = SyncState(home, state.state_dir / "envs", name)
    sync.forget()
    forget_materialize(sync)
    point("retire:state-forgotten")
    reclaimed = row.get("reclaimed_bytes", 0) + row.get("volume_bytes", 0)
    row.update(state="removed", reclaimed_bytes=reclaimed, volume_bytes=0)
    state.save()


def delete_tree(place: Path) -> None:
    """Step 5: the moved-aside copy deleted: only a tree osl-hooks named (`.osl-removing-*`), never a link, so a
    damaged or edited `retired.json` cannot point the deletion at anything else."""
    if place.name.startswith(REMOVING_PREFIX) and os.path.isdir(place) and not os.path.islink(place):
        remove_tree(place, missing_ok=True)
        point("retire:tree-deleted")


def drop_image_links(home: Home, state_dir: Path, name: str, record: dict) -> None:
    """A kept linked copy of a retired env loses its links into the image (they cannot work once the image lacks
    the env); what the user made real stays. Each unlink is one step; the record then says it has no links."""
    links = recorded_links(state_dir / "envs", name, record)
    if not links:
        return
    target, form = Path(record["target"]), LinkForm(record.get("source") or "")
    for rel in sorted(links):
        path = target / rel
        if os.path.islink(path) and form.is_own(rel, os.readlink(path)):
            path.unlink()
            point("retire:link-dropped")
    commit_links(SyncState(home, state_dir / "envs", name), record, None)


class RemovalRun:
    """Check and remove every `due` copy, then delete the trees of earlier removals. `report` has `info` and
    `warning` (the start's reporter, or start.log lines); `locked()` holds the start's lock for each commit
    (nothing when the start itself runs this, holding it already)."""

    def __init__(
        self,
        home: Home,
        state_dir: Path,
        report: Any,
        locked: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ):
        self.home, self.state_dir, self.report, self.locked = home, state_dir, report, locked
        self.tells_user = locked is contextlib.nullcontext  # the start's own output, not start.log afterwards

    def run(self, leftovers: list[Path]) -> None:
        state = RetiredState.load(self.home, self.state_dir)
        for name in [n for n, row in state.rows.items() if row.get("state") == "due"]:
            try:
                self.check_and_remove(name)
            except (UnsafePath, OSError, LockTimeout) as e:
                self.report.warning(problem(f"your copy of {name}, which your hub no longer offers, is kept", e))
        for place in leftovers:
            try:
                delete_tree(place)
            except OSError as e:
                self.report.warning(problem(f"{place}, a removed copy, could not be deleted yet", e))

    def check_and_remove(self, name: str) -> None:
        record = read_record(self.state_dir / "envs" / f"{name}.json")
        if record is None:
            return
        changed, disk = user_changes(self.home, self.state_dir, name, record)
        with self.locked():
            state = RetiredState.load(self.home, self.state_dir)  # as it is now: a start may have run meanwhile
            row = state.rows.get(name)
            fresh = read_record(self.state_dir / "envs" / f"{name}.json")
            if row is None or row.get("state") != "due" or fresh is None or record_key(fresh) != record_key(record):
                return
            if changed:
                if recorded_links(self.state_dir / "envs", name, fresh):
                    drop_image_links(self.home, self.state_dir, name, fresh)
                row.update(state="kept", volume_bytes=disk, changed_files=len(changed), told=self.tells_user)
                state.save()
                self.report.info(kept_sentence(name, row))
                return
            place = commit_removal(self.home, state, name, fresh, disk)
        delete_tree(place)
        self.report.info(f"Removed your copy of {name}, which your hub no longer offers ({human_bytes(disk)} freed)")


def problem(what: str, error: BaseException) -> str:
    """One sentence for a step that could not be done; a full home said by the out-of-space rule."""
    if is_out_of_space(error):
        where = getattr(error, "filename", None) or "writing the state"
        return f"your home is full ({where}), so {what}; free some space in it and restart"
    return f"{what}: {error}"


# -- after the server is ready, detached -----------------------------------------------------------------------


class StartLogLines:
    """What the detached removal tells: lines of start.log (the next start's summary carries the figures)."""

    def __init__(self, home: Home, state_dir: Path):
        self.home, self.state_dir = home, state_dir

    def info(self, message: str, env: str | None = None) -> None:
        from .background_copy import append_to_start_log

        append_to_start_log(self.home, self.state_dir, message)

    def warning(self, message: str, env: str | None = None) -> None:
        self.info(f"WARNING: {message}")


def launch_after_ready(plan: Plan, home: Home, state_dir: Path, server_pid: int | None) -> None:
    from .background import spawn_detached

    spawn_detached(plan, home, state_dir / LOG, ["retire-after-ready"], server_pid)


def remove_after_ready(plan: Plan, server_pid: int | None) -> int:
    """`osl-hooks retire-after-ready`: once the server is up, at low priority, check and remove the due copies."""
    from .background import NICENESS
    from .background_copy import lower_session_priority, try_lock, wait_for_server

    plan = plan.resolve(plan.home or os.environ.get("HOME", ""))
    home = Home(plan.home or "")
    state_dir = home.makedirs(plan.state_dir, "state_dir")
    lower_session_priority(NICENESS)
    with try_lock(state_dir / LOCK) as mine:
        if not mine:
            return 0  # another process is at it
        if server_pid is not None:
            wait_for_server(server_pid, Path(plan.jupyter_data_dir))
        rows = RetiredState.load(home, state_dir).rows.values()
        leftovers = [Path(r["removing"]) for r in rows if r.get("state") == "removed" and r.get("removing")]
        locked = lambda: StartLock(state_dir / LOCK_FILE, plan.lock_timeout)  # noqa: E731
        RemovalRun(home, state_dir, StartLogLines(home, state_dir), locked).run(leftovers)
    return 0
