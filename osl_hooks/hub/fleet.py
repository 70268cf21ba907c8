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
STATES = ("up to date", "behind", "conflicts", "fell back", "failed", "absent", "copying", "ready")


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
        for env in _envs(start.record):
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
        envs = _envs(record) or [{"name": "", "mode": "", "state": ""}]
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
                    conflicts=int(env.get("conflicts") or 0),
                    **common,
                )
            )
    return rows


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


def _envs(record: dict[str, Any]) -> list[dict[str, Any]]:
    envs = (record.get("summary") or {}).get("envs") or []
    return [e for e in envs if isinstance(e, dict) and isinstance(e.get("name"), str)]
