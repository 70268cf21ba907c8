"""`python -m osl_hooks.demo`: a demo start on this machine, with genuine envs built offline.

Builds a small demo "image" (a conda env with relocatable text and binary files and an activate.d script,
and a Python env with ipykernel that is also a conda env, plus a setup script) under ./demo-data/image,
then runs `osl-hooks start` for the home ./demo-data/home, twice: the first start syncs, the second finds
nothing new. Everything stays under ./demo-data; delete it to start over.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from osl_hooks.demo.envbuild import build_conda_env, build_python_env
from osl_hooks.plan import Plan
from osl_hooks.runner import start
from osl_hooks.status import read_status

SETUP_SCRIPT = """#!/bin/sh
# A demo setup script: runs as the user at every start, after the envs are ready.
echo "Hello from the demo setup script; your envs: $(ls "$HOME/.local/envs" | tr '\\n' ' ')"
"""


def build_demo_image(root: Path) -> dict:
    """Build the demo image under `root` (once) and return the plan's environments and scripts."""
    envs = root / "envs"
    if not (envs / "geo" / "conda-meta").is_dir():
        print("Building the demo conda env 'geo' (offline, from local packages)...", flush=True)
        build_conda_env(envs / "geo")
    if not (envs / "python" / "conda-meta").is_dir():
        print("Building the demo Python env 'python' with ipykernel (about a minute)...", flush=True)
        build_python_env(envs / "python")
    setup = root / "setup.d" / "10-hello.sh"
    setup.parent.mkdir(parents=True, exist_ok=True)
    setup.write_text(SETUP_SCRIPT)
    setup.chmod(0o755)
    return {
        "environments": [
            {"name": "geo", "mode": "synced", "source": str(envs / "geo"), "kernel": {"display_name": "Geo demo"}},
            {
                "name": "python",
                "mode": "synced",
                "source": str(envs / "python"),
                "kernel": {"display_name": "Python (synced demo env)"},
            },
        ],
        "setup_scripts": [{"path": str(setup.parent)}],
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m osl_hooks.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("demo-data"), help="where the demo lives")
    args = parser.parse_args()
    root = args.dir.absolute()
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    plan = Plan.from_dict({"version": 1, "home": str(home), **build_demo_image(root / "image")})
    allow_root = os.geteuid() == 0  # a demo on a throwaway machine; real deployments run as the user
    for attempt in ("first start", "second start (nothing new)"):
        print(f"\n=== osl-hooks start: {attempt} ===", flush=True)
        outcome = start(plan, allow_root=allow_root)
        print(f"exit code {int(outcome)} ({outcome.name.lower()})")
    status = read_status(home / ".local/state/osl-hooks") or {}
    print("\nstatus.json environments:")
    print(json.dumps(status.get("environments", {}), indent=1))
    print(f"\nKernels: {sorted(os.listdir(home / '.local/share/jupyter/kernels'))}")
    return int(outcome)


if __name__ == "__main__":
    sys.exit(main())
