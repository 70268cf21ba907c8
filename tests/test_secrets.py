"""Hub API tokens never appear in what a start leaves behind: status.json, start.log, the termination message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import write_script

HUB_TOKEN = "hubtoken-3f9a0c1e5b7d4a2f"
PLAN_SECRET = "plansecret-77c2e1d0aa"


def test_tokens_never_reach_the_status_log_or_termination_message(image, home, tmp_path):
    script = write_script(tmp_path / "setup.d/10-leaky", 'env; echo "token: $JUPYTERHUB_API_TOKEN" >&2; exit 4')
    termination = tmp_path / "termination-log"
    termination.write_text("")
    environment = {
        "name": "py",
        "mode": "synced",
        "source": str(image / "envs/geo"),
        "kernel": {"display_name": "Py", "env": {"SERVICE_API_TOKEN": PLAN_SECRET}},
        "setup_scripts": [{"path": str(script)}],
    }
    plan = {"version": 1, "home": str(home), "environments": [environment]}
    env = dict(
        os.environ,
        JUPYTERHUB_API_TOKEN=HUB_TOKEN,
        JPY_API_TOKEN=HUB_TOKEN,
        OSL_HOOKS_PLAN=json.dumps(plan),
        OSL_HOOKS_TERMINATION_LOG=str(termination),
    )
    result = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 3, result.stdout + result.stderr  # the script failed: degraded
    state = home / ".local/state/osl-hooks"
    outputs = {
        "stdout": result.stdout + result.stderr,
        "status.json": (state / "status.json").read_text(),
        "start.log": (state / "start.log").read_text(),
        "termination message": termination.read_text(),
    }
    assert "exited with code 4" in outputs["termination message"]
    assert "token: [hidden]" in outputs["start.log"], "the script's output is still logged"
    for where, text in outputs.items():
        assert HUB_TOKEN not in text and PLAN_SECRET not in text, where
