"""The last start of each server, as the hub keeps it: read once per spawn, kept in the spawner's state.

Every start ends with the engine's finish event, which carries the start's figures (`summary`: per env its
state, fallback reason, image ids, bytes; per phase the seconds; setup scripts per state). The hub reads it
once per spawn, when `start()` is over (ready or failed), whether or not anybody opened the spawn page:

- local spawners: the status file in the user's home, read in a worker thread (never on the event loop);
- KubeSpawner (``init_container`` delivery): the init container's termination message in the pod status
  that KubeSpawner's pod reflector already holds (no API call, no extra permission).

The record goes to the metrics (`metrics.observe_start`) and into the spawner's state: JupyterHub stores what
`get_state()` returns in its database and gives it back through `load_state()`, so the admin report
(`report`) lists every server's last start across hub restarts. `clear_state()` (a stop, a new spawn)
leaves it: the last start stays until the next one replaces it.
"""

from __future__ import annotations

from typing import Any

from ..events import parse_line
from .fleet import STATE_KEY
from .kube_log import strip_timestamp
from .kube_pod import init_status
from .kube_progress import _container_name
from .local_progress import read_status_async
from .metrics import observe_start
from .spawner_config import is_kubespawner
from .spawner_internals import local_plan, reflected_pod

RECORD_VERSION = 1


def record_from_final(final: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the hub keeps of a start, from its finish event (None when `final` is not one)."""
    if not final or final.get("kind") != "finish" or not isinstance(final.get("state"), str):
        return None
    summary = final.get("summary") if isinstance(final.get("summary"), dict) else {}
    return {
        "v": RECORD_VERSION,
        "time": final.get("time"),
        "outcome": final["state"],
        "seconds": final.get("seconds"),
        "message": final.get("message", ""),
        "summary": summary,
    }


def record_from_status(status: dict[str, Any] | None, pid: int | None) -> dict[str, Any] | None:
    """The record of the start the status file describes, if it is this server's (`pid`) and it is over."""
    if not status or status.get("pid") != pid or status.get("state") == "running":
        return None
    return record_from_final(next((e for e in reversed(status.get("events") or []) if e.get("final")), None))


def record_from_pod(pod: dict[str, Any] | None, container_name: str) -> dict[str, Any] | None:
    """The record of the init container's last finished run, from its termination message in the pod status."""
    status = init_status(pod, container_name) if pod else None
    if status is None:
        return None
    finished = (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated")
    lines = ((finished or {}).get("message") or "").splitlines()
    events = [e for e in (parse_line(strip_timestamp(line.strip())) for line in lines) if e is not None]
    return record_from_final(next((e for e in reversed(events) if e.get("final")), None))


class StartRecordMixin:
    """Reads each spawn's last start once, when `start()` is over, and keeps it in the spawner's state.

    `install(c)` puts it in front of `OSLHooksSpawnerMixin`, whose `start()` (local spawners) returns only
    once the engine is done, so the status file holds the finished start.
    """

    _osl_hooks_last_start: dict[str, Any] | None = None

    async def start(self) -> Any:
        try:
            return await super().start()  # type: ignore[misc]
        finally:
            await self._osl_hooks_take_record()

    async def _osl_hooks_take_record(self) -> None:
        try:
            record = await self._osl_hooks_read_record()
        except Exception as e:  # the figures must never cost a user their server
            self.log.warning("osl-hooks: cannot read the end of %s's start: %r", self._log_name, e)  # type: ignore[attr-defined]
            return
        if record is not None:
            self._osl_hooks_last_start = record
            observe_start(record)

    async def _osl_hooks_read_record(self) -> dict[str, Any] | None:
        if is_kubespawner(type(self)):
            return record_from_pod(reflected_pod(self), _container_name(self))
        if local_plan(self) is None:
            return None  # not a start osl-hooks delivered to
        status = await read_status_async(await self._osl_hooks_state())  # type: ignore[attr-defined]
        return record_from_status(status, getattr(self, "pid", None))

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()  # type: ignore[misc]
        if self._osl_hooks_last_start is not None:
            state[STATE_KEY] = self._osl_hooks_last_start
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)  # type: ignore[misc]
        record = state.get(STATE_KEY)
        if isinstance(record, dict):
            self._osl_hooks_last_start = record
