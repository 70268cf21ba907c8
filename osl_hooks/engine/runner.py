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
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..plan import COPIED_MODES, Environment, Kernel, Plan, Script
from ..status import LOCK_FILE, human_bytes
from .background import (
    CopyPlaces,
    describe_pending,
    in_place,
    launch,
    pending_record,
    write_guards,
    write_pip_guard,
)
from .condarc import CondarcError, ensure_envs_dirs
from .copykind import decide, sync_of, tell, tell_not_linked
from .envstatus import record_plan
from .faultpoints import point
from .homepaths import Home, UnsafePath
from .kernels import KernelError, KernelGuard, KernelRegistry, UsersOwnKernel, has_ipykernel
from .linked import ImageLacksEnv
from .linkplan import DEBIAN_PIP
from .lock import LockTimeout, StartLock
from .materialize import MaterializeError, make_real, path_selector
from .materialize import forget as forget_materialize
from .notices import Notices
from .outofspace import is_out_of_space
from .redact import secret_values
from .reporter import Reporter, ScriptStatus, report_failure_without_home
from .scripts import MarkerStore, ScriptRun, expand, run_script, script_digest
from .sync import remove_tree
from .synced import CopyLater, EnvProblem, Fallback
from .syncstate import SyncState

USER_KERNEL_PREFIX = "osl-user-"


class Outcome(enum.IntEnum):
    """The exit codes of `osl-hooks start`."""

    OK = 0
    FAILED = 1
    INVALID = 2  # the plan or the command line
    DEGRADED = 3  # the server can start, but not everything is as planned


class StartFailed(Exception):
    """Something that must stop the whole start."""


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
    return _in_home(plan, allow_root, out, lambda run: run.run(background, server_pid))


def reset(
    plan: Plan, name: str, *, discard: bool = False, allow_root: bool = False, out: IO[str] = sys.stdout
) -> Outcome:
    """Bring one synced env back to exactly the image's state (the user's copy moved aside unless `discard`)."""
    return _in_home(plan, allow_root, out, lambda run: run.reset(name, discard))


def materialize(
    plan: Plan, name: str, paths: tuple[str, ...] = (), *, allow_root: bool = False, out: IO[str] = sys.stdout
) -> Outcome:
    """Turn a linked env's links into the image into real files: all, or those at or under `paths`."""
    return _in_home(plan, allow_root, out, lambda run: run.materialize(name, paths))


def _in_home(plan: Plan, allow_root: bool, out: IO[str], action: Callable[[Start], Outcome]) -> Outcome:
    """Run `action` for the plan's home, as the user, holding the home's lock."""
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
            report = Reporter(home, state_dir, out)
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
    if isinstance(error, (UnsafePath, OSError, StartFailed)):
        return str(error)
    if isinstance(error, (KeyboardInterrupt, SystemExit)):
        return "it was interrupted"
    return f"unexpected error {type(error).__name__}: {error} (please report this to your admin)"


def remove_leftovers(home: Home, state_dir: Path) -> None:
    """What killed starts leave: half-written state files, and the transfer directory of older versions.

    Called with the lock held, when no other start can be writing them.
    """
    places = [(state_dir, ".*.tmp"), (state_dir / "envs", ".*.tmp"), (state_dir / "scripts", ".*.tmp")]
    for directory, pattern in [*places, (home.path, ".condarc.*.tmp")]:
        for path in directory.glob(pattern) if directory.is_dir() else []:
            if path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                point("leftovers:temp-file-removed")
    transfer = state_dir / "envs" / "transfer"
    if transfer.is_dir() and not transfer.is_symlink():
        remove_tree(transfer)
        point("leftovers:transfer-removed")


