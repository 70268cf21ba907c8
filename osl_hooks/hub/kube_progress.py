"""Spawn progress for KubeSpawner pods with the ``init_container`` delivery (docs/progress-kubernetes.md).

What the hub can see of a starting pod without extra permissions is KubeSpawner's own data: the pod
reflector (``spawner.pod_reflector.pods``, pods as the API's JSON, camelCase, keyed "namespace/name")
and the event reflector (``spawner.events``). For the osl-hooks init container that is its state and
termination message (`kube_pod`). With ``read_logs`` (the admin granted the hub ``pods/log`` read), the
init container's log is read too (`kube_log`), and the engine's events become progress messages as they
are printed. Both go through the shared `EventProgress` (`progress`).

`kube_progress` is the async generator `Spawner.progress()` delegates to for KubeSpawner. It runs
`KubeSpawner.progress(spawner)` (KubeSpawner's events and its slow-spawn notes) and, between its events,
looks at the pod. All events of a spawn go into one journal kept on the spawner, in the order they were
first seen, so every generator (each open spawn page makes one) replays the same list in the same order
and then follows it. It ends when KubeSpawner's generator ends (the spawn is over).

Progress: KubeSpawner moves its bar a third of the way to 90% per Kubernetes event, which would leave no
room for the start itself. For osl-hooks pods the bar is ours: events before the init container runs
approach 20%, the start fills 20–80% (`progress.EventProgress`), events after it approach 95%. Other
pods keep KubeSpawner's numbers. It never goes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .kube_log import LogUnreadable, PodLog
from .kube_pod import DEFAULT_CONTAINER, deliberate_exit, events_from_pod, failure_message, phase, plan_env_names
from .progress import FIRST, SERVER
from .spawner_internals import JOURNAL_ATTR, installed_runtime, kubespawner_progress, reflected_pod, start_future


def deliberate_failure(spawner: Any) -> str | None:
    """The engine's sentence if its init container failed in a way retrying cannot heal, else None.

    osl-hooks exits 1 when the start failed on purpose (a setup script with `on_failure: fail`, an unusable
    home) and 2 for an invalid plan: the same pod would fail the same way on every retry, so the spawn can
    end now rather than after `start_timeout`. Other exit codes (killed for memory, a runtime error) may
    be transient and are left to Kubernetes' retries.
    """
    pod = reflected_pod(spawner)
    name = _container_name(spawner)
    if pod is None or phase(pod, name) != "failed" or not deliberate_exit(pod, name):
        return None
    return failure_message(pod, name)


def last_messages(spawner: Any) -> list[str]:
    """The messages the current spawn has shown so far, oldest first."""
    journal = getattr(spawner, JOURNAL_ATTR, None)
    return [e["message"] for e in journal.events] if journal is not None else []


# -- the journal of a spawn ---------------------------------------------------------------------------


class _Journal:
    """Every progress event of one spawn, in the order first seen; shared by the spawn's generators."""

    def __init__(self, key: Any):
        self.key = key
        self.events: list[dict[str, Any]] = []
        self._seen: set[Any] = set()
        self.progress = 0.0
        self.phase = "unknown"
        self.pod_uid: str | None = None
        self.lock = asyncio.Lock()
        self.log: PodLog | None = None
        self.log_problem_reported = False
        self.logs_denied = False

    def add(self, event: dict[str, Any], key: Any = None) -> None:
        key = key if key is not None else ("osl-hooks", event["message"])
        if key in self._seen:
            return
        self._seen.add(key)
        event = dict(event)
        if "progress" in event:
            self.progress = max(self.progress, float(event["progress"]))
            event["progress"] = int(self.progress)
        self.events.append(event)

    def add_kube(self, event: dict[str, Any]) -> None:
        """One of KubeSpawner's events (a Kubernetes event about the pod), with our progress number."""
        raw = event.get("raw_event") or {}
        key = ("kube", (raw.get("metadata") or {}).get("uid"), event.get("message"))
        if key in self._seen:
            return
        given = event.get("progress")
        event = {k: v for k, v in event.items() if k != "progress"}
        if self.phase == "other":
            if given is not None:
                event["progress"] = given  # KubeSpawner's own numbers (still never backwards)
        elif self.phase in ("unknown", "before"):
            if self.progress < FIRST:
                event["progress"] = self.progress + (FIRST - self.progress) / 3
        elif self.phase == "after":
            event["progress"] = self.progress + (SERVER - self.progress) / 3
        # running, failed: the bar is the init container's
        self.add(event, key)

    def observe(self, pod: dict[str, Any] | None, name: str) -> None:
        """Take in what the pod's status says now (reflector data: no API call)."""
        if pod is not None and (pod.get("metadata") or {}).get("deletionTimestamp"):
            pod = None  # the last spawn's pod, on its way out
        self.phase = phase(pod, name)
        if pod is None or self.phase == "other":
            return
        self._adopt(pod, name)
        for event in events_from_pod(pod, name):
            self.add(event)

    def _adopt(self, pod: dict[str, Any], name: str) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if uid != self.pod_uid or self.log is None:  # a new pod (KubeSpawner recreates one after a conflict)
            self.pod_uid = uid
            self.log = PodLog(plan_env_names(pod, name) or ())

    async def refresh(self, spawner: Any, name: str, read_logs: bool, interval: float, final: bool = False) -> None:
        """Look at the pod again, and read its new log lines (at most every `interval`/2 over all generators).

        The log is read before the status is taken in, so the engine's lines come before the status's
        summary of them (the same messages are shown once).
        """
        async with self.lock:
            pod = reflected_pod(spawner)
            now = phase(pod, name)
            if read_logs and pod is not None and now in ("running", "failed", "after") and not self.logs_denied:
                self._adopt(pod, name)
                assert self.log is not None
                if final or self.log.due(interval / 2):
                    events = await self._read_log(spawner, name, self.log)
                    for event in events or ():
                        self.add(event)
                    if events is not None and now == "after":
                        self.log.done = True  # the container has finished: its log is complete
            self.observe(pod, name)

    async def _read_log(self, spawner: Any, name: str, log: PodLog) -> list[dict[str, Any]] | None:
        """Events from the init container's new log lines (needs get on pods/log); None when unreadable."""
        try:
            return await log.read(spawner, name)
        except LogUnreadable as e:
            if e.status in (401, 403):
                self.logs_denied = True
                spawner.log.warning(
                    "osl-hooks: cannot read the log of init container %s of %s (%s %s): grant the hub's service "
                    "account get on pods/log (helm/osl-hooks-pods-log-rbac.yaml) or turn reading logs off",
                    name,
                    spawner.pod_name,
                    e.status,
                    getattr(e.error, "reason", ""),
                )
            elif e.status != 400 and not self.log_problem_reported:  # 400: the container has not started yet
                self.log_problem_reported = True
                spawner.log.warning("osl-hooks: reading the log of %s failed: %r", spawner.pod_name, e.error)
            return None


