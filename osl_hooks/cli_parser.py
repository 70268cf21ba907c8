"""The `osl-hooks` command line's parser (argparse), for every form of it but `start` as the deliveries run it.

`osl_hooks.cli` reads that one form itself (`_start_arguments`): importing argparse (with gettext and locale) and
building this parser cost a restart with nothing new about 3 ms. Everything else comes here: the other commands,
`--help`, mistakes (explained by argparse).
"""

from __future__ import annotations

import argparse

from .plan import DEFAULT_STATE_DIR, PLAN_ENV_VAR, PLAN_FILE_ENV_VAR

DESCRIPTION = "The `osl-hooks` command, run inside the user's container (or next to a local single-user server)."


def parser(command: str | None) -> argparse.ArgumentParser:
    """The command line's parser, with only `command`'s subparser when it names one (a start does not build
    the other commands' help), else with all of them (`--help`, a typo: the choices are listed)."""
    parser = argparse.ArgumentParser(prog="osl-hooks", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, add in COMMANDS.items():
        if command not in COMMANDS or name == command:
            add(commands)
    return parser


def _add_start(commands) -> None:  # type: ignore[no-untyped-def]
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


def _add_plan(commands) -> None:  # type: ignore[no-untyped-def]
    plan_cmd = commands.add_parser("plan", help="check or show a plan")
    plan_what = plan_cmd.add_mutually_exclusive_group(required=True)
    plan_what.add_argument("--check", metavar="FILE", help="validate a plan file and explain every problem")
    plan_what.add_argument("--show", metavar="FILE", help="print a plan file in canonical form, defaults filled in")
    plan_what.add_argument("--schema", action="store_true", help="print the plan's JSON schema")


def _add_bake(commands) -> None:  # type: ignore[no-untyped-def]
    from .engine.manifest import MANIFEST_FILE

    bake_cmd = commands.add_parser(
        "bake",
        help="write the manifest of envs in the image (at image build time; makes starts faster)",
        description=f"Describe each env (every file with its hash, the files that embed the prefix, the packages) "
        f"in PATH/{MANIFEST_FILE}. One line in a Dockerfile: RUN osl-hooks bake /opt/osl/envs/*",
    )
    bake_cmd.add_argument("paths", nargs="+", metavar="PATH", help="env directories")
    bake_cmd.add_argument(
        "--built-prefix", help="the prefix the envs were built at, if not their current path (one env only)"
    )
    bake_cmd.add_argument(
        "--since",
        metavar="OLD",
        help="the previous image's manifest of the env (one env only): the diff from it is baked in, so an update "
        "from that version reads only what changed",
    )
    bake_cmd.add_argument(
        "--compile",
        action="store_true",
        help="compile the envs' Python bytecode first, with each env's own python (else only reported)",
    )
    bake_cmd.add_argument(
        "--notebook-user",
        default="1000:100",
        metavar="UID[:GID]",
        help="the user starts run as, who must be able to read every file (default: 1000:100)",
    )


def _add_reset(commands) -> None:  # type: ignore[no-untyped-def]
    reset_cmd = _env_command(
        commands,
        "reset",
        "bring one synced or linked env back to exactly the image's version",
        "Your copy is moved to ~/.local/state/osl-hooks/backups/ first, unless --discard is given.",
    )
    reset_cmd.add_argument("--discard", action="store_true", help="delete your copy instead of moving it aside")


def _add_materialize(commands) -> None:  # type: ignore[no-untyped-def]
    materialize_cmd = _env_command(
        commands,
        "materialize",
        "make a linked env (or some of its files) independent of the image: links become real files",
        "Every link osl-hooks made into the image's env (or those at or under the PATHs given) is replaced by a "
        "copy of the file, which you can then edit.",
    )
    materialize_cmd.add_argument("paths", nargs="*", metavar="PATH", help="a file or directory of the env")


def _add_diff(commands) -> None:  # type: ignore[no-untyped-def]
    diff_cmd = _env_command(
        commands,
        "diff",
        "the packages you added, upgraded or removed in a synced or linked env, against the image",
        "Read from conda's and pip's package records in your copy and in the image's env.",
    )
    diff_cmd.add_argument(
        "--export", choices=("requirements", "environment"), help="print them as pip requirements or environment.yml"
    )


def _add_remove(commands) -> None:  # type: ignore[no-untyped-def]
    _env_command(
        commands,
        "remove",
        "remove your copy of an env your hub no longer offers, after saving a report of your changes",
        "The report (what `osl-hooks diff NAME` says, as an environment file, and the files you changed) is written "
        "to ~/.local/state/osl-hooks/removed/ first; then the copy and its record are removed. Envs "
        "your hub still offers and envs you built yourself are never removed.",
    )


def _add_retire_after_ready(commands) -> None:  # type: ignore[no-untyped-def]
    retire_cmd = commands.add_parser("retire-after-ready")  # started by `start`, detached: not for people
    retire_cmd.add_argument("--plan", metavar="FILE")
    retire_cmd.add_argument("--after-server", type=int, metavar="PID")


def _add_background_copy(commands) -> None:  # type: ignore[no-untyped-def]
    copy_cmd = commands.add_parser("background-copy")  # started by `start`, detached: not for people
    copy_cmd.add_argument("name")
    copy_cmd.add_argument("--plan", metavar="FILE")
    copy_cmd.add_argument("--after-server", type=int, metavar="PID")


def _add_status(commands) -> None:  # type: ignore[no-untyped-def]
    status_cmd = commands.add_parser("status", help="show what the last start did")
    status_cmd.add_argument("--state-dir", help=f"default: $HOME/{DEFAULT_STATE_DIR}")
    status_cmd.add_argument("--json", action="store_true", help="print status.json as it is")


COMMANDS = {
    "start": _add_start,
    "plan": _add_plan,
    "bake": _add_bake,
    "reset": _add_reset,
    "materialize": _add_materialize,
    "diff": _add_diff,
    "remove": _add_remove,
    "retire-after-ready": _add_retire_after_ready,
    "background-copy": _add_background_copy,
    "status": _add_status,
}


def _env_command(commands, name: str, help: str, description: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
    """A command about one env of the plan: NAME, --plan (and --allow-root for throwaway containers)."""
    command = commands.add_parser(name, help=help, description=description)
    command.add_argument("name", help="the env's name")
    command.add_argument("--plan", metavar="FILE", help="the plan file (default: as for start)")
    command.add_argument("--allow-root", action="store_true", help=argparse.SUPPRESS)
    return command
