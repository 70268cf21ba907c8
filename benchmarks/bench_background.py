"""First starts with the copy in the background, next to a restart and to today's copy before ready.

Run: python benchmarks/bench_background.py [--quick] [--rounds 3] [--workdir DIR] [--json FILE]

The env is bench_sync.py's (a genuine Python env grown to ≥ 30,000 files with real packages; `--quick`: about
a thousand files, no package index), cached in the same work directory layout. Each round, in an order
rotated from round to round, after `sync` (so no copy pays for the write-back of the one before):
- **first start, background**: `osl-hooks start --plan P -- true` into a fresh home, as the `wrap` delivery
  runs it: the time until the server command would run (the server could be ready); then the time until the
  copy process has put the user's copy in place (its record says `done`), counted from the same start;
- **restart, nothing new**: the same command again on that home;
- **first copy before ready**: `osl-hooks start --plan P` into a fresh home (today's first start, as the
  `init_container` delivery runs it): the time until the server could be ready.
Goals: first start with background / restart ≤ 1.5; background copy / copy before ready ≤ 1.2 (the copy
runs with `nice` and `ionice -c3`, so it may be a little slower, never much).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_sync import Bench, bench_arguments, load_average, ratio_rows, report_head, save_result  # noqa: E402

ROWS = [
    # label, measured sample, reference sample, reference's name, goal
    ("first start, copy in the background: ready", "background ready", "restart", "restart, nothing new", "≤ 1.5x"),
    ("background copy, start to copy in place", "background copy", "before ready", "first copy before ready", "≤ 1.2x"),
    ("first copy before ready (today)", "before ready", "restart", "restart, nothing new", ""),
]
WAIT = 3600.0


class BackgroundBench(Bench):
    def wrapped(self, plan: Path) -> list[str]:
        return [*self.start(plan), "--", "true"]

    def background_first_start(self, i: int) -> None:
        plan = self.plan(f"bg{i}")
        record = Path(json.loads(plan.read_text())["home"]) / ".local/state/osl-hooks/background/bench.json"
        started = time.perf_counter()
        self.timed("background ready", self.wrapped(plan))
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                if json.loads(record.read_text()).get("state") in ("done", "failed"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        state = json.loads(record.read_text())
        assert state["state"] == "done", state
        self.samples.setdefault("background copy", []).append(time.perf_counter() - started)
        self.timed("restart", self.wrapped(plan))

    def round(self, i: int) -> None:
        self.use("v0")
        steps = [
            lambda: self.background_first_start(i),
            lambda: self.timed("before ready", self.start(self.plan(f"before{i}"))),
        ]
        for step in steps[i % 2 :] + steps[: i % 2]:
            os.sync()
            step()

    def run(self, rounds: int) -> None:
        self.fresh_runs(rounds)
        self.timed(None, ["cp", "-a", f"{self.source}/", str(self.runs / "warmup")])  # the page cache, bytecode
        self.timed(None, self.start(self.plan("warmup")))
        for i in range(rounds):
            self.round(i)


def report(bench: BackgroundBench, rounds: int, json_file: Path, load_before: str) -> None:
    env, lines = report_head(bench, rounds, load_before)
    lines += ["| measure | measured (s) | reference (s) | ratio | goal |", "|---|---|---|---|---|"]
    table, rows = ratio_rows(bench.samples, ROWS)
    save_result(json_file, bench, env, rounds, lines + table, rows=rows)


def main() -> None:
    args = bench_arguments(__doc__).parse_args()
    bench = BackgroundBench(args.workdir, None if args.quick else args.packages)
    bench.build()
    load_before = load_average()
    bench.run(args.rounds)
    name = "bench-background-quick.json" if args.quick else "bench-background.json"
    report(bench, args.rounds, args.json or args.workdir / name, load_before)
    shutil.rmtree(bench.runs)


if __name__ == "__main__":
    main()
