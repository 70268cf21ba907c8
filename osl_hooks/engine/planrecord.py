"""The plan of the last start, kept in the state folder for the server's REST API.

With the `wrap` delivery the server (and its kernels and terminals) never gets $OSL_HOOKS_PLAN, yet the server's
REST API (`osl_hooks.lab`) must reset or materialize an env as `osl-hooks reset` would, with the plan of this
home's start. A module of its own because every start writes (or checks) the record, and a restart imports only
what it uses: the rest of `envstatus` (package changes, links, retirement) is for `osl-hooks status` and the lab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..plan import Plan, PlanError, parse_plan
from ..status import read_state_text

PLAN_RECORD = "plan.json"  # in the state folder


def record_plan(plan: Plan, write: Any, state_dir: Path) -> None:
    """Keep the start's plan in the state folder (mode 0600, as kernel.json keeps the kernels' env).

    `write` is `Home.write_text` (never through a link out of the home). Written only when it differs from the
    recorded one: most starts have the same plan, and a write costs more than a read."""
    text = plan.to_json()
    try:
        recorded: str | None = read_state_text(state_dir / PLAN_RECORD, private=True)
    except (OSError, UnicodeDecodeError):
        recorded = None
    if recorded != text:
        write(state_dir / PLAN_RECORD, text, "state file", mode=0o600)


def recorded_plan(state_dir: Path) -> Plan | None:
    """The plan the last start recorded in `state_dir`, or None (no start yet, or unreadable or invalid)."""
    try:
        return parse_plan(read_state_text(state_dir / PLAN_RECORD), str(state_dir / PLAN_RECORD))
    except (OSError, UnicodeDecodeError, PlanError):
        return None
