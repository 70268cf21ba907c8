"""Spawn progress for KubeSpawner pods with the ``init_container`` delivery (docs/progress-kubernetes.md).

What the hub can see of a starting pod without extra permissions is KubeSpawner's own data: the pod
reflector (``spawner.pod_reflector.pods``, pods as the API's JSON, camelCase, keyed "namespace/name")
and the event reflector (``spawner.events``). For the osl-hooks init container that is its state
(waiting / running / terminated), restart count, exit code and termination message — the engine writes
its final sentence and its last warnings and errors there. With ``read_logs`` (the admin granted the
hub ``pods/log`` read), the init container's log is read too, through KubeSpawner's own API client
(``spawner.api``), and the engine's stdout lines become progress messages as they are printed.

- `events_from_pod`, `events_from_log`, `failure_message`: pure functions, pod JSON / log text in, progress
  events / a sentence out.
- `kube_progress`: the async generator `Spawner.progress()` delegates to for KubeSpawner. It runs
  `KubeSpawner.progress(spawner)` (KubeSpawner's events and its slow-spawn notes) and, between its events,
  looks at the pod. All events of a spawn go into one journal kept on the spawner, in the order they were
  first seen, so every generator (each open spawn page makes one) replays the same list in the same order
  and then follows it. It ends when KubeSpawner's generator ends (the spawn is over).

Progress: KubeSpawner moves its bar a third of the way to 90% per Kubernetes event, which would leave no
room for the start itself. For osl-hooks pods the bar is ours: events before the init container runs
approach 20%, the start fills 20–80% (with logs: each planned env gets an equal slot, filled by its copy's
percentage), events after it approach 95%. Other pods keep KubeSpawner's numbers. It never goes back.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import math
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from ..plan import PLAN_ENV_VAR
from .hooks import DELIVERY_ANNOTATION

DEFAULT_CONTAINER = "osl-hooks"
INIT_FIRST = 20  # the init container has started
ENVS_LAST = 75  # the planned envs are prepared (then conda settings, kernels, global setup scripts)
INIT_LAST = 80  # the init container has finished
AFTER_TARGET = 95  # Kubernetes events after the init container approach this
LOG_TAIL_LINES = 5000  # the first log read: the last lines of the container's log
LOG_SINCE_SLACK = 5  # seconds of overlap between log reads (lines already seen are skipped)
JOURNAL_ATTR = "_osl_hooks_kube_journal"
DELIBERATE_EXIT_CODES = (1, 2)  # osl-hooks start: failed, invalid plan (see osl_hooks.runner.Outcome)

_WAITING_QUIET = {"PodInitializing", "ContainerCreating"}

# -- engine lines ---------------------------------------------------------------------------------------

_KUBELET_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ?(.*)$")
_ENGINE_LINE = re.compile(r"^osl-hooks \d\d:\d\d:\d\d (.*)$")  # status.Reporter._emit
_ENGINE_NOTE = re.compile(r"^osl-hooks: (.+)$")  # printed before the reporter exists (runner, cli): a failure

_NAME = r"(?P<env>[A-Za-z0-9._-]+)"
_RULES: list[tuple[re.Pattern[str], str, str]] = [
    # (engine message, what the user reads, kind); kinds: begin / share / done: the env's slot; final-*: the end
    (re.compile(r"^Preparing your environments \((?P<count>\d+) configured\)$"), "{0}", "preparing"),
    (re.compile(rf"^{_NAME} has no baked manifest: describing it now"), "Looking through {env} in the image", "begin"),
    (
        re.compile(rf"^Syncing {_NAME}: (?P<size>.+?) to copy into .+$"),
        "Copying {env} into your home ({size})",
        "begin",
    ),
    (
        re.compile(
            rf"^Syncing {_NAME}: (?P<done>[\d.]+) (?P<u1>\S+) of (?P<total>[\d.]+) (?P<u2>\S+) \((?P<pct>\d+)%\)$"
        ),
        "Syncing {env}: {amount} ({pct}%)",
        "share",
    ),
    (re.compile(rf"^.+ is missing: making a fresh copy of {_NAME}$"), "{0}", "begin"),
    (
        re.compile(rf"^Synced {_NAME}: (?P<size>.+?) in (?P<secs>[\d.]+) s \(.*\)$"),
        "Copied {env} ({size} in {secs} s)",
        "done",
    ),
    (re.compile(rf"^{_NAME} is up to date$"), "{0}", "done"),
    (re.compile(rf"^Updated {_NAME} from the image in [\d.]+ s: (?P<rest>.*)$"), "Updated {env}: {rest}", "done"),
    (re.compile(rf"^Using {_NAME} from the image at .+$"), "Using {env} from the image", "done"),
    (re.compile(rf"^{_NAME} has not been created yet \(.*\)$"), "{env} has not been created yet", "done"),
    (re.compile(r"^Removing \S+, left by an interrupted start$"), "Cleaning up after an interrupted start", "other"),
    (re.compile(r"^Kernel unchanged: (?P<kernel>.+)$"), "Kernel {kernel} is registered", "other"),
    (re.compile(r"^Ready in (?P<secs>[\d.]+) s$"), "Your environments are ready ({secs} s)", "final-ok"),
    (
        re.compile(r"^Ready, with warnings \(see above\), in (?P<secs>[\d.]+) s$"),
        "Your environments are ready, with warnings ({secs} s)",
        "final-ok",
    ),
    # the final message of a failed start: "Start failed: ..." (termination message), "ERROR: Start failed: ..." (stdout)
    (
        re.compile(r"^(?:ERROR: )?(?P<final>Start failed: .+)$"),
        "Your environments could not be prepared. {final}",
        "final-failed",
    ),
    (re.compile(r"^WARNING: (?P<text>.+)$"), "Warning: {text}", "problem"),
    (re.compile(r"^ERROR: (?P<text>.+)$"), "Error: {text}", "problem"),
]


def _rule(body: str) -> tuple[str, str, dict[str, str]]:
    """(message for the user, kind, fields) for one engine message; unknown messages are shown as they are."""
    for pattern, template, kind in _RULES:
        m = pattern.match(body)
        if m:
            fields = {k: v for k, v in m.groupdict().items() if v is not None}
            if kind == "share":
                same_unit = fields["u1"] == fields["u2"]
                fields["amount"] = (
                    f"{fields['done']} of {fields['total']} {fields['u2']}"
                    if same_unit
                    else f"{fields['done']} {fields['u1']} of {fields['total']} {fields['u2']}"
                )
            return template.format(body, **fields), kind, fields
    return body, "other", {}


def _note_sentence(note: str) -> str:
    """A line the engine printed as 'osl-hooks: ...' (it could not start) as a sentence."""
    return note[:1].upper() + note[1:]


class LogReader:
    """Engine stdout (as `kubectl logs` shows it, with or without kubelet timestamps) to progress events.

    Keeps what it learnt between chunks (how many envs, in which order), so the log can be fed as it
    grows. `envs` is the plan's env names in order when known (the pod carries the plan).
    """

    def __init__(self, envs: Sequence[str] = ()):
        self.envs = list(envs)
        self.count: int | None = len(self.envs) or None

    def feed(self, text: str) -> list[dict[str, Any]]:
        events = []
        for raw in text.splitlines():
            line = _strip_timestamp(raw.rstrip("\r"))
            m = _ENGINE_LINE.match(line)
            if m:
                event = self.event(m.group(1))
            else:
                note = _ENGINE_NOTE.match(line)
                if not note:
                    continue  # setup scripts' output ("[20-git.sh] ..."), anything else
                event = {"message": f"Your environments could not be prepared. {_note_sentence(note.group(1))}"}
            if event is not None:
                events.append(event)
        return events

    def event(self, body: str) -> dict[str, Any] | None:
        message, kind, fields = _rule(body.strip())
        if not message:
            return None
        event: dict[str, Any] = {"message": message}
        if kind == "preparing":
            self.count = self.count or int(fields["count"])
            event["progress"] = INIT_FIRST
        elif kind in ("begin", "share", "done"):
            slot = self._slot(fields["env"])
            if slot is not None:
                low, high = slot
                if kind == "begin":
                    event["progress"] = int(low)
                elif kind == "done":
                    event["progress"] = int(high)
                else:
                    event["progress"] = int(low + (high - low) * min(int(fields["pct"]), 100) / 100)
        elif kind in ("final-ok",):
            event["progress"] = INIT_LAST
        return event

    def _slot(self, env: str) -> tuple[float, float] | None:
        if env not in self.envs:
            self.envs.append(env)
        count = max(self.count or 0, len(self.envs))
        if not self.count:
            return None  # the start of the log was not seen: no idea how many envs there are
        index = self.envs.index(env)
        width = (ENVS_LAST - INIT_FIRST) / count
        return INIT_FIRST + index * width, INIT_FIRST + (index + 1) * width


def events_from_log(text: str) -> list[dict[str, Any]]:
    """Progress events from the engine's stdout (the init container's log), in order, without repeats."""
    return _unique(LogReader().feed(text))


def _unique(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    result = []
    for event in events:
        if event["message"] not in seen:
            seen.add(event["message"])
            result.append(event)
    return result


def _strip_timestamp(line: str) -> str:
    m = _KUBELET_TS.match(line)
    return m.group(4) if m else line


def _timestamp_key(line: str) -> tuple[tuple[int, int], str] | None:
    """(UTC seconds, nanoseconds) of a kubelet-timestamped log line (RFC 3339, up to 9 digits), and its text."""
    m = _KUBELET_TS.match(line)
    if not m:
        return None
    seconds, fraction, zone, text = m.groups()
    moment = datetime.datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    nanos = int((fraction or "0").ljust(9, "0")[:9])
    return (int(moment.timestamp()), nanos), text


# -- the pod -------------------------------------------------------------------------------------------


def _init_container(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    for container in (pod.get("spec") or {}).get("initContainers") or []:
        if container.get("name") == name:
            return container
    return None


def _init_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if status.get("name") == name:
            return status
    return None


def plan_env_names(pod: dict[str, Any], container_name: str = DEFAULT_CONTAINER) -> list[str] | None:
    """The env names of the plan the pod's init container carries, in plan order (None if unreadable)."""
    container = _init_container(pod, container_name) or {}
    for var in container.get("env") or []:
        if var.get("name") == PLAN_ENV_VAR and isinstance(var.get("value"), str):
            try:
                plan = json.loads(var["value"])
                return [str(env["name"]) for env in plan["environments"]]
            except (ValueError, KeyError, TypeError):
                return None
    return None


