"""The osl-hooks init container's log, as the hub reads it (needs `get` on pods/log; docs/progress-kubernetes.md).

The engine prints every event twice: as a machine-readable line (``osl-hooks-event: {...}``,
`osl_hooks.events`) and as the human line after it. `LogReader` takes the event lines and hands them to
the shared `EventProgress`; the human lines and setup scripts' output are for people. A log without any
event line comes from an older engine: its own lines (``osl-hooks HH:MM:SS ...``) are shown as they are.

`PodLog` reads one pod's log as it grows, through KubeSpawner's own API client (``spawner.api``): the tail
first, then what is new (kubelet timestamps tell which lines were already seen).
"""

from __future__ import annotations

import datetime
import math
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..events import parse_line
from .progress import EventProgress, raw_event

LOG_TAIL_LINES = 5000  # the first log read: the last lines of the container's log
LOG_SINCE_SLACK = 5  # seconds of overlap between log reads (lines already seen are skipped)
OLD_ENGINE_LINE = "osl-hooks "  # "osl-hooks HH:MM:SS <message>": an engine line before typed events
OLD_ENGINE_NOTE = "osl-hooks: "  # printed by an older engine before it could report (it could not start)

# kubelet's --timestamps prefix (RFC 3339 with up to 9 digits of fraction): the log format, not the engine's
_KUBELET_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d) ?(.*)$")


class LogReader:
    """Engine stdout (as `kubectl logs` shows it, with or without kubelet timestamps) to progress events.

    Keeps what it learnt between chunks, so the log can be fed as it grows. `envs`: the plan's env names
    in order when known (the pod carries the plan), for percentages before the start event is seen.
    """

    def __init__(self, envs: Sequence[str] = ()):
        self.progress = EventProgress(envs)
        self.typed = False  # an event line was seen: the engine speaks events, its human lines are skipped

    def feed(self, text: str) -> list[dict[str, Any]]:
        events = []
        for raw in text.splitlines():
            line = strip_timestamp(raw.rstrip("\r"))
            event = parse_line(line)
            if event is not None:
                self.typed = True
                events.append(self.progress.feed(event))
            elif not self.typed and (legacy := legacy_line(line)):
                events.append(raw_event(legacy))
        return events


def legacy_line(line: str) -> str | None:
    """The text of an older engine's line (its timestamp dropped), or None for anything else."""
    if line.startswith(OLD_ENGINE_NOTE):
        return line[len(OLD_ENGINE_NOTE) :]
    parts = line.split(" ", 2)
    if len(parts) == 3 and line.startswith(OLD_ENGINE_LINE) and parts[1].count(":") == 2:
        return parts[2]
    return None


def events_from_log(text: str, envs: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Progress events from the engine's stdout (the init container's log), in order, without repeats."""
    return unique(LogReader(envs).feed(text))


def unique(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    result = []
    for event in events:
        if event["message"] not in seen:
            seen.add(event["message"])
            result.append(event)
    return result


def strip_timestamp(line: str) -> str:
    m = _KUBELET_TS.match(line)
    return m.group(4) if m else line


def timestamp_key(line: str) -> tuple[tuple[int, int], str] | None:
    """(UTC seconds, nanoseconds) of a kubelet-timestamped log line (RFC 3339, up to 9 digits), and its text."""
    m = _KUBELET_TS.match(line)
    if not m:
        return None
    seconds, fraction, zone, text = m.groups()
    moment = datetime.datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    nanos = int((fraction or "0").ljust(9, "0")[:9])
    return (int(moment.timestamp()), nanos), text


class LogUnreadable(Exception):
    """The log could not be read; `status` is the API's HTTP status when it answered."""

    def __init__(self, error: Exception):
        super().__init__(repr(error))
        self.error = error
        self.status = getattr(error, "status", None)


class PodLog:
    """One pod's init container log, read as it grows; its events through one `LogReader`."""

    def __init__(self, envs: Sequence[str] = ()):
        self.reader = LogReader(envs)
        self.tried_at = -math.inf
        self.read_at: float | None = None
        self.last: tuple[int, int] | None = None
        self.last_lines: set[str] = set()  # the lines stamped `last` (two lines can share a stamp)
        self.done = False

    def due(self, interval: float) -> bool:
        return not self.done and time.monotonic() - self.tried_at >= interval

    async def read(self, spawner: Any, name: str) -> list[dict[str, Any]]:
        """Events from the new lines of container `name`'s log; raises LogUnreadable."""
        kwargs: dict[str, Any] = {"container": name, "timestamps": True}
        started = self.tried_at = time.monotonic()
        if self.read_at is None:
            kwargs["tail_lines"] = LOG_TAIL_LINES
        else:
            kwargs["since_seconds"] = math.ceil(started - self.read_at) + LOG_SINCE_SLACK
        try:
            text = await spawner.api.read_namespaced_pod_log(
                spawner.pod_name, spawner.namespace, _request_timeout=spawner.k8s_api_request_timeout, **kwargs
            )
        except Exception as e:  # the spawn page must not break because a log could not be read
            raise LogUnreadable(e) from None
        self.read_at = started
        fresh = []
        for line in (text or "").splitlines():
            stamped = timestamp_key(line)
            if stamped is None:
                continue
            key, body = stamped
            if self.last is not None and (key < self.last or key == self.last and body in self.last_lines):
                continue  # seen in the last read (reads overlap by LOG_SINCE_SLACK seconds)
            if key != self.last:
                self.last, self.last_lines = key, set()
            self.last_lines.add(body)
            fresh.append(body)
        return self.reader.feed("\n".join(fresh))
