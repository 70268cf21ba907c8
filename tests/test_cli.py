"""The command line: `start` as the deliveries run it is read without argparse, with the arguments argparse gives.

A restart with nothing new costs little more than Python's own start, so the start's command line is read by hand
(`cli._start_arguments`); every other form goes to argparse (`cli_parser`), which explains mistakes and prints the
help.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from osl_hooks import cli, cli_parser

# The forms the deliveries write (`hub/delivery.py`: init container, postStart, wrap), and their neighbours.
READ_BY_HAND = [
    ["start"],
    ["start", "--plan", "/etc/osl-hooks/plan.json"],
    ["start", "--plan=/etc/osl-hooks/plan.json"],
    ["start", "--plan="],
    ["start", "--plan", ""],
    ["start", "--degraded-ok", "--allow-root"],
    ["start", "--allow-root", "--allow-root", "--plan", "a.json", "--plan", "b.json"],
    ["start", "--degraded-ok", "--", "jupyterhub-singleuser", "--ip=0.0.0.0", "--port", "8888"],
    ["start", "--plan", "p.json", "--", "--plan", "q.json", "--allow-root"],
    ["start", "--", "--"],
    ["start", "--"],
    ["start", "jupyterhub-singleuser", "--debug"],
    ["start", "--allow-root", "sh", "-c", "exec jupyter lab --plan x"],
    ["start", ""],
]
# Help, mistakes, abbreviations and values that look like options: argparse's (and its messages).
LEFT_TO_ARGPARSE = [
    ["start", "--help"],
    ["start", "-h"],
    ["start", "--plan"],
    ["start", "--plan", "-"],
    ["start", "--plan", "--allow-root"],
    ["start", "--pl", "p.json"],
    ["start", "--allow"],
    ["start", "--degraded-ok", "-x", "--", "true"],
    ["start", "-"],
    ["status"],
    ["strat", "--plan", "p.json"],
    [],
]


def effective(args) -> tuple:
    """What a start acts on: the plan, the flags, and the server command without the '--' before it."""
    command = args.server_command[1:] if args.server_command[:1] == ["--"] else args.server_command
    return args.command, args.plan, args.allow_root, args.degraded_ok, command


@pytest.mark.parametrize("argv", READ_BY_HAND, ids=" ".join)
def test_start_read_by_hand_as_argparse_reads_it(argv):
    by_hand = cli._start_arguments(argv)
    assert by_hand is not None, f"{argv} is a form the deliveries write, read without argparse"
    assert effective(by_hand) == effective(cli_parser.parser("start").parse_args(argv))


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_other_forms_are_left_to_argparse(argv):
    assert cli._start_arguments(argv) is None


def osl_hooks(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "osl_hooks.cli", *argv], capture_output=True, text=True)


def test_start_s_help_and_mistakes_are_argparse_s(tmp_path):
    """`start --help` prints the start's help; a typo is explained; an abbreviation argparse knows still works."""
    help_text = " ".join(osl_hooks("start", "--help").stdout.split())  # as wrapped for any terminal
    assert "usage: osl-hooks start [-h] [--plan FILE] [--allow-root] [--degraded-ok]" in help_text
    assert "Exit codes: 0 ready, 3 ready with warnings" in help_text
    typo = osl_hooks("start", "--plna", "p.json")
    assert typo.returncode == 2 and "unrecognized arguments: --plna" in typo.stderr
    missing = osl_hooks("start", "--pl")
    assert missing.returncode == 2 and "argument --plan: expected one argument" in missing.stderr
    abbreviated = osl_hooks("start", "--pl", str(tmp_path / "absent.json"))
    assert abbreviated.returncode == 2 and f"Invalid {tmp_path / 'absent.json'}: cannot read" in abbreviated.stderr
