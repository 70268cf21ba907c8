"""One function from the engine's typed events to what the spawn page shows, shared by every reader.

The engine reports a start as events (`osl_hooks.events`: a kind, the env, numbers, a sentence). The hub
reads them from the status file (local spawners, `local_progress`) or from the pod (KubeSpawner: the init
container's log and termination message, `kube_log`, `kube_pod`). Both hand every event to `EventProgress`,
so the same start shows the same messages, the same percentages and the same failure sentence whichever
way it was read. The hub acts on kinds and numbers, never on the engine's wording.

The bar: JupyterHub shows 0% ("Server requested") and 100% (ready); the start fills `FIRST`..`LAST`, each
planned env an equal slot of `FIRST`..`ENVS_LAST`, filled by its copy's bytes; it never goes back. Its
percentage is the page's one number: a copy's progress says its bytes, and is a tick (`TICK_CLASS`) that the
spawn page shows under the bar, not a line of its event log, which keeps to the steps.

Events of engines older than the typed stream (osl-hooks < 0.2: no ``osl-hooks-event:`` lines, no `kind`
in status.json) are shown as the raw lines they are, without percentages (`raw_event`).
"""

from __future__ import annotations

import calendar
import html
import time
from collections.abc import Sequence
from typing import Any

from ..status import human_bytes

FIRST = 20  # the start has begun
ENVS_LAST = 75  # the planned envs are prepared (then conda settings, kernels, global setup scripts)
LAST = 80  # the start is over
SERVER = 95  # what comes after the start (the server itself) approaches this
OUTPUT_SHOWN = 3  # lines of a failed script's output in its message

FAILED_PREFIX = "Your environments could not be prepared."
TICK_CLASS = "osl-hooks-tick"  # marks a progress tick (a copy's bytes) for the spawn page


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:]


def event_message(event: dict[str, Any]) -> str:
    """What the user reads for one typed event."""
    kind = event.get("kind")
    if kind == "copy-progress" and event.get("bytes_total"):
        # No percentage of its own: the bar's is the one number (the copy is a share of the whole start).
        done = min(int(event.get("bytes_done") or 0), int(event["bytes_total"]))
        return f"Syncing {event.get('env')}: {human_bytes(done)} of {human_bytes(int(event['bytes_total']))}"
    if kind == "start":
        return f"Preparing your environments ({len(event.get('envs') or ())} configured)"
    if kind == "finish":
        return finish_sentence(event)
    message = event.get("message", "")
    output = [line for line in event.get("output") or () if line.strip()]
    if kind == "script-done" and output:
        message = f"{message.rstrip('.')} (last output: {' / '.join(output[-OUTPUT_SHOWN:])})"
    level = event.get("level")
    if level == "warning":
        return f"Warning: {message}"
    if level == "error":
        return f"Error: {message}"
    return message


def finish_sentence(event: dict[str, Any]) -> str:
    """The sentence for the end of a start: ready (with warnings), or why it failed and where the log is."""
    seconds = float(event.get("seconds") or 0)
    state = event.get("state")
    if state == "ok":
        return f"Your environments are ready ({seconds:.1f} s)"
    if state == "degraded":
        return f"Your environments are ready, with warnings ({seconds:.1f} s)"
    why = _sentence(event.get("message", ""))
    if why and why[-1] not in ".!?":
        why += "."
    output = [line for line in event.get("output") or () if line.strip()]
    if output:
        why = f"{why.rstrip('.')} (last output: {' / '.join(output[-OUTPUT_SHOWN:])})."
    where = f" The full log is in {event['log']}." if event.get("log") else ""
    return f"{FAILED_PREFIX} {why}{where}".rstrip()


def raw_event(text: str, level: str = "info") -> dict[str, Any]:
    """A line of an engine without typed events, shown as it is (no percentage)."""
    prefix = {"warning": "Warning: ", "error": "Error: "}.get(level, "")
    return {"message": prefix + text.strip()}


def is_typed(event: dict[str, Any]) -> bool:
    return isinstance(event.get("kind"), str) and isinstance(event.get("message"), str)


class EventProgress:
    """Typed events of one start, in order, to JupyterHub progress events ({"progress": n, "message": s}).

    `envs`: the planned env names in order when the reader knows them before the start event (the pod
    carries the plan); the start event's list wins.
    """

    def __init__(self, envs: Sequence[str] = ()):
        self.envs = list(envs)
        self.percent = float(FIRST)

    def feed(self, event: dict[str, Any]) -> dict[str, Any]:
        kind = event.get("kind")
        env = event.get("env")
        target = self.percent
        if kind == "start":
            self.envs = list(event.get("envs") or self.envs)
            target = FIRST
        elif kind == "finish":
            if event.get("state") != "failed":
                target = LAST
        elif env in self.envs:
            low, high = self._slot(env)
            if kind == "copy-progress" and event.get("bytes_total"):
                share = min(int(event.get("bytes_done") or 0) / int(event["bytes_total"]), 1.0)
                target = low + (high - low) * share
            elif kind in ("env-done", "error", "background-copy"):  # background-copy: ready on the image's copy
                target = high
            else:
                target = low  # any event about an env: the envs before it are done
        elif self.envs:
            target = ENVS_LAST  # the engine prepares the planned envs first, then everything else
        self.percent = max(self.percent, target)
        shown = {"progress": int(self.percent), "message": event_message(event)}
        if kind == "copy-progress":
            # A tick, not a step: the spawn page shows it under the bar and keeps it out of its event log.
            shown["html_message"] = f'<span class="{TICK_CLASS}">{html.escape(shown["message"])}</span>'
        return shown

    def _slot(self, env: str) -> tuple[float, float]:
        width = (ENVS_LAST - FIRST) / len(self.envs)
        index = self.envs.index(env)
        return FIRST + index * width, FIRST + (index + 1) * width


def still_running(events: Sequence[dict[str, Any]], now: float | None = None) -> tuple[str | None, float | None]:
    """What a start that has not finished was doing at its last typed event, and for how many seconds."""
    last = next((e for e in reversed(events) if is_typed(e)), None)
    if last is None or last.get("final"):
        return None, None
    kind = last["kind"]
    if kind in ("script-begin",):
        what = f"the setup script {last.get('script')}"
    elif kind in ("env-begin", "copy-progress"):
        what = f"preparing {last.get('env')}"
        if last.get("bytes_total"):
            what += f" ({min(int(last.get('bytes_done') or 0) / int(last['bytes_total']), 1.0):.0%} copied)"
    elif kind == "start":
        what = "the start of the preparation"
    else:
        what = f"the step after: {last['message']}"
    since = None
    try:
        since = max((now or time.time()) - calendar.timegm(time.strptime(last["time"], "%Y-%m-%dT%H:%M:%SZ")), 0.0)
    except (KeyError, ValueError):
        pass
    return what, since


def timeout_sentence(events: Sequence[dict[str, Any]], timeout: float, setting: str) -> str:
    """The sentence for a start the spawner's timeout cut short: what was still running, which setting to raise."""
    what, since = still_running(events)
    still = ""
    if what:
        still = f" Still running: {what}" + (f", for {since:.0f} s" if since is not None else "") + "."
    return (
        f"Your environments were not ready within {setting} ({timeout:g} s).{still} "
        f"Ask your JupyterHub admin to raise {setting}."
    )
