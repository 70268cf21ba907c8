"""Which files of an env a `linked` copy makes real, and which it makes symlinks into the image.

Every file that works the same through a link is a link, small ones too (`link_threshold`, 1 byte by
default, can keep small files real): a short link costs an inode and no data block
(`osl_hooks.engine.linkform`). These must always be real:

- files relocation rewrites (they embed the prefix: scripts, `pyvenv.cfg`, conda's recorded files), since
  the home's copy must say the home's prefix;
- `conda-meta/` and `*.dist-info/RECORD` (the package records: an update compares them, pip and conda
  rewrite them), and the env's configuration, `etc/` (tools rewrite it in place: `jupyter server extension
  enable --sys-prefix` opens `etc/jupyter/...json` for writing, which fails through a link);
- programs: ELF executables (with an interpreter, or static ones), `bin/python*` first, and executable
  scripts (`#!`). The kernel finds an executable's `$ORIGIN` (and CPython its `sys.prefix`) from the real
  file, so a linked program would load the image's libraries and report the image's prefix; a script's
  `#!` line is what tools rewrite and compare. Shared libraries may be links: the loader gives a library
  loaded through a link the link's directory as `$ORIGIN`, so it finds its neighbours in the home.

Two more reasons keep a file real, both about who may change it:

- a file the user can write in the image (Jupyter Docker Stacks give `/opt/conda` to the notebook user): a
  link would send the user's writes into the image, where nothing sees them and a restart loses them;
- in a venv whose pip resolves links before it decides what an uninstall may remove (Debian's and Ubuntu's
  patched pip: `is_local` takes the `realpath` of each file and keeps only those under `sys.prefix`), every
  file of a package pip manages (one with a `.dist-info/RECORD`): else `pip uninstall` and `pip install -U`
  leave the image's files behind ("Would not remove (outside of prefix)"). Which pip the env has is asked of
  the env itself: its `is_local` is run on a path inside the prefix that resolves outside it, once per
  version of the image's pip (the sync record keeps the answer).

Everything else is decided from the image's manifest, plus a read of the first bytes of executable files
(a few hundred, from the image).
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

from .._records import field, record
from .linkform import LinkForm
from .manifest import Entry, EntryLines, Manifest
from .notlinked import user_can_write
from .packages import record_name

ELF_MAGIC = b"\x7fELF"
_PT_INTERP = 3
_ET_EXEC = 2
ALWAYS_REAL_DIRS = ("conda-meta/", "etc/")
ALWAYS_REAL_FILES = ("pyvenv.cfg",)
BLOCK = 4096


def is_elf_program(path: str | os.PathLike[str]) -> bool:
    """True for an ELF executable (ET_EXEC, or a PIE with a PT_INTERP program header), not a library."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 52 or head[:4] != ELF_MAGIC or head[5] not in (1, 2):
                return False
            order = "<" if head[5] == 1 else ">"
            if struct.unpack_from(order + "H", head, 16)[0] == _ET_EXEC:
                return True
            if head[4] == 2:  # 64-bit
                (phoff,) = struct.unpack_from(order + "Q", head, 32)
                phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
            else:
                (phoff,) = struct.unpack_from(order + "I", head, 28)
                phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
            if phentsize < 4 or phnum > 4096:
                return False
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return any(struct.unpack_from(order + "I", table, i)[0] == _PT_INTERP for i in range(0, len(table) - 3, phentsize))


def is_program(path: str | os.PathLike[str]) -> bool:
    """True for a file the kernel runs by itself: an ELF executable or a `#!` script."""
    try:
        with open(path, "rb") as f:
            if f.read(2) == b"#!":
                return True
    except OSError:
        return False
    return is_elf_program(path)


def must_be_real(path: str, relocated: set[str]) -> bool:
    """True for paths that are never links, whatever their size (their content is not the deciding part)."""
    if path in relocated or path in ALWAYS_REAL_FILES or path.startswith(ALWAYS_REAL_DIRS):
        return True
    if record_name(path) is not None:  # an update tells the user's packages by their records' size and mtime
        return True
    return path.startswith("bin/python")


# Run by the env's own python: does its pip refuse a file inside the prefix that resolves outside it?
PIP_PROBE = """
import os, sys
try:
    from pip._internal.utils import misc
except Exception:
    raise SystemExit(0)
realpath = os.path.realpath
inside = os.path.join(realpath(sys.prefix), "osl-hooks-probe")  # the image's path may pass through a symlink
os.path.realpath = lambda p, *a, **k: "/osl-hooks-probe-elsewhere" if p == inside else realpath(p, *a, **k)
print("resolves" if not misc.is_local(inside) else "keeps")
"""


def pip_resolves_links(source: Path) -> bool:
    """True if the env's pip would refuse to remove links into another tree (Debian's patched `is_local`)."""
    return PipProbe(source).resolves()


