"""`osl-hooks start`: the steps of one server start, in order, reported as they go.

Order (documented in docs/engine.md): for each env in plan order, prepare it (sync and relocate, or check
it), register its kernel, run its setup scripts; then configure conda for user envs, register kernels for
envs the user built, remove osl-hooks kernels whose env is gone, and run the global setup scripts, which
can therefore rely on every env being ready.

What goes wrong with one env (missing source, no room, a relocation that cannot work) degrades the start:
that env falls back to the image copy or is skipped, the user is told, and the server still starts.
What makes the start fail: an unusable home or state directory, another start holding the lock too long,
or a setup script with `on_failure: fail`.
"""

from __future__ import annotations

import enum
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..plan import COPIED_MODES, Environment, Plan
from ..status import COMMANDS_DIR, LOCK_FILE, RETIRED_FILE
from .copykind import decide, sync_of, tell, tell_not_linked
from .faultpoints import point
from .homepaths import Home, UnsafePath
from .kernels import KernelSteps
from .lock import LockTimeout, StartLock
from .notices import Notices
from .notlinked import DEBIAN_PIP
from .outofspace import is_out_of_space
from .planrecord import record_plan
from .redact import secret_values
from .reporter import Reporter, report_failure_without_home
from .synced import CopyLater, EnvProblem, Fallback

if TYPE_CHECKING:
    from .retiring import Retiring
    from .scripts import ScriptSteps

# A restart with nothing new is mostly Python's start and these imports, paid by every user at every start: the
# modules only other paths use (setup scripts, conda's configuration, copies made later, links) are imported
# where those paths begin, and tests/test_imports.py checks that a restart with nothing new leaves them out.

Step = Callable[[], "str | None"]  # one step of a start: None, or the failure that stops the start


class Outcome(enum.IntEnum):
    """The exit codes of `osl-hooks start`."""

    OK = 0
    FAILED = 1
    INVALID = 2  # the plan or the command line
    DEGRADED = 3  # the server can start, but not everything is as planned


def start(
    plan: Plan,
    *,
    allow_root: bool = False,
    out: IO[str] = sys.stdout,
    background: bool = False,
    server_pid: int | None = None,
) -> Outcome:
    """Prepare the home described by `plan`. Raises PlanError for a plan that does not fit the home.

    `background`: the server starts right after this start (the `wrap` delivery), so first copies planned
    for the background are made after it (`osl_hooks.engine.background`), once the server `server_pid` is up.
    """
    return in_home(plan, allow_root, out, lambda run: run.run(background, server_pid))


def in_home(
    plan: Plan, allow_root: bool, out: IO[str], action: Callable[[Start], Outcome], command: str | None = None
) -> Outcome:
    """Run `action` for the plan's home, as the user, holding the home's lock (a start, or a command of
    `osl_hooks.engine.commands` on the env `command`: reported in its own status file, see `Reporter`)."""
    if os.geteuid() == 0 and not allow_root:
        report_failure_without_home(
            "refusing to run as root: the start works in the user's home and runs setup "
            "scripts, so it must run as the notebook user (pass --allow-root only in a throwaway container)",
            out,
        )
        return Outcome.FAILED
    plan = plan.resolve(plan.home or os.environ.get("HOME", ""))
    assert plan.home is not None
    try:
        home = Home(plan.home)
        state_dir = home.makedirs(plan.state_dir, "state_dir")
        with StartLock(state_dir / LOCK_FILE, plan.lock_timeout):
            remove_leftovers(home, state_dir)
            report = Reporter(home, state_dir, out, command)
            try:
                return action(Start(plan, home, report))
            except BaseException as e:
                # Whatever stops the start, the status file ends: `osl-hooks status` never shows a dead
                # start as running. (Only SIGKILL escapes this; the status command checks the lock for that.)
                report.finish("failed", f"Start failed: {_describe(e)}")
                if isinstance(e, Exception):
                    return Outcome.FAILED
                raise
    except (UnsafePath, LockTimeout, OSError) as e:
        report_failure_without_home(f"Start failed: {e}", out)
        return Outcome.FAILED