def _preparing(pod: dict[str, Any], name: str) -> dict[str, Any]:
    envs = plan_env_names(pod, name)
    # The engine's first line, word for word, so that with logs it is shown once.
    message = "Preparing your environments" + (f" ({len(envs)} configured)" if envs is not None else "")
    return {"progress": INIT_FIRST, "message": message}


def _termination_lines(terminated: dict[str, Any]) -> list[str]:
    return [line.strip() for line in (terminated.get("message") or "").splitlines() if line.strip()]


def _finished(terminated: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Events for one finished run of the init container, from its exit code and termination message."""
    lines = _termination_lines(terminated)
    ok = terminated.get("exitCode") == 0
    engine_final = bool(lines) and _rule(lines[0])[1] in ("final-ok", "final-failed")
    events = []
    if engine_final:
        # The engine's termination message: its final sentence, then its last warnings and errors.
        for line in lines[1:]:
            message, kind, _ = _rule(line)
            if kind == "problem":
                events.append({"message": message})
    if ok:
        if engine_final:
            message, _, _ = _rule(lines[0])
        else:
            message = "Your environments are ready"
        events.append({"progress": INIT_LAST, "message": message})
    else:
        events.append({"message": _failure_sentence(terminated, name)})
    return events


def events_from_pod(pod: dict[str, Any], container_name: str = DEFAULT_CONTAINER) -> list[dict[str, Any]]:
    """What the pod's status says about the osl-hooks init container, as progress events.

    Everything the current status implies, from the start (a terminated container was running before),
    so a reader that comes late misses nothing. Empty when the pod has no such init container or it has
    not started yet (KubeSpawner's events tell about scheduling and image pulls).
    """
    if _init_container(pod, container_name) is None:
        return []
    status = _init_status(pod, container_name)
    if status is None:
        return []
    state = status.get("state") or {}
    previous = (status.get("lastState") or {}).get("terminated")
    restarts = int(status.get("restartCount") or 0)
    events: list[dict[str, Any]] = []
    if previous or "running" in state or "terminated" in state:
        events.append(_preparing(pod, container_name))
    if previous:
        events.extend(_finished(previous, container_name))
    if "waiting" in state:
        waiting = state["waiting"] or {}
        reason = waiting.get("reason") or ""
        if reason == "CrashLoopBackOff":
            events.append({"message": "Trying again after a pause"})
        elif reason and reason not in _WAITING_QUIET:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            events.append({"message": f"Your environments cannot be prepared yet ({reason}){detail}"})
        return _unique(events)
    if restarts and ("running" in state or "terminated" in state):
        # restartCount is the number of this run's restarts: certain once it runs
        events.append({"message": f"Trying again to prepare your environments (restart {restarts})"})
    if "terminated" in state:
        events.extend(_finished(state["terminated"], container_name))
    return _unique(events)


def _failure_sentence(terminated: dict[str, Any], name: str) -> str:
    lines = _termination_lines(terminated)
    sentence = None
    _, kind, fields = _rule(lines[0]) if lines else ("", "", {})
    if kind == "final-failed":
        sentence = fields["final"]  # the engine's termination message
    else:
        # FallbackToLogsOnError: the engine could not write its message, so this is the end of its output.
        errors = []
        raw = [_strip_timestamp(line.rstrip()) for line in (terminated.get("message") or "").splitlines()]
        for index in range(len(raw) - 1, -1, -1):
            line = raw[index]
            m = _ENGINE_LINE.match(line)
            _, kind, fields = _rule(m.group(1)) if m else ("", "", {})
            if kind == "final-failed":
                sentence = fields["final"]
                break
            note = _ENGINE_NOTE.match(line)
            if note:  # e.g. an invalid plan: "osl-hooks: invalid $OSL_HOOKS_PLAN:" then "  - <problem>" lines
                details = [rest.strip() for rest in raw[index + 1 :] if rest.startswith("  - ")]
                sentence = " ".join([_note_sentence(note.group(1)), *details])
                break
            if m and m.group(1).startswith("ERROR: "):
                errors.append(m.group(1)[len("ERROR: ") :])
        if sentence is None and errors:
            sentence = errors[0]
    if sentence:
        return f"Your environments could not be prepared. {sentence}"
    reason = terminated.get("reason")
    detail = f", {reason}" if reason and reason != "Error" else ""
    last = f": {lines[-1]}" if lines else ""
    return (
        f"Your environments could not be prepared: the {name} init container failed "
        f"(exit code {terminated.get('exitCode')}{detail}){last}"
    )


def failure_message(pod: dict[str, Any], container_name: str = DEFAULT_CONTAINER) -> str | None:
    """The sentence for the user when the osl-hooks init container failed, else None.

    Failed: its run ended with a non-zero exit code, and it is not running again (it is terminated, or
    waiting to be restarted, e.g. CrashLoopBackOff). The engine's own final sentence when it left one
    ("Your environments could not be prepared. Start failed: Setup script 20-git.sh exited with code 1"),
    from the termination message (or, when the engine could not write one, from the end of its output,
    which Kubernetes takes instead with FallbackToLogsOnError).
    """
    status = _init_status(pod, container_name)
    if status is None:
        return None
    state = status.get("state") or {}
    if "terminated" in state:
        finished = state["terminated"] or {}
    elif "waiting" in state:
        finished = (status.get("lastState") or {}).get("terminated") or {}
    else:
        return None  # running (again): not failed yet
    if finished.get("exitCode") in (0, None):
        return None
    return _failure_sentence(finished, container_name)


def deliberate_failure(spawner: Any) -> str | None:
    """The engine's sentence if its init container failed in a way retrying cannot heal, else None.

    osl-hooks exits 1 when the start failed on purpose (a setup script with `on_failure: fail`, an unusable
    home) and 2 for an invalid plan: the same pod would fail the same way on every retry, so the spawn can
    end now rather than after `start_timeout`. Other exit codes (killed for memory, a runtime error) may
    be transient and are left to Kubernetes' retries.
    """
    pod = _pod(spawner)
    name = _container_name(spawner)
    if pod is None or _phase(pod, name) != "failed":
        return None
    status = _init_status(pod, name) or {}
    state = status.get("state") or {}
    finished = state.get("terminated") or (status.get("lastState") or {}).get("terminated") or {}
    if finished.get("exitCode") not in DELIBERATE_EXIT_CODES:
        return None
    return failure_message(pod, name)


def _phase(pod: dict[str, Any] | None, name: str) -> str:
    """unknown (no pod yet), other (not an init_container pod), before, running, failed, after."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "unknown"
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if annotations.get(DELIVERY_ANNOTATION) != "init_container" or _init_container(pod, name) is None:
        return "other"
    status = _init_status(pod, name)
    if status is None:
        return "before"
    state = status.get("state") or {}
    if "running" in state:
        return "running"
    if "terminated" in state:
        return "after" if state["terminated"].get("exitCode") == 0 else "failed"
    return "failed" if (status.get("lastState") or {}).get("terminated") else "before"


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
        self.log: LogReader | None = None
        self.log_tried_at = -math.inf
        self.log_read_at: float | None = None
        self.log_last: tuple[int, int] | None = None
        self.log_last_lines: set[str] = set()  # the lines stamped log_last (two lines can share a stamp)
        self.log_done = False
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
            if self.progress < INIT_FIRST:
                event["progress"] = self.progress + (INIT_FIRST - self.progress) / 3
        elif self.phase == "after":
            event["progress"] = self.progress + (AFTER_TARGET - self.progress) / 3
        # running, failed: the bar is the init container's
        self.add(event, key)

    def observe(self, pod: dict[str, Any] | None, name: str) -> None:
        """Take in what the pod's status says now (reflector data: no API call)."""
        if pod is not None and (pod.get("metadata") or {}).get("deletionTimestamp"):
            pod = None  # the last spawn's pod, on its way out
        self.phase = _phase(pod, name)
        if pod is None or self.phase == "other":
            return
        self._adopt(pod, name)
        for event in events_from_pod(pod, name):
            self.add(event)

    def _adopt(self, pod: dict[str, Any], name: str) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if uid != self.pod_uid or self.log is None:  # a new pod (KubeSpawner recreates one after a conflict)
            self.pod_uid = uid
            self.log = LogReader(plan_env_names(pod, name) or ())
            self.log_tried_at = -math.inf
            self.log_read_at = self.log_last = None
            self.log_last_lines = set()
            self.log_done = False

    async def refresh(self, spawner: Any, name: str, read_logs: bool, interval: float, final: bool = False) -> None:
        """Look at the pod again, and read its new log lines (at most every `interval`/2 over all generators).

        The log is read before the status is taken in, so the engine's lines come before the status's
        summary of them (the same messages are shown once).
        """
        async with self.lock:
            pod = _pod(spawner)
            phase = _phase(pod, name)
            if read_logs and pod is not None and phase in ("running", "failed", "after"):
                self._adopt(pod, name)
                due = final or time.monotonic() - self.log_tried_at >= interval / 2
                if due and not self.logs_denied and not self.log_done:
                    self.log_tried_at = time.monotonic()
                    events = await self._read_log(spawner, name)
                    for event in events or ():
                        self.add(event)
                    if events is not None and phase == "after":
                        self.log_done = True  # the container has finished: its log is complete
            self.observe(pod, name)

    async def _read_log(self, spawner: Any, name: str) -> list[dict[str, Any]] | None:
        """Events from the init container's new log lines, through KubeSpawner's API client (needs get on
        pods/log); None when the log could not be read."""
        kwargs: dict[str, Any] = {"container": name, "timestamps": True}
        started = time.monotonic()
        if self.log_read_at is None:
            kwargs["tail_lines"] = LOG_TAIL_LINES
        else:
            kwargs["since_seconds"] = math.ceil(started - self.log_read_at) + LOG_SINCE_SLACK
        try:
            text = await spawner.api.read_namespaced_pod_log(
                spawner.pod_name, spawner.namespace, _request_timeout=spawner.k8s_api_request_timeout, **kwargs
            )
        except Exception as e:  # the spawn page must not break because a log could not be read
            status = getattr(e, "status", None)
            if status in (401, 403):
                self.logs_denied = True
                spawner.log.warning(
                    "osl-hooks: cannot read the log of init container %s of %s (%s %s): grant the hub's service "
                    "account get on pods/log (helm/osl-hooks-pods-log-rbac.yaml) or turn reading logs off",
                    name,
                    spawner.pod_name,
                    status,
                    getattr(e, "reason", ""),
                )
            elif status != 400 and not self.log_problem_reported:  # 400: the container has not started yet
                self.log_problem_reported = True
                spawner.log.warning("osl-hooks: reading the log of %s failed: %r", spawner.pod_name, e)
            return None
        self.log_read_at = started
        fresh = []
        for line in (text or "").splitlines():
            stamped = _timestamp_key(line)
            if stamped is None:
                continue
            key, body = stamped
            if self.log_last is not None and (
                key < self.log_last or key == self.log_last and body in self.log_last_lines
            ):
                continue  # seen in the last read (reads overlap by LOG_SINCE_SLACK seconds)
            if key != self.log_last:
                self.log_last, self.log_last_lines = key, set()
            self.log_last_lines.add(body)
            fresh.append(body)
        return (self.log or LogReader()).feed("\n".join(fresh))


def _pod(spawner: Any) -> dict[str, Any] | None:
    reflector = spawner.pod_reflector
    if reflector is None:
        return None
    return reflector.pods.get(f"{spawner.namespace}/{spawner.pod_name}")


def _journal(spawner: Any) -> _Journal:
    """The journal of the spawner's current spawn (KubeSpawner's `_start_future` identifies a spawn)."""
    key = getattr(spawner, "_start_future", None)
    journal = getattr(spawner, JOURNAL_ATTR, None)
    if journal is not None and journal.key is None and key is not None:
        journal.key = key  # a generator that came before start() set the future: same spawn
    if journal is None or journal.key is not key:
        journal = _Journal(key)
        setattr(spawner, JOURNAL_ATTR, journal)
    return journal


def _runtime_hooks(spawner: Any) -> Any:
    """The `OSLHooks` configuration of the hub that set up this spawner (None without install(c))."""
    runtime = getattr(getattr(spawner, "modify_pod_hook", None), "_osl_hooks_runtime", None)
    return getattr(runtime, "hooks", None)


def read_logs_setting(spawner: Any) -> bool:
    """`OSLHooks.read_init_container_logs` of the hub that set up this spawner (False when absent)."""
    return bool(getattr(_runtime_hooks(spawner), "read_init_container_logs", False))


def _container_name(spawner: Any) -> str:
    return getattr(_runtime_hooks(spawner), "init_container_name", None) or DEFAULT_CONTAINER


async def _until_started(spawner: Any, interval: float) -> AsyncIterator[dict[str, Any]]:
    """Stands in for KubeSpawner's generator when its events are off: ends when the spawn is over."""
    while True:
        future = spawner._start_future
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
    from kubespawner import KubeSpawner

    name = _container_name(spawner)
    if spawner.events_enabled:
        source = KubeSpawner.progress(spawner)
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
