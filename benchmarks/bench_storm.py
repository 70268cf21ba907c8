"""Fifty users starting at once on a real local JupyterHub, with osl-hooks and without (the baseline).

Run: python benchmarks/bench_storm.py [--users 50] [--workdir DIR] [--concurrent-spawn-limit 0]

Both runs use the same hub (configurable-http-proxy, DummyAuthenticator, SimpleLocalProcessSpawner, the
single-user server of this Python) with the same timeouts; the osl-hooks run adds the `wrap` delivery with one
synced env (a genuine Python env with ipykernel, built with osl_hooks.demo.envbuild and baked), so each user's
first start copies it. Reported per run: servers ready and failed, seconds from the request to ready (p50, p95,
max), and the hub API's latency during the storm (GET /hub/api/ every 0.2 s: p50, p95, max).

start_timeout follows docs/hub.md, "Timeouts": the first start's work for one synced env, at the storm's
concurrency. Figures depend on the machine; compare the two runs of the same invocation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from localhub import Hub, storm, wrap_hub_config  # noqa: E402

from osl_hooks.demo.envbuild import build_python_env  # noqa: E402
from osl_hooks.engine.manifest import bake  # noqa: E402


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
        result = storm(hub, names, timeout=start_timeout + 120)
    finally:
        hub.close()
    figures = {"run": label, **result.summary()}
    figures["failures"] = sorted(set(result.failed.values()))[:3]
    print(json.dumps(figures), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--start-timeout", type=float, default=900, help="both runs; docs/hub.md, Timeouts")
    parser.add_argument("--concurrent-spawn-limit", type=int, default=0, help="JupyterHub's; 0: no limit")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="osl-hooks-storm-"))
    env = workdir / "image/envs/py"
    if not (env / "conda-meta").is_dir():
        build_python_env(env)
        bake(str(env))
    osl = f'c.OSLHooks.environments = [{{"name": "py", "mode": "synced", "source": {str(env)!r}}}]'
    limit = args.concurrent_spawn_limit
    baseline = run(workdir, "baseline", args.users, None, args.start_timeout, limit)
    with_hooks = run(workdir, "osl-hooks", args.users, osl, args.start_timeout, limit)
    print(json.dumps({"baseline": baseline, "osl-hooks": with_hooks}, indent=1))


if __name__ == "__main__":
    main()
