"""Linked mode next to synced mode, on the same env, in the same run, as the notebook user (uid 1000).

Run: python benchmarks/bench_linked.py [--workdir DIR] [--repeat 3] [--quick]

Root can write the image, so a start as root links nothing: every start here runs as uid 1000 (`setpriv`),
with the system's python (`/usr/bin/python3`, which uid 1000 can run) and osl-hooks from this checkout. The
env is bench_sync.py's package list in a venv of that python whose pip was upgraded to upstream's (Debian's
patched pip resolves links, so linked mode would keep every pip-managed file real), plus the demo conda
packages; image versions and the 4x env (its site-packages four times over) are made as bench_sync.py makes
them, each baked with the diff from the one before (`osl-hooks bake --since`, as bench_sync.py's), cached in the
work directory. `--quick`: the venv and the demo conda packages only.
Measured per round, on the env and on the 4x env, the modes alternating so both see the same disk:
1. cold first start: `osl-hooks start` as a whole process into an empty home, per mode (after `sync`), and
   `cp -as` of the same env (coreutils' symlink farm, made in C: the floor of a link per file);
2. bytes on the user's volume afterwards: the blocks of every file, directory and link of the copy;
3. restart with nothing new: `osl-hooks start` again, per mode, after `sync`;
4. an image update of 1% of the files (the "0.1%" version to the "1%" one): `osl-hooks start` of the linked
   copy next to `rsync -a` bringing the same update into a plain copy, both as a new tree (the image switched
   after `sync`) and in place (right after a warm `rsync -a` walk of the same tree).
Peak memory of each start is its process's `ru_maxrss` (`os.wait4`).
Goals (issue 33): first start linked/synced ≤ 0.2; 1% update linked/`rsync -a` ≤ 0.2 (new tree), ≤ 0.3 (in
place); the 4x env's ratios within 1.1x of the env's; a start's peak memory ≤ 80 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_sync import DEFAULT_PACKAGES, Bench, load_average

import osl_hooks
from osl_hooks.demo.envbuild import build_conda_env
from osl_hooks.engine.manifest import bake, scan_tree

MODES = ("synced", "linked")
SYSTEM_PYTHON = "/usr/bin/python3"
UID, GID = 1000, 100
ENVS = {"env": ("v0", "0.1%", "1%"), "4x env": ("4x", "4x 0.1%", "4x 1%")}  # first start, update from, to


class UserBench(Bench):
    """bench_sync's trees on the system's python with upstream pip; every command runs as uid 1000."""

    def __init__(self, workdir: Path, packages: str | None):
        super().__init__(workdir, packages)
        key = hashlib.sha256(f"linked {packages or '--quick'}".encode()).hexdigest()[:12]
        self.cache = workdir / f"cache-{key}"
        checkout = str(Path(osl_hooks.__file__).resolve().parent.parent)
        self.environ = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONPATH": checkout,
            "PYTHONPYCACHEPREFIX": str(workdir / "pycache-user"),  # compiled once, as an installed package is
        }
        self.memory: dict[str, list[int]] = {}

    def build(self) -> None:
        built = self.cache / "build" / "envs" / "bench"
        if not (self.cache / "build" / "done").exists():
            if built.exists():
                shutil.rmtree(built)
            subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(built)], check=True)
            pip = [str(built / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, "--upgrade", "pip"], check=True)  # upstream's pip: linked mode links its files
            if self.packages:
                subprocess.run([*pip, "ipykernel", *self.packages.split()], check=True)
            build_conda_env(built)
            subprocess.run(["chmod", "-R", "a+rX", str(built)], check=True)  # rattler's records are 0600
            bake(built)
            (self.cache / "build" / "done").touch()
        self.built_prefix = str(built)
        previous = built
        for label, every in (("0.1%", 1000), ("1%", 100)):
            previous = self.version(label, previous, every)
        previous = self.version("4x", built, 0, grow=True)
        for label, every in (("4x 0.1%", 1000), ("4x 1%", 100)):
            previous = self.version(label, previous, every)
        for size in ENVS.values():  # each version with the diff from the one before, as bench_sync's
            for label, since in zip(size[1:], size, strict=False):
                self.add_diff(label, since)
        pycache = Path(self.environ["PYTHONPYCACHEPREFIX"])
        pycache.mkdir(exist_ok=True)
        os.chown(pycache, UID, GID)

    def fresh_runs(self, rounds: int = 1) -> None:
        super().fresh_runs(rounds)
        os.chown(self.runs, UID, GID)

    def plan(self, name: str, source: Path | None = None) -> Path:
        plan = super().plan(name, source)
        os.chown(self.runs / f"home-{name}", UID, GID)
        return plan

    def as_user(self, command: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--", *command]

    def start(self, plan: Path) -> list[str]:
        return self.as_user([SYSTEM_PYTHON, "-m", "osl_hooks.cli", "start", "--plan", str(plan)])

    def rsync(self, reference: Path) -> list[str]:
        return self.as_user(["rsync", "-a", f"{self.source}/", f"{reference}/"])

    def timed(self, key: str | None, command: list[str]) -> float:
        """Seconds of `command` (run as given, from the runs directory uid 1000 can enter); its peak RSS kept."""
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=self.environ, cwd=self.runs)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise subprocess.CalledProcessError(process.returncode, command)
        if key:
            self.samples.setdefault(key, []).append(seconds)
            self.memory.setdefault(key, []).append(usage.ru_maxrss * 1024)
        return seconds


def volume_bytes(root: Path) -> int:
    total = 0
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
    return total


def plan_for(bench: UserBench, name: str, mode: str) -> Path:
    """bench_sync's plan for a fresh home, in `mode`."""
    plan = bench.plan(name)
    plan.write_text(plan.read_text().replace('"mode": "synced"', f'"mode": "{mode}"'))
    return plan


