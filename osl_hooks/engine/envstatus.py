"""What osl-hooks knows about one home's envs, read from the records the starts left in the state folder.

One implementation with two faces: `osl-hooks status [--json]` (a terminal) and the Jupyter server extension's
`GET <base_url>osl-hooks/api/envs` (`osl_hooks.lab`, the JupyterLab panel). Both must say the same thing about the
same home, so neither assembles it on its own. It lives in the engine, not in the CLI or lab/: it reads the files
the engine writes, and runs as the user, where the engine runs.

It reads records (status.json, the sync records, the background-copy records, the envs' package records); it
walks a copy only when asked to `measure` the bytes it uses, which costs a walk of every file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..plan import COPIED_MODES, Plan
from ..status import COMMANDS_DIR, LOCK_FILE, STATUS_FILE, read_status
from .background import is_placeholder
from .background import records as background_records
from .envdiff import PackageChanges, package_changes
from .linked import add_link_details
from .lock import is_held
from .manifest import MANIFEST_FILE, read_id
from .retire import status_rows
from .summary import linked_share
from .syncstate import sync_records


class EnvNotFound(LookupError):
    """The plan has no such env (or none that has a copy to compare); the message says which it has."""


class EnvMissing(OSError):
    """The env is in the plan, but the image's env or the user's copy is not on disk; the message says which."""


def gather(state_dir: Path, measure: bool = True) -> dict[str, Any] | None:
    """{"last_start", "commands", "synced", "background_copies", "retired"} for the home whose state folder is
    `state_dir`, or None when no start has left anything there. This is what `osl-hooks status --json` prints.
    `commands`: the commands (reset, materialize, remove) run since the last start, the last one on each env, oldest
    first, in the last start's format."""
    status = _ended(read_status(state_dir), state_dir, "start")
    commands = _commands_since(state_dir, _written_ns(state_dir / STATUS_FILE) if status else 0)
    records = add_link_details(state_dir, sync_records(state_dir, measure), measure)
    started = (status or {}).get("environments") or {}
    for name, record in records.items():
        source, target = Path(record.get("source", "")), Path(record.get("target", ""))
        both = source.is_dir() and target.is_dir()
        record["packages_changed"] = package_changes(source, target).summary() if both else None
        # The image's env now against the one the copy was synced from: an update the next start applies.
        # Only a baked manifest tells without a walk of the image's env; unknown (None) otherwise.
        record["image_id"] = read_id(source / MANIFEST_FILE) if source.is_dir() else None
        record["update_waiting"] = None if record["image_id"] is None else record["image_id"] != record.get("source_id")
        # Why the last start did not link it (linked asked), and how much of it the image serves through links.
        record["not_linked_because"] = (started.get(name) or {}).get("not_linked_because") or []
        on_volume = record.get("bytes_on_volume")
        via_links = record.get("bytes_via_links")
        record["linked_share"] = linked_share(
            record.get("linked_bytes") if via_links is None else via_links,
            record.get("volume_bytes") if on_volume is None else on_volume,
        )
    copies = background_records(state_dir)
    if status is None and not commands and not records and not copies:
        return None
    return {
        "last_start": status,
        "commands": commands,
        "synced": records,
        "background_copies": copies,
        "retired": status_rows(state_dir),
    }


def by_env(gathered: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The same data regrouped per env (what the JupyterLab panel shows one row of): for each env name, what the
    last start said of it (`start`; a reset since then made the env again, so its word replaces the start's), its
    sync record (`sync`) and its background copy (`background_copy`)."""
    if gathered is None:
        return {}
    last = gathered.get("last_start") or {}
    started = dict(last.get("environments") or {})
    for command in gathered.get("commands") or []:
        # A materialize's entry stays pending (it changes the copy's record only, which `sync` shows).
        entries = (command.get("environments") or {}).items()
        started.update({name: entry for name, entry in entries if entry.get("state") != "pending"})
    synced, copies = gathered.get("synced") or {}, gathered.get("background_copies") or {}
    return {
        name: {"start": started.get(name), "sync": synced.get(name), "background_copy": copies.get(name)}
        for name in dict.fromkeys([*started, *synced, *copies])
    }


def _ended(status: dict[str, Any] | None, state_dir: Path, what: str) -> dict[str, Any] | None:
    """`status` as read, but "interrupted" where it says "running" and no process holds the home's lock: the start
    or command that wrote it died without ending it (SIGKILL)."""
    if status and status.get("state") == "running" and not is_held(state_dir / LOCK_FILE):
        status.update(state="interrupted", message=f"the {what} was killed before it finished")
    return status


def _commands_since(state_dir: Path, start_written_ns: int) -> list[dict[str, Any]]:
    """The statuses of the commands written after the last start's (a command runs only once the start ended: the
    home's lock), oldest first."""
    folder = state_dir / COMMANDS_DIR
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    written = [(_written_ns(folder / name), name) for name in names if name.endswith(".json")]
    commands = []
    for when, name in sorted(written):
        status = read_status(folder, name) if when > start_written_ns else None
        if status is not None:
            commands.append(_ended(status, state_dir, "command"))
    return commands


def _written_ns(path: Path) -> int:
    try:
        return os.lstat(path).st_mtime_ns
    except OSError:
        return 0


def env_changes(plan: Plan, name: str) -> PackageChanges:
    """The packages the user added, upgraded or removed in a synced or linked env, against the image's env
    (`osl-hooks diff NAME`). Raises EnvNotFound or EnvMissing with a sentence."""
    plan = plan.resolve(plan.home or os.environ.get("HOME", ""))
    env = next((e for e in plan.environments if e.name == name and e.mode in COPIED_MODES), None)
    if env is None or env.source is None or env.target is None:
        raise EnvNotFound(f"{name!r} is not a synced or linked env of the plan")
    for path, what in ((env.source, "the image's env"), (env.target, "your copy")):
        if not Path(path).is_dir() or is_placeholder(path):
            raise EnvMissing(f"{what} {path} does not exist")
    return package_changes(Path(env.source), Path(env.target))