def _journal(spawner: Any) -> _Journal:
    """The journal of the spawner's current spawn (KubeSpawner's `_start_future` identifies a spawn)."""
    key = start_future(spawner)
    journal = getattr(spawner, JOURNAL_ATTR, None)
    if journal is not None and journal.key is None and key is not None:
        journal.key = key  # a generator that came before start() set the future: same spawn
    if journal is None or journal.key is not key:
        journal = _Journal(key)
        setattr(spawner, JOURNAL_ATTR, journal)
    return journal


def _runtime_hooks(spawner: Any) -> Any:
    """The `OSLHooks` configuration of the hub that set up this spawner (None without install(c))."""
    return getattr(installed_runtime(spawner), "hooks", None)


def read_logs_setting(spawner: Any) -> bool:
    """`OSLHooks.read_init_container_logs` of the hub that set up this spawner (False when absent)."""
    return bool(getattr(_runtime_hooks(spawner), "read_init_container_logs", False))


def _container_name(spawner: Any) -> str:
    return getattr(_runtime_hooks(spawner), "init_container_name", None) or DEFAULT_CONTAINER


async def _until_started(spawner: Any, interval: float) -> AsyncIterator[dict[str, Any]]:
    """Stands in for KubeSpawner's generator when its events are off: ends when the spawn is over."""
    while True:
        future = start_future(spawner)
        if future is not None and future.done():
            return
        await asyncio.sleep(interval)
    yield {}  # pragma: no cover  (makes this an async generator)


async def kube_progress(
    spawner: Any, *, read_logs: bool = False, poll_interval: float = 1.0
) -> AsyncIterator[dict[str, Any]]:
    """Progress events for a KubeSpawner spawn: KubeSpawner's own, with osl-hooks' init container's in between.

    Replays everything the spawn has shown so far, then follows it; ends when `KubeSpawner.progress`
    ends (when the spawn is over). `read_logs`: also read the init container's log (the hub needs get
    on pods/log); otherwise only what the pod status says. Pods without the init_container delivery get
    KubeSpawner's events as they are.
    """
    name = _container_name(spawner)
    if spawner.events_enabled:
        source = kubespawner_progress(spawner)
    else:
        source = _until_started(spawner, poll_interval)
    journal: _Journal | None = None
    sent = 0
    pending: asyncio.Future | None = None
    try:
        while True:
            current = _journal(spawner)
            if current is not journal:
                journal, sent = current, 0
            await journal.refresh(spawner, name, read_logs, poll_interval)
            while sent < len(journal.events):
                sent += 1
                yield dict(journal.events[sent - 1])
            if pending is None:
                pending = asyncio.ensure_future(source.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=poll_interval)
            if not done:
                continue
            task, pending = pending, None
            try:
                event = task.result()
            except StopAsyncIteration:
                break
            if "raw_event" in event:
                # What the pod status already says goes first: this event happened up to a second ago.
                await journal.refresh(spawner, name, read_logs, poll_interval)
                journal.add_kube(event)
            else:
                yield {k: v for k, v in event.items() if k != "progress"}  # KubeSpawner's slow-spawn note
        # The spawn is over: a last look, so the end of the start is shown before JupyterHub's last word.
        current = _journal(spawner)
        if current is not journal:
            journal, sent = current, 0
        await journal.refresh(spawner, name, read_logs, poll_interval, final=True)
        while sent < len(journal.events):
            sent += 1
            yield dict(journal.events[sent - 1])
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.wait({pending})
            if not pending.cancelled():
                pending.exception()  # retrieved: no "exception never retrieved" warning
        await source.aclose()
