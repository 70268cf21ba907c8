"""The `osl-hooks` command, run inside the user's container (or next to a local single-user server)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from .engine.runner import Outcome
from .plan import DEFAULT_STATE_DIR, PLAN_ENV_VAR, PLAN_FILE_ENV_VAR, Plan, PlanError, load_plan
from .status import human_bytes

if TYPE_CHECKING:
    import argparse

# Each command imports what it uses when it runs: a server start pays for the start's modules only (the
# restart with nothing new costs little more than the interpreter), not for bake's, status's or the copy's.


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if (args := _start_arguments(argv)) is None:
        from .cli_parser import parser

        args = parser(argv[0] if argv else None).parse_args(argv)
    if args.command == "start":
        return _start(args)
    if args.command == "plan":
        return _plan(args)
    if args.command == "bake":
        return _bake(args)
    if args.command == "reset":
        return _reset(args)
    if args.command == "diff":
        return _with_plan(args, lambda plan: _diff(plan, args.name, args.export))
    if args.command == "background-copy":
        from .engine.background_copy import copy_in_background

        return _with_plan(args, lambda plan: copy_in_background(plan, args.name, args.after_server))
    if args.command in ("remove", "retire-after-ready"):
        return _with_plan(args, lambda plan: _retirement_command(plan, args))
    if args.command == "materialize":
        from .engine.commands import materialize

        return _with_plan(
            args, lambda plan: materialize(plan, args.name, tuple(args.paths), allow_root=args.allow_root)
        )
    return _status(args)


START_FLAGS = {"--allow-root": "allow_root", "--degraded-ok": "degraded_ok"}


def _start_arguments(argv: list[str]) -> SimpleNamespace | None:
    """`start` as the hub's deliveries and images run it (`--plan FILE`, `--allow-root`, `--degraded-ok`, then
    the server command), read without argparse: importing it (with gettext and locale) and building the parser
    cost a restart with nothing new about 3 ms, a tenth of what it costs beyond Python's own start. Anything
    else (`--help`, a typo, an abbreviation, an option's value that begins with '-') gives None: argparse reads
    it (`osl_hooks.cli_parser`), and explains. The arguments are those argparse gives (tests/test_cli.py compares
    them)."""
    if argv[:1] != ["start"]:
        return None
    args = SimpleNamespace(command="start", plan=None, allow_root=False, degraded_ok=False, server_command=[])
    rest = iter(range(1, len(argv)))
    for i in rest:
        arg = argv[i]
        if arg in START_FLAGS:
            setattr(args, START_FLAGS[arg], True)
        elif arg == "--plan" and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            args.plan = argv[next(rest)]
        elif arg.startswith("--plan="):
            args.plan = arg.removeprefix("--plan=")
        elif arg == "--" or not arg.startswith("-"):
            args.server_command = argv[i:]  # argparse's REMAINDER: the server command, from here on
            break
        else:
            return None
    return args


INTERRUPTED = 130  # the shell's code for "ended by SIGINT"


def _start(args: argparse.Namespace | SimpleNamespace) -> int:
    from .engine.reporter import report_failure_without_home
    from .engine.runner import start

    command = args.server_command[1:] if args.server_command[:1] == ["--"] else args.server_command
    try:
        # With a server command, this process becomes the server (exec): background copies wait for it.
        plan = load_plan(args.plan)
        outcome = start(
            plan,
            allow_root=args.allow_root,
            background=bool(command),
            server_pid=os.getpid() if command else None,
        )
    except PlanError as e:
        report_failure_without_home(f"Invalid {e.source}: " + "; ".join(e.problems), sys.stderr)
        return Outcome.INVALID
    except KeyboardInterrupt:
        # SIGINT: JupyterHub stopping a local server it gave up on (start_timeout); a sentence, no traceback
        report_failure_without_home(
            "Start interrupted: the server was stopped while its environments were prepared", sys.stdout
        )
        return INTERRUPTED
    if outcome == Outcome.DEGRADED and (args.degraded_ok or command):
        outcome = Outcome.OK
    if command and outcome == Outcome.OK:
        _exec_server(command, plan)
    return int(outcome)


def _exec_server(command: list[str], plan: Plan) -> None:
    """Become the server (the `wrap` delivery), without the plan and with the guards of copies left to the
    background."""
    import shutil

    from .engine.background import server_environment
    from .engine.faultpoints import hold

    executable = shutil.which(command[0]) or command[0]
    sys.stdout.flush()
    # The server, its kernels and terminals have no use for the plan: do not pass it on.
    os.environ.pop(PLAN_ENV_VAR, None)
    os.environ.pop(PLAN_FILE_ENV_VAR, None)
    # Copies left to the background: pip in its terminals and kernels meets the guard (PIP_PYTHON).
    os.environ.update(server_environment(Path(plan.resolve(plan.home or os.environ.get("HOME", "")).state_dir)))
    hold("start:server-exec")  # a test that shows the page while the server starts holds it here
    os.execvp(executable, command)


def _bake(args: argparse.Namespace) -> int:
    import time

    from .engine.imagecheck import parse_user, unreadable_paths
    from .engine.manifest import ManifestError, bake

    for option, value in (("--built-prefix", args.built_prefix), ("--since", args.since)):
        if value and len(args.paths) > 1:
            print(f"osl-hooks bake: {option} applies to one env; give one PATH", file=sys.stderr)
            return Outcome.INVALID
    try:
        user = parse_user(args.notebook_user)
    except ValueError:
        print(f"osl-hooks bake: --notebook-user {args.notebook_user!r} is not UID or UID:GID", file=sys.stderr)
        return Outcome.INVALID
    for path in args.paths:
        if not Path(path, "conda-meta").is_dir() and not Path(path, "bin").is_dir():
            print(f"osl-hooks bake: {path} does not look like an env (no conda-meta/ or bin/)", file=sys.stderr)
            return Outcome.INVALID
        _bake_bytecode(Path(path), args.compile)  # first: the check below covers the bytecode it writes too
        unreadable = unreadable_paths(path, user)
        if unreadable:
            shown = "".join(f"\n  {p}" for p in unreadable[:20])
            more = f"\n  ... and {len(unreadable) - 20} more" if len(unreadable) > 20 else ""
            print(
                f"osl-hooks bake: the notebook user ({args.notebook_user}) cannot read {len(unreadable)} path(s) in "
                f"{path}, so every start would fail to copy it:{shown}{more}\n"
                f"Fix it in the image build, before baking: chmod -R a+rX {path}",
                file=sys.stderr,
            )
            return Outcome.FAILED
        _warn_if_writable(path, user, args.notebook_user)
        started = time.monotonic()
        try:
            manifest = bake(path, args.built_prefix, args.since)
        except ManifestError as e:
            print(f"osl-hooks bake: --since {args.since}: {e}", file=sys.stderr)
            return Outcome.INVALID
        print(
            f"{path}: {manifest.files} files, {human_bytes(manifest.bytes)}, {len(manifest.prefix_files)} embed the "
            f"prefix, {len(manifest.packages.records)} packages; manifest {manifest.id[:12]} "
            f"written in {time.monotonic() - started:.1f} s"
        )
    return 0


def _warn_if_writable(path: str, user: tuple[int, int], user_text: str) -> None:
    from .engine.imagecheck import writable_paths

    writable = writable_paths(path, user)
    if writable:
        print(
            f"osl-hooks bake: the notebook user ({user_text}) can write {len(writable)} path(s) in {path} (e.g. "
            f"{writable[0]}), so a `linked` env over it is copied in full instead (the user's writes through links "
            "would go into the image). To link it, make it read-only for the notebook user in the image build, "
            f"after installing into it: chown -R root:root {path} && chmod -R go-w {path}",
            file=sys.stderr,
        )


def _bake_bytecode(root: Path, compile_it: bool) -> None:
    """Report sources without usable bytecode (each user's copy would compile them), or compile them."""
    from .engine import bytecode

    python = bytecode.interpreter(root)
    if python is None:
        return
    tag = bytecode.cache_tag(python)
    if compile_it:
        code, output = bytecode.compile_env(root, python)
        if code != 0:
            print(f"{root}: some sources did not compile (kept as they are):\n{output}")
    found = bytecode.survey(root, tag)
    if compile_it:
        print(f"{root}: compiled with {python}; {found.compiled:,} of {found.sources:,} sources have bytecode")
    elif found.missing:
        print(
            f"{root}: {found.missing:,} of {found.sources:,} Python sources have no usable bytecode ({tag}.pyc): "
            "every user's copy compiles them at first import, which makes the first kernel start slow; "
            "`osl-hooks bake --compile` compiles them into the image"
        )


def _retirement_command(plan: Plan, args: argparse.Namespace) -> int:
    """`remove NAME` and the detached `retire-after-ready` (imported here: a start never needs them)."""
    if args.command == "remove":
        from .engine.commands import remove

        return remove(plan, args.name, allow_root=args.allow_root)
    from .engine.retire_removal import remove_after_ready

    return remove_after_ready(plan, args.after_server)


def _reset(args: argparse.Namespace) -> int:
    from .engine.commands import reset

    return _with_plan(args, lambda plan: reset(plan, args.name, discard=args.discard, allow_root=args.allow_root))


def _with_plan(args: argparse.Namespace, action: Callable[[Plan], Outcome]) -> int:
    try:
        return int(action(load_plan(args.plan)))
    except PlanError as e:
        print(f"osl-hooks: {e}", file=sys.stderr)
        return Outcome.INVALID


def _diff(plan: Plan, name: str, export_format: str | None) -> int:
    from .engine.envdiff import describe, export
    from .engine.envstatus import EnvMissing, EnvNotFound, env_changes

    try:
        changes = env_changes(plan, name)
    except (EnvNotFound, EnvMissing) as e:
        print(f"osl-hooks diff: {e}", file=sys.stderr)
        return Outcome.FAILED
    if export_format:
        print(export(changes, export_format, name), end="")
    else:
        print("\n".join(describe(changes)) or f"{name}: no package changed against the image")
    return 0


def _plan(args: argparse.Namespace) -> int:
    if args.schema:
        from .plan import plan_schema

        print(json.dumps(plan_schema(), indent=2))
        return 0
    path = args.check or args.show
    try:
        plan = load_plan(path)
    except PlanError as e:
        print(e, file=sys.stderr)
        return Outcome.INVALID
    if args.show:
        print(plan.to_json())
    else:
        print(f"{path}: valid plan with {len(plan.environments)} environment(s)")
    return 0


def _status(args: argparse.Namespace) -> int:
    from .engine.copykind import not_linked_reason
    from .engine.envstatus import gather

    state_dir = Path(args.state_dir or Path(os.environ.get("HOME", "~"), DEFAULT_STATE_DIR)).expanduser()
    gathered = gather(state_dir)
    if gathered is None:
        print(f"no start has been recorded in {state_dir}")
        return 1
    if args.json:
        print(json.dumps(gathered, indent=1))
        return 0
    status, records, copies = gathered["last_start"], gathered["synced"], gathered["background_copies"]
    if status:
        print(f"last start: {status['state']} (started {status['started_at']}, finished {status['finished_at']})")
        for name, env in status["environments"].items():
            mode = env["mode"]
            if env["effective_mode"] not in (None, mode):
                mode = f"{mode} -> {env['effective_mode']}"
            print(f"  {name:20} {mode:18} {env['state']:9} {env['prefix'] or ''}")
            for problem in env["warnings"] + env["errors"]:
                print(f"      ! {problem}")
        for script in status["scripts"]:
            print(f"  script {script['path']}: {script['state']} {script['reason']}")
    for command in gathered["commands"]:  # run since the last start
        print(f"since then: {command['message']} ({command['state']}, finished {command['finished_at']})")
    for name, record in records.items():
        on_volume = human_bytes(record["bytes_on_volume"]) if record["bytes_on_volume"] is not None else "missing"
        served = f" (+ {human_bytes(record['bytes_via_links'])} through links)" if record["mode"] == "linked" else ""
        print(
            f"{record['mode']} env {name}: {record['target']}, {on_volume} on the volume{served}, "
            f"last synced {record['synced_at']}"
        )
        if record["mode"] == "linked" or record["not_linked_because"]:
            share = "not known" if record["linked_share"] is None else f"{record['linked_share']:.0%}"
            print(f"      linked share: {share} of its bytes through links into the image")
        for cause in record["not_linked_because"]:
            print(f"      not linked because {not_linked_reason(cause, record['source'])}")
        if record["packages_changed"] and any(record["packages_changed"].values()):
            counts = ", ".join(f"{n} {what}" for what, n in record["packages_changed"].items())
            print(f"      your packages against the image: {counts} (osl-hooks diff {name})")
        if record["update_waiting"]:
            print(f"      the image's {name} has changed: the next start updates your copy (your changes are kept)")
        for path in record["conflicts"]:
            print(f"      conflict: {path} (yours kept; the image's version is in {record['conflicts_dir']})")
    for name, copy in copies.items():
        print(f"background copy of {name}: {_background_state(name, copy)}")
    for row in gathered["retired"]:
        print(f"retired env {row['name']}: {row.get('message') or _retired_state(row)}")
    return 0


def _retired_state(row: dict) -> str:
    if row["state"] == "waiting":
        return f"{human_bytes(row['volume_bytes'])}, removed in {row['days_left']:.0f} day(s) unless you change it"
    if row["state"] == "due":
        return f"{human_bytes(row['volume_bytes'])}, removed after the next server start if you did not change it"
    return f"removed ({human_bytes(row['reclaimed_bytes'])} freed)"


def _background_state(name: str, copy: dict) -> str:
    """One line about an env's own copy made in the background: how far, how long still, or how it ended."""
    state = copy.get("state")
    meanwhile = f"{name} runs read-only from the image until it is complete"
    if state == "waiting":
        return f"waiting for the server to start, {copy.get('percent', 0)}% done; {meanwhile}"
    if state == "running":
        eta = f"about {copy['eta_seconds']:.0f} s left" if copy.get("eta_seconds") else "time left not known yet"
        return f"running, {copy.get('percent', 0)}% done, {eta}; {meanwhile}"
    if state == "stopped":
        return f"stopped at {copy.get('percent', 0)}% (the server stopped); it resumes at the next start"
    if state == "done":
        return f"complete at {copy.get('time')}: {copy.get('message')}"
    return f"{state} at {copy.get('time')}: {copy.get('message')}"


if __name__ == "__main__":
    sys.exit(main())
