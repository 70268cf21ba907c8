"""The admin report: every server's last start, per env, in the hub (API, CSV export, page).

- ``GET /hub/api/osl-hooks/report``: the rows as JSON (``?format=csv``: as CSV, one row per user, server
  and env; see `fleet.EnvRow` for the columns and `fleet` for the states);
- ``GET /hub/osl-hooks/report``: the same rows as a page of the hub, extending JupyterHub's ``page.html``.

Copies of retired envs are rows too (`fleet`'s ``retired ...`` and ``removed`` states); the JSON's ``retired`` and
the page add, per user, the bytes those copies hold and the bytes removing them freed (`fleet.retired_by_user`).

Both read JupyterHub's database (the spawners' state, where `start_record` keeps each server's last start):
stopped servers are listed, and a hub restart loses nothing. Who may read it: a token or user with the
unfiltered ``admin:users`` scope (admins), or the custom scope ``custom:osl-hooks-report`` that `use_report`
defines (grant it with a role); everyone else gets 403.

JupyterHub registers the handlers through ``c.JupyterHub.extra_handlers`` (which it logs as deprecated in
favour of services: a service could not serve under ``/hub/api`` nor read the spawners' state).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from traitlets.config import Config

from .fleet import EnvRow, env_rows, last_starts, retired_by_user, rows_as_csv, rows_as_dicts

REPORT_SCOPE = "custom:osl-hooks-report"
API_PATH = r"/api/osl-hooks/report"
PAGE_PATH = r"/osl-hooks/report"
REPORT_TEMPLATES = str(Path(__file__).resolve().parent / "report_templates")
REPORT_TEMPLATE = "osl-hooks-report.html"


def may_read_report(parsed_scopes: dict[str, Any]) -> bool:
    """Admins (unfiltered admin:users) and holders of the report's own scope."""
    from jupyterhub.scopes import Scope

    return parsed_scopes.get("admin:users") == Scope.ALL or REPORT_SCOPE in parsed_scopes


def report_handlers() -> list[tuple[str, type]]:
    """The API and page handlers, for ``c.JupyterHub.extra_handlers`` (paths under the hub's prefix)."""
    from jupyterhub.apihandlers.base import APIHandler
    from jupyterhub.handlers.base import BaseHandler
    from tornado import web

    class ReportAPIHandler(APIHandler):
        """The report as JSON, or CSV with ``?format=csv``."""

        async def get(self) -> None:
            if not may_read_report(self.parsed_scopes):
                raise web.HTTPError(403, "the osl-hooks report needs admin:users or " + REPORT_SCOPE)
            rows = env_rows(last_starts(self.db))
            if self.get_argument("format", "json") == "csv":
                self.set_header("Content-Type", "text/csv; charset=utf-8")
                self.set_header("Content-Disposition", 'attachment; filename="osl-hooks-report.csv"')
                self.finish(rows_as_csv(rows))
                return
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"rows": rows_as_dicts(rows), "retired": retired_by_user(rows)}))

    class ReportPageHandler(BaseHandler):
        """The report as a page of the hub."""

        @web.authenticated
        async def get(self) -> None:
            if not may_read_report(self.parsed_scopes):
                raise web.HTTPError(403, "the osl-hooks report is for admins")
            rows = env_rows(last_starts(self.db))
            html = await self.render_template(
                REPORT_TEMPLATE, rows=rows, totals=state_totals(rows), retired=retired_by_user(rows)
            )
            self.finish(html)

    return [(API_PATH, ReportAPIHandler), (PAGE_PATH, ReportPageHandler)]


def state_totals(rows: list[EnvRow]) -> dict[str, dict[str, int]]:
    """Per env, how many servers are in each state: the page's first answer to "did it reach everyone"."""
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        if row.env:
            per_env = totals.setdefault(row.env, {})
            per_env[row.state] = per_env.get(row.state, 0) + 1
    return dict(sorted(totals.items()))


def use_report(c: Config) -> None:
    """Serve the report from the hub: its handlers, its template directory (after the admin's), its scope."""
    handlers = list(c.JupyterHub.get("extra_handlers", None) or [])
    known = {path for path, *_ in handlers}
    handlers += [h for h in report_handlers() if h[0] not in known]
    c.JupyterHub.extra_handlers = handlers
    paths = list(c.JupyterHub.get("template_paths", None) or [])
    if REPORT_TEMPLATES not in paths:
        c.JupyterHub.template_paths = [*paths, REPORT_TEMPLATES]
    scopes = dict(c.JupyterHub.get("custom_scopes", None) or {})
    scopes.setdefault(REPORT_SCOPE, {"description": "Read the osl-hooks report of every server's last start."})
    c.JupyterHub.custom_scopes = scopes