class Start:
    def __init__(self, plan: Plan, home: Home, reporter: Reporter):
        self.plan = plan
        self.home = home
        self.report = reporter
        self.state_dir = Path(plan.state_dir)
        self.kernels = KernelRegistry(plan.jupyter_data_dir)  # checked where it is written (a link out: a warning)
        self.markers = MarkerStore(
            self.state_dir / "scripts", lambda path, text: home.write_text(path, text, "state file")
        )
        self.registered: set[str] = set()
        self.background_allowed = False
        self.server_pid: int | None = None
        self.copy_later_queue: list[Environment] = []  # envs whose copy process starts when the start is done
        self.guards: dict[str, KernelGuard] = {}  # kernel name -> the guards of an env copied later
        self.copying: dict[str, tuple[str, Path]] = {}  # env copied later -> its image prefix, its copy's record
        self.notices = Notices(home, self.state_dir)
        for env in plan.environments:
            if env.kernel is not None:
                reporter.redact.add(secret_values(env.kernel.env))

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
        try:
            for env in self.plan.environments:
                self.prepare(env)
            if self.plan.discover_user_envs or any(e.mode == "user" for e in self.plan.environments):
                self.configure_conda()
            if self.plan.discover_user_envs:
                self.register_user_envs()
            self.remove_stale_kernels()
            self.run_scripts(self.plan.setup_scripts, None)
        except StartFailed as e:
            self.report.finish("failed", f"Start failed: {e}")
            return Outcome.FAILED
        self.launch_copies()
        seconds = time.monotonic() - started
        return self._conclude(f"Ready in {seconds:.1f} s", f"Ready, with warnings (see above), in {seconds:.1f} s")

    def reset(self, name: str, discard: bool) -> Outcome:
        env = next((e for e in self.plan.environments if e.name == name), None)
        if env is None or env.mode not in COPIED_MODES:
            synced = ", ".join(e.name for e in self.plan.environments if e.mode in COPIED_MODES) or "none"
            self.report.finish("failed", f"Cannot reset {name!r}: it is not a synced env (synced envs: {synced})")
            return Outcome.FAILED
        target = self.home.check(env.target or "", f"environments[{name}].target")
        if in_place(target):  # not the placeholder of a copy being made: the next step removes that
            if discard:
                self.report.info(f"Deleting your copy of {name} in {target}", name)
                remove_tree(target)
                point("reset:deleted")
            else:
                backups = self.home.makedirs(self.state_dir / "backups", "state_dir")
                stamp = time.strftime("%Y%m%d-%H%M%S")
                backup, n = backups / f"{name}-{stamp}", 1
                while os.path.lexists(backup):  # two resets in one second (two clicks): never rename onto one
                    n += 1
                    backup = backups / f"{name}-{stamp}-{n}"
                os.rename(target, backup)
                point("reset:moved-aside")
                self.report.info(f"Your copy of {name} was moved to {backup}", name)
        state = SyncState(self.home, self.state_dir / "envs", name)
        state.forget()
        forget_materialize(state)
        point("reset:forgotten")
        self.prepare(env)
        return self._conclude(f"Reset {name} to the image's version", f"Reset {name}, with warnings (see above)")

    def materialize(self, name: str, paths: tuple[str, ...]) -> Outcome:
        env = next((e for e in self.plan.environments if e.name == name), None)
        if env is None or env.mode != "linked" or env.source is None:
            linked = ", ".join(e.name for e in self.plan.environments if e.mode == "linked") or "none"
            self.report.finish("failed", f"Cannot materialize {name!r}: it is not a linked env (linked envs: {linked})")
            return Outcome.FAILED
        target = self.home.check(env.target or "", f"environments[{name}].target")
        if not target.is_dir() or not Path(env.source).is_dir():
            missing = target if not target.is_dir() else env.source
            self.report.finish("failed", f"Cannot materialize {name}: {missing} does not exist")
            return Outcome.FAILED
        self.report.env(name, env.mode)
        state = SyncState(self.home, self.state_dir / "envs", name)
        try:
            wanted = path_selector(target, paths)
            files, size = make_real(state, target, Path(env.source), wanted, self.plan.disk_margin_bytes)
        except MaterializeError as e:
            self.report.finish("failed", f"Cannot materialize {name}: {e}")
            return Outcome.FAILED
        self.report.info(f"{name}: {files} links replaced by copies of the image's files ({human_bytes(size)})", name)
        return self._conclude(f"Materialized {name}", f"Materialized {name}, with warnings (see above)")

    def _conclude(self, ok_message: str, degraded_message: str) -> Outcome:
        if self.report.problems:
            self.report.finish("degraded", degraded_message)
            return Outcome.DEGRADED
        self.report.finish("ok", ok_message)
        return Outcome.OK

    # -- one env --------------------------------------------------------------------------------------

    def prepare(self, env: Environment) -> None:
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
            if env.kernel is not None and not isinstance(e, ImageLacksEnv):
                self.registered.add(env.kernel.name)  # keep its previous kernel rather than break notebooks
            return
        status.seconds = round(time.monotonic() - started, 3)
        status.effective_mode = mode
        status.prefix = prefix and str(prefix)
        if prefix is None:
            status.state = "absent"
            return
        if status.state == "working":
            status.state = "ready"
        if env.kernel is not None:
            self.register_kernel(env.name, mode, prefix, env.kernel)
        self.run_scripts(env.setup_scripts, env, prefix=prefix, mode=mode)

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
        assert env.source is not None
        places = CopyPlaces.of(self.state_dir, env)
        message, numbers = describe_pending(env.name, later, pending_record(places, later))
        guard = write_guards(self.home, places)
        self.copying[env.name] = (env.source, places.record_file)
        write_pip_guard(self.home, self.state_dir, self.copying)  # before a kernel names it
        if env.kernel is not None:
            self.guards[env.kernel.name] = guard
        self.report.envs[env.name].state = "background"
        self.report.event("background-copy", message, env.name, **numbers)
        if not later.running:
            self.copy_later_queue.append(env)
        return Path(env.source), "background"

    def launch_copies(self) -> None:
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

    # -- kernels -------------------------------------------------------------------------------------

    def register_kernel(self, env_name: str, mode: str, prefix: Path, kernel: Kernel) -> None:
        started = time.monotonic()
        try:
            self._register_kernel(env_name, mode, prefix, kernel)
        finally:
            self.report.phase_seconds["kernels"] += time.monotonic() - started

    def _register_kernel(self, env_name: str, mode: str, prefix: Path, kernel: Kernel) -> None:
        self.registered.add(kernel.name)
        if not has_ipykernel(prefix):
            self.report.info(f"{env_name} has no ipykernel, so no kernel is registered for it", env_name)
            return
        key = f"user-kernel:{kernel.name}"
        try:
            self.home.check(self.kernels.kernels_dir / kernel.name, "kernel directory")
            registered = self.kernels.register(env_name, mode, prefix, kernel, self.guards.get(kernel.name))
        except UsersOwnKernel as e:
            # The user's choice, not a problem: said once, and the start is not degraded for it.
            if not self.notices.already_said(key, str(e.path)):
                self.report.info(str(e), env_name)
                self.notices.said(key, str(e.path))
            return
        except (KernelError, UnsafePath, OSError) as e:
            self.report.warning(f"Kernel for {env_name}: {e}", env_name)
            return
        self.notices.resolved(key)
        if env_name in self.report.envs:
            self.report.envs[env_name].kernel = kernel.name
        if registered.changed:
            self.report.event("kernel", f"Registered kernel {kernel.display_name}", env_name)
        else:
            self.report.event("kernel", f"Kernel {kernel.display_name} is registered", env_name)

    def configure_conda(self) -> None:
        envs_dirs = [self.plan.envs_dir]
        envs_dirs += sorted(
            {str(Path(e.source).parent) for e in self.plan.environments if e.mode == "baked" and e.source}
        )
        try:
            self.home.makedirs(self.plan.envs_dir, "envs_dir")
            message = ensure_envs_dirs(self.home, Path(self.plan.home or "", ".condarc"), envs_dirs)
        except (CondarcError, UnsafePath, OSError) as e:
            self.report.warning(str(e))
            return
        self.report.info(message)

    def register_user_envs(self) -> None:
        """Kernels for the envs the user built in envs_dir themselves."""
        managed = {e.target for e in self.plan.environments if e.target}
        try:
            envs_dir = self.home.check(self.plan.envs_dir, "envs_dir")
            prefixes = sorted(envs_dir.iterdir()) if envs_dir.is_dir() else []
        except (UnsafePath, OSError) as e:
            self.report.warning(f"Your own envs are not looked for: {e}")
            return
        for prefix in prefixes:
            if str(prefix) in managed or prefix.name.startswith(".") or not prefix.is_dir():
                continue
            if not has_ipykernel(prefix):
                continue
            name = USER_KERNEL_PREFIX + "".join(c if c.isalnum() or c in "._-" else "-" for c in prefix.name.lower())
            self.register_kernel(prefix.name, "user", prefix, Kernel(name, f"{prefix.name} (your env)"))

    def remove_stale_kernels(self) -> None:
        try:
            self.home.check(self.kernels.kernels_dir, "kernels directory")
            self.kernels.remove_leftovers()
            owned = self.kernels.owned()
        except (UnsafePath, OSError) as e:
            self.report.warning(str(e))
            return
        for name, meta in sorted(owned.items()):
            if name in self.registered:
                continue
            try:
                self.home.check(self.kernels.kernels_dir / name, "kernel directory")
                self.kernels.remove(name)
            except (KernelError, UnsafePath, OSError) as e:
                self.report.warning(str(e))
                continue
            self.report.info(f"Removed kernel {name}: its env {meta.get('env')} is no longer configured")

    # -- setup scripts -------------------------------------------------------------------------------

    def run_scripts(
        self, entries: tuple[Script, ...], env: Environment | None, prefix: Path | None = None, mode: str = ""
    ) -> None:
        environ = dict(os.environ, HOME=str(self.home.path), OSL_HOOKS_STATE_DIR=str(self.state_dir))
        if env is not None and prefix is not None:
            environ.update(
                OSL_ENV_NAME=env.name,
                OSL_ENV_PREFIX=str(prefix),
                OSL_ENV_MODE=mode,
                CONDA_PREFIX=str(prefix),
                PATH=f"{prefix}/bin:{environ.get('PATH', '')}",
            )
        for entry in entries:
            for run in expand(entry, env.name if env else None):
                self.run_script(run, environ)

    def run_script(self, run: ScriptRun, environ: dict[str, str]) -> None:
        digest = script_digest(run.path)
        skip = self.markers.skip_reason(run, digest)
        if skip:
            skipped = ScriptStatus(str(run.path), run.env_name, "skipped", None, 0.0, skip)
            self.report.script_result(skipped, run.label, f"Skipping setup script {run.label}: {skip}")
            return
        self.report.script_begin(run.label, f"Running setup script {run.label}", run.env_name)
        result = run_script(run, environ, self.report.log, cwd=str(self.home.path))
        status = ScriptStatus(
            str(run.path), run.env_name, result.state, result.exit_code, round(result.seconds, 3), result.reason
        )
        if result.state == "ok":
            try:
                self.markers.record_success(run, digest)
            except OSError as e:
                self.report.warning(
                    f"Setup script {run.label} ran, but that could not be remembered ({e.strerror}); "
                    "it runs again at the next start",
                    run.env_name,
                )
            self.report.script_result(status, run.label, f"Setup script {run.label} finished in {result.seconds:.1f} s")
            return
        message = f"Setup script {run.label} {result.reason}"
        if run.entry.on_failure == "fail":
            self.report.script_result(status, run.label, message, level="error")
            raise StartFailed(message)
        continuing = f"{message}; continuing (see {self.state_dir / 'start.log'})"
        self.report.script_result(status, run.label, continuing, level="warning")
