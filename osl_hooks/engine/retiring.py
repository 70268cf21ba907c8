"""The start's part of retirement (see `osl_hooks.engine.retire` for what a retired copy is).

Three moments of a start: before the env steps, a removal a kill interrupted is finished or undone (nothing reads
the records before that); after the kernels, the survey of the records (no walk of any copy); once the start is
done, the checks and removals of due copies, in a detached process after the server is up where the delivery runs
the server (`wrap`), else as the start's last step (that start pays the walk of each due copy and its deletion).
The runner imports this module only when the plan has retirement or an earlier start left its state.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..plan import Plan
from ..status import human_bytes
from .homepaths import Home, UnsafePath
from .notices import Notices
from .reporter import Reporter
from .retire import DAY, RetiredState, kept_sentence, read_record, record_files, record_key, volume_of
from .retire_removal import RemovalRun, finish_removal, launch_after_ready, problem


class Retiring:
    """The start's part of retirement: finish what a killed removal left (before any env step reads records),
    survey the records (after the kernels), and hand the checks and removals to after ready."""

    def __init__(self, plan: Plan, home: Home, state_dir: Path, report: Reporter, notices: Notices):
        self.plan, self.home, self.state_dir = plan, home, state_dir
        self.report, self.notices = report, notices
        self.state = RetiredState.load(home, state_dir)
        self.due: list[str] = []
        self.leftovers: list[Path] = []  # trees of removals that only lack their deletion

    def finish_interrupted(self) -> None:
        """Before the env steps: a removal killed after its rename is finished (records forgotten, bytes counted),
        one killed before it is undone (the copy is still in place, the row is re-surveyed)."""
        try:
            for name, row in list(self.state.rows.items()):
                removing = row.get("removing")
                if row.get("state") == "removing":
                    finish_removal(self.home, self.state, name)
                if isinstance(removing, str) and os.path.isdir(removing) and not os.path.islink(removing):
                    self.leftovers.append(Path(removing))
        except (UnsafePath, OSError) as e:
            self.report.warning(problem("an interrupted removal could not be finished", e))
        return None

    def survey(self) -> None:
        """After the kernels: which copies are retired, since when, which are due; one sentence each."""
        retirement = self.plan.retirement
        assert retirement is not None
        in_plan = {e.name.lower() for e in self.plan.environments}
        user_envs = {e.name.lower() for e in self.plan.environments if e.mode == "user"}
        user_envs |= {os.path.realpath(e.target) for e in self.plan.environments if e.mode == "user" and e.target}
        now, days = time.time(), retirement.remove_after_days
        before = json.dumps(self.state.rows, sort_keys=True)
        records = record_files(self.state_dir)
        for name, path in records.items():
            record = read_record(path)
            target = record.get("target") if record else None
            if name.lower() in user_envs or (target and os.path.realpath(target) in user_envs):
                self._once(name, "user", f"Your copy of {name} is kept as it is: a user env of your plan has its name")
                continue
            if retirement.offers(name) or name.lower() in in_plan:
                self._came_back(name)
                continue
            if record is None or target is None:
                self._once(name, "damaged", f"{name} is no longer offered, but its record {path} cannot be read: "
                           "your copy is kept")  # fmt: skip
                continue
            why = self._untouchable(Path(target))
            if why:
                self._once(name, "unsafe", f"{name} is no longer offered, but its copy is kept: {why}")
                continue
            self._retired(name, record, now, days)
        for name in [n for n, row in self.state.rows.items() if n not in records and row.get("state") != "removed"]:
            if self.state.rows[name].get("state") != "removing":
                del self.state.rows[name]  # its record is gone (reset, removed by hand): nothing left to retire
        if json.dumps(self.state.rows, sort_keys=True) != before:
            self._save()
        self.report.retired = self.state.summary()
        return None

    def after_ready(self, background: bool, server_pid: int | None) -> None:
        """Check and remove the due copies, delete leftover trees: in a detached process after the server is up
        where the delivery runs the server (`wrap`), else here, as the start's last step (it pays the walk)."""
        if not self.due and not self.leftovers:
            return
        if background:
            try:
                launch_after_ready(self.plan, self.home, self.state_dir, server_pid)
            except (UnsafePath, OSError) as e:
                self.report.warning(problem("the removal of retired copies could not be started", e))
            return
        RemovalRun(self.home, self.state_dir, self.report).run(self.leftovers)
        self.report.retired = RetiredState.load(self.home, self.state_dir).summary()

    # -- one copy -------------------------------------------------------------------------------------------

    def _retired(self, name: str, record: dict, now: float, days: float) -> None:
        row = self.state.rows.setdefault(name, {})
        if row.get("state") in (None, "removed") or not isinstance(row.get("since"), (int, float)):
            row.update(since=now, state="waiting")
        if row.get("state") == "removing":
            return
        key = record_key(record)
        if row.get("state") == "kept" and row.get("record") == key:
            self._kept(name, row)
            return
        row["record"], row["volume_bytes"] = key, volume_of(record)
        left = days - (now - row["since"]) / DAY
        size = human_bytes(row["volume_bytes"])
        if left <= 0:
            row["state"] = "due"
            row.pop("days_left", None)
            self.due.append(name)
            self.report.info(
                f"{name} is no longer offered by your hub: your copy ({size}) is removed unless you changed it (a "
                "changed copy is kept, and `osl-hooks status` says how to remove it)",
            )
            return
        row.update(state="waiting", days_left=round(left, 2))
        self._once(name, "waiting", f"{name} is no longer offered by your hub: your copy ({size}) is removed in "
                   f"{left:.0f} day(s) unless you change it or it is offered again")  # fmt: skip

    def _kept(self, name: str, row: dict) -> None:
        """Said in full once (by the check, or by the first start after a check in the background), then short."""
        self.report.info(kept_sentence(name, row, short=bool(row.get("told"))))
        row["told"] = True

    def _came_back(self, name: str) -> None:
        row = self.state.rows.get(name)
        if row is None or row.get("state") in ("removed", "removing"):
            return
        if row.get("reclaimed_bytes"):
            self.state.rows[name] = {"state": "removed", "reclaimed_bytes": row["reclaimed_bytes"]}
        else:
            del self.state.rows[name]
        self.notices.resolved(f"retired:{name}")
        self.report.info(f"{name} is offered again: your copy is kept and synced as usual")

    def _untouchable(self, target: Path) -> str | None:
        if os.path.islink(target):
            return f"{target} is a link, and osl-hooks never removes what a link leads to"
        try:
            self.home.check(target, "retired copy")
        except UnsafePath as e:
            return str(e)
        return None

    def _once(self, name: str, why: str, sentence: str) -> None:
        """Said in full at the first start, in a short line at later ones."""
        if self.notices.already_said(f"retired:{name}", why):
            self.report.info(f"{name}: kept, as said before ({why})")
            return
        self.report.info(sentence)
        self.notices.said(f"retired:{name}", why)

    def _save(self) -> None:
        try:
            self.state.save()
        except OSError as e:
            self.due.clear()  # nothing is removed without its row: the next start with room does it
            self.report.warning(problem("the retired copies are not removed at this start", e))
