"""osl-hooks in the user's Jupyter server: a REST API about the home's envs (`GET <base_url>osl-hooks/api/envs`,
diff, reset, materialize as tasks), for the JupyterLab Environments panel and for scripts.

A jupyter_server extension, enabled by `jupyter_server_config.d/osl_hooks.json`, which the package installs
(`etc/jupyter/...` in its environment). It runs in the server, as the server's user, for as long as the server
runs: it uses the engine and the contracts (the same code as `osl-hooks status/diff/reset/materialize`), never
the hub side. See docs/lab.md.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "osl_hooks.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the API's handlers; nothing is read or started until a request comes (no cost at server start)."""
    from .handlers import handlers
    from .home import HomeEnvs
    from .tasks import Tasks

    web_app = serverapp.web_app
    web_app.settings["osl_hooks_home"] = HomeEnvs()
    web_app.settings["osl_hooks_tasks"] = Tasks(allow_root=bool(serverapp.allow_root))
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("osl-hooks: the envs API is at %sosl-hooks/api/envs", web_app.settings["base_url"])
