"""`osl-hooks reset`, `materialize` and `remove`: commands on one copied env, each in the home as a start is
(as the user, holding the home's lock, reported as a start is: `runner.in_home`), but in their own status file
(`status.command_file`, per env): status.json stays the last start's, which the hub and the lab show as such."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO

from ..plan import COPIED_MODES, Environment, Plan
from ..status import human_bytes
from .background import in_place
from .envdiff import changes_between, describe, export, package_changes, versions, versions_of
from .faultpoints import point
from .homepaths import Home, UnsafePath
from .materialize import MaterializeError, make_real, path_selector
from .materialize import forget as forget_materialize
from .retire import RetiredState, read_record, record_files
from .retire_removal import commit_removal, delete_tree, problem, user_changes
from .runner import Outcome, Start, in_home
from .syncstate import SyncState
from .trees import remove_tree

REPORTS_DIR = "removed"  # in the state folder: the reports of changes `osl-hooks remove` writes first


def reset(
    plan: Plan, name: str, *, discard: bool = False, allow_root: bool = False, out: IO[str] = sys.stdout
) -> Outcome:
    """Bring one synced env back to exactly the image's state (the user's copy moved aside unless `discard`)."""
    return in_home(plan, allow_root, out, lambda run: _reset(run, name, discard), command=name)


def materialize(
    plan: Plan, name: str, paths: tuple[str, ...] = (), *, allow_root: bool = False, out: IO[str] = sys.stdout
) -> Outcome:
    """Turn a linked env's links into the image into real files: all, or those at or under `paths`."""
    return in_home(plan, allow_root, out, lambda run: _materialize(run, name, paths), command=name)


def _env(run: Start, name: str, modes: tuple[str, ...]) -> Environment | None:
    return next((e for e in run.plan.environments if e.name == name and e.mode in modes), None)


def _reset(run: Start, name: str, discard: bool) -> Outcome:
    env = _env(run, name, COPIED_MODES)
    if env is None:
        synced = ", ".join(e.name for e in run.plan.environments if e.mode in COPIED_MODES) or "none"
        run.report.finish("failed", f"Cannot reset {name!r}: it is not a synced env (synced envs: {synced})")
        return Outcome.FAILED
    target = run.home.check(env.target or "", f"environments[{name}].target")
    if in_place(target):  # not the placeholder of a copy being made: the next step removes that
        if discard:
            run.report.info(f"Deleting your copy of {name} in {target}", name)
            remove_tree(target)
            point("reset:deleted")
        else:
            backups = run.home.makedirs(run.state_dir / "backups", "state_dir")
            stamp = time.strftime("%Y%m%d-%H%M%S")
            backup, n = backups / f"{name}-{stamp}", 1
            while os.path.lexists(backup):  # two resets in one second (two clicks): never rename onto one
                n += 1
                backup = backups / f"{name}-{stamp}-{n}"
            os.rename(target, backup)
            point("reset:moved-aside")
            run.report.info(f"Your copy of {name} was moved to {backup}", name)
    state = SyncState(run.home, run.state_dir / "envs", name)
    state.forget()
    forget_materialize(state)
    point("reset:forgotten")
    failure = run.prepare(env)
    if failure is not None:
        run.report.finish("failed", f"Start failed: {failure}")
        return Outcome.FAILED
    return run.conclude(f"Reset {name} to the image's version", f"Reset {name}, with warnings (see above)")


def _materialize(run: Start, name: str, paths: tuple[str, ...]) -> Outcome:
    env = _env(run, name, ("linked",))
    if env is None or env.source is None:
        linked = ", ".join(e.name for e in run.plan.environments if e.mode == "linked") or "none"
        run.report.finish("failed", f"Cannot materialize {name!r}: it is not a linked env (linked envs: {linked})")
        return Outcome.FAILED
    target = run.home.check(env.target or "", f"environments[{name}].target")
    if not target.is_dir() or not Path(env.source).is_dir():
        missing = target if not target.is_dir() else env.source
        run.report.finish("failed", f"Cannot materialize {name}: {missing} does not exist")
        return Outcome.FAILED
    run.report.env(name, env.mode)
    state = SyncState(run.home, run.state_dir / "envs", name)
    try:
        wanted = path_selector(target, paths)
        files, size = make_real(state, target, Path(env.source), wanted, run.plan.disk_margin_bytes)
    except MaterializeError as e:
        run.report.finish("failed", f"Cannot materialize {name}: {e}")
        return Outcome.FAILED
    run.report.info(f"{name}: {files} links replaced by copies of the image's files ({human_bytes(size)})", name)
    return run.conclude(f"Materialized {name}", f"Materialized {name}, with warnings (see above)")


