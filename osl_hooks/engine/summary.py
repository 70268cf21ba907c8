"""The start's summary: the figures the hub aggregates (metrics) and keeps per server (the admin report).

The finish event carries it (`osl_hooks.events`), so it reaches the hub however the hub reads the end of a
start: the status file, the termination message (which drops it before the outcome when it does not fit),
the container log. Compact: per env (what it asked for and got, what the start did, why it fell back, the
image ids of the copy and of the image, bytes), seconds per phase, setup scripts per state.
"""

from __future__ import annotations

import collections
from typing import Any

SUMMARY_ID_CHARS = 12  # of a manifest id in the summary: enough to tell image versions apart, short
PHASES = ("copy", "update", "kernels", "scripts")
_ENV_FIELDS = (
    "action", "fallback", "image_id", "copy_id", "volume_bytes", "linked_bytes", "copied_bytes", "conflicts",
    "new_conflicts", "seconds", "not_linked_because",
)  # fmt: skip


def linked_share(linked_bytes: int | None, volume_bytes: int | None) -> float | None:
    """The share of a copy's bytes served through links into the image: links / (links + on the volume)."""
    if linked_bytes is None or volume_bytes is None:
        return None
    total = linked_bytes + volume_bytes
    return round(linked_bytes / total, 3) if total else 0.0


def start_summary(
    envs: dict[str, Any],
    scripts: list[dict[str, Any]],
    phases: dict[str, float],
    retired: list[dict[str, Any]] | None = None,
) -> dict:
    """The summary of a start from its envs' status (`reporter.EnvStatus` by name), its scripts' results, its
    seconds per phase and, with a plan that has retirement, one row per retired copy (`retire.RetiredState`)."""
    rows = []
    for status in envs.values():
        row: dict[str, Any] = {"name": status.name, "mode": status.mode, "state": status.state}
        if status.effective_mode and status.effective_mode != status.mode:
            row["got"] = status.effective_mode
        for name in _ENV_FIELDS:
            value = getattr(status, name)
            if value is not None:
                row[name] = value[:SUMMARY_ID_CHARS] if name.endswith("_id") else value
        if status.mode == "linked" and status.state == "ready":
            row["linked_share"] = linked_share(status.linked_bytes, status.volume_bytes)
        rows.append(row)
    states = collections.Counter(s["state"] for s in scripts)
    summary = {"phases": {p: round(phases.get(p, 0.0), 3) for p in PHASES}, "scripts": dict(states), "envs": rows}
    if retired is not None:
        summary["retired"] = retired
    return summary
