"""Retired envs: copies osl-hooks made of envs the hub no longer offers, found at the start from records alone.

A plan of version 2 carries the hub's whole offer (`Plan.retirement`). A copy osl-hooks made (it has a sync
record, `<state_dir>/envs/NAME.json`) whose name is neither offered nor an env of this plan is *retired*. Why
not just "not in this plan": an env this spawn's profile leaves out may be offered under another profile, and
its copy must never go. Never touched, each said in one sentence: an env the user built (no record), a name a
`user` env of the plan also uses, a copy whose record is damaged, a target that is a link or leads out of the
home. A plan without retirement (version 1) changes nothing: every copy is kept, as before.

The start only reads records here (no walk of any copy): it finds the retired copies, remembers since when each
is retired (`retired.json`, see `RetiredState`), tells the user, and reports one row per copy in the summary.
Whether the user changed a due copy (a walk) and its removal come after the server is ready
(`osl_hooks.engine.retire_removal`); the kernel of a retired env is already dropped by the stale-kernels step,
since the env is not in the plan.

Row states: `waiting` (retired, kept until `remove_after_days` have passed), `due` (to be checked and removed
after ready), `kept` (the user changed it: kept until `osl-hooks remove NAME`), `removing` (between the state
write and the end of a removal; the next start finishes it), `removed` (its bytes counted in `reclaimed_bytes`,
kept so the figure stays cumulative).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..status import RETIRED_FILE, human_bytes
from .faultpoints import point
from .homepaths import Home

DAY = 86400.0
NOT_RECORDS = (".pending.json", ".materialize.json", ".links.json")  # the other JSON files beside the records


@dataclass
class RetiredState:
    """`<state_dir>/retired.json`: per retired copy its row (since, state, bytes), replaced by one rename."""

    home: Home | None  # None: read only (`status_rows`)
    state_dir: Path
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.state_dir / RETIRED_FILE

    @classmethod
    def load(cls, home: Home | None, state_dir: Path) -> RetiredState:
        try:
            data = json.loads(Home.read_text(state_dir / RETIRED_FILE))
        except (OSError, ValueError):
            data = {}
        rows = data.get("envs") if isinstance(data, dict) else None
        rows = {k: v for k, v in rows.items() if isinstance(v, dict)} if isinstance(rows, dict) else {}
        return cls(home, state_dir, rows)

    def save(self) -> None:
        assert self.home is not None
        self.home.write_text(self.path, json.dumps({"version": 1, "envs": self.rows}, indent=1), "retired state")
        point("retire:state-saved")

    def summary(self) -> list[dict[str, Any]]:
        """The finish event's `retired` rows (events.schema.json): what the hub's report and metrics read."""
        rows = []
        for name, row in sorted(self.rows.items()):
            state = "due" if row.get("state") == "removing" else row.get("state")
            entry = {
                "name": name,
                "state": state,
                "volume_bytes": 0 if state == "removed" else row.get("volume_bytes", 0),
            }
            entry["reclaimed_bytes"] = row.get("reclaimed_bytes", 0)
            if state == "waiting":
                entry["days_left"] = row.get("days_left", 0)
            rows.append(entry)
        return rows


def record_key(record: dict) -> str:
    """What identifies one sync of a copy: a kept copy is re-checked only once it was synced again."""
    return f"{record.get('synced_at')}|{record.get('base')}"


def read_record(path: Path) -> dict | None:
    try:
        data = json.loads(Home.read_text(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("target"), str) else None


def record_files(state_dir: Path) -> dict[str, Path]:
    """The sync records in the state folder, by env name (a listing, no copy is read)."""
    directory = state_dir / "envs"
    found = directory.glob("*.json") if directory.is_dir() else []
    return {p.stem: p for p in sorted(found) if not p.name.endswith(NOT_RECORDS)}


def volume_of(record: dict) -> int:
    """The bytes a copy takes on the volume, as its record says (no walk)."""
    for key in ("volume_bytes", "bytes"):
        if isinstance(record.get(key), int):
            return record[key]
    return 0


def kept_sentence(name: str, row: dict, short: bool = False) -> str:
    """What a user is told of a changed copy of a retired env: what is kept, its size, the command that removes
    it after exporting their changes (in full once, then short)."""
    size = human_bytes(row.get("volume_bytes", 0))
    if short:
        return f"Your changed copy of {name} ({size}) is still kept (osl-hooks remove {name})"
    return (
        f"Your copy of {name} ({size}) is kept: your hub no longer offers {name}, and you changed it "
        f"({row.get('changed_files', 'some')} files). `osl-hooks remove {name}` saves a report of your changes "
        "and then removes it"
    )


def status_rows(state_dir: Path) -> list[dict[str, Any]]:
    """`osl-hooks status` (and the server's envs API): the retired copies, each with its sentence when kept."""
    state = RetiredState.load(None, state_dir)
    rows = state.summary()
    for row in rows:
        if row["state"] == "kept":
            row["message"] = kept_sentence(row["name"], state.rows[row["name"]])
    return rows
