"""Linked mode next to synced mode, on the same env, in the same run: bytes on the volume and start times.

Run: python benchmarks/bench_linked.py [--workdir DIR] [--repeat 3] [--source ENV]

The env is bench_sync.py's (a genuine Python env grown with real packages to tens of thousands of files,
baked), or a copy of `--source` (copied into the work directory and baked there; the original is only read).
Measured per mode (median of --repeat, alternating the modes so both see the same disk):
1. cold first start: `osl-hooks start` as a whole process into an empty home;
2. bytes on the user's volume afterwards: the blocks of every file, directory and link of the copy;
3. restart with nothing new: `osl-hooks start` again.
Goals (issue 11): bytes linked/synced ≤ 0.15; first start linked/synced ≤ 0.3; nothing new unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
from pathlib import Path

from bench_sync import DEFAULT_PACKAGES, START, build_env, timed

from osl_hooks.engine.manifest import bake, load

MODES = ("synced", "linked")


def volume_bytes(root: Path) -> int:
    total = 0
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def plan_file(path: Path, home: Path, source: Path, mode: str) -> Path:
    home.mkdir(parents=True)
    env = {"name": "bench", "mode": mode, "source": str(source), "kernel": False}
    path.write_text(json.dumps({"version": 1, "home": str(home), "environments": [env]}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/osl-hooks-bench-linked"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--source", type=Path, help="an existing env to copy (default: build bench_sync's env)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.source:
        source = args.workdir / "image" / "envs" / "bench"
        if not source.exists():
            source.parent.mkdir(parents=True)
            subprocess.run(["cp", "-a", str(args.source), str(source)], check=True)
        bake(source)
    else:
        source = build_env(args.workdir, DEFAULT_PACKAGES)
    manifest = load(source / ".osl-hooks-manifest.jsonl")
    runs = args.workdir / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir()
    subprocess.run(["cp", "-a", str(source), str(runs / "warmup")], check=True)  # warm the page cache
    seconds: dict[str, list[float]] = {}
    on_volume: dict[str, int] = {}
    for i in range(args.repeat):
        for mode in MODES if i % 2 == 0 else reversed(MODES):
            plan = plan_file(runs / f"{mode}{i}.json", runs / f"{mode}-home{i}", source, mode)
            seconds.setdefault(f"first {mode}", []).append(timed([*START, str(plan)]))
            seconds.setdefault(f"again {mode}", []).append(timed([*START, str(plan)]))
            on_volume[mode] = volume_bytes(runs / f"{mode}-home{i}" / ".local/envs/bench")
    m = {k: statistics.median(v) for k, v in seconds.items()}
    print(
        f"env: {manifest.files} files, {manifest.bytes / 1e6:.0f} MB, {manifest.disk_bytes / 1e6:.0f} MB on disk; "
        f"median of {args.repeat} runs\n"
    )
    print("| measure | linked | synced | linked / synced | goal |")
    print("|---|---|---|---|---|")
    ratio = on_volume["linked"] / on_volume["synced"]
    print(
        f"| bytes on the user's volume | {on_volume['linked'] / 1e6:.0f} MB | {on_volume['synced'] / 1e6:.0f} MB "
        f"| {ratio:.2f} | ≤ 0.15 |"
    )
    for label, key, goal in (("cold first start", "first", "≤ 0.3"), ("restart, nothing new", "again", "≈ 1")):
        linked, synced = m[f"{key} linked"], m[f"{key} synced"]
        print(f"| {label} | {linked:.3f} s | {synced:.3f} s | {linked / synced:.2f} | {goal} |")
    shutil.rmtree(runs)


if __name__ == "__main__":
    main()
