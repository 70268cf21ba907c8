"""What watching the fleet costs the hub: per spawn (reading the start's end) and per scrape (the fleet gauges).

Run: python benchmarks/bench_fleet.py [--spawns 400] [--servers 500] [--json FILE]

Per spawn, measured interleaved in one loop on real KubeSpawner objects (as tests/test_hub_kubespawner.py
measures the hook): the hook osl-hooks already runs per spawn (`modify_pod_hook`, the reference), reading the
end of a start from the pod status (the init container's termination message of a real `osl-hooks start`,
in KubeSpawner's pod reflector), and reading it from a local server's status file (a worker thread). Per
scrape: the fleet gauges over `--servers` servers' last starts in a JupyterHub database, against the
serialisation of everything else ``/hub/metrics`` serves in this process. Medians, and their ratios to the
reference of the same run; no figure is asserted (tests/test_bench.py runs this with --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pytest  # noqa: E402
from test_hub_kube_progress import api_pod, container_status, start_spawn, terminated  # noqa: E402
from test_hub_support import container, env_of, hub_user, kube_config, no_kubeconfig, spawn_pod  # noqa: E402

import osl_hooks.hub  # noqa: E402
from osl_hooks.demo.envbuild import build_conda_env  # noqa: E402
from osl_hooks.events import parse_line  # noqa: E402
from osl_hooks.hub.fleet import STATE_KEY, last_starts  # noqa: E402
from osl_hooks.hub.local_progress import read_status_async  # noqa: E402
from osl_hooks.hub.metrics import FleetCollector  # noqa: E402
from osl_hooks.hub.start_record import record_from_final, record_from_status  # noqa: E402
from osl_hooks.status import read_status  # noqa: E402


def real_start(workdir: Path) -> tuple[dict, str, dict, Path]:
    """A pod the hooks built, and the termination message and status file of `osl-hooks start` of its plan."""
    source = workdir / "image/envs/geo"
    if not (source / "conda-meta").is_dir():
        build_conda_env(source)
    c = kube_config(environments=[{"name": "geo", "mode": "synced", "source": str(source), "kernel": False}])
    osl_hooks.hub.install(c)
    _, pod = spawn_pod(c, hub_user("bench"))
    plan = json.loads(env_of(container(pod, "osl-hooks"))["OSL_HOOKS_PLAN"])
    home = Path(tempfile.mkdtemp(dir=workdir, prefix="home-"))
    plan_file = workdir / "plan.json"
    plan_file.write_text(json.dumps({**plan, "home": str(home)}))
    termination_log = workdir / "termination-log"
    termination_log.write_text("")
    subprocess.run(
        ["osl-hooks", "start", "--allow-root", "--degraded-ok", "--plan", str(plan_file)],
        check=True,
        capture_output=True,
        env={**os.environ, "OSL_HOOKS_TERMINATION_LOG": str(termination_log)},
    )
    state_dir = home / ".local/state/osl-hooks"
    return pod, termination_log.read_text(), read_status(state_dir), state_dir


async def per_spawn(spawns: int, pod: dict, message: str, state_dir: Path) -> dict[str, list[float]]:
    cluster = start_spawn(environments=[], delivery="init_container")
    spawner = cluster.spawner
    init = container_status("osl-hooks", terminated(0, message, 4, 9), ready=True)
    cluster.set_pod(api_pod(pod, init))
    status_pid = read_status(state_dir)["pid"]
    samples: dict[str, list[float]] = {"modify_pod_hook": [], "record from pod": [], "record from status file": []}
    for _ in range(spawns):
        manifest = await spawner.get_pod_manifest()
        t0 = time.perf_counter()
        await spawner.modify_pod_hook(spawner, manifest)
        t1 = time.perf_counter()
        await spawner._osl_hooks_take_record()
        spawner.get_state()
        t2 = time.perf_counter()
        record_from_status(await read_status_async(state_dir), status_pid)
        t3 = time.perf_counter()
        samples["modify_pod_hook"].append(t1 - t0)
        samples["record from pod"].append(t2 - t1)
        samples["record from status file"].append(t3 - t2)
    assert spawner.get_state()[STATE_KEY]["outcome"] == "ok"
    return samples


def per_scrape(servers: int, record: dict, rounds: int) -> dict[str, list[float]]:
    from jupyterhub import orm
    from prometheus_client import REGISTRY, generate_latest

    db = orm.new_session_factory("sqlite://")()
    for i in range(servers):
        user = orm.User(name=f"user{i:04d}")
        db.add(user)
        db.add(orm.Spawner(user=user, name="", state={STATE_KEY: record}))
    db.commit()
    fleet = FleetCollector(lambda: last_starts(db))
    samples: dict[str, list[float]] = {"/hub/metrics without the fleet": [], f"fleet gauges, {servers} servers": []}
    for _ in range(rounds):
        t0 = time.perf_counter()
        generate_latest(REGISTRY)
        t1 = time.perf_counter()
        families = list(fleet.collect())
        t2 = time.perf_counter()
        samples["/hub/metrics without the fleet"].append(t1 - t0)
        samples[f"fleet gauges, {servers} servers"].append(t2 - t1)
    assert families[0].samples[0].value == servers
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawns", type=int, default=400)
    parser.add_argument("--servers", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=50, help="scrapes measured")
    parser.add_argument("--quick", action="store_true", help="few samples: checks the benchmark still runs")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.spawns, args.servers, args.rounds = 20, 50, 5
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="osl-hooks-fleet-"))
    with pytest.MonkeyPatch.context() as mp:
        no_kubeconfig(mp)
        pod, message, status, state_dir = real_start(workdir)
        spawn = asyncio.run(per_spawn(args.spawns, pod, message, state_dir))
    record = record_from_final(parse_line(message.splitlines()[-1]))
    scrape = per_scrape(args.servers, record, args.rounds)
    medians = {name: statistics.median(values) * 1000 for name, values in {**spawn, **scrape}.items()}
    rows = [
        ("record from pod", "modify_pod_hook"),
        ("record from status file", "modify_pod_hook"),
        (f"fleet gauges, {args.servers} servers", "/hub/metrics without the fleet"),
    ]
    print("| measured | median ms | reference | median ms | ratio |")
    print("|---|---|---|---|---|")
    result = []
    for measured, reference in rows:
        ratio = medians[measured] / medians[reference]
        print(f"| {measured} | {medians[measured]:.3f} | {reference} | {medians[reference]:.3f} | {ratio:.2f} |")
        result.append({"measure": measured, "ms": medians[measured], "reference": reference, "ratio": ratio})
    if args.json:
        args.json.write_text(json.dumps({"rows": result, "spawns": args.spawns, "servers": args.servers}, indent=1))


if __name__ == "__main__":
    main()
