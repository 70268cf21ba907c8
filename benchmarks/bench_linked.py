"""Linked mode next to synced mode, on the same env, in the same run: bytes on the volume, start and update times.

Run: python benchmarks/bench_linked.py [--workdir DIR] [--repeat 3] [--quick]

The env and its image versions are bench_sync.py's (a genuine Python env grown with real packages to tens of
thousands of files, baked; `--quick`: about a thousand files, no package index), cached in the work
directory. Measured per round, the modes alternating so both see the same disk:
1. cold first start: `osl-hooks start` as a whole process into an empty home, per mode;
2. bytes on the user's volume afterwards: the blocks of every file, directory and link of the copy;
3. restart with nothing new: `osl-hooks start` again, per mode, after `sync` (so it does not pay for the
   write-back of the copy just made);
4. an image update of 1% of the files (bench_sync's "0.1%" version to its "1%" one): `osl-hooks start` of the
   linked copy, next to `rsync -a` bringing the same update into a plain copy of the previous version.
Goals (issue 20): bytes linked/synced ≤ 0.05; first start linked/synced ≤ 0.4; 1% update linked/rsync ≤ 0.2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from pathlib import Path

from bench_sync import DEFAULT_PACKAGES, Bench

MODES = ("synced", "linked")


def volume_bytes(root: Path) -> int:
    total = 0
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def plan_for(bench: Bench, name: str, mode: str) -> Path:
    """bench_sync's plan for a fresh home, in `mode`."""
    plan = bench.plan(name)
    plan.write_text(plan.read_text().replace('"mode": "synced"', f'"mode": "{mode}"'))
    return plan


def one_round(bench: Bench, i: int) -> dict[str, int]:
    """Samples of one round (kept in `bench.samples`); returns the bytes each mode's copy takes."""
    on_volume = {}
    for mode in MODES if i % 2 == 0 else reversed(MODES):
        bench.use("v0")
        plan = plan_for(bench, f"{mode}{i}", mode)
        os.sync()
        bench.timed(f"first {mode}", bench.start(plan))
        on_volume[mode] = volume_bytes(bench.runs / f"home-{mode}{i}" / ".local/envs/bench")
        os.sync()  # the restart alone, not the write-back of the copy just made
        bench.timed(f"again {mode}", bench.start(plan))
    # The 1% update: the linked copy and a plain rsync copy both start from the "0.1%" version.
    bench.use("0.1%")
    linked = plan_for(bench, f"update{i}", "linked")
    bench.timed(None, bench.start(linked))
    reference = bench.runs / f"rsync-update{i}"
    bench.timed(None, ["rsync", "-a", f"{bench.source}/", f"{reference}/"])
    bench.use("1%")
    os.sync()
    for label, command in (
        ("1% update linked", bench.start(linked)),
        ("1% update rsync -a", ["rsync", "-a", f"{bench.source}/", f"{reference}/"]),
    )[:: 1 if i % 2 == 0 else -1]:
        bench.timed(label, command)
    return on_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/osl-hooks-bench"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small env without the package index")
    args = parser.parse_args()
    bench = Bench(args.workdir, None if args.quick else DEFAULT_PACKAGES)
    bench.build()
    if bench.runs.exists():
        shutil.rmtree(bench.runs)
    bench.runs.mkdir(parents=True)
    on_volume = {}
    for i in range(args.repeat):
        on_volume = one_round(bench, i)
    m = {k: statistics.median(v) for k, v in bench.samples.items()}

    def seconds(key: str) -> str:
        samples = bench.samples[key]
        return f"{m[key]:.3f} s ({min(samples):.2f}–{max(samples):.2f})"

    print(f"median of {args.repeat} rounds (min–max)\n")
    print("| measure | linked | synced (or `rsync -a`) | ratio | goal |")
    print("|---|---|---|---|---|")
    ratio = on_volume["linked"] / on_volume["synced"]
    print(
        f"| bytes on the user's volume | {on_volume['linked'] / 1e6:.0f} MB | {on_volume['synced'] / 1e6:.0f} MB "
        f"| {ratio:.3f} | ≤ 0.05 |"
    )
    rows = (
        ("cold first start", "first linked", "first synced", "≤ 0.4"),
        ("restart, nothing new", "again linked", "again synced", "≈ 1"),
        ("image update of 1% of the files", "1% update linked", "1% update rsync -a", "≤ 0.2"),
    )
    for label, linked, other, goal in rows:
        print(f"| {label} | {seconds(linked)} | {seconds(other)} | {m[linked] / m[other]:.2f} | {goal} |")
    shutil.rmtree(bench.runs)


if __name__ == "__main__":
    main()
