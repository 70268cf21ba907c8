"""The envs REST API's costs (issue 31): `GET osl-hooks/api/envs` for many large envs, and the server's start.

Run: python benchmarks/bench_lab.py [--workdir DIR] [--envs 10] [--files 33000] [--repeat 5] [--quick]

1. A home with `--envs` synced envs (the demo's conda env, each grown to `--files` files by the user's own
   files, as a real env's size), after a real start; a real jupyter_server with the extension. Median of
   `GET .../envs` (reads records only) next to `GET .../envs?measure=true` (walks every copy, as
   `osl-hooks status` does): the first must not grow with the envs' files.
2. The server's time from launch to answering `/api/status`, with the extension and without it
   (`--ServerApp.jpserver_extensions=osl_hooks.lab=True|False`), interleaved.
Goals (issue 31): GET envs for 10 envs of 33k files ≤ 50 ms median; ready with/without ≤ 1.05.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from labserver import LabServer  # noqa: E402

from osl_hooks.demo.envbuild import build_conda_env  # noqa: E402
from osl_hooks.engine.runner import start  # noqa: E402
from osl_hooks.plan import Plan  # noqa: E402


def make_home(workdir: Path, envs: int, files: int) -> Path:
    image, home = workdir / "image/envs/geo", workdir / "home"
    build_conda_env(image)
    home.mkdir()
    plan = {
        "version": 1,
        "home": str(home),
        "environments": [{"name": f"geo{i}", "mode": "synced", "source": str(image)} for i in range(envs)],
    }
    with open(os.devnull, "w") as out:
        start(Plan.from_dict(plan), allow_root=True, out=out)
    for i in range(envs):
        grown = home / f".local/envs/geo{i}/share/user-data"
        for d in range(files // 1000 + 1):
            (grown / str(d)).mkdir(parents=True)
            for f in range(min(1000, files - d * 1000)):
                (grown / str(d) / f"{f}.txt").write_bytes(b"x")
    return home


def timed_get(lab: LabServer, path: str, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = lab.get(path)
        samples.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return statistics.median(samples)


def ready_seconds(home: Path, workdir: Path, enabled: bool) -> float:
    started = time.perf_counter()
    flag = f"--ServerApp.jpserver_extensions=osl_hooks.lab={enabled}"
    lab = LabServer(home, workdir, server_args=[flag])
    seconds = time.perf_counter() - started
    try:
        assert lab.get("envs").status_code == (200 if enabled else 404), "the flag did not turn the extension on/off"
    finally:
        lab.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--envs", type=int, default=10)
    parser.add_argument("--files", type=int, default=33000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 envs of 500 files, 2 rounds (CI)")
    args = parser.parse_args()
    if args.quick:
        args.envs, args.files, args.repeat = 2, 500, 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-lab-"))
    home = make_home(workdir / "data", args.envs, args.files)
    lab = LabServer(home, workdir / "server")
    try:
        assert len(lab.get("envs").json()["envs"]) == args.envs
        records = timed_get(lab, "envs", max(args.repeat * 10, 20))
        walked = timed_get(lab, "envs?measure=true", args.repeat)
    finally:
        lab.close()
    ready = {True: [], False: []}
    for i in range(args.repeat):
        for enabled in (True, False) if i % 2 == 0 else (False, True):
            ready[enabled].append(ready_seconds(home, workdir / f"ready{i}{enabled}", enabled))
    with_ext, without = statistics.median(ready[True]), statistics.median(ready[False])
    result = {
        "envs": args.envs,
        "files_per_env": args.files,
        "get_envs_ms": round(records * 1000, 1),
        "get_envs_measured_ms": round(walked * 1000, 1),
        "ready_with_s": round(with_ext, 2),
        "ready_without_s": round(without, 2),
        "ready_ratio": round(with_ext / without, 3),
    }
    print(
        f"GET envs, {args.envs} envs of {args.files} files: {result['get_envs_ms']} ms median (goal ≤ 50 ms); "
        f"with ?measure=true (walks the copies): {result['get_envs_measured_ms']} ms"
    )
    print(
        f"server ready: {with_ext:.2f} s with the extension, {without:.2f} s without: "
        f"{result['ready_ratio']}x (goal ≤ 1.05x)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
