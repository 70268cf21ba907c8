"""Fifty users starting at once on a real local JupyterHub, with osl-hooks and without (the baseline).

Run: python benchmarks/bench_storm.py [--users 50] [--rounds 1] [--workdir DIR] [--concurrent-spawn-limit 0]

Both runs use the same hub (configurable-http-proxy, DummyAuthenticator, SimpleLocalProcessSpawner, the
single-user server of this Python) with the same timeouts; the osl-hooks run adds the `wrap` delivery with one
synced env (a genuine Python env with ipykernel, built with osl_hooks.demo.envbuild and baked), so each user's
first start copies it, in the background by default (`first_copy`; `--first-copy before_ready` for the copy
before the server starts). Reported per run: servers ready and failed, seconds from the request to ready (p50,
p95, max), and the hub API's latency during the storm (GET /hub/api/ every 0.2 s: p50, p95, max); for the
osl-hooks run also how many users' own copies completed and when the last one did (the hub keeps running until
then), and the ratio of its p50 to the baseline's. With `--rounds N` the two runs alternate, N times each.

start_timeout follows docs/hub.md, "Timeouts": the first start's work for one synced env, at the storm's
concurrency. Figures depend on the machine; compare the two runs of the same invocation.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from localhub import Hub, storm, wrap_hub_config  # noqa: E402

from osl_hooks.demo.envbuild import build_python_env  # noqa: E402
from osl_hooks.engine.manifest import bake  # noqa: E402

COPY_RECORD = ".local/state/osl-hooks/background/py.json"  # the copy process's record, in each home


def copies_ended(homes: Path, names: list[str]) -> dict[str, str]:
    """Per user, the state of their background copy's record (absent: "none")."""
    states = {}
    for name in names:
        try:
            states[name] = json.loads((homes / name / COPY_RECORD).read_text()).get("state", "none")
        except (OSError, ValueError):
            states[name] = "none"
    return states


def wait_for_copies(homes: Path, names: list[str], requested: float, timeout: float) -> dict:
    """Wait until every user's background copy has ended; how many completed, and when the last one did."""
    deadline = time.monotonic() + timeout
    while True:
        states = copies_ended(homes, names)
        if all(s in ("done", "failed", "none") for s in states.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    counted = collections.Counter(states.values())
    return {
        "copies_done": counted["done"],
        "copies_failed": counted["failed"],
        "copies_unfinished": len(names) - counted["done"] - counted["failed"],
        "copies_complete_s": time.monotonic() - requested,
    }


def run(workdir: Path, label: str, users: int, osl: str | None, start_timeout: float, limit: int) -> dict:
    directory = workdir / label
    if directory.exists():
        shutil.rmtree(directory)
    homes = directory / "homes"
    names = [f"user{i:02d}" for i in range(users)]
    for name in names:
        (homes / name).mkdir(parents=True)
    config = wrap_hub_config(homes, osl, start_timeout=start_timeout, http_timeout=start_timeout)
    config += f"c.JupyterHub.concurrent_spawn_limit = {limit}\n"
    hub = Hub.with_config(directory, config)
    try:
        hub.wait_for(lambda: hub.api("GET", "/hub/api/")[0] == 200, 120, "the hub to answer")
        requested = time.monotonic()
        result = storm(hub, names, timeout=start_timeout + 120)
        copies = wait_for_copies(homes, names, requested, start_timeout) if osl else {}
    finally:
        hub.close()
    figures = {"run": label, **result.summary(), **copies}
    figures["failures"] = sorted(set(result.failed.values()))[:3]
    print(json.dumps(figures), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--start-timeout", type=float, default=900, help="both runs; docs/hub.md, Timeouts")
    parser.add_argument("--concurrent-spawn-limit", type=int, default=0, help="JupyterHub's; 0: no limit")
    parser.add_argument("--first-copy", choices=("background", "before_ready"), default="background")
    parser.add_argument("--rounds", type=int, default=1, help="baseline and osl-hooks runs, alternating")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="osl-hooks-storm-"))
    env = workdir / "image/envs/py"
    if not (env / "conda-meta").is_dir():
        build_python_env(env)
        bake(str(env))
    osl = (
        f'c.OSLHooks.environments = [{{"name": "py", "mode": "synced", "source": {str(env)!r}}}]\n'
        f"c.OSLHooks.first_copy = {args.first_copy!r}"
    )
    limit = args.concurrent_spawn_limit
    runs: dict[str, list[dict]] = {"baseline": [], "osl-hooks": []}
    for i in range(args.rounds):
        order = ["baseline", "osl-hooks"] if i % 2 == 0 else ["osl-hooks", "baseline"]
        for label in order:
            hooks = osl if label == "osl-hooks" else None
            runs[label].append(run(workdir, label, args.users, hooks, args.start_timeout, limit))
    ratios = [o["ready_p50_s"] / b["ready_p50_s"] for b, o in zip(runs["baseline"], runs["osl-hooks"], strict=True)]
    print(json.dumps({**runs, "ready_p50_ratios": ratios, "median_ratio": statistics.median(ratios)}, indent=1))


if __name__ == "__main__":
    main()