def remove(plan: Plan, name: str, *, allow_root: bool = False, out: IO[str] = sys.stdout) -> Outcome:
    """Remove the user's copy of an env the hub no longer offers, after writing a report of their changes."""
    return in_home(plan, allow_root, out, lambda run: _remove(run, name), command=name)


def _remove(run: Start, name: str) -> Outcome:
    def refuse(why: str) -> Outcome:
        run.report.finish("failed", f"Cannot remove {name}: {why}")
        return Outcome.FAILED

    plan, state_dir = run.plan, run.state_dir
    if any(e.name.lower() == name.lower() for e in plan.environments) or (
        plan.retirement is not None and plan.retirement.offers(name)
    ):
        return refuse(f"your hub still offers it (`osl-hooks reset {name}` brings your copy back to the image's)")
    records = record_files(state_dir)
    if name not in records:
        built = Path(plan.envs_dir) / name
        if os.path.isdir(built):
            return refuse(f"osl-hooks did not make {built}, you did, and it never removes an env you built "
                          f"(conda env remove -p {built} does)")  # fmt: skip
        return refuse(f"osl-hooks has no copy of an env of that name (its copies: {', '.join(records) or 'none'})")
    record = read_record(records[name])
    if record is None:
        return refuse(f"its record {records[name]} cannot be read, so osl-hooks cannot tell your changes from its own")
    target = Path(record["target"])
    if os.path.islink(target) or not target.is_dir():
        return refuse(f"{target} is {'a link' if os.path.islink(target) else 'not there'}; nothing was removed")
    try:
        run.home.check(target, f"{name}: target")
    except UnsafePath as e:
        return refuse(f"{e}; nothing was removed")
    changed, disk = user_changes(run.home, state_dir, name, record)
    try:
        report_file = write_drift_report(run.home, state_dir, name, record, changed)
        place = commit_removal(run.home, RetiredState.load(run.home, state_dir), name, record, disk)
    except OSError as e:
        return refuse(problem("nothing was removed", e))
    run.report.info(f"Your changes to {name} ({len(changed)} files) are listed in {report_file}", name)
    delete_tree(place)  # its kernel went with the first start whose plan lacked the env (the stale-kernels step)
    return run.conclude(f"Removed your copy of {name} ({human_bytes(disk)} freed); your changes are in {report_file}",
                        f"Removed your copy of {name}, with warnings (see above)")  # fmt: skip


def write_drift_report(home: Home, state_dir: Path, name: str, record: dict, changed: list[str]) -> Path:
    """What `osl-hooks diff NAME` says (against the image's env, or what the copy was synced from when the image
    no longer has it), as an environment file, and the files the user changed: kept before the copy goes."""
    target, source = Path(record["target"]), Path(record.get("source") or "")
    if source.is_dir():
        changes = package_changes(source, target)
    else:
        base = SyncState(home, state_dir / "envs", name).base(record)
        synced = versions_of(p for paths in base.packages.records.values() for p in paths) if base else {}
        changes = changes_between(synced, versions(target))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    lines = [
        f"# osl-hooks remove {name}, {stamp}: your changes to {target} before it was removed",
        "# packages you added, upgraded or removed (osl-hooks diff):",
        *(f"#   {line}" for line in describe(changes)),
        "# the same as an environment file (conda env create -f THIS_FILE):",
        export(changes, "environment", name).rstrip("\n"),
        f"# files you added, changed or removed ({len(changed)}):",
        *(f"#   {path}" for path in changed),
    ]
    return home.write_text(state_dir / REPORTS_DIR / f"{name}-{stamp}.txt", "\n".join(lines) + "\n", "drift report")