def one_round(bench: UserBench, i: int, size: str) -> dict[str, int]:
    """Samples of one round on the env `size` names (kept in `bench.samples`); returns each mode's bytes."""
    first, before, after = ENVS[size]
    on_volume = {}
    for mode in (*MODES, "cp -as") if i % 2 == 0 else ("cp -as", *reversed(MODES)):
        bench.use(first)
        if mode == "cp -as":
            farm = bench.runs / f"cp-as-{first}-{i}".replace(" ", "-")
            os.sync()
            bench.timed(f"{size} first cp -as", bench.as_user(["cp", "-as", f"{bench.source.resolve()}/", str(farm)]))
            continue
        plan = plan_for(bench, f"{mode}-{first}-{i}", mode)
        os.sync()
        bench.timed(f"{size} first {mode}", bench.start(plan))
        on_volume[mode] = volume_bytes(bench.runs / f"home-{mode}-{first}-{i}" / ".local/envs/bench")
        os.sync()  # the restart alone, not the write-back of the copy just made
        bench.timed(f"{size} again {mode}", bench.start(plan))
    # The 1% update: the linked copy and a plain rsync copy are both brought to the "0.1%" version (made at
    # the first kind, brought back by the same small update before the second); then the image becomes a new
    # tree (after `sync`), or the same tree is walked first (in place: its inodes cached).
    linked = plan_for(bench, f"update-{before}-{i}".replace(" ", "-"), "linked")
    reference = bench.runs / f"rsync-{before}-{i}".replace(" ", "-")
    for kind in ("update", "in place"):
        bench.use(before)
        bench.timed(None, bench.start(linked))
        bench.timed(None, bench.rsync(reference))
        bench.use(after)
        os.sync()
        commands = {
            f"{size} 1% {kind} linked": bench.start(linked),
            f"{size} 1% {kind} rsync -a": bench.rsync(reference),
        }
        for key, command in list(commands.items())[:: 1 if i % 2 == 0 else -1]:
            if kind == "in place":
                bench.timed(None, bench.as_user(["rsync", "-a", "--dry-run", f"{bench.source}/", f"{reference}/"]))
            bench.timed(key, command)
    # This round's copies go now, not at the end: the 4x env's take gigabytes each.
    for copy in bench.runs.glob(f"*-{i}"):
        shutil.rmtree(copy)
    os.sync()
    return on_volume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/osl-hooks-bench"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a small env (the venv and demo conda packages)")
    parser.add_argument("--build-only", action="store_true", help="build the env and image versions, then stop")
    args = parser.parse_args()
    bench = UserBench(args.workdir, None if args.quick else DEFAULT_PACKAGES)
    if not args.build_only:
        # Built by a process of its own, so that this one stays small: a start's peak memory is read from its
        # `wait4`, and exec leaves a child the high-water mark of the process it came from (baking the 4x env's
        # versions took this one to 308 MB, and every start then read 308 MB).
        subprocess.run([sys.executable, __file__, *sys.argv[1:], "--build-only"], check=True)
    bench.build()  # (cached: only names the trees)
    if args.build_only:
        return
    load_before = load_average()
    bench.fresh_runs()
    bench.use("v0")  # warm the page cache and osl-hooks' bytecode (compiled by uid 1000 into its cache)
    bench.timed(None, bench.start(plan_for(bench, "warmup", "linked")))
    on_volume: dict[str, dict[str, int]] = {}
    for i in range(args.repeat):
        for size in ENVS:
            on_volume[size] = one_round(bench, i, size)
    report(bench, args.repeat, on_volume, load_before)
    shutil.rmtree(bench.runs)


