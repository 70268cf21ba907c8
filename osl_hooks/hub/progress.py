"""What the user sees on the spawn page while osl-hooks prepares their envs, and why a start failed.

JupyterHub asks the spawner for progress with `Spawner.progress()`, an async generator; every progress
request (each open spawn page) makes a new generator, so each one replays everything known so far.

- Local spawners (`wrap` delivery): the engine writes `status.json` in the user's home as it goes (all its
  events, the current progress); the hub reads it in a worker thread, never on the event loop. The spawner's
  `start()` also waits for the engine to finish, so a failed start becomes a `SpawnException` carrying the
  engine's own sentence ("Setup script 20-git.sh exited with code 1") instead of a generic timeout.
- KubeSpawner: the hub cannot read the user's volume; `osl_hooks.hub.kube_progress` reads what the hub can
  see of the pod (init container state, termination message, and its log when RBAC allows).

`install(c)` swaps the configured spawner class for a subclass with `OSLHooksSpawnerMixin` in front, so
these methods run before the spawner's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..plan import Plan
from ..status import read_status
from .config import is_kubespawner

STATUS_POLL_SECONDS = 0.3
# The band of the progress bar osl-hooks fills; JupyterHub uses 0 ("Server requested") and 100 (ready).
FIRST_PERCENT, LAST_PERCENT = 10, 90


class ProgressReplay:
    """Turns successive readings of status.json into progress events, without repeats or going back."""

    def __init__(self) -> None:
        self.seen_events = 0
        self.last_message = ""
        self.percent = FIRST_PERCENT

    def events(self, status: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for event in status.get("events", [])[self.seen_events :]:
            self.seen_events += 1
            message = event["message"]
            if event["level"] == "warning":
                message = f"Warning: {message}"
            elif event["level"] == "error":
                message = f"Error: {message}"
            found.append(self._event(status, message, final=event.get("final", False)))
        current = status.get("progress")
        if current and current.get("message") and current["message"] != self.last_message:
            found.append(self._event(status, current["message"]))
        return found

    def _event(self, status: dict[str, Any], message: str, final: bool = False) -> dict[str, Any]:
        self.last_message = message
        self.percent = max(self.percent, LAST_PERCENT if final else _percent(status))
        return {"progress": self.percent, "message": message}


def _percent(status: dict[str, Any]) -> int:
    """How far the start is: finished envs, plus the share of the one being copied."""
    envs = status.get("environments", {})
    if not envs:
        return FIRST_PERCENT
    done = sum(1 for e in envs.values() if e.get("state") not in ("pending", "working"))
    current = status.get("progress") or {}
    if current.get("total"):
        done += min(current.get("done", 0) / current["total"], 1.0)
    planned = max(len(envs), done)
    return int(FIRST_PERCENT + (LAST_PERCENT - FIRST_PERCENT - 5) * done / planned)


def failure_sentence(status: dict[str, Any] | None, exit_status: int | None) -> str:
    """A sentence for the user about a start that failed, from the engine's own words when it left any."""
    if status and status.get("state") == "failed":
        final = next((e["message"] for e in reversed(status["events"]) if e.get("final")), "")
        return f"Your environments could not be prepared. {final}".strip()
    if exit_status == 2:
        return "Your environments could not be prepared: the osl-hooks plan was not valid (the hub log has details)."
    detail = f" (exit status {exit_status})" if exit_status is not None else ""
    return f"The server stopped before its environments were ready{detail}; the hub log has details."


async def read_status_async(state_dir: Path) -> dict[str, Any] | None:
    return await asyncio.to_thread(read_status, state_dir)


async def local_progress(state_dir: Path, pid: int | None) -> AsyncIterator[dict[str, Any]]:
    """Progress events from the engine's status file, until its start is over."""
    replay = ProgressReplay()
    while True:
        status = await read_status_async(state_dir)
        if status and status.get("pid") == pid:
            for event in replay.events(status):
                yield event
            if status.get("state") == "failed":
                return
            if status.get("state") != "running":
                yield {"progress": LAST_PERCENT + 5, "message": "Starting your notebook server"}
                return
        await asyncio.sleep(STATUS_POLL_SECONDS)


