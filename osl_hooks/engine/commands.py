"""`osl-hooks reset` and `osl-hooks materialize`: commands on one copied env, each in the home as a start is
(as the user, holding the home's lock, reported as a start is: `runner.in_home`)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import IO

from ..plan import COPIED_MODES, Environment, Plan
from ..status import human_bytes
from .background import in_place
from .faultpoints import point
from .materialize import MaterializeError, make_real, path_selector
from .materialize import forget as forget_materialize
from .runner import Outcome, Start, in_home
from .sync import remove_tree
from .syncstate import SyncState


def reset(
    plan: Plan, name: str, *, discard: bool = False, allow_root: bool = False, out: IO[str] = sys.stdout
) -> Outcome:
    """Bring one synced env back to exactly the image's state (the user's copy moved aside unless `discard`)."""
    return in_home(plan, allow_root, out, lambda run: _reset(run, name, discard))


def materialize(
    plan: Plan, name: str, paths: tuple[str, ...] = (), *, allow_root: bool = False, out: IO[str] = sys.stdout
) -> Outcome:
    """Turn a linked env's links into the image into real files: all, or those at or under `paths`."""
    return in_home(plan, allow_root, out, lambda run: _materialize(run, name, paths))


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