class PipProbe:
    """`pip_resolves_links` asked of a process started now and answered when asked: a first copy classifies the
    env's files meanwhile (the env's python importing its pip took 0.5 s of a 5 s cold first start)."""

    def __init__(self, source: Path):
        import subprocess  # here: only a linked copy being made asks its pip

        try:
            command = [source / "bin/python", "-I", "-c", PIP_PROBE]
            self._process: subprocess.Popen | None = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
        except OSError:
            self._process = None

    def resolves(self) -> bool:
        import subprocess

        if self._process is None:
            return False
        try:
            answer, _ = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.close()
            return False
        return answer.strip() == "resolves"

    def close(self) -> None:
        """End the probe if it still runs (its answer is not wanted)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.communicate()


def pip_probe_key(theirs: Manifest, source: Path) -> str | None:
    """What the probe's answer depends on: the image's pip module that holds `is_local`, as the manifest
    describes it (None for an env that is not a venv, or has no pip: nothing to ask)."""
    if "pyvenv.cfg" not in theirs.entries:
        return None
    try:
        config = (source / "pyvenv.cfg").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    version = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", config, re.M)
    path = f"lib/python{version[1]}.{version[2]}/site-packages/pip/_internal/utils/misc.py" if version else ""
    entry = theirs.entries.get(path)
    return None if entry is None else f"{path} {entry.size} {entry.mtime_ns} {entry.digest}"


class Classifier:
    """Decides, one path at a time, whether a linked copy makes the image's file a link."""

    def __init__(self, theirs: Manifest, source: Path, threshold: int, pip_resolves: bool | None = None):
        """`pip_resolves`: the env's pip probe's answer, when known (else it is asked here)."""
        self.theirs, self.source, self.threshold = theirs, source, threshold
        self.relocated = {f.path for f in theirs.prefix_files}
        self.pip_packages: set[str] = set()
        if pip_resolves is None:
            pip_resolves = pip_probe_key(theirs, source) is not None and pip_resolves_links(source)
        if pip_resolves:
            records = theirs.packages.records
            self.pip_packages = {name for name, paths in records.items() if any(p.endswith("/RECORD") for p in paths)}

    def is_link(self, path: str) -> bool:
        owner = self.theirs.packages.owners.get(path) if self.pip_packages else None
        return self.entry_is_link(path, self.theirs.entries[path], owner)

    def entry_is_link(self, path: str, entry: Entry, owner: str | None) -> bool:
        """`is_link` for an entry in hand (`owner`: the package that owns it, needed when pip resolves links)."""
        if entry.kind != "f" or entry.size < self.threshold or must_be_real(path, self.relocated):
            return False
        image_file = f"{self.source}/{path}"
        if owner in self.pip_packages or user_can_write(image_file):
            return False
        return not (entry.mode & 0o111 and is_program(image_file))


@record
class FirstCopy:
    """What a linked first copy makes: its links, its directories with their modes, the rest of the image's
    paths (real files and the image's own symlinks) with their sizes, and its figures (`volume_bytes`, and the
    bytes its links serve)."""

    links: set[str] = field(default_factory=set)
    dirs: list[tuple[str, int]] = field(default_factory=list)
    real: list[tuple[str, int]] = field(default_factory=list)
    volume: int = 0
    linked_bytes: int = 0


def first_copy(theirs: Manifest, source: Path, threshold: int, pip_resolves: bool | None = None) -> FirstCopy:
    """Every path of the image classified once, in one pass that keeps only the plan: the manifest's entries are
    parsed a slice at a time and dropped (all of them at once, with their digests, took 110 MB for 131k files)."""
    classifier = Classifier(theirs, source, threshold, pip_resolves)
    form = LinkForm(source)
    plan = FirstCopy(volume=BLOCK)
    for path, entry, owner in _entries(theirs):
        if classifier.entry_is_link(path, entry, owner):
            plan.links.add(path)
            plan.linked_bytes += entry.size
            plan.volume += path_blocks(path, entry, True, form)
        else:
            if entry.kind == "d":
                plan.dirs.append((path, entry.mode))
            else:
                plan.real.append((path, entry.size))
            plan.volume += path_blocks(path, entry, False, form)
    plan.dirs.sort()  # parents first
    plan.real.sort()
    return plan


def _entries(theirs: Manifest) -> Iterator[tuple[str, Entry, str | None]]:
    """(path, entry, owner) of every path: a loaded manifest's lines parsed a slice at a time without keeping
    them (the line format is `EntryLines`'), a scanned one's dict as it is."""
    entries = theirs.entries
    if not isinstance(entries, EntryLines):
        owners = theirs.packages.owners
        for path, entry in entries.items():
            yield path, entry, owners.get(path)
        return
    lines = entries.lines
    for start in range(0, len(lines), _SLICE):
        for row in json.loads(b"[" + b",".join(lines[start : start + _SLICE]) + b"]"):
            yield row[0], Entry._make(row[1:7]), row[7]


_SLICE = 4096  # lines parsed at once: one json.loads per slice, a few megabytes alive


def linked_paths(theirs: Manifest, source: Path, threshold: int, pip_resolves: bool | None = None) -> set[str]:
    """The image's files a linked copy makes symlinks: all (of at least `threshold` bytes) but what must be real."""
    return first_copy(theirs, source, threshold, pip_resolves).links


def volume_bytes(theirs: Manifest, links: set[str], source: Path | str, block: int = BLOCK) -> int:
    """What a linked copy takes on the volume: real files and directories by their blocks, and a block for
    each link whose target is too long to live in the inode (see linkform: a few, and the root's)."""
    form = LinkForm(source)
    return block + sum(path_blocks(path, entry, path in links, form, block) for path, entry, _ in _entries(theirs))


def path_blocks(path: str, entry: Entry | None, is_link: bool, form: LinkForm, block: int = BLOCK) -> int:
    """What one path of a linked copy takes on the volume (see `volume_bytes`)."""
    if entry is None:
        return 0
    if is_link:
        return block if form.file_target(path).startswith("/") else 0
    if entry.kind == "f":
        return -(-entry.size // block) * block
    if entry.kind == "d":
        return block + (block if form.dir_target(path).startswith("/") else 0)
    return 0