class OSLHooksSpawnerMixin:
    """Progress and readable failures for spawners osl-hooks delivers to (mixed in by `install(c)`)."""

    _osl_hooks_plan: Plan | None = None  # set by the pre_spawn hook when it wraps a local server command

    async def start(self) -> Any:
        if is_kubespawner(type(self)):
            return await self._osl_hooks_kube_start()
        result = await super().start()  # type: ignore[misc]
        if self._osl_hooks_local():
            await self._osl_hooks_wait()
        return result

    async def _osl_hooks_kube_start(self) -> Any:
        """KubeSpawner's start, ended early with the engine's sentence when osl-hooks failed on purpose.

        KubeSpawner keeps waiting for the pod while Kubernetes retries a failed init container, until
        `start_timeout`; a failure the engine chose (exit 1 or 2) would only repeat, so the user is told now.
        """
        from .kube_progress import deliberate_failure

        start = asyncio.ensure_future(super().start())  # type: ignore[misc]
        try:
            while True:
                done, _ = await asyncio.wait({start}, timeout=STATUS_POLL_SECONDS)
                if done:
                    return start.result()
                message = deliberate_failure(self)
                if message:
                    raise spawn_error(message)
        finally:
            if not start.done():
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await start

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        if is_kubespawner(type(self)):
            from .kube_progress import kube_progress, read_logs_setting

            async for event in kube_progress(self, read_logs=read_logs_setting(self)):
                yield event
            return
        if self._osl_hooks_local():
            state_dir = await self._osl_hooks_state()
            async for event in local_progress(state_dir, getattr(self, "pid", None)):
                yield event
            return
        async for event in super().progress():  # type: ignore[misc]
            yield event

    def _osl_hooks_local(self) -> bool:
        return self._osl_hooks_plan is not None

    async def _osl_hooks_state(self) -> Path:
        """The engine's state dir in the user's home, as the engine will resolve it."""
        plan = self._osl_hooks_plan
        assert plan is not None
        home = plan.home
        if home is None:
            # LocalProcessSpawner: the server's $HOME is the user's passwd home; NSS may block, so not here.
            home = await asyncio.to_thread(lambda: pwd.getpwnam(self.user.name).pw_dir)  # type: ignore[attr-defined]
        return Path(plan.resolve(home).state_dir)

    async def _osl_hooks_wait(self) -> None:
        """Wait until the engine is done; raise a SpawnException with its words if it failed."""
        state_dir = await self._osl_hooks_state()
        pid = getattr(self, "pid", None)
        while True:
            status = await read_status_async(state_dir)
            if status and status.get("pid") == pid and status.get("state") != "running":
                if status["state"] == "failed":
                    raise spawn_error(failure_sentence(status, None))
                return
            exit_status = await self.poll()  # type: ignore[attr-defined]
            if exit_status is not None:
                status = await read_status_async(state_dir)
                mine = status if status and status.get("pid") == pid else None
                raise spawn_error(failure_sentence(mine, exit_status))
            await asyncio.sleep(STATUS_POLL_SECONDS)


def with_progress(spawner_class: type) -> type:
    """`spawner_class` with `OSLHooksSpawnerMixin` in front (config sections of the class still apply)."""
    if issubclass(spawner_class, OSLHooksSpawnerMixin):
        return spawner_class
    return type(
        f"OSLHooks{spawner_class.__name__}",
        (OSLHooksSpawnerMixin, spawner_class),
        {"__module__": __name__, "__doc__": f"{spawner_class.__name__} with osl-hooks' progress and errors."},
    )


def spawn_error(message: str) -> Exception:
    """A SpawnException that shows `message` to the user as it is ("Spawn failed: <message>")."""
    from jupyterhub.spawner import SpawnException

    error = SpawnException(message, reason="osl-hooks", status_code=500)
    error.jupyterhub_message = message  # what JupyterHub's progress API shows, without the HTTP decoration
    return error
