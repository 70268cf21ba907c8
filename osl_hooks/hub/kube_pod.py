"""What the pod's status says about the osl-hooks init container: pure functions, pod JSON in, events out.

The hub can always read a pod's status (KubeSpawner's pod reflector holds it): the init container's state
(waiting / running / terminated), restart count, exit code and termination message. The engine leaves its
final event and its last problems in the termination message as event lines (`osl_hooks.events`); they
go through the shared `EventProgress` like the log's. A termination message without event lines (an older
engine, or not the engine at all: the image has no osl-hooks) is shown as it is.
"""

from __future__ import annotations

import json
from typing import Any

from ..events import parse_line
from ..plan import PLAN_ENV_VAR
from .config import INIT_CONTAINER
from .delivery import DELIVERY_ANNOTATION
from .kube_log import legacy_line, strip_timestamp, unique
from .progress import FAILED_PREFIX, FIRST, LAST, EventProgress, event_message, raw_event

DEFAULT_CONTAINER = "osl-hooks"
DELIBERATE_EXIT_CODES = (1, 2)  # osl-hooks start: failed, invalid plan (see osl_hooks.engine.runner.Outcome)

_WAITING_QUIET = {"PodInitializing", "ContainerCreating"}


def init_container(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    for container in (pod.get("spec") or {}).get("initContainers") or []:
        if container.get("name") == name:
            return container
    return None


def init_status(pod: dict[str, Any], name: str) -> dict[str, Any] | None:
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if status.get("name") == name:
            return status
    return None


def plan_env_names(pod: dict[str, Any], container_name: str = DEFAULT_CONTAINER) -> list[str] | None:
    """The env names of the plan the pod's init container carries, in plan order (None if unreadable)."""
    container = init_container(pod, container_name) or {}
    for var in container.get("env") or []:
        if var.get("name") == PLAN_ENV_VAR and isinstance(var.get("value"), str):
            try:
                plan = json.loads(var["value"])
                return [str(env["name"]) for env in plan["environments"]]
            except (ValueError, KeyError, TypeError):
                return None
    return None


def _preparing(pod: dict[str, Any], name: str) -> dict[str, Any]:
    """The start event the engine prints first, as the pod implies it (the same message, so shown once)."""
    envs = plan_env_names(pod, name)
    if envs is None:
        return {"progress": FIRST, "message": "Preparing your environments"}
    return EventProgress(envs).feed({"kind": "start", "envs": envs, "message": ""})


def _typed_lines(terminated: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine's events in a termination message (or, with FallbackToLogsOnError, the end of its log)."""
    lines = (terminated.get("message") or "").splitlines()
    return [e for e in (parse_line(strip_timestamp(line.strip())) for line in lines) if e is not None]


def _finished(terminated: dict[str, Any], pod: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Events for one finished run of the init container, from its exit code and termination message."""
    typed = _typed_lines(terminated)
    ok = terminated.get("exitCode") == 0
    if typed:
        progress = EventProgress(plan_env_names(pod, name) or ())
        events = [progress.feed(e) for e in typed if e["kind"] != "copy-progress"]
        if any(e.get("final") for e in typed):
            return events
    else:
        lines = [line.strip() for line in (terminated.get("message") or "").splitlines() if line.strip()]
        events = [raw_event(line) for line in lines] if ok else []  # an older engine's summary
    if ok:
        events.append({"progress": LAST, "message": "Your environments are ready"})
    else:
        events.append({"message": _failure_sentence(terminated, name)})
    return events


def events_from_pod(pod: dict[str, Any], container_name: str = DEFAULT_CONTAINER) -> list[dict[str, Any]]:
    """What the pod's status says about the osl-hooks init container, as progress events.

    Everything the current status implies, from the start (a terminated container was running before),
    so a reader that comes late misses nothing. Empty when the pod has no such init container or it has
    not started yet (KubeSpawner's events tell about scheduling and image pulls).
    """
    if init_container(pod, container_name) is None:
        return []
    status = init_status(pod, container_name)
    if status is None:
        return []
    state = status.get("state") or {}
    previous = (status.get("lastState") or {}).get("terminated")
    restarts = int(status.get("restartCount") or 0)
    events: list[dict[str, Any]] = []
    if previous or "running" in state or "terminated" in state:
        events.append(_preparing(pod, container_name))
    if previous:
        events.extend(_finished(previous, pod, container_name))
    if "waiting" in state:
        waiting = state["waiting"] or {}
        reason = waiting.get("reason") or ""
        if reason == "CrashLoopBackOff":
            events.append({"message": "Trying again after a pause"})
        elif reason and reason not in _WAITING_QUIET:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            events.append({"message": f"Your environments cannot be prepared yet ({reason}){detail}"})
        return unique(events)
    if restarts and ("running" in state or "terminated" in state):
        # restartCount is the number of this run's restarts: certain once it runs
        events.append({"message": f"Trying again to prepare your environments (restart {restarts})"})
    if "terminated" in state:
        events.extend(_finished(state["terminated"], pod, container_name))
    return unique(events)


def _failure_sentence(terminated: dict[str, Any], name: str) -> str:
    final = next((e for e in reversed(_typed_lines(terminated)) if e.get("final")), None)
    if final is not None and final.get("state") == "failed":
        return event_message(final)
    lines = [strip_timestamp(line.strip()) for line in (terminated.get("message") or "").splitlines()]
    lines = [line for line in lines if line and parse_line(line) is None]
    reason = terminated.get("reason")
    detail = f", {reason}" if reason and reason != "Error" else ""
    last = f": {legacy_line(lines[-1]) or lines[-1]}" if lines else ""
    return (
        f"{FAILED_PREFIX[:-1]}: the {name} init container failed (exit code {terminated.get('exitCode')}{detail}){last}"
    )


def failure_message(pod: dict[str, Any], container_name: str = DEFAULT_CONTAINER) -> str | None:
    """The sentence for the user when the osl-hooks init container failed, else None.

    Failed: its run ended with a non-zero exit code, and it is not running again (it is terminated, or
    waiting to be restarted, e.g. CrashLoopBackOff). The engine's own final sentence when it left one
    (from the termination message, or, when the engine could not write one, from the end of its output,
    which Kubernetes takes instead with FallbackToLogsOnError).
    """
    status = init_status(pod, container_name)
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


def phase(pod: dict[str, Any] | None, name: str) -> str:
    """unknown (no pod yet), other (not an init_container pod), before, running, failed, after."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "unknown"
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if annotations.get(DELIVERY_ANNOTATION) != INIT_CONTAINER or init_container(pod, name) is None:
        return "other"
    status = init_status(pod, name)
    if status is None:
        return "before"
    state = status.get("state") or {}
    if "running" in state:
        return "running"
    if "terminated" in state:
        return "after" if state["terminated"].get("exitCode") == 0 else "failed"
    return "failed" if (status.get("lastState") or {}).get("terminated") else "before"


def deliberate_exit(pod: dict[str, Any], name: str) -> bool:
    """True when the init container's last run ended with an exit code osl-hooks chose (retrying cannot heal)."""
    status = init_status(pod, name) or {}
    state = status.get("state") or {}
    finished = state.get("terminated") or (status.get("lastState") or {}).get("terminated") or {}
    return finished.get("exitCode") in DELIBERATE_EXIT_CODES
