"""The server user's home as the REST API sees it: its plan, its envs' data, and what a request may name.

Everything here reads; what changes the home runs in the CLI (`osl_hooks.lab.tasks`). The data per env is
`osl_hooks.engine.envstatus`'s, the same as `osl-hooks status --json` prints, regrouped per env; the copies are
not walked (`measure=False`) unless a request asks for the bytes they use.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

from ..engine.envstatus import by_env, gather
from ..engine.planrecord import recorded_plan
from ..plan import (
    COPIED_MODES,
    DEFAULT_STATE_DIR,
    PLAN_ENV_VAR,
    PLAN_FILE_ENV_VAR,
    Environment,
    Plan,
    PlanError,
    load_plan,
)

# The plan schema's env name (osl_hooks/plan.schema.json): no '/', no '..', nothing a URL could smuggle.
ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ACTIONS = {"reset": COPIED_MODES, "materialize": ("linked",)}


class RequestError(Exception):
    """A request the API refuses: an HTTP status, a sentence for the user and, where a client acts on the cause,
    the cause as data (`reason`: the panel asks whether to reset anyway on `kernel_running`, never on the words)."""

    def __init__(self, status: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


class HomeEnvs:
    """The home of the user the server runs as ($HOME), and the plan its last start had."""

    def __init__(self, home: str | None = None):
        self.home = home or os.environ.get("HOME", "")

    def plan(self) -> Plan | None:
        """The plan as the CLI finds it ($OSL_HOOKS_PLAN or $OSL_HOOKS_PLAN_FILE, set for the `init_container` and
        `post_start` deliveries), else the one the last start recorded in the state folder (`wrap`)."""
        try:
            if os.environ.get(PLAN_ENV_VAR) or os.environ.get(PLAN_FILE_ENV_VAR):
                plan = load_plan()
            else:
                plan = recorded_plan(Path(self.home, DEFAULT_STATE_DIR))
            return plan.resolve(plan.home or self.home) if plan else None
        except PlanError:
            return None

    def state_dir(self, plan: Plan | None) -> Path:
        return Path(plan.state_dir) if plan else Path(self.home, DEFAULT_STATE_DIR)

    def envs(self, running_kernels: set[str], busy: dict[str, str], measure: bool = False) -> dict[str, Any]:
        """What `GET .../envs` answers: the last start's outcome, and one entry per env (plan order first)."""
        plan = self.plan()
        gathered = gather(self.state_dir(plan), measure=measure)
        known = by_env(gathered)
        planned = {e.name: e for e in plan.environments} if plan else {}
        last = dict((gathered or {}).get("last_start") or {})
        command = dict(((gathered or {}).get("commands") or [{}])[-1])
        for bulky in ("environments", "events", "scripts"):
            last.pop(bulky, None)
            command.pop(bulky, None)
        envs = []
        for name in dict.fromkeys([*planned, *known]):
            entry = self.entry(name, planned.get(name), known.get(name, {}), running_kernels)
            envs.append(dict(entry, task=busy.get(name)))
        return {
            "home": self.home,
            "plan_found": plan is not None,
            "last_start": last or None,
            "last_command": command or None,  # the last reset or materialize since the last start, as `last_start`
            "envs": envs,
        }

    def entry(
        self, name: str, env: Environment | None, known: dict[str, Any], running_kernels: set[str]
    ) -> dict[str, Any]:
        kernel = env.kernel.name if env and env.kernel else None
        mode = env.mode if env else (known.get("sync") or {}).get("mode")
        return {
            "name": name,
            "mode": mode,
            "in_plan": env is not None,
            "kernel": kernel,
            "kernel_running": kernel in running_kernels,
            "actions": [a for a, modes in ACTIONS.items() if env and env.mode in modes]
            + (["diff"] if env and env.mode in COPIED_MODES else []),
            "start": known.get("start"),
            "sync": known.get("sync"),
            "background_copy": known.get("background_copy"),
        }

    def env(self, plan: Plan | None, name: str, action: str | None = None) -> Environment:
        """The plan's env `name`, or RequestError: 400 for what is not an env name, 404 for an unknown one,
        400 too when the plan has it but the action does not apply to its mode."""
        if not ENV_NAME.match(name):
            raise RequestError(400, f"{name!r} is not an env name (letters, digits, '.', '_' and '-')")
        if plan is None:
            raise RequestError(404, "osl-hooks has no plan for this server: no start has been recorded in this home")
        env = next((e for e in plan.environments if e.name == name), None)
        if env is None:
            names = ", ".join(e.name for e in plan.environments) or "none"
            raise RequestError(404, f"{name} is not an env of this server (its envs: {names})")
        wanted = ACTIONS.get(action or "", COPIED_MODES)
        if env.mode not in wanted:
            what = {"reset": "reset", "materialize": "made real"}.get(action or "", "compared with the image")
            raise RequestError(400, f"{name} is a {env.mode} env: only {' or '.join(wanted)} envs can be {what}")
        return env


def env_paths(value: Any) -> list[str]:
    """The `paths` of a materialize request: relative paths inside the env, or RequestError(400).

    Checked by their text only (the engine checks the filesystem again, link by link): no absolute path, no
    '..', nothing that could name a file outside the env."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise RequestError(400, "paths must be a list of paths relative to the env")
    for path in value:
        if not path or "\0" in path:
            raise RequestError(400, "an empty path (or one with a NUL character) names no file of the env")
        if path.startswith("/") or path.startswith("~"):
            raise RequestError(400, f"{path!r}: give paths relative to the env, not absolute ones")
        normal = posixpath.normpath(path)
        if normal == ".." or normal.startswith("../") or "/../" in f"/{path}/":
            raise RequestError(400, f"{path!r} leads out of the env ('..' is not allowed)")
    return list(value)
