"""The REST API's handlers: one per operation, each behind jupyter_server's authentication and authorization.

`APIHandler` gives what every jupyter_server API has: an unauthenticated request gets 403, a POST authenticated
by a cookie must carry the XSRF token (a token in the Authorization header is enough on its own, as for
/api/contents), and the server's Authorizer (JupyterHub's, behind a hub) decides per action and resource.
Refusals carry a sentence a user can act on, as {"message": ...}.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..engine.envdiff import describe
from ..engine.envstatus import EnvMissing, EnvNotFound, env_changes
from .home import HomeEnvs, RequestError, env_paths
from .tasks import Busy, Tasks

AUTH_RESOURCE = "osl-hooks"
API_PATH = "osl-hooks/api"


class OslHooksHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def home(self) -> HomeEnvs:
        return self.settings["osl_hooks_home"]

    @property
    def tasks(self) -> Tasks:
        return self.settings["osl_hooks_tasks"]

    def refuse(self, error: RequestError) -> None:
        self.set_status(error.status)
        reason = {"reason": error.reason} if error.reason else {}
        self.finish(json.dumps({"message": error.message, **reason}))

    def running_kernels(self) -> set[str]:
        return {k.get("name", "") for k in self.kernel_manager.list_kernels()}

    def busy(self) -> dict[str, str]:
        return self.tasks.busy()

    def task_url(self, task_id: str) -> str:
        return url_path_join(self.base_url, API_PATH, "tasks", task_id)


class EnvsHandler(OslHooksHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        measure = self.get_argument("measure", "false").lower() in ("1", "true", "yes")
        self.finish(json.dumps(self.home.envs(self.running_kernels(), self.busy(), measure)))


class DiffHandler(OslHooksHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        try:
            plan = self.home.plan()
            self.home.env(plan, name)
            assert plan is not None
            changes = env_changes(plan, name)
        except RequestError as e:
            return self.refuse(e)
        except (EnvNotFound, EnvMissing) as e:
            return self.refuse(RequestError(409, str(e)))
        self.finish(
            json.dumps(
                {
                    "name": name,
                    "added": [{"kind": k, "name": n, "version": v} for (k, n), v in changes.added.items()],
                    "upgraded": [
                        {"kind": k, "name": n, "image_version": old, "version": new}
                        for (k, n), (old, new) in changes.upgraded.items()
                    ],
                    "removed": [{"kind": k, "name": n, "image_version": v} for (k, n), v in changes.removed.items()],
                    "summary": changes.summary(),
                    "lines": describe(changes),
                }
            )
        )


class ActionHandler(OslHooksHandler):
    """POST .../envs/NAME/reset or .../materialize: starts the CLI's command as a task (202 + Location)."""

    action = ""

    def command_args(self, body: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def check_may_run(self, name: str, kernel: str | None, body: dict[str, Any]) -> None:
        """Nothing by default; a reset refuses while the env's kernel runs."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        try:
            body = self.body()
            plan = self.home.plan()
            env = self.home.env(plan, name, self.action)
            assert plan is not None
            args = self.command_args(body)
            self.check_may_run(name, env.kernel.name if env.kernel else None, body)
            task = self.tasks.start(plan, self.action, name, args, lambda: self.describe(name))
        except RequestError as e:
            return self.refuse(e)
        except Busy as e:
            return self.refuse(RequestError(409, str(e)))
        self.set_status(202)
        self.set_header("Location", self.task_url(task.id))
        self.finish(json.dumps(task.to_dict()))

    def body(self) -> dict[str, Any]:
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError:
            raise RequestError(400, "the request body must be JSON") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object")
        return body

    def describe(self, name: str) -> dict[str, Any] | None:
        data = self.home.envs(set(), {})
        return next((e for e in data["envs"] if e["name"] == name), None)


class ResetHandler(ActionHandler):
    action = "reset"

    def command_args(self, body: dict[str, Any]) -> list[str]:
        return ["--discard"] if body.get("discard") is True else []

    def check_may_run(self, name: str, kernel: str | None, body: dict[str, Any]) -> None:
        if kernel and kernel in self.running_kernels() and body.get("force") is not True:
            raise RequestError(
                409,
                f"A kernel of {name} is running: a reset replaces the files it uses. Shut the kernel down first "
                'and reset again, or reset anyway ({"force": true}) and restart the kernel afterwards.',
                reason="kernel_running",
            )


class MaterializeHandler(ActionHandler):
    action = "materialize"

    def command_args(self, body: dict[str, Any]) -> list[str]:
        # `--` so that no path is read as an option of the command
        paths = env_paths(body.get("paths"))
        return ["--", *paths] if paths else []


class TaskHandler(OslHooksHandler):
    @web.authenticated
    @authorized
    async def get(self, task_id: str) -> None:
        task = self.tasks.tasks.get(task_id)
        if task is None:
            return self.refuse(RequestError(404, f"there is no task {task_id} in this server"))
        self.finish(json.dumps(task.to_dict()))


def handlers(base_url: str) -> list[tuple[str, type]]:
    """The routes under `<base_url>osl-hooks/api/`. An env name is one path segment: a name with '/' never
    matches (404), and one that matches is checked against the plan's names (400 or 404)."""
    api = url_path_join(base_url, API_PATH)
    return [
        (url_path_join(api, "envs"), EnvsHandler),
        (url_path_join(api, r"envs/([^/]+)/diff"), DiffHandler),
        (url_path_join(api, r"envs/([^/]+)/reset"), ResetHandler),
        (url_path_join(api, r"envs/([^/]+)/materialize"), MaterializeHandler),
        (url_path_join(api, r"tasks/([^/]+)"), TaskHandler),
    ]