def _describe(error: BaseException) -> str:
    if is_out_of_space(error):
        return f"your home is full ({error.filename or 'writing the state'}); free some space in it and restart"
    if isinstance(error, (UnsafePath, OSError)):
        return str(error)
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        return "it was interrupted"
    return f"unexpected error {type(error).__name__}: {error} (please report this to your admin)"


def _image_lacks_env(error: BaseException) -> bool:
    from .linked import ImageLacksEnv

    return isinstance(error, ImageLacksEnv)


def remove_leftovers(home: Home, state_dir: Path) -> None:
    """What killed starts leave: half-written state files, and the transfer directory of older versions.

    Called with the lock held, when no other start can be writing them.
    """
    places = [(state_dir / d, ".") for d in ("", "envs", "scripts", COMMANDS_DIR)]
    for directory, prefix in [*places, (home.path, ".condarc.")]:
        # `prefix*.tmp` (Home.write_text's temporary names) matched by hand: a glob compiles a pattern, which
        # costs a restart with nothing new more than looking at the few names there are.
        names = os.listdir(directory) if directory.is_dir() else []
        for name in names:
            leftover = len(name) > len(prefix) + 3 and name.startswith(prefix) and name.endswith(".tmp")
            if leftover and (path := directory / name).is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                point("leftovers:temp-file-removed")
    transfer = state_dir / "envs" / "transfer"
    if transfer.is_dir() and not transfer.is_symlink():
        from .trees import remove_tree

        remove_tree(transfer)
        point("leftovers:transfer-removed")