def report(bench: UserBench, rounds: int, on_volume: dict[str, dict[str, int]], load_before: str) -> None:
    m = {k: statistics.median(v) for k, v in bench.samples.items()}

    def seconds(key: str) -> str:
        samples = bench.samples[key]
        return f"{m[key]:.3f} s ({min(samples):.2f}–{max(samples):.2f})"

    for size, (first, _, _) in ENVS.items():
        tree = scan_tree(bench.cache / ("build" if first == "v0" else f"versions/{first}") / "envs/bench")
        print(f"{size}: {tree.files:,} files, {tree.bytes / 1e6:,.0f} MB")
    print(
        f"uid {UID}, {SYSTEM_PYTHON} venv with upstream pip; median (min–max) of {rounds} rounds; load average "
        f"{load_before} before the run, {load_average()} after\n"
    )
    print("| measure | linked | synced (or `rsync -a`) | ratio | goal |")
    print("|---|---|---|---|---|")
    rows = (
        ("cold first start", "first linked", "first synced", "≤ 0.2"),
        ("restart, nothing new", "again linked", "again synced", "≈ 1"),
        ("image update of 1% of the files, new tree", "1% update linked", "1% update rsync -a", "≤ 0.2"),
        ("image update of 1% of the files, in place", "1% in place linked", "1% in place rsync -a", "≤ 0.3"),
    )
    for size in ENVS:
        volume = on_volume[size]
        print(
            f"| {size}: bytes on the user's volume | {volume['linked'] / 1e6:.0f} MB | {volume['synced'] / 1e6:.0f} MB"
            f" | {volume['linked'] / volume['synced']:.3f} | ≤ 0.05 |"
        )
        for label, linked, other, goal in rows:
            linked, other = f"{size} {linked}", f"{size} {other}"
            print(f"| {size}: {label} | {seconds(linked)} | {seconds(other)} | {m[linked] / m[other]:.2f} | {goal} |")
        farm, first = f"{size} first cp -as", f"{size} first synced"
        print(
            f"| {size}: cold `cp -as` (reference: a link per file, in C) | {seconds(farm)} | {seconds(first)} | "
            f"{m[farm] / m[first]:.2f} | linked/`cp -as`: {m[f'{size} first linked'] / m[farm]:.2f} |"
        )
    peak = {k: max(v) for k, v in bench.memory.items() if "rsync" not in k and "cp -as" not in k}
    worst = max(peak, key=peak.__getitem__)
    print(f"\npeak memory of a start: {peak[worst] / 1e6:.0f} MB ({worst}); goal ≤ 80 MB")
    print(", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in sorted(peak.items())))


if __name__ == "__main__":
    main()
