"""Cold first sync and no-change restart of a realistic env, next to rsync -a and cp -a on the same tree.

Run: python benchmarks/bench_sync.py [--workdir DIR] [--repeat 3] [--packages "numpy pandas ..."]

The env is a genuine Python env with ipykernel plus the demo conda packages (osl_hooks.demo.envbuild),
grown with real packages from the package index so it has tens of thousands of files. It is built once
and cached in the work directory. Every copy goes to a fresh directory (deleting a big tree right before
copying makes the next copy several times slower on this kind of disk); the copies are deleted at the end.
All figures are wall-clock medians of --repeat runs with a warm page cache, measured in the same run.
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
from osl_hooks.manifest import scan_tree

DEFAULT_PACKAGES = "numpy pandas scipy matplotlib jupyterlab"


def timed(command: list[str], **kwargs) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - started


def build_env(workdir: Path, packages: str) -> Path:
    source = workdir / "image" / "envs" / "bench"
    marker = source / ".bench-packages"
    if marker.exists() and marker.read_text() == packages:
        return source
    if source.exists():
        shutil.rmtree(source)
    build_python_env(source)
    subprocess.run([source / "bin/pip", "install", "--quiet", *packages.split()], check=True)
    marker.write_text(packages)
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/osl-hooks-bench"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--packages", default=DEFAULT_PACKAGES)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = build_env(args.workdir, args.packages)
    manifest = scan_tree(source)
    runs = args.workdir / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    runs.mkdir()
    subprocess.run(["cp", "-a", str(source), str(runs / "warmup")], check=True)  # warm the page cache

    osl_hooks = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan"]
    results: dict[str, list[float]] = {
        k: [] for k in ("cp -a", "rsync -a", "osl-hooks first", "rsync -a no change", "osl-hooks no change")
    }
    for i in range(args.repeat):
        results["cp -a"].append(timed(["cp", "-a", str(source), str(runs / f"cp{i}")]))
        results["rsync -a"].append(timed(["rsync", "-a", f"{source}/", f"{runs / f'rsync{i}'}/"]))
        results["rsync -a no change"].append(timed(["rsync", "-a", f"{source}/", f"{runs / f'rsync{i}'}/"]))
        home = runs / f"home{i}"
        home.mkdir()
        plan = runs / f"plan{i}.json"
        plan.write_text(
            json.dumps(
                {
                    "version": 1,
                    "home": str(home),
                    "environments": [{"name": "bench", "mode": "synced", "source": str(source), "kernel": False}],
                }
            )
        )
        results["osl-hooks first"].append(timed([*osl_hooks, str(plan)]))
        results["osl-hooks no change"].append(timed([*osl_hooks, str(plan)]))

    median = {k: statistics.median(v) for k, v in results.items()}
    print(f"env: {manifest.files} files, {manifest.bytes / 1e6:.0f} MB ({args.packages}); median of {args.repeat}\n")
    print("| measure | seconds | reference | ratio |")
    print("|---|---|---|---|")
    rows = [
        ("cold first sync: osl-hooks start (whole process)", "osl-hooks first", "rsync -a"),
        ("cold first sync: osl-hooks start (whole process)", "osl-hooks first", "cp -a"),
        ("restart, nothing new: osl-hooks start (whole process)", "osl-hooks no change", "rsync -a no change"),
    ]
    for label, ours, reference in rows:
        print(
            f"| {label} | {median[ours]:.2f} | {reference}: {median[reference]:.2f} | "
            f"{median[ours] / median[reference]:.2f}x |"
        )
    shutil.rmtree(runs)


if __name__ == "__main__":
    main()
