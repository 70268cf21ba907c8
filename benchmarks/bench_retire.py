"""A restart with a retired, unchanged copy to remove, next to the same restart without it (issue 32).

Run: python benchmarks/bench_retire.py [--quick] [--rounds 3] [--workdir DIR] [--json FILE]

The env is bench_sync.py's (a genuine Python env grown to ≥ 30,000 files with real packages; `--quick`: about a
thousand files), cached in the same work directory layout. One home holds the user's copy of `bench` (offered,
nothing new: a restart) and, before each "with" run, a copy of the same env under the name `old`, which the hub no
longer offers (plan version 2, `remove_after_days` 0), put back with `cp -a` from a copy osl-hooks made (times
kept: unchanged). Each round, in an order rotated from round to round, after `sync`:
- **with a retired copy**: `osl-hooks start --plan P -- true` as the `wrap` delivery runs it, timed until the
  server command would run (the server could be ready); then the wait, untimed, until the detached removal has
  deleted the copy; the bytes left on the volume are checked to equal those of the home before `old` was added;
- **without**: the same command on the same home, with no retired copy; the same `cp -a` is made first, to a
  place outside the home (deleted afterwards, untimed), so both runs follow the same writes.
Goal: with / without ≤ 1.1 (ratio of medians): the check and the removal come after ready.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import Bench, bench_arguments, load_average, ratio_rows, report_head, save_result  # noqa: E402

ROWS = [("restart with a retired copy to remove: ready", "with", "without", "same restart without it", "≤ 1.1x")]
WAIT = 600.0
STATE = ".local/state/osl-hooks"


def volume_bytes(*roots: Path) -> int:
    """Bytes on the volume under `roots` (blocks, as `du` counts them)."""
    total = 0
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            total += sum(os.lstat(os.path.join(dirpath, n)).st_blocks * 512 for n in [*dirs, *files])
    return total


class RetireBench(Bench):
    def build(self) -> None:
        """Only the env itself (bench_sync's image versions are not needed here)."""
        built = self.cache / "build" / "envs" / "bench"
        if (self.cache / "build" / "done").exists():
            self.built_prefix = str(built)
            return
        super().build()

    def retire_plan(self, home: Path) -> Path:
        plan = self.runs / "plan-retire.json"
        env = {"name": "bench", "mode": "synced", "source": str(self.source), "kernel": False}
        retirement = {"offered": ["bench"], "remove_after_days": 0}
        plan.write_text(json.dumps({"version": 2, "home": str(home), "environments": [env], "retirement": retirement}))
        return plan

    def prepare(self) -> None:
        """The home with `bench`, and a copy osl-hooks made of `old` (with its state) kept aside to put back."""
        self.home = self.runs / "home"
        self.template = self.runs / "old-template"
        plan = self.runs / "plan-setup.json"
        envs = [
            {"name": name, "mode": "synced", "source": str(self.source), "kernel": False} for name in ("bench", "old")
        ]
        plan.write_text(json.dumps({"version": 1, "home": str(self.home), "environments": envs}))
        self.home.mkdir(parents=True)
        subprocess.run(self.start(plan), check=True, stdout=subprocess.DEVNULL, env=self.environ)
        self.template.mkdir()
        os.rename(self.home / ".local/envs/old", self.template / "old")
        (self.template / "state").mkdir()
        for path in (self.home / STATE / "envs").glob("old.*"):
            os.rename(path, self.template / "state" / path.name)
        self.plan_file = self.retire_plan(self.home)
        self.timed(None, [*self.start(self.plan_file), "--", "true"])  # settles the home: nothing left to do
        self.places = [self.home / ".local/envs", self.home / STATE / "envs"]
        self.bytes_without = volume_bytes(*self.places)

    def put_back_old(self) -> None:
        subprocess.run(["cp", "-a", str(self.template / "old"), str(self.home / ".local/envs/old")], check=True)
        for path in (self.template / "state").iterdir():
            shutil.copy2(path, self.home / STATE / "envs" / path.name)

    def with_retired(self) -> None:
        self.put_back_old()
        os.sync()
        self.timed("with", [*self.start(self.plan_file), "--", "true"])
        deadline = time.monotonic() + WAIT
        envs = self.home / ".local/envs"
        while os.path.lexists(envs / "old") or list(envs.glob(".osl-removing-*")):
            assert time.monotonic() < deadline, "the removal did not end"
            time.sleep(0.05)
        while subprocess.run(["flock", "-n", str(self.home / STATE / "retired.lock"), "true"]).returncode != 0:
            time.sleep(0.05)  # the removal process still ends its run
        left = volume_bytes(*self.places)
        assert left == self.bytes_without, f"{left} bytes left, {self.bytes_without} without the retired copy"

    def without(self) -> None:
        scratch = self.runs / "scratch"
        subprocess.run(["cp", "-a", str(self.template / "old"), str(scratch)], check=True)
        os.sync()
        self.timed("without", [*self.start(self.plan_file), "--", "true"])
        shutil.rmtree(scratch)

    def run(self, rounds: int) -> None:
        self.fresh_runs(rounds)
        self.prepare()
        for i in range(rounds):
            steps = [self.with_retired, self.without]
            for step in steps[i % 2 :] + steps[: i % 2]:
                step()


def main() -> None:
    args = bench_arguments(__doc__).parse_args()
    bench = RetireBench(args.workdir, None if args.quick else args.packages)
    bench.build()
    load_before = load_average()
    bench.run(args.rounds)
    env, lines = report_head(bench, args.rounds, load_before)
    lines += ["| measure | measured (s) | reference (s) | ratio | goal |", "|---|---|---|---|---|"]
    table, rows = ratio_rows(bench.samples, ROWS)
    name = "bench-retire-quick.json" if args.quick else "bench-retire.json"
    save_result(args.json or args.workdir / name, bench, env, args.rounds, lines + table, rows=rows)
    shutil.rmtree(bench.runs)


if __name__ == "__main__":
    main()
