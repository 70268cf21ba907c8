"""Resets and materializations asked for through the REST API, run as tasks the browser polls.

Why a task and not an answer: a reset copies a whole env again (seconds to minutes), longer than a browser or
the hub's proxy waits for one answer. The POST answers 202 at once with the task's address (as mamba-org/gator
does); `GET .../tasks/ID` says how it went.

Why a subprocess running `python -m osl_hooks.cli`: the task runs exactly the code and the checks of
`osl-hooks reset` / `osl-hooks materialize` (the engine's lock, its refusal to run as root, its report in
status.json and start.log), and the server's event loop never blocks on it. The plan goes to the command as
$OSL_HOOKS_PLAN, as the start passes it to a background copy.

One task at a time per env, in this server: a second one for the same env is refused at once (the engine's
start lock would make it wait, then run it on a copy the first one just replaced).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from ..events import parse_line
from ..plan import PLAN_ENV_VAR, PLAN_FILE_ENV_VAR, Plan

OUTCOMES = {0: "ok", 1: "failed", 2: "failed", 3: "degraded"}  # the CLI's exit codes (engine.runner.Outcome)
EVENTS_KEPT = 200


@dataclass
class Task:
    id: str
    env: str
    action: str
    state: str = "running"  # then ok, degraded or failed (the CLI's outcomes)
    message: str = ""  # the latest event's sentence (the last one: how it ended)
    events: list[dict[str, Any]] = field(default_factory=list)  # the command's typed events (osl_hooks.events)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: dict[str, Any] | None = None  # what the API says of the env once the task ended

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "action": self.action,
            "state": self.state,
            "message": self.message,
            "events": self.events,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
        }


class Busy(Exception):
    """A task for this env is already running; the message says which."""


class Tasks:
    """The tasks of this server, by id; at most one running per env."""

    def __init__(self, allow_root: bool = False):
        # `--allow-root` goes to the CLI only when the server itself was allowed to run as root (a throwaway
        # container); otherwise the engine refuses to work in a home as root, as it does in a terminal.
        self.allow_root = allow_root
        self.tasks: dict[str, Task] = {}
        self._counter = itertools.count(1)
        self._running: dict[str, Task] = {}
        self._futures: set[asyncio.Future] = set()  # the event loop keeps only weak references to them

    def busy(self) -> dict[str, str]:
        """The id of the task running for each env that has one."""
        return {env: task.id for env, task in self._running.items()}

    def start(self, plan: Plan, action: str, env: str, args: list[str], describe: Any) -> Task:
        """Start `osl-hooks ACTION ENV ARGS...` with `plan`; `describe()` gives the env's data once it ended."""
        busy = self._running.get(env)
        if busy is not None:
            raise Busy(f"{env} is busy: a {busy.action} of it is running (task {busy.id}); try again once it ended")
        task = Task(id=f"{next(self._counter)}-{secrets.token_hex(4)}", env=env, action=action)
        self.tasks[task.id] = task
        self._running[env] = task
        root = ["--allow-root"] if self.allow_root and os.geteuid() == 0 else []
        # Options before the env's name: argparse takes `name` and the optional PATHs in one go, so an option
        # between them would leave `-- PATH...` unrecognized (a materialize of paths failed so as root).
        command = [sys.executable, "-m", "osl_hooks.cli", action, *root, env, *args]
        environ = {k: v for k, v in os.environ.items() if k != PLAN_FILE_ENV_VAR}
        environ[PLAN_ENV_VAR] = plan.to_json(indent=None)
        future = asyncio.ensure_future(self._run(task, command, environ, describe))
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        return task

    async def _run(self, task: Task, command: list[str], environ: dict[str, str], describe: Any) -> None:
        state, message = "failed", ""
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                env=environ,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd=environ.get("HOME") or "/",
            )
            assert process.stdout is not None
            async for raw in process.stdout:
                # The command prints each event twice: typed (`osl-hooks-event: {...}`) and as a sentence for
                # people. The task keeps the typed ones; any other line (a traceback) only if nothing else came.
                line = raw.decode("utf-8", "replace").rstrip("\n")
                event = parse_line(line)
                if event is not None:
                    task.events = [*task.events, event][-EVENTS_KEPT:]
                    message = str(event.get("message", message))
                elif line and not task.events and not line.startswith("osl-hooks "):
                    message = line
                task.message = message
            state = OUTCOMES.get(await process.wait(), "failed")
        except Exception as e:  # the command could not even start: say so in the task, never lose it
            message = f"could not run {task.action}: {e}"
        try:
            result = describe()
        except Exception as e:
            result = {"error": f"could not read the env's state afterwards: {e}"}
        # No await from here on: a poll sees the task running, or ended with its result, never half of it.
        task.result, task.message, task.finished_at, task.state = result, message, time.time(), state
        self._running.pop(task.env, None)
