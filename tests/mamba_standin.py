"""A stand-in for the base image's `mamba`, for running the image recipe's steps without the network.

Takes exactly the arguments the recipe passes (argparse rejects a misspelt flag, as mamba does) and, for
`mamba env create --prefix P --file F`, reads the environment file (it must be a YAML mapping with
`dependencies`) and builds a *genuine* conda env at P from osl-hooks' local demo channel (py-rattler), in
place of solving F against conda-forge. When the base image keeps wheels for it (`$OSL_HOOKS_STANDIN_WHEELHOUSE`,
the podman stand-in base) and F asks for ipykernel, the env also gets a Python with ipykernel, so its kernel
can be registered and started. Like some real installers, it leaves the env's `conda-meta/*.json`
readable by root only, so the recipe must make the env readable itself. `mamba clean` has nothing to clean.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from osl_hooks.demo.envbuild import build_conda_env, build_python_env


def env_create(args: argparse.Namespace) -> int:
    spec = yaml.safe_load(Path(args.file).read_text())
    if not isinstance(spec, dict) or not spec.get("dependencies"):
        print(f"mamba (stand-in): {args.file} has no dependencies", file=sys.stderr)
        return 1
    wheelhouse = os.environ.get("OSL_HOOKS_STANDIN_WHEELHOUSE")
    if wheelhouse and "ipykernel" in spec["dependencies"]:
        prefix = build_python_env(Path(args.prefix), wheelhouse=Path(wheelhouse))
    else:
        prefix = build_conda_env(Path(args.prefix))
    for record in (prefix / "conda-meta").glob("*.json"):
        record.chmod(0o600)
    if not args.quiet:
        print(f"created {prefix} (stand-in for {', '.join(map(str, spec['dependencies']))})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mamba")
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("env").add_subparsers(dest="env_command", required=True)
    create = env.add_parser("create")
    create.add_argument("--yes", "-y", action="store_true")
    create.add_argument("--quiet", "-q", action="store_true")
    create.add_argument("--prefix", "-p", required=True)
    create.add_argument("--file", "-f", required=True)
    clean = commands.add_parser("clean")
    clean.add_argument("--all", "-a", action="store_true")
    clean.add_argument("--yes", "-y", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "env":
        return env_create(args)
    return 0


def run() -> None:
    """`mamba` itself: main, then leave without finalizing the interpreter.

    py-rattler's native (tokio) threads may still be releasing the GIL while the interpreter finalizes, which
    kills the process (CPython before 3.14: "PyGILState_Release: thread state ... must be current when
    releasing", SIGABRT or SIGSEGV; seen here in about 1 run in 10, after the env was complete). The work is
    done and written when main returns: leave as a short-lived installer may. Every `mamba` the stand-in images
    and build sandboxes install calls this.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
