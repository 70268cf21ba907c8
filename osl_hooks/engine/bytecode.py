"""Does an image's env ship compiled bytecode, and compiling it at bake time (`osl-hooks bake --compile`).

An env without `.pyc` files still works, but every user's copy compiles each module at its first import:
the first kernel start after a fresh copy is several times slower, for every user. Compiled once in the
image, the bytecode is copied with the env and stays valid in the relocated copy: CPython checks a
timestamp-based `.pyc` against its source's mtime and size, which `rsync -a` keeps, and corrects the
code's `co_filename` to the path it was loaded from. The few sources relocation rewrites get a new mtime,
so their `.pyc` is recompiled, rightly (their content changed); hash-based "unchecked" `.pyc` files would
keep the old prefix for those, which is why `--compile` writes timestamp-based ones.
"""

from __future__ import annotations

import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

_FLAG_HASH_BASED = 0b01


@dataclass
class Bytecode:
    """How many of an env's Python sources have a valid `.pyc` beside them (for its own interpreter)."""

    sources: int
    compiled: int
    cache_tag: str

    @property
    def missing(self) -> int:
        return self.sources - self.compiled


def interpreter(root: Path) -> Path | None:
    """The env's own Python, if it has one."""
    python = root / "bin" / "python"
    return python if python.exists() else None


def cache_tag(python: Path) -> str:
    """The interpreter's bytecode tag (`cpython-311`): the name its `.pyc` files carry."""
    result = subprocess.run(
        [str(python), "-I", "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return result.stdout.strip()


def python_dirs(root: Path) -> list[Path]:
    """Where an env keeps Python sources: `lib/pythonX.Y` (the stdlib of a conda python, site-packages)."""
    return sorted(p for p in root.glob("lib/python3*") if p.is_dir() and not p.is_symlink())


def survey(root: Path, tag: str) -> Bytecode:
    """Count the sources under the env's Python dirs, and those whose `.pyc` would be used as it is."""
    sources = compiled = 0
    for directory in python_dirs(root):
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith(".py"):
                    sources += 1
                    source = os.path.join(dirpath, name)
                    pyc = os.path.join(dirpath, "__pycache__", f"{name[:-3]}.{tag}.pyc")
                    compiled += _pyc_is_valid(source, pyc)
    return Bytecode(sources, compiled, tag)


def compile_env(root: Path, python: Path) -> tuple[int, str]:
    """Compile the env's sources with its own interpreter (timestamp-based `.pyc`, see the module doc).

    Returns compileall's exit code and its last lines of output: some packages ship sources that do
    not compile (templates, Python 2 examples), which compileall reports without stopping.
    """
    dirs = [str(d) for d in python_dirs(root)]
    if not dirs:
        return 0, ""
    result = subprocess.run(
        [str(python), "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "timestamp", *dirs],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, "\n".join((result.stdout + result.stderr).strip().splitlines()[-3:])


def _pyc_is_valid(source: str, pyc: str) -> bool:
    """Whether the interpreter would use `pyc` for `source` without compiling (PEP 552 header)."""
    try:
        with open(pyc, "rb") as f:
            header = f.read(16)
        st = os.stat(source)
    except OSError:
        return False
    if len(header) < 16:
        return False
    flags, mtime, size = struct.unpack("<4xIII", header)
    if flags & _FLAG_HASH_BASED:
        return True  # checked against the source's hash, which a copy keeps
    return mtime == int(st.st_mtime) & 0xFFFFFFFF and size == st.st_size & 0xFFFFFFFF
