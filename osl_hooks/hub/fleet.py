"""The fleet as the admin sees it: every server's last start, one row per user, server and env.

The rows come from what JupyterHub keeps in its database for each server (the spawner's state, where
`start_record` keeps the last start), so they survive hub restarts and list stopped servers too. Pure
functions over plain data, shared by the admin report (`report`) and the fleet gauges (`metrics`).

An env's state in a row, the first that applies:

- ``fell back``: the user got the image's copy (`reason`: disk_full, relocation, unsafe_home, copy_failed);
- ``failed``: the env could not be prepared (an update that did not fit: the old copy is kept);
- ``absent``: a user env not created yet;
- ``copying``: the start left the user's first copy to a process in the background (the server ran on the
  image's copy meanwhile); the server's next start shows whether it completed;
- ``behind``: the copy was synced from another image version than the newest one any start of the fleet
  saw for this env (the hub never reads images: the fleet's newest start is its view of "the image");
- ``conflicts``: files the user changed that the image changed too (the user's kept);
- ``up to date``: a copy of the image's env as the newest start saw it; ``ready`` for baked and user envs.

A copy of a *retired* env (one the hub offers nobody any more, `c.OSLHooks.retired_env_days`) has a row of its own,
from the start's ``retired`` summary rows; its `retired` column holds the engine's word and its state says it:

- ``retired waiting``: unchanged, kept until its days are up (`days_left`);
- ``retired due``: unchanged and due: the engine removes it after the server is ready;
- ``retired kept``: changed by the user: kept, it is the user's to remove (``osl-hooks remove NAME``);
- ``removed``: removed; `reclaimed_bytes` is what it freed (rows stay, so the figure is the user's total);
- ``retired other``: a state this hub does not know (a newer engine's).

`volume_bytes` of a retired row is what the copy holds on the volume; `retired_copies` and `retired_by_user` give
each user's copies once (the newest start's row), for the report's totals and the metrics.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..plan import COPIED_MODES

STATE_KEY = "osl_hooks_last_start"  # where a spawner's state keeps its last start (`start_record`)
RETIRED = ("waiting", "due", "kept", "removed")  # the engine's states of a retired copy (its summary's rows)
OTHER = "other"
RETIRED_STATES = {"waiting": "retired waiting", "due": "retired due", "kept": "retired kept", "removed": "removed"}
STATES = (
    "up to date", "behind", "conflicts", "fell back", "failed", "absent", "copying", "ready",
    *RETIRED_STATES.values(), "retired other",
)  # fmt: skip


@dataclass(frozen=True)
class LastStart:
    """One server's last start as JupyterHub's database holds it."""

    user: str
    server: str  # "" for the default server
    record: dict[str, Any]


@dataclass
class EnvRow:
    user: str
    server: str
    env: str
    mode: str  # what the plan asked for
    got: str  # what the user got
    state: str  # one of STATES
    reason: str  # fell back: why
    copy_id: str
    image_id: str  # the newest image id the fleet saw for this env
    volume_bytes: int | None
    linked_bytes: int | None
    reclaimed_bytes: int | None  # a removed retired copy: the bytes its removal freed
    days_left: float | None  # a retired copy waiting: days until it is due
    retired: str  # a retired copy: the engine's state (RETIRED, or "other"); "" for an env the hub offers
    conflicts: int
    scripts_failed: int  # setup scripts of that start that failed or timed out
    started: str  # when the start ended (UTC)
    outcome: str  # ok, degraded, failed
    seconds: float | None


def last_starts(db: Any) -> list[LastStart]:
    """Every server's last start recorded in JupyterHub's database (`db`: its SQLAlchemy session)."""
    from jupyterhub import orm

    found = []
    # One query for every server and its user's name (not one per spawner: this runs at each scrape). Selecting
    # the state column makes SQLAlchemy note that JupyterHub's JSONDict type has no cache key: said, not acted on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypeDecorator JSONDict")
        query = db.query(orm.User.name, orm.Spawner.name, orm.Spawner.state).join(orm.User, orm.Spawner.user)
        rows = query.all()
    for user, server, state in rows:
        record = (state or {}).get(STATE_KEY)
        if isinstance(record, dict):
            found.append(LastStart(user, server or "", record))
    return sorted(found, key=lambda s: (s.user, s.server))


def newest_image_ids(starts: Iterable[LastStart]) -> dict[str, str]:
    """Per env name, the image id of the most recent start that saw one."""
    newest: dict[str, tuple[str, str]] = {}
    for start in starts:
        when = str(start.record.get("time") or "")
        for env in _rows(start.record, "envs"):
            image_id = env.get("image_id")
            if image_id and (env["name"] not in newest or when >= newest[env["name"]][0]):
                newest[env["name"]] = (when, image_id)
    return {name: image_id for name, (_, image_id) in newest.items()}


def env_rows(starts: list[LastStart]) -> list[EnvRow]:
    """One row per user, server and env of its last start (a start without envs: one row, env "")."""
    newest = newest_image_ids(starts)
    rows = []
    for start in starts:
        record = start.record
        scripts = record.get("summary", {}).get("scripts") or {}
        common = {
            "user": start.user,
            "server": start.server,
            "scripts_failed": int(scripts.get("failed", 0)) + int(scripts.get("timeout", 0)),
            "started": str(record.get("time") or ""),
            "outcome": str(record.get("outcome") or ""),
            "seconds": record.get("seconds"),
        }
        retired = _rows(record, "retired")
        envs = _rows(record, "envs") or ([] if retired else [{"name": "", "mode": "", "state": ""}])
        for env in envs:
            image_id = newest.get(env["name"], env.get("image_id") or "")
            rows.append(
                EnvRow(
                    env=env["name"],
                    mode=str(env.get("mode") or ""),
                    got=str(env.get("got") or env.get("mode") or ""),
                    state=env_state(env, image_id),
                    reason=str(env.get("fallback") or ""),
                    copy_id=str(env.get("copy_id") or ""),
                    image_id=image_id,
                    volume_bytes=env.get("volume_bytes"),
                    linked_bytes=env.get("linked_bytes"),
                    reclaimed_bytes=None,
                    days_left=None,
                    retired="",
                    conflicts=int(env.get("conflicts") or 0),
                    **common,
                )
            )
        rows += [retired_row(copy, common) for copy in retired]
    return rows


def retired_row(copy: dict[str, Any], common: dict[str, Any]) -> EnvRow:
    """The row of a retired env's copy, from one of the start's ``retired`` summary rows."""
    state = copy.get("state") if copy.get("state") in RETIRED else OTHER
    return EnvRow(
        env=copy["name"],
        mode="",
        got="",
        state=RETIRED_STATES.get(state, f"retired {OTHER}"),
        reason="",
        copy_id="",
        image_id="",
        volume_bytes=_number(copy.get("volume_bytes")),
        linked_bytes=None,
        reclaimed_bytes=_number(copy.get("reclaimed_bytes")),
        days_left=_number(copy.get("days_left")),
        retired=state,
        conflicts=0,
        **common,
    )


def retired_copies(rows: Iterable[EnvRow]) -> list[EnvRow]:
    """Each user's retired copies once: per user and env, the newest start's row (a user's servers may share a home,
    and each server's last start reports the copies in it)."""
    newest: dict[tuple[str, str], EnvRow] = {}
    for row in rows:
        if row.retired and ((row.user, row.env) not in newest or row.started >= newest[(row.user, row.env)].started):
            newest[(row.user, row.env)] = row
    return [newest[key] for key in sorted(newest)]


def retired_by_user(rows: Iterable[EnvRow]) -> dict[str, dict[str, Any]]:
    """Per user: the bytes their retired copies hold, the bytes removing copies freed, and their copies' states."""
    users: dict[str, dict[str, Any]] = {}
    for row in retired_copies(rows):
        user = users.setdefault(row.user, {"held_bytes": 0, "reclaimed_bytes": 0, "states": {}})
        if row.retired != "removed":
            user["held_bytes"] += row.volume_bytes or 0
        user["reclaimed_bytes"] += row.reclaimed_bytes or 0
        user["states"][row.state] = user["states"].get(row.state, 0) + 1
    return users


def env_state(env: dict[str, Any], image_id: str) -> str:
    """The env's state in the report (see the module's docstring), from its summary row and the newest image id."""
    state = env.get("state")
    if state == "fallback":
        return "fell back"
    if state in ("failed", "absent"):
        return str(state)
    if state == "background":
        return "copying"
    if env.get("mode") not in COPIED_MODES:
        return "ready" if state else ""
    if image_id and env.get("copy_id") and env["copy_id"] != image_id:
        return "behind"
    if env.get("conflicts"):
        return "conflicts"
    return "up to date"


def rows_as_dicts(rows: list[EnvRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def rows_as_csv(rows: list[EnvRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(EnvRow.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows_as_dicts(rows))
    return out.getvalue()


def _rows(record: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The summary's rows under `key` that name an env (absent from older engines' summaries: none)."""
    rows = (record.get("summary") or {}).get(key) or []
    return [e for e in rows if isinstance(e, dict) and isinstance(e.get("name"), str)] if isinstance(rows, list) else []


def _number(value: Any) -> Any:
    """A figure of the summary, or None when it is not a number (a bool is not one)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
