"""The `osl-hooks` command, run inside the user's container (or next to a local single-user server)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from .plan import DEFAULT_STATE_DIR, PLAN_ENV_VAR, PLAN_FILE_ENV_VAR, PlanError, load_plan, plan_schema
from .runner import Outcome, start
from .status import read_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="osl-hooks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    start_cmd = commands.add_parser(
        "start",
        help="prepare the home: sync envs, register kernels, run setup scripts",
        description=(
            f"Prepare the user's home as the plan says. The plan comes from --plan, ${PLAN_ENV_VAR} (JSON) or "
            f"${PLAN_FILE_ENV_VAR}. Exit codes: 0 ready, 3 ready with warnings (degraded), 1 failed, 2 invalid plan. "
            "With a command after '--', run it in place of osl-hooks once the start is ready (the 'wrap' delivery)."
        ),
    )
    start_cmd.add_argument("--plan", metavar="FILE", help="the plan file")
    start_cmd.add_argument("--allow-root", action="store_true", help="run even as root (throwaway containers only)")
    start_cmd.add_argument("--degraded-ok", action="store_true", help="exit 0 rather than 3 when the start is degraded")
    start_cmd.add_argument("server_command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS to exec when ready")

    plan_cmd = commands.add_parser("plan", help="check or show a plan")
    plan_what = plan_cmd.add_mutually_exclusive_group(required=True)
    plan_what.add_argument("--check", metavar="FILE", help="validate a plan file and explain every problem")
    plan_what.add_argument("--show", metavar="FILE", help="print a plan file in canonical form, defaults filled in")
    plan_what.add_argument("--schema", action="store_true", help="print the plan's JSON schema")

    status_cmd = commands.add_parser("status", help="show what the last start did")
    status_cmd.add_argument("--state-dir", help=f"default: $HOME/{DEFAULT_STATE_DIR}")
    status_cmd.add_argument("--json", action="store_true", help="print status.json as it is")

    args = parser.parse_args(argv)
    if args.command == "start":
        return _start(args)
    if args.command == "plan":
        return _plan(args)
    return _status(args)


def _start(args: argparse.Namespace) -> int:
    command = args.server_command[1:] if args.server_command[:1] == ["--"] else args.server_command
    try:
        outcome = start(load_plan(args.plan), allow_root=args.allow_root)
    except PlanError as e:
        print(f"osl-hooks: {e}", file=sys.stderr)
        return Outcome.INVALID
    if outcome == Outcome.DEGRADED and (args.degraded_ok or command):
        outcome = Outcome.OK
    if command and outcome == Outcome.OK:
        executable = shutil.which(command[0]) or command[0]
        sys.stdout.flush()
        os.execvp(executable, command)
    return int(outcome)


def _plan(args: argparse.Namespace) -> int:
    if args.schema:
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
    state_dir = Path(args.state_dir or Path(os.environ.get("HOME", "~"), DEFAULT_STATE_DIR)).expanduser()
    status = read_status(state_dir)
    if status is None:
        print(f"no start has been recorded in {state_dir}")
        return 1
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    print(f"last start: {status['state']} (started {status['started_at']}, finished {status['finished_at']})")
    for name, env in status["environments"].items():
        mode = (
            env["mode"] if env["effective_mode"] in (None, env["mode"]) else f"{env['mode']} -> {env['effective_mode']}"
        )
        print(f"  {name:20} {mode:18} {env['state']:9} {env['prefix'] or ''}")
        for problem in env["warnings"] + env["errors"]:
            print(f"      ! {problem}")
    for script in status["scripts"]:
        print(f"  script {script['path']}: {script['state']} {script['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
