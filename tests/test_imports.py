"""A start with nothing new stays light: it imports none of the heavy modules only other paths use.

Every user pays the start's imports at every server start; jupyter_client, jsonschema, psutil, yaml and
fastjsonschema cost more than the rest of a start with nothing new, and the hub side has no business in
the pod at all. Checked in a fresh process running the real `osl-hooks start` on a genuine env.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("jupyter_client", "jsonschema", "psutil", "yaml", "fastjsonschema", "traitlets", "jupyterhub", "kubespawner")

START_AND_LIST_MODULES = """
import json, sys
from osl_hooks.cli import main
code = main(["start", "--allow-root", "--plan", sys.argv[1]])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(",") or m.startswith("osl_hooks.hub"))
print(json.dumps({"code": code, "heavy": heavy}))
"""


def start_in_fresh_process(plan_file) -> tuple[int, list[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", START_AND_LIST_MODULES, str(plan_file), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    *lines, last = result.stdout.splitlines()
    report = json.loads(last)
    return report["code"], report["heavy"], "\n".join(lines)


def test_restart_with_nothing_new_imports_nothing_heavy(image, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "version": 1,
                "home": str(home),
                "environments": [{"name": "geo", "mode": "synced", "source": str(image / "envs/geo")}],
            }
        )
    )
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"version": 1, "home": str(home), "environments": [{"name": "geo"}]}))
    code, heavy, _ = start_in_fresh_process(invalid)
    assert code == 2 and "jsonschema" in heavy, "an invalid plan is explained with jsonschema (the check can fail)"

    code, heavy, output = start_in_fresh_process(plan)
    assert code == 0, output
    code, heavy, output = start_in_fresh_process(plan)
    assert code == 0, output
    assert "geo is up to date" in output
    assert heavy == [], f"a start with nothing new imported {heavy}"
