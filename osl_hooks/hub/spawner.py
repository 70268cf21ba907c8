"""The spawner osl-hooks delivers to: progress on the spawn page, and failures in the engine's own words.

JupyterHub asks the spawner for progress with `Spawner.progress()`, an async generator; every progress
request (each open spawn page) makes a new generator, so each one replays everything known so far.

- Local spawners (`wrap` delivery): the spawner's `start()` reads the engine's status file until the engine is
  done and publishes its events in a `StatusFeed` that every spawn page follows; a failed start becomes a
  `SpawnException` carrying the engine's own sentence instead of a generic timeout, raised once its last steps
  are published.
- KubeSpawner: the hub cannot read the user's volume; `kube_progress` reads what the hub can see of the
  pod (init container state, termination message, and its log when RBAC allows).

`install(c)` swaps the configured spawner class for a subclass with `OSLHooksSpawnerMixin` in front, so
these methods run before the spawner's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ..plan import Plan
from .kube_progress import deliberate_failure, kube_progress, last_messages, read_logs_setting
from .local_progress import STATUS_POLL_SECONDS, StatusFeed, failure_sentence
from .progress import timeout_sentence
from .spawner_config import is_kubespawner
from .spawner_internals import local_plan, spawn_future
from .start_record import StartRecordMixin

TIMEOUT_MARGIN = 2.0  # seconds before JupyterHub's own start_timeout that osl-hooks ends a start with its sentence


class OSLHooksSpawnerMixin:
    """Progress and readable failures for spawners osl-hooks delivers to (mixed in by `install(c)`)."""

    _osl_hooks_feed: StatusFeed | None = None  # the current local start's progress, followed by spawn pages

    async def start(self) -> Any:
        """The spawner's start, then (local spawners) the engine's, within `start_timeout`.

        JupyterHub gives `start()` `start_timeout` seconds and then shows the user a bare "Spawn failed";
        osl-hooks ends a moment before it, with a sentence saying what was still running and which setting
        to raise.
        """
        deadline = time.monotonic() + self._osl_hooks_budget()
        if is_kubespawner(type(self)):
            return await self._osl_hooks_kube_start(deadline)
        if not self._osl_hooks_local():
            return await super().start()  # type: ignore[misc]
        # The feed first, before anything is awaited: a spawn page may already be waiting for it.
        feed = self._osl_hooks_feed = StatusFeed(spawn_future(self))
        feed.state_dir = await self._osl_hooks_state()
        result = await super().start()  # type: ignore[misc]
        feed.pid = getattr(self, "pid", None)
        try:
            await asyncio.wait_for(self._osl_hooks_wait(feed), max(deadline - time.monotonic(), 0.1))
        except asyncio.TimeoutError:
            status = await feed.read()
            events = (status or {}).get("events", []) + [(status or {}).get("progress") or {}]
            # JupyterHub now stops the server, and the engine's last words would be "it was interrupted":
            # the page shows none of them, only this sentence (JupyterHub's final event).
            feed.end(None)
            raise spawn_error(timeout_sentence(events, self.start_timeout, "c.Spawner.start_timeout")) from None
        return result

    def _osl_hooks_budget(self) -> float:
        timeout = float(self.start_timeout)  # type: ignore[attr-defined]
        return timeout - min(TIMEOUT_MARGIN, timeout / 20)

    async def _osl_hooks_kube_start(self, deadline: float) -> Any:
        """KubeSpawner's start, ended early with the engine's sentence when osl-hooks failed on purpose.

        KubeSpawner keeps waiting for the pod while Kubernetes retries a failed init container, until
        `start_timeout`; a failure the engine chose (exit 1 or 2) would only repeat, so the user is told now.
        """
        start = asyncio.ensure_future(super().start())  # type: ignore[misc]
        try:
            while True:
                done, _ = await asyncio.wait({start}, timeout=STATUS_POLL_SECONDS)
                if done:
                    return start.result()
                message = deliberate_failure(self)
                if message:
                    raise spawn_error(message)
                if time.monotonic() >= deadline:
                    shown = [{"kind": "note", "message": m} for m in last_messages(self)[-1:]]
                    raise spawn_error(timeout_sentence(shown, self.start_timeout, "c.KubeSpawner.start_timeout"))
        finally:
            if not start.done():
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await start

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        if is_kubespawner(type(self)):
            async for event in kube_progress(self, read_logs=read_logs_setting(self)):
                yield event
            return
        if self._osl_hooks_local():
            feed = await self._osl_hooks_current_feed()
            async for event in feed.follow():
                yield event
            return
        async for event in super().progress():  # type: ignore[misc]
            yield event

    async def _osl_hooks_current_feed(self) -> StatusFeed:
        """The feed of the spawn a page watches. A page may open before `start()` has made it (JupyterHub answers
        the spawn request at once), and must not replay the previous start's feed meanwhile; should the spawn
        end before `start()` runs, JupyterHub stops waiting for this page's next event."""
        spawn = spawn_future(self)
        while self._osl_hooks_feed is None or self._osl_hooks_feed.spawn is not spawn:
            await asyncio.sleep(STATUS_POLL_SECONDS)
        return self._osl_hooks_feed

    def _osl_hooks_local(self) -> bool:
        return local_plan(self) is not None

    async def _osl_hooks_state(self) -> Path:
        """The engine's state dir in the user's home, as the engine will resolve it."""
        plan: Plan | None = local_plan(self)
        assert plan is not None
        home = plan.home
        if home is None:
            # LocalProcessSpawner: the server's $HOME is the user's passwd home; NSS may block, so not here.
            home = await asyncio.to_thread(lambda: pwd.getpwnam(self.user.name).pw_dir)  # type: ignore[attr-defined]
        return Path(plan.resolve(home).state_dir)

    async def _osl_hooks_wait(self, feed: StatusFeed) -> None:
        """Follow the engine until it is done; raise a SpawnException with its words if it failed.

        JupyterHub ends the spawn pages' progress streams as soon as `start()` is over: the start's last steps,
        the failing one included, are published in the feed before this returns or raises (see `StatusFeed`).
        """
        while True:
            status = await feed.read()
            if status and status.get("state") != "running":
                break
            exit_status = await self.poll()  # type: ignore[attr-defined]
            if exit_status is not None:
                status = await feed.read()
                feed.end(status)
                raise spawn_error(failure_sentence(status, exit_status))
            await asyncio.sleep(STATUS_POLL_SECONDS)
        feed.end(status)
        if status["state"] == "failed":
            raise spawn_error(failure_sentence(status, None))


def with_progress(spawner_class: type) -> type:
    """`spawner_class` with `OSLHooksSpawnerMixin` in front (config sections of the class still apply), and
    in front of that `StartRecordMixin`, which reads each start's end once `OSLHooksSpawnerMixin.start` is over."""
    if issubclass(spawner_class, OSLHooksSpawnerMixin):
        return spawner_class
    return type(
        f"OSLHooks{spawner_class.__name__}",
        (StartRecordMixin, OSLHooksSpawnerMixin, spawner_class),
        {"__module__": __name__, "__doc__": f"{spawner_class.__name__} with osl-hooks' progress and errors."},
    )


def spawn_error(message: str) -> Exception:
    """A SpawnException that shows `message` to the user as it is ("Spawn failed: <message>")."""
    from jupyterhub.spawner import SpawnException

    error = SpawnException(message, reason="osl-hooks", status_code=500)
    error.jupyterhub_message = message  # what JupyterHub's progress API shows, without the HTTP decoration
    return error
