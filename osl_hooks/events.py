"""The events of a start: what the engine tells the world while it works, as data.

The plan is the contract from the hub to the server; events are the contract back. Each event has a
`kind`, the env it concerns, the numbers a reader needs (bytes done and total, files, seconds, exit code)
and the human sentence (`message`). The sentence is for people; readers (the hub's progress, `osl-hooks
status`) act on the kind and the numbers, never on the words. Every output of a start derives from the same
events (`osl_hooks.engine.reporter.Reporter`):

- stdout and `start.log`: the human line (``osl-hooks 12:34:56 Syncing gis: ...``);
- the container log (stdout when it is not a terminal): one JSON object per event on a line of its own,
  after `EVENT_LINE_PREFIX`, so a reader picks them out without guessing;
- `status.json`: the list of events (as `Event.to_dict`);
- the termination message (Kubernetes): the final event and the last problems, as event lines, within 4 KiB.

The format is versioned (`EVENTS_VERSION`, the `v` of every event) and published as a JSON schema beside
this module (`events.schema.json`). A newer reader must accept an event with fields it does not know;
a new kind is a new version. Version 2 added `background-copy` (with `eta_seconds`); a reader of version 1
shows it as a line about its env, from its message.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ._records import as_dict, field, record

EVENTS_VERSION = 2
EVENT_LINE_PREFIX = "osl-hooks-event: "

KINDS = (
    "start",  # the start began; `envs`: the planned env names, in order
    "env-begin",  # work on an env began (a copy, a description of the image's env); bytes_total when known
    "copy-progress",  # part of a copy is done: bytes_done of bytes_total
    "env-done",  # an env is ready (state: ready, absent); seconds, files, bytes_total when known
    "background-copy",  # the user's own copy made after the server started (state: queued, running, done,
    #                     failed); bytes_done, bytes_total, eta_seconds (running), seconds (done)
    "kernel",  # a kernel was registered or found registered
    "script-begin",  # a setup script started
    "script-done",  # a setup script ended; state ok / failed / timeout / skipped, exit_code, seconds, output
    "note",  # anything else worth a line
    "warning",  # something is not as planned, the start goes on (degraded)
    "error",  # something failed; the start goes on without it (degraded)
    "finish",  # the start is over; state ok / degraded / failed, seconds, log, summary
)
LEVELS = ("info", "warning", "error")
OUTPUT_LINES = 5  # lines of a failed script's output carried by its script-done event
OUTPUT_LINE_CHARS = 300


@record
class Event:
    """One event of a start (see the module's docstring): its kind, env, numbers and sentence."""

    kind: str
    message: str
    env: str | None = None
    level: str = "info"
    seq: int = 0  # position in its start, from 0: identifies an event across outputs
    time: str = ""
    state: str | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    files: int | None = None
    seconds: float | None = None
    eta_seconds: float | None = None
    exit_code: int | None = None
    envs: list[str] | None = None
    script: str | None = None
    output: list[str] | None = None
    log: str | None = None
    summary: dict[str, Any] | None = None  # finish: the start's figures per env and phase (`status.summary`)
    v: int = EVENTS_VERSION
    final: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        assert self.kind in KINDS and self.level in LEVELS, (self.kind, self.level)
        self.final = self.kind == "finish"
        if not self.time:
            self.time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def to_dict(self) -> dict[str, Any]:
        """The event as JSON data, without the fields it does not use."""
        return {k: v for k, v in as_dict(self).items() if v is not None}

    def line(self) -> str:
        """The event as one machine-readable log line."""
        return EVENT_LINE_PREFIX + json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    def human(self) -> str:
        """The event as people read it in the log."""
        prefix = {"info": "", "warning": "WARNING: ", "error": "ERROR: "}[self.level]
        return prefix + self.message


def parse_line(line: str) -> dict[str, Any] | None:
    """The event a log line carries (as data), or None when the line is not an event line.

    Fields the reader does not know are kept (a newer engine may add some); an event line that is not
    a JSON object with a kind and a message is not an event.
    """
    if not line.startswith(EVENT_LINE_PREFIX):
        return None
    try:
        data = json.loads(line[len(EVENT_LINE_PREFIX) :])
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str) or not isinstance(data.get("message"), str):
        return None
    return data


def termination_text(final: Event, problems: list[Event], human: str, limit: int) -> str:
    """The termination message: the human sentence, then the last problems and the final event as event
    lines, oldest first, as many problems as fit in `limit` bytes (the final event always does)."""
    final_line = _fitting_line(final, limit - len(human.encode()) - 2)
    chosen: list[str] = []
    room = limit - len(human.encode()) - len(final_line.encode()) - 2
    for event in reversed(problems):
        line = _fitting_line(event, OUTPUT_LINE_CHARS * OUTPUT_LINES)
        if len(line.encode()) + 1 > room:
            break
        chosen.insert(0, line)
        room -= len(line.encode()) + 1
    text = "\n".join([human, *chosen, final_line])
    return text.encode()[:limit].decode(errors="ignore")


def _fitting_line(event: Event, limit: int) -> str:
    """The event's line, with its output and then its message shortened until it fits `limit` bytes."""
    line = event.line()
    shortened = Event(**{k: v for k, v in as_dict(event).items() if k != "final"})
    while len(line.encode()) > limit and shortened.output:
        shortened.output = shortened.output[1:] or None
        line = shortened.line()
    while len(line.encode()) > limit and len(shortened.message) > 40:
        shortened.message = shortened.message[: len(shortened.message) // 2] + "…"
        line = shortened.line()
    if len(line.encode()) > limit and shortened.summary:
        shortened.summary = None  # the hub's figures go before the outcome itself does
        line = shortened.line()
    return line


def events_schema() -> dict[str, Any]:
    """The published JSON schema of one event."""
    from importlib import resources  # here: importlib.resources costs a start more than the rest of this module

    return json.loads(resources.files("osl_hooks").joinpath("events.schema.json").read_text(encoding="utf-8"))