class Start:
    """One start: an ordered list of steps (`steps`), run until one fails; the runs of `osl-hooks reset` and
    `materialize` (`osl_hooks.engine.commands`) use its env step."""

    def __init__(self, plan: Plan, home: Home, reporter: Reporter):
        self.plan = plan
        self.home = home
        self.report = reporter
        self.state_dir = Path(plan.state_dir)
        self.notices = Notices(home, self.state_dir)
        self.kernels = KernelSteps(plan, home, reporter, self.notices)
        self.background_allowed = False
        self.server_pid: int | None = None
        self.copy_later_queue: list[Environment] = []  # envs whose copy process starts when the start is done
        self.copying: dict[str, tuple[str, Path]] = {}  # env copied later -> its image prefix, its copy's record
        self.retiring = self._retiring()
        for env in plan.environments:
            if env.kernel is not None:
                reporter.redact.add(secret_values(env.kernel.env))

    def steps(self) -> list[Step]:
        """In order: each env (ready, its kernel, its scripts); conda for user envs; the kernels of the user's
        own envs; the removal of kernels whose env is gone; the global scripts, which can rely on every env."""
        plan = self.plan
        steps: list[Step] = [self.retiring.finish_interrupted] if self.retiring else []
        steps += [functools.partial(self.prepare, env) for env in plan.environments]
        if plan.discover_user_envs or any(e.mode == "user" for e in plan.environments):
            steps.append(self.configure_conda)
        if plan.discover_user_envs:
            steps.append(self.kernels.register_user_envs)
        steps.append(self.kernels.remove_stale)
        if self.retiring and plan.retirement is not None:
            steps.append(self.retiring.survey)
        if plan.setup_scripts:
            steps.append(functools.partial(self.scripts.run, plan.setup_scripts))
        return steps

    @functools.cached_property
    def scripts(self) -> ScriptSteps:
        """The setup scripts' runner, made (and imported) for the first env or plan that has scripts."""
        from .scripts import ScriptSteps

        return ScriptSteps(self.home, self.state_dir, self.report)

    def run(self, background: bool = False, server_pid: int | None = None) -> Outcome:
        self.background_allowed = background
        self.server_pid = server_pid
        try:
            record_plan(self.plan, self.home.write_text, self.state_dir)
        except OSError as e:
            if not is_out_of_space(e):
                raise
            # A full home must not fail the start: only the server's envs API lacks the plan until one has room.
        started = time.monotonic()
        names = [e.name for e in self.plan.environments]
        self.report.event("start", f"Preparing your environments ({len(names)} configured)", envs=names)
        for step in self.steps():
            failure = step()
            if failure is not None:
                self.report.finish("failed", f"Start failed: {failure}")
                return Outcome.FAILED
        self.launch_copies()
        if self.retiring:
            self.retiring.after_ready(self.background_allowed, self.server_pid)
        seconds = time.monotonic() - started
        return self.conclude(f"Ready in {seconds:.1f} s", f"Ready, with warnings (see above), in {seconds:.1f} s")

    def conclude(self, ok_message: str, degraded_message: str) -> Outcome:
        if self.report.problems:
            self.report.finish("degraded", degraded_message)
            return Outcome.DEGRADED
        self.report.finish("ok", ok_message)
        return Outcome.OK

    def _retiring(self) -> Retiring | None:
        """Retirement's part of the start (`osl_hooks.engine.retiring`), imported only when the plan has
        retirement or an earlier start left its state: a version-1 plan pays one stat for it."""
        if self.plan.retirement is None and not (self.state_dir / RETIRED_FILE).exists():
            return None
        from .retiring import Retiring

        return Retiring(self.plan, self.home, self.state_dir, self.report, self.notices)

    # -- one env --------------------------------------------------------------------------------------

    def prepare(self, env: Environment) -> str | None:
        """The env step: the env ready (or its fallback), its kernel, its setup scripts; the failure of a
        script that stops the start, if any."""
        status = self.report.env(env.name, env.mode)
        status.state = "working"
        started = time.monotonic()
        try:
            if env.mode in COPIED_MODES:
                prefix, mode = self.sync(env)
            elif env.mode == "baked":
                prefix, mode = self.check_baked(env), "baked"
            else:
                prefix, mode = self.check_user_env(env), "user"
        except (EnvProblem, UnsafePath, OSError) as e:
            status.state = "failed"
            self.report.error(f"{env.name}: {e}", env.name)
            if env.kernel is not None and not _image_lacks_env(e):
                self.kernels.registered.add(env.kernel.name)  # keep its previous kernel rather than break notebooks
            return None
        status.seconds = round(time.monotonic() - started, 3)
        status.effective_mode = mode
        status.prefix = prefix and str(prefix)
        if prefix is None:
            status.state = "absent"
            return None
        if status.state == "working":
            status.state = "ready"
        if env.kernel is not None:
            self.kernels.register(env.name, mode, prefix, env.kernel)
        if not env.setup_scripts:
            return None
        return self.scripts.run(env.setup_scripts, env.name, prefix, mode)

    def check_baked(self, env: Environment) -> Path:
        source = Path(env.source or "")
        if not source.is_dir():
            raise EnvProblem(f"{source} does not exist in the image")
        self.report.event("env-done", f"Using {env.name} from the image at {source}", env.name, state="ready")
        return source

    def check_user_env(self, env: Environment) -> Path | None:
        target = self.home.check(env.target or "", f"{env.name}: target")
        if not target.is_dir():
            message = f"{env.name} has not been created yet (conda create -p {target} ...)"
            self.report.event("env-done", message, env.name, state="absent")
            return None
        return target

    def sync(self, env: Environment) -> tuple[Path, str]:
        """Bring a synced or linked env into the home; returns its prefix and the mode the user gets."""
        margins = (self.plan.disk_margin_fraction, self.plan.disk_margin_bytes)
        try:
            kind = decide(env, self.home, self.state_dir, self.background_allowed)
            tell(kind, env, self.report, self.notices)
            prefix = sync_of(kind, env, self.home, self.state_dir, self.report, margins).run()
        except Fallback as e:
            return self.fall_back(env, str(e), e.fingerprint, e.code)
        except UnsafePath as e:
            return self.fall_back(env, f"its place in your home is not safe to write: {e}", code="unsafe_home")
        if isinstance(prefix, CopyLater):
            return self.copy_later(env, prefix)
        if kind.mode == "linked":
            tell_not_linked(env, {DEBIAN_PIP}, self.report.envs[env.name], self.report, self.notices)
        self.notices.resolved(f"fallback:{env.name}")
        return prefix, kind.mode

    def copy_later(self, env: Environment, later: CopyLater) -> tuple[Path, str]:
        """The env runs from the image, with guards against installs, while its own copy is made later."""
        from .background import CopyPlaces, describe_pending, pending_record, write_guards, write_pip_guard

        assert env.source is not None
        places = CopyPlaces.of(self.state_dir, env)
        message, numbers = describe_pending(env.name, later, pending_record(places, later))
        guard = write_guards(self.home, places)
        self.copying[env.name] = (env.source, places.record_file)
        write_pip_guard(self.home, self.state_dir, self.copying)  # before a kernel names it
        if env.kernel is not None:
            self.kernels.guards[env.kernel.name] = guard
        self.report.envs[env.name].state = "background"
        self.report.event("background-copy", message, env.name, **numbers)
        if not later.running:
            self.copy_later_queue.append(env)
        return Path(env.source), "background"

    def launch_copies(self) -> None:
        if not self.copy_later_queue:
            return
        from .background import launch

        for env in self.copy_later_queue:
            try:
                launch(self.plan, env, self.home, self.state_dir, self.server_pid)
            except (UnsafePath, OSError) as e:
                self.report.warning(
                    f"Your own copy of {env.name} could not be started in the background ({e}); {env.name} runs "
                    "from the image until the next start",
                    env.name,
                )

    def fall_back(
        self, env: Environment, reason: str, fingerprint: str | None = None, code: str = "copy_failed"
    ) -> tuple[Path, str]:
        """Use the image's copy of a synced env instead, and say what that means for the user.

        A cause that stays until the image changes (`fingerprint`) is said in full once, then in a line.
        `code`: the cause as data (the start's summary).
        """
        assert env.source is not None
        status = self.report.envs[env.name]
        status.state, status.fallback = "fallback", code
        status.volume_bytes = status.linked_bytes = None  # no copy of the user's takes room
        key = f"fallback:{env.name}"
        if fingerprint and self.notices.already_said(key, fingerprint):
            self.report.info(
                f"Using the image's copy of {env.name} again: it still cannot be moved into your home", env.name
            )
            return Path(env.source), "baked"
        self.report.warning(
            f"{env.name} is not copied into your home because {reason.rstrip('.')}. You get the image's copy "
            "instead: it works, but packages you install into it are lost at the next restart.",
            env.name,
        )
        if fingerprint:
            self.notices.said(key, fingerprint)
        return Path(env.source), "baked"

    # -- conda ---------------------------------------------------------------------------------------

    def configure_conda(self) -> None:
        """`envs_dirs` in `~/.condarc`: the user's envs first (a warning, never a failure, if it cannot be)."""
        from .condarc import CondarcError, ensure_envs_dirs

        envs_dirs = [self.plan.envs_dir]
        envs_dirs += sorted(
            {str(Path(e.source).parent) for e in self.plan.environments if e.mode == "baked" and e.source}
        )
        try:
            self.home.makedirs(self.plan.envs_dir, "envs_dir")
            message = ensure_envs_dirs(self.home, Path(self.plan.home or "", ".condarc"), envs_dirs)
        except (CondarcError, UnsafePath, OSError) as e:
            self.report.warning(str(e))
            return None
        self.report.info(message)
        return None
