"""osl-hooks' sync next to rsync -a and cp -a, on the same trees, in the same run.

Run: python benchmarks/bench_sync.py [--workdir DIR] [--repeat 3] [--packages "numpy pandas ..."]

The env is a genuine Python env with ipykernel plus the demo conda packages (osl_hooks.demo.envbuild),
grown with real packages from the package index to tens of thousands of files, and baked
(`osl-hooks bake`, as an image build would). It is built once and cached in the work directory.

Measured (wall clock, warm page cache, median of --repeat runs):
1. restart with nothing new: `osl-hooks start` as a whole process, and the engine's own work in-process
   (plan loading and `start()`, without interpreter start-up and imports), next to `rsync -a`'s no-change
   re-sync; on the env and on a copy of it grown 4x, to show what grows with the env and what does not;
2. image update touching 1% of the files: `osl-hooks start` next to `rsync -a` bringing the same update
   into a copy of the previous version;
3. cold first sync: `osl-hooks start` next to `rsync -a` and `cp -a`.
Every copy goes to a fresh directory (deleting a big tree right before copying makes the next copy
several times slower on this kind of disk); copies are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from osl_hooks.demo.envbuild import build_python_env
from osl_hooks.manifest import bake, scan_tree

DEFAULT_PACKAGES = "numpy pandas scipy matplotlib jupyterlab plotly"
START = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan"]
IN_PROCESS = """
import sys, time, io
t = time.perf_counter()
from osl_hooks.plan import load_plan
from osl_hooks.runner import start
imported = time.perf_counter()
outcome = start(load_plan(sys.argv[1]), allow_root=True, out=io.StringIO())
assert outcome == 0, outcome
print(time.perf_counter() - imported)
"""


def timed(command: list) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def engine_seconds(plan: Path) -> float:
    result = subprocess.run([sys.executable, "-c", IN_PROCESS, str(plan)], check=True, capture_output=True, text=True)
    return float(result.stdout)


def build_env(workdir: Path, packages: str) -> Path:
    source = workdir / "image" / "envs" / "bench"
    marker = source / ".bench-packages"
    if not (marker.exists() and marker.read_text() == packages):
        if source.exists():
            shutil.rmtree(source)
        build_python_env(source)
        subprocess.run([source / "bin/pip", "install", "--quiet", *packages.split()], check=True)
        marker.write_text(packages)
    bake(source)
    return source


def grown_env(source: Path) -> Path:
    """The same env with its site-packages present four times over (4x the files and bytes)."""
    grown = source.parent / "bench4x"
    if not grown.exists():
        subprocess.run(["cp", "-a", str(source), str(grown)], check=True)
        [site] = grown.glob("lib/python3*/site-packages")
        for i in range(1, 4):
            subprocess.run(["cp", "-a", str(site), str(grown / f"extra-copy-{i}")], check=True)
    bake(grown)
    return grown


def write_plan(path: Path, home: Path, source: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "home": str(home),
                "environments": [{"name": "bench", "mode": "synced", "source": str(source), "kernel": False}],
            }
        )
    )
    return path


def touch_one_percent(source: Path) -> int:
    """An image update: 1% of the files get new content (every 100th file in path order)."""
    files = sorted(p for p, e in scan_tree(source).entries.items() if e.kind == "f")
    changed = files[::100]
    for rel in changed:
        with open(source / rel, "ab") as f:
            f.write(b"\n# image update\n" if rel.endswith((".py", ".txt", ".json")) else b"\0")
    bake(source)
    return len(changed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/osl-hooks-bench"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--packages", default=DEFAULT_PACKAGES)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = build_env(args.workdir, args.packages)
    grown = grown_env(source)
    runs = args.workdir / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir()
    subprocess.run(["cp", "-a", str(source), str(runs / "warmup")], check=True)  # warm the page cache
    r: dict[str, list[float]] = {}

    def record(key: str, seconds: float) -> None:
        r.setdefault(key, []).append(seconds)

    for i in range(args.repeat):
        record("cold cp -a", timed(["cp", "-a", str(source), str(runs / f"cp{i}")]))
        record("cold rsync -a", timed(["rsync", "-a", f"{source}/", f"{runs / f'rsync{i}'}/"]))
        plan = write_plan(runs / f"plan{i}.json", runs / f"home{i}", source)
        record("cold osl-hooks", timed([*START, str(plan)]))
        for env, label in ((source, "1x"), (grown, "4x")):
            copy = runs / f"rsync-{label}-{i}"
            subprocess.run(["rsync", "-a", f"{env}/", f"{copy}/"], check=True)
            record(f"no change rsync -a {label}", timed(["rsync", "-a", f"{env}/", f"{copy}/"]))
            plan = write_plan(runs / f"plan-{label}-{i}.json", runs / f"home-{label}-{i}", env)
            subprocess.run([*START, str(plan)], check=True, stdout=subprocess.DEVNULL)
            record(f"no change osl-hooks {label}", timed([*START, str(plan)]))
            record(f"no change engine {label}", engine_seconds(plan))

    # The 1% update: every copy (rsync's and osl-hooks') is of the current version before the image changes.
    for i in range(args.repeat):
        subprocess.run(["rsync", "-a", f"{source}/", f"{runs / f'upd-rsync{i}'}/"], check=True)
    changed = touch_one_percent(source)
    for i in range(args.repeat):
        record("update rsync -a", timed(["rsync", "-a", f"{source}/", f"{runs / f'upd-rsync{i}'}/"]))
        record("update osl-hooks", timed([*START, str(runs / f"plan{i}.json")]))

    m = {k: statistics.median(v) for k, v in r.items()}
    env, env4 = scan_tree(source), scan_tree(grown)
    print(
        f"env: {env.files} files, {env.bytes / 1e6:.0f} MB ({args.packages}); 4x env: {env4.files} files, "
        f"{env4.bytes / 1e6:.0f} MB; image update: {changed} files; median of {args.repeat} runs\n"
    )
    print("| measure | osl-hooks (s) | reference (s) | ratio |")
    print("|---|---|---|---|")
    rows = [
        ("restart, nothing new, whole process (env)", "no change osl-hooks 1x", "no change rsync -a 1x"),
        ("restart, nothing new, whole process (4x env)", "no change osl-hooks 4x", "no change rsync -a 4x"),
        ("restart, nothing new, engine's own work (env)", "no change engine 1x", "no change rsync -a 1x"),
        ("restart, nothing new, engine's own work (4x env)", "no change engine 4x", "no change rsync -a 4x"),
        ("image update touching 1% of files", "update osl-hooks", "update rsync -a"),
        ("cold first sync vs rsync -a", "cold osl-hooks", "cold rsync -a"),
        ("cold first sync vs cp -a", "cold osl-hooks", "cold cp -a"),
    ]
    for label, ours, ref in rows:
        print(
            f"| {label} | {m[ours]:.3f} | {ref.replace(' 1x', '').replace(' 4x', ' (4x)')}: {m[ref]:.3f} | "
            f"{m[ours] / m[ref]:.2f}x |"
        )
    shutil.rmtree(runs)


if __name__ == "__main__":
    main()
