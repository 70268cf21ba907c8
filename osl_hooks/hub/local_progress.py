"""Progress of a start with local spawners (`wrap` delivery): the engine's status file, read by the hub.

The engine rewrites `status.json` in the user's home as it goes: its events (each one once, in order)
and its live copy progress. The hub reads it in a worker thread, never on the event loop, and hands the
typed events to the shared `EventProgress` (the same function the KubeSpawner readers use). A status
file from an engine without typed events (its events have no `kind`) is shown line by line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ..status import read_status
from .progress import FAILED_PREFIX, SERVER, EventProgress, event_message, is_typed, raw_event

STATUS_POLL_SECONDS = 0.3
SERVER_MESSAGE = "Starting your notebook server"


class ProgressReplay:
    """Successive readings of one start's status.json as progress events, without repeats or going back."""

    def __init__(self) -> None:
        self.seen_events = 0
        self.last_message = ""
        self.progress = EventProgress()

    def events(self, status: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for event in status.get("events", [])[self.seen_events :]:
            self.seen_events += 1
            found.append(self._shown(event))
        live = status.get("progress")
        if live and is_typed(live) and event_message(live) != self.last_message:
            found.append(self._shown(live))
        return found

    def _shown(self, event: dict[str, Any]) -> dict[str, Any]:
        if is_typed(event):
            shown = self.progress.feed(event)
        else:
            shown = {"progress": int(self.progress.percent), **raw_event(event.get("message", ""), event.get("level"))}
        self.last_message = shown["message"]
        return shown


def failure_sentence(status: dict[str, Any] | None, exit_status: int | None) -> str:
    """A sentence for the user about a start that failed, from the engine's own final event when it left one."""
    if status and status.get("state") == "failed":
        final = next((e for e in reversed(status.get("events", [])) if e.get("final")), None)
        if final is not None and is_typed(final):
            return event_message(final)
        return f"{FAILED_PREFIX} {final['message'] if final else ''}".strip()
    if exit_status == 2:
        return f"{FAILED_PREFIX[:-1]}: the osl-hooks plan was not valid (the hub log has details)."
    detail = f" (exit status {exit_status})" if exit_status is not None else ""
    return f"The server stopped before its environments were ready{detail}; the hub log has details."


async def read_status_async(state_dir: Path) -> dict[str, Any] | None:
    return await asyncio.to_thread(read_status, state_dir)


async def local_progress(
    state_dir: Path, pid: int | None, given_up: Callable[[], bool] = lambda: False
) -> AsyncIterator[dict[str, Any]]:
    """Progress events from the engine's status file, until its start is over or the hub gave up on it."""
    replay = ProgressReplay()
    while True:
        status = await read_status_async(state_dir)
        if given_up():
            return
        if status and status.get("pid") == pid:
            for event in replay.events(status):
                yield event
            if status.get("state") == "failed":
                return
            if status.get("state") != "running":
                yield {"progress": SERVER, "message": SERVER_MESSAGE}
                return
        await asyncio.sleep(STATUS_POLL_SECONDS)
