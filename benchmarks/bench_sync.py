"""osl-hooks' sync next to `rsync -a` and `cp -a`, on the same trees, in the same run, interleaved.

Run: python benchmarks/bench_sync.py [--quick] [--rounds 3] [--workdir DIR] [--json FILE]

The env is a genuine Python env (a venv that is also a conda env, `osl_hooks.demo.envbuild`), grown with
real packages from the package index to ≥ 30,000 files (`--quick`: the venv and the demo conda packages
only, about a thousand files, no package index), baked as an image build would. Image versions are
hard-linked copies of it in which a share of the files got new content, each baked; the plan's source
is a symlink switched from version to version, as an image update replaces the image's files. Envs and
versions are cached in the work directory (keyed by the package list), so a second run builds nothing.

Each round, in this order (so machine noise hits osl-hooks and its reference alike):
1. cold first sync: `cp -a`, `rsync -a`, `osl-hooks start`, and rsync with osl-hooks' own options and
   variants of them, each into a fresh directory, after `sync` (so no copy pays for the write-back of the
   one before), in an order rotated from round to round;
2. restart with nothing new: `osl-hooks start` as a whole process next to `python -c pass` (the same
   interpreter, flags and environment: what a start costs over starting Python at all), and the engine's own
   work in-process (plan loading and `start()`, after imports), next to `rsync -a`'s no-change re-sync, on
   the env and on an env grown 4x (its site-packages four times over);
3. image updates, chained from the copies of step 1, of two kinds:
   - **new tree** (as a new image is): the image's path switched to another version, whose directories rsync
     has not walked; `rsync -a` brings the same update into its copy of the previous version;
   - **in place, after a warm walk**: the changed files replaced inside a tree that `rsync -a` has just walked
     (its inodes cached, so rsync's walk is fast), then `rsync -a` and `osl-hooks start` bring it into their
     copies; each starts from a first copy of its own, made in the round but not timed;
   a re-bake with a new id and no file changed (one new empty directory), then 0.1%, 1%, 10% and 50% of the
   files changed; the 4x env gets the 1% update too (both kinds). Which of the two goes first alternates.
   Each version is baked with the diff from the one before (`osl-hooks bake --since`), as an image pipeline
   that keeps the previous image's manifest does.
Every osl-hooks run is `python -m osl_hooks.cli start` with the bytecode of osl-hooks compiled (as an
installed package has it), with `PYTHONPATH` naming the osl-hooks this script imported (not an editable
install's finder, which an image does not have; the interpreter's own site still runs, for `python -c pass`
too). Peak memory (RSS) of the starts on the 4x env is from `getrusage(RUSAGE_CHILDREN)`. The table gives the
median and the spread (min–max) of the rounds and the ratio of medians; the JSON file beside it has every
sample. Copies are deleted at the end of their round, then `sync` (a round's copies take about 8 GB, the
4x env's 13 GB more; deleting a big tree right before copying makes the next copy slower on some disks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import osl_hooks
from osl_hooks.demo.envbuild import build_python_env
from osl_hooks.engine.manifest import MANIFEST_FILE, Manifest, bake, differing_paths, load, scan_tree
from osl_hooks.engine.sync import RSYNC_OPTIONS

DEFAULT_PACKAGES = "numpy pandas scipy matplotlib jupyterlab plotly sympy scikit-learn"
UPDATES = (("rebake", 0), ("0.1%", 1000), ("1%", 100), ("10%", 10), ("50%", 2))  # label, every Nth file changed
KINDS = ("new tree", "in place")  # how an update reaches the image's path (see the module's docstring)
RSYNC_VARIANTS = {
    "osl-hooks' options": [],
    "+ --no-inc-recursive": ["--no-inc-recursive"],
    "without --info=progress2": None,  # None: RSYNC_OPTIONS minus the progress option
    "+ --preallocate": ["--preallocate"],
}
IN_PROCESS = """
import io, sys, time
from osl_hooks.plan import load_plan
from osl_hooks.engine.runner import start
started = time.perf_counter()
outcome = start(load_plan(sys.argv[1]), allow_root=True, out=io.StringIO())
assert outcome == 0, outcome
print(time.perf_counter() - started)
"""


PEAK_RSS = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


class Bench:
    """The work directory: cached envs and versions, this run's copies, and the samples taken."""

    def __init__(self, workdir: Path, packages: str | None):
        self.packages = packages
        key = hashlib.sha256((packages or "--quick").encode()).hexdigest()[:12]
        self.cache = workdir / f"cache-{key}"
        self.runs = workdir / "runs"
        self.image = self.runs / "image"  # symlink to the version being "the image"
        self.source = self.image / "envs" / "bench"  # the path every plan names
        self.samples: dict[str, list[float]] = {}
        self.rounds = 1
        # osl-hooks runs as an installed package would: with its bytecode compiled, not recompiled each time,
        # found on the path (the osl-hooks this script imported), not through an editable install's finder.
        package_root = str(Path(osl_hooks.__file__).resolve().parent.parent)
        self.environ = dict(os.environ, PYTHONPYCACHEPREFIX=str(workdir / "pycache"), PYTHONPATH=package_root)
        self.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        self.peak_rss_kb: dict[str, int] = {}

    # -- the trees ----------------------------------------------------------------------------------

    def build(self) -> None:
        """The env at cache/build/bench (its built prefix), image versions of it, and the 4x env."""
        built = self.cache / "build" / "envs" / "bench"
        if not (self.cache / "build" / "done").exists():
            if built.exists():
                shutil.rmtree(built)
            build_python_env(built, ipykernel=self.packages is not None)
            if self.packages:
                pip = [built / "bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                subprocess.run([*pip, *self.packages.split()], check=True)
            bake(built)
            (self.cache / "build" / "done").touch()
        self.built_prefix = str(built)
        previous = built
        for label, every in UPDATES:
            previous = self.version(label, previous, every)
        grown = self.version("4x", built, 0, grow=True)
        self.version("4x 1%", grown, 100)
        labels = ["v0", *(label for label, _ in UPDATES)]
        for label, since in [*zip(labels[1:], labels, strict=False), ("4x 1%", "4x"), ("4x", "4x 1%")]:
            self.add_diff(label, since)

    def add_diff(self, label: str, since: str) -> None:
        """Give version `label`'s manifest the diff from version `since` (`osl-hooks bake --since`), as an image
        pipeline that keeps the previous image's manifest does (the 4x versions get one from each other: the
        4x env's update goes back and forth). Written anew from the manifest, without hashing the files again."""
        manifest = self.version_env(label) / MANIFEST_FILE
        with manifest.open("rb") as f:
            if "since_bytes" in json.loads(f.readline()):
                return
        load(manifest).dump(manifest, since=load(self.version_env(since) / MANIFEST_FILE))

    def version(self, label: str, previous: Path, every: int, grow: bool = False) -> Path:
        """A hard-linked copy of `previous` with every `every`th file given new content (0: none), baked."""
        root = self.cache / "versions" / label
        env = root / "envs" / "bench"
        if (root / "done").exists():
            return env
        if root.exists():
            shutil.rmtree(root)
        env.parent.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(previous), str(env)], check=True)
        (env / MANIFEST_FILE).unlink()
        if grow:
            [site] = env.glob("lib/python3*/site-packages")
            for i in range(1, 4):
                subprocess.run(["cp", "-al", str(site), str(env / f"extra-copy-{i}")], check=True)
        files: list[str] = []
        if every == 0 and not grow:
            (env / "share" / "osl-hooks-bench-rebake").mkdir()
        elif every:
            files = sorted(p for p, e in scan_tree(env).entries.items() if e.kind == "f")
            for rel in files[every // 2 :: every]:
                path = env / rel
                data, st = path.read_bytes(), path.stat()
                path.unlink()  # a new inode: the other versions keep their content
                path.write_bytes(data + b"\n# image update\n")
                path.chmod(st.st_mode & 0o7777)
        bake(env, self.built_prefix)
        (root / "done").write_text(str(len(files[every // 2 :: every]) if every else 0))
        return env

    def use(self, label: str, image: Path | None = None) -> None:
        """Make version `label` the image (an image update of the new-tree kind, as the plan's source sees it)."""
        image = image or self.image
        tmp = image.with_name(image.name + ".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(self.version_env(label).parent.parent)
        os.replace(tmp, image)

    def version_env(self, label: str) -> Path:
        return (
            self.cache / "build" / "envs" / "bench"
            if label == "v0"
            else self.cache / "versions" / label / "envs" / "bench"
        )

    def in_place_tree(self, name: str, label: str) -> Path:
        """A tree of its own (hard links) holding version `label`, for updates made inside it."""
        env = self.runs / name / "envs" / "bench"
        if env.parent.parent.exists():
            shutil.rmtree(env.parent.parent)
        env.parent.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(self.version_env(label)), str(env)], check=True)
        return env

    def change_in_place(self, env: Path, old: str, new: str) -> None:
        """Make the tree `env`, which holds version `old`, version `new`: what differs is replaced inside it
        (a file by a hard link to the new version's, renamed over the old one), and the manifest with it."""
        after = self.version_env(new)
        old_manifest, new_manifest = load(self.version_env(old) / MANIFEST_FILE), load(after / MANIFEST_FILE)
        for path in differing_paths(old_manifest, new_manifest):  # sorted: a directory before its contents
            entry, place = new_manifest.entries.get(path), env / path
            if entry is None:
                if place.is_dir() and not place.is_symlink():
                    shutil.rmtree(place)
                elif os.path.lexists(place):
                    place.unlink()
            elif entry.kind == "d":
                place.mkdir(exist_ok=True)
                place.chmod(entry.mode)
            elif not (os.path.lexists(place) and os.path.samestat(place.lstat(), (after / path).lstat())):
                # (the same file when only its line changed, e.g. its owner: a rename onto it would do nothing)
                tmp = place.with_name(f".{place.name}.bench")
                os.link(after / path, tmp, follow_symlinks=False)
                os.replace(tmp, place)
        tmp = env / f".{MANIFEST_FILE}.bench"
        shutil.copyfile(after / MANIFEST_FILE, tmp)  # never written through: it is a hard link to a version's
        os.replace(tmp, env / MANIFEST_FILE)

    # -- commands -----------------------------------------------------------------------------------

    def plan(self, name: str, source: Path | None = None) -> Path:
        home = self.runs / f"home-{name}"
        home.mkdir(parents=True, exist_ok=True)
        plan = self.runs / f"plan-{name}.json"
        env = {"name": "bench", "mode": "synced", "source": str(source or self.source), "kernel": False}
        plan.write_text(json.dumps({"version": 1, "home": str(home), "environments": [env]}))
        return plan

    def start(self, plan: Path) -> list[str]:
        return [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan)]

    def timed(self, key: str | None, command: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=self.environ)
        seconds = time.perf_counter() - started
        if key:
            self.samples.setdefault(key, []).append(seconds)
        return seconds

    def measure_memory(self, key: str, command: list[str]) -> None:
        """Run `command` (not timed) from a small Python process that reads its peak RSS with
        `getrusage(RUSAGE_CHILDREN)`: a child of this process would count this process's memory as its own (Linux
        keeps the largest RSS a process had, and a forked child starts with its parent's)."""
        result = subprocess.run(
            [sys.executable, "-c", PEAK_RSS, *command], check=True, capture_output=True, text=True, env=self.environ
        )
        self.peak_rss_kb[key] = int(result.stdout.split()[-1])

    def pair(self, i: int, keys_and_commands: list[tuple[str, list[str]]]) -> None:
        """Time the commands one after the other, in an order that alternates from round to round."""
        os.sync()
        for key, command in keys_and_commands if i % 2 == 0 else keys_and_commands[::-1]:
            self.timed(key, command)

    def engine(self, key: str, plan: Path) -> None:
        result = subprocess.run(
            [sys.executable, "-c", IN_PROCESS, str(plan)], check=True, capture_output=True, text=True, env=self.environ
        )
        self.samples.setdefault(key, []).append(float(result.stdout))

    # -- one round ----------------------------------------------------------------------------------

    def round(self, i: int) -> None:
        self.use("v0")
        source = f"{self.source}/"
        rsync_copy = self.runs / f"rsync{i}"
        plan = self.plan(f"r{i}")
        cold = [
            ("cold cp -a", ["cp", "-a", source, str(self.runs / f"cp{i}")]),
            ("cold rsync -a", ["rsync", "-a", source, f"{rsync_copy}/"]),
            ("cold osl-hooks", self.start(plan)),
        ]
        for n, (label, extra) in enumerate(RSYNC_VARIANTS.items()):
            options = (
                [o for o in RSYNC_OPTIONS if o != "--info=progress2"] if extra is None else [*RSYNC_OPTIONS, *extra]
            )
            cold.append((f"cold rsync, {label}", ["rsync", *options, source, f"{self.runs / f'variant{i}-{n}'}/"]))
        # Each round in another order, each copy after the previous one's writes have reached the disk:
        # otherwise whichever copy comes first pays for the write-back of the one before.
        shift = i * len(cold) // max(self.rounds, 1)
        for key, command in cold[shift:] + cold[:shift]:
            os.sync()
            self.timed(key, command)

        self.timed("no change rsync -a 1x", ["rsync", "-a", source, f"{rsync_copy}/"])
        self.pair(i, [("no change osl-hooks 1x", self.start(plan)), ("python -c pass", [sys.executable, "-c", "pass"])])
        self.engine("no change engine 1x", plan)
        grown, grown_plan = f"{self.image_4x / 'envs' / 'bench'}/", self.plan("4x", self.image_4x / "envs" / "bench")
        self.timed("no change rsync -a 4x", ["rsync", "-a", grown, f"{self.runs / 'rsync-4x'}/"])
        self.timed("no change osl-hooks 4x", self.start(grown_plan))
        self.engine("no change engine 4x", grown_plan)

        for label, _ in UPDATES:
            self.use(label)
            rsync = ["rsync", "-a", source, f"{rsync_copy}/"]
            self.pair(i, [(f"update {label} rsync -a", rsync), (f"update {label} osl-hooks", self.start(plan))])
        # the 4x env's 1% update, back and forth (from 4x to 4x 1% in even rounds, back in odd ones)
        self.use("4x 1%" if i % 2 == 0 else "4x", self.image_4x)
        rsync = ["rsync", "-a", grown, f"{self.runs / 'rsync-4x'}/"]
        self.pair(i, [("update 4x 1% rsync -a", rsync), ("update 4x 1% osl-hooks", self.start(grown_plan))])
        self.in_place_round(i)

    def in_place_round(self, i: int) -> None:
        """The updates again, each made inside a tree `rsync -a` has just walked (see the module's docstring)."""
        tree = self.in_place_tree(f"inplace{i}", "v0")
        rsync = ["rsync", "-a", f"{tree}/", f"{self.runs / f'rsync-inplace{i}'}/"]
        plan = self.plan(f"inplace{i}", tree)
        self.timed(None, rsync)  # the first copies, not timed
        self.timed(None, self.start(plan))
        previous = "v0"
        for label, _ in UPDATES:
            self.timed(None, rsync)  # the warm walk: nothing new yet
            self.change_in_place(tree, previous, label)
            previous = label
            self.pair(
                i,
                [
                    (f"update {label} in place rsync -a", rsync),
                    (f"update {label} in place osl-hooks", self.start(plan)),
                ],
            )
        # the 4x env's 1% update, inside its own tree, back and forth
        old, new = ("4x", "4x 1%") if i % 2 == 0 else ("4x 1%", "4x")
        self.timed(None, self.rsync_4x_in_place)
        self.change_in_place(self.tree_4x, old, new)
        self.pair(
            i,
            [
                ("update 4x 1% in place rsync -a", self.rsync_4x_in_place),
                ("update 4x 1% in place osl-hooks", self.start(self.plan_4x_in_place)),
            ],
        )

    def fresh_runs(self, rounds: int = 1) -> None:
        """Begin a run of `rounds` rounds in an empty runs folder (a killed run's copies would be measured with
        this run's, and fill the disk), the base version being the image. Every benchmark's `run` begins so."""
        self.rounds = rounds
        if self.runs.exists():
            shutil.rmtree(self.runs)
        self.runs.mkdir(parents=True)
        self.use("v0")

    def run(self, rounds: int) -> None:
        self.fresh_runs(rounds)
        self.image_4x = self.runs / "image-4x"
        self.use("4x", self.image_4x)
        # Warm the page cache and osl-hooks' bytecode; make the 4x copies (used, not timed, by every round).
        self.timed(None, ["cp", "-a", f"{self.source}/", str(self.runs / "warmup")])
        grown = self.image_4x / "envs" / "bench"
        self.timed(None, ["rsync", "-a", f"{grown}/", f"{self.runs / 'rsync-4x'}/"])
        self.measure_memory("first sync osl-hooks 4x", self.start(self.plan("4x", grown)))
        self.tree_4x = self.in_place_tree("inplace-4x", "4x")
        self.rsync_4x_in_place = ["rsync", "-a", f"{self.tree_4x}/", f"{self.runs / 'rsync-inplace-4x'}/"]
        self.plan_4x_in_place = self.plan("inplace-4x", self.tree_4x)
        self.timed(None, self.rsync_4x_in_place)
        self.timed(None, self.start(self.plan_4x_in_place))
        self.remove("warmup")
        for i in range(rounds):
            self.round(i)
            # this round's copies: a round needs about 8 GB of them, the 4x copies 13 GB more
            self.remove(f"cp{i}", *(f"variant{i}-{n}" for n in range(len(RSYNC_VARIANTS))), f"rsync{i}", f"home-r{i}")
            self.remove(f"inplace{i}", f"rsync-inplace{i}", f"home-inplace{i}")
        self.measure_memory("no change osl-hooks 4x", self.start(self.plan("4x", grown)))
        self.use("4x 1%" if rounds % 2 == 0 else "4x", self.image_4x)  # one more 1% update, each kind
        self.measure_memory("update 4x 1% osl-hooks", self.start(self.plan("4x", grown)))
        self.change_in_place(self.tree_4x, *(("4x", "4x 1%") if rounds % 2 == 0 else ("4x 1%", "4x")))
        self.measure_memory("update 4x 1% in place osl-hooks", self.start(self.plan_4x_in_place))

    def remove(self, *names: str) -> None:
        """Delete copies of this run, and let the disk settle (a copy right after a big delete is slower)."""
        for name in names:
            shutil.rmtree(self.runs / name, ignore_errors=True)
        os.sync()

    def import_times(self) -> list[tuple[str, int]]:
        """The modules a start with nothing new imports beyond those `python -c pass` imports, by their own
        import time (µs), largest first: on the 4x env's copy, which the rounds keep (theirs are deleted at the
        end of each), after one start that brings it up to date."""
        start = self.start(self.plan("4x", self.image_4x / "envs" / "bench"))
        self.timed(None, start)

        def own_times(command: list[str]) -> dict[str, int]:
            result = subprocess.run(
                [command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=self.environ
            )
            return {
                name: int(us) for us, name in re.findall(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)", result.stderr)
            }

        python_alone = own_times([sys.executable, "-c", "pass"])
        found = own_times(start)
        return sorted(((name, us) for name, us in found.items() if name not in python_alone), key=lambda x: -x[1])


GOALS = {"1%": "≤ 0.5x", "10%": "≤ 0.7x", "50%": "≤ 0.7x"}
ROWS = [
    # label, osl-hooks sample, reference sample, reference's name, goal
    ("restart, nothing new (env)", "no change osl-hooks 1x", "python -c pass", "`python -c pass`", "≤ 2.0x"),
    ("restart, nothing new (env)", "no change osl-hooks 1x", "no change rsync -a 1x", "`rsync -a` no change", ""),
    ("restart, nothing new (4x env)", "no change osl-hooks 4x", "no change rsync -a 4x", "`rsync -a` no change", ""),
    (
        "engine's own work, nothing new (env)",
        "no change engine 1x",
        "no change rsync -a 1x",
        "`rsync -a` no change",
        "",
    ),
    (
        "engine's own work, nothing new (4x env)",
        "no change engine 4x",
        "no change rsync -a 4x",
        "`rsync -a` no change",
        "flat when the env grows 4x",
    ),
    *[
        (
            f"image update, {label} of files" if label != "rebake" else "re-baked image, new id, no file changed",
            f"update {label} osl-hooks",
            f"update {label} rsync -a",
            "`rsync -a` of the same update, new tree",
            GOALS.get(label, ""),
        )
        for label, _ in UPDATES
    ],
    *[
        (
            f"image update in place, {label} of files" if label != "rebake" else "re-baked in place, no file changed",
            f"update {label} in place osl-hooks",
            f"update {label} in place rsync -a",
            "`rsync -a` of the same update, in place after a warm walk",
            GOALS.get(label, ""),
        )
        for label, _ in UPDATES
    ],
    (
        "image update, 1% of files (4x env)",
        "update 4x 1% osl-hooks",
        "update 4x 1% rsync -a",
        "`rsync -a` of the same update, new tree",
        "within 1.1x of the env's",
    ),
    (
        "image update in place, 1% of files (4x env)",
        "update 4x 1% in place osl-hooks",
        "update 4x 1% in place rsync -a",
        "`rsync -a` of the same update, in place after a warm walk",
        "within 1.1x of the env's",
    ),
    ("cold first sync", "cold osl-hooks", "cold rsync -a", "`rsync -a`", "≤ 1.0x"),
    ("cold first sync", "cold osl-hooks", "cold cp -a", "`cp -a`", "stretch ≤ 1.3x"),
    *[(f"cold rsync, {label}", f"cold rsync, {label}", "cold rsync -a", "`rsync -a`", "") for label in RSYNC_VARIANTS],
]
# The starts on the 4x env whose peak memory (RSS) the result gives, with the goal for all of them.
PEAK_MEMORY = (
    "first sync osl-hooks 4x",
    "no change osl-hooks 4x",
    "update 4x 1% osl-hooks",
    "update 4x 1% in place osl-hooks",
)
PEAK_MEMORY_GOAL_MB = 80


def spread(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f} ({min(samples):.3f}–{max(samples):.3f})"


def ratio_rows(samples: dict[str, list[float]], specs: list[tuple[str, str, str, str, str]]) -> tuple[list, list]:
    """Table lines and JSON rows: per (label, sample, reference sample, reference's name, goal), the medians,
    spreads and the ratio of medians."""
    lines, rows = [], []
    for label, ours, ref, ref_name, goal in specs:
        a, b = samples[ours], samples[ref]
        ratio = statistics.median(a) / statistics.median(b)
        lines.append(f"| {label} | {spread(a)} | {ref_name}: {spread(b)} | {ratio:.2f}x | {goal} |")
        rows.append({"measure": label, "osl_hooks": ours, "reference": ref, "ratio": ratio, "goal": goal})
    return lines, rows


def load_average() -> str:
    """The machine's 1-minute load average now (other sessions share its cores), for the result's header."""
    return f"{os.getloadavg()[0]:.1f}"


def report_head(bench: Bench, rounds: int, load_before: str, extra: str = "") -> tuple[Manifest, list[str]]:
    """The env's manifest and the result's first line: the env measured, the rounds, the load around the run."""
    env = scan_tree(bench.cache / "build" / "envs" / "bench")
    line = (
        f"env: {env.files:,} files, {env.bytes / 1e6:,.0f} MB ({bench.packages or 'quick: venv + demo conda'}); "
        f"{extra}median (min–max) of {rounds} rounds, s; load average {load_before} before the run, "
        f"{load_average()} after"
    )
    return env, [line, ""]


def save_result(json_file: Path, bench: Bench, env: Manifest, rounds: int, lines: list[str], **extra: object) -> None:
    """Print the table and write every sample, the machine and the env beside it (one format for every bench)."""
    print("\n".join(lines))
    result = {
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_after": os.getloadavg(),
        },
        "env": {"files": env.files, "bytes": env.bytes, "packages": bench.packages},
        "rounds": rounds,
        **extra,
        "samples": bench.samples,
        "table": "\n".join(lines),
    }
    json_file.write_text(json.dumps(result, indent=1))
    print(f"\n(JSON: {json_file})")


def report(bench: Bench, rounds: int, json_file: Path, load_before: str) -> None:
    grown = scan_tree(bench.cache / "versions" / "4x" / "envs" / "bench")
    changed = {label: int((bench.cache / "versions" / label / "done").read_text()) for label, _ in UPDATES}
    env, lines = report_head(
        bench, rounds, load_before, f"4x env: {grown.files:,} files, {grown.bytes / 1e6:,.0f} MB; "
    )
    lines += ["| measure | osl-hooks (s) | reference (s) | ratio | goal |", "|---|---|---|---|---|"]
    table, rows = ratio_rows(bench.samples, ROWS)
    lines += table
    floor = [sys.executable, "-c", "pass"]
    python_start = min(bench.timed(None, floor) for _ in range(5))
    imports = bench.import_times()
    lines += [
        "",
        "files changed by the updates: " + ", ".join(f"{label} {n:,}" for label, n in changed.items()),
        f"`python -c pass` on this machine: {python_start:.3f} s (best of 5). Own import time of a start with "
        f"nothing new beyond `python -c pass`'s, {len(imports)} modules, {sum(us for _, us in imports) / 1000:.1f} ms, "
        "largest first (µs): " + ", ".join(f"{n} {us}" for n, us in imports[:12]),
        f"peak memory (RSS) of the starts on the 4x env (goal ≤ {PEAK_MEMORY_GOAL_MB} MB): "
        + ", ".join(f"{key.replace(' osl-hooks', '')} {bench.peak_rss_kb[key] / 1024:.0f} MB" for key in PEAK_MEMORY),
    ]
    save_result(
        json_file,
        bench,
        env,
        rounds,
        lines,
        env_4x={"files": grown.files, "bytes": grown.bytes},
        updates={label: {"every_nth_file": every, "files_changed": changed[label]} for label, every in UPDATES},
        python_c_pass_seconds=python_start,
        import_times_us=imports,
        peak_rss_kb=bench.peak_rss_kb,
        rows=rows,
    )


def bench_arguments(doc: str) -> argparse.ArgumentParser:
    """The options every benchmark on this env takes (the env, the work directory, rounds, the result file)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small env without the package index (for CI)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/osl-hooks-bench"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--packages", default=DEFAULT_PACKAGES, help="installed with pip into the env")
    parser.add_argument("--json", type=Path, help="where to write the result (default: in the work directory)")
    return parser


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--keep", action="store_true", help="keep this run's copies")
    args = parser.parse_args()
    bench = Bench(args.workdir, None if args.quick else args.packages)
    bench.build()
    load_before = load_average()
    bench.run(args.rounds)
    json_file = args.json or args.workdir / ("bench-quick.json" if args.quick else "bench.json")
    report(bench, args.rounds, json_file, load_before)
    if not args.keep:
        shutil.rmtree(bench.runs)


if __name__ == "__main__":
    main()
