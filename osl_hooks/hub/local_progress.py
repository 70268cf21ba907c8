"""Progress of a start with local spawners (`wrap` delivery): the engine's status file, read by the hub.

The engine rewrites `status.json` in the user's home as it goes: its events (each one once, in order)
and its live copy progress. The hub reads it in a worker thread, never on the event loop, and hands the
typed events to the shared `EventProgress` (the same function the KubeSpawner readers use). A status
file from an engine without typed events (its events have no `kind`) is shown line by line. One reader per
start (the spawner's `start()`, through `StatusFeed`), however many spawn pages are open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
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


class StatusFeed:
    """One local start's progress: read from its status file by the spawner's `start()`, followed by every
    spawn page.

    JupyterHub stops a progress stream as soon as the spawn is over (`iterate_until` ends at the spawn future,
    delivering only an event the page's generator can hand over without waiting). A page that read the status
    file on its own poll lost the start's last steps whenever the start ended between two polls. Here the
    start itself reads the file, publishes what is new, and ends the feed before it returns or raises; a
    follower takes everything published so far without waiting for anything, so every step published before
    the spawn ends reaches every open page, the failing one included.
    """

    def __init__(self, spawn: object = None) -> None:
        self.spawn = spawn  # JupyterHub's future of the spawn this start belongs to (what a page watches)
        self.state_dir: Path | None = None  # the engine's, once the spawner has resolved the home
        self.pid: int | None = None  # the engine's process, once the spawner has started it
        self.shown: list[dict[str, Any]] = []
        self.over = False
        self._replay = ProgressReplay()
        self._changed = asyncio.Event()

    async def read(self) -> dict[str, Any] | None:
        """The status file of this start (None while it has none, or another start's), its news published."""
        if self.state_dir is None:
            return None
        status = await read_status_async(self.state_dir)
        if not status or status.get("pid") != self.pid:
            return None
        self._publish(self._replay.events(status))
        return status

    def end(self, status: dict[str, Any] | None) -> None:
        """No more events: after a successful start, the server's own start is the last step shown."""
        done = status is not None and status.get("state") not in ("running", "failed")
        self._publish([{"progress": SERVER, "message": SERVER_MESSAGE}] if done else [], over=True)

    def _publish(self, events: list[dict[str, Any]], over: bool = False) -> None:
        if events or over:
            self.shown.extend(events)
            self.over = self.over or over
            self._changed.set()  # wakes every follower waiting now
            self._changed = asyncio.Event()  # and the next wait waits for the next news

    async def follow(self) -> AsyncIterator[dict[str, Any]]:
        """Every event so far, then each new one, until the start is over."""
        seen = 0
        while True:
            while seen < len(self.shown):  # no await between two events: all of them go out, even at the end
                seen += 1
                yield self.shown[seen - 1]
            if self.over:
                return
            await self._changed.wait()
