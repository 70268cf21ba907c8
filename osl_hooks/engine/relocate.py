"""Make a copied env work at its new path, the way conda itself relocates packages.

A conda env embeds its prefix in scripts, config files and some binaries. conda records, per package, which
files carry the prefix and whether as text or binary (`conda-meta/*.json`, `paths_data`); those records are
the list of files to rewrite, so relocation never scans the whole env. Files added by pip (entry-point
scripts in `bin/`, a venv's `pyvenv.cfg`) are not in conda's records; they are few and live in known places,
so they are found by a small scan of exactly those places.

Rules follow conda's: in text files every occurrence of the old prefix is replaced; in binary files each
NUL-terminated string that starts with the old prefix is rewritten in place and padded with NULs, so the
file keeps its size. A binary string can grow only into room that is certainly its own: when conda
installed the package it wrote the prefix over a longer placeholder (conda-build and rattler-build pad
theirs to 255 characters) and NUL-padded the rest, and `conda-meta` records that placeholder. So a
recorded binary may take any prefix up to its placeholder's length, provided the padding NULs are really
there; a binary found only by scanning may take no longer prefix than the one it has. `check()` finds out
before anything is copied, so the caller can choose not to copy at all.

Kept apart from copying on purpose (as conda-pack keeps `conda-unpack` apart from packing): relocation
works on any tree, already copied, and knows nothing of rsync.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from .._records import record
from .faultpoints import point

SCANNED_DIRS = ("bin",)
SCANNED_FILES = ("pyvenv.cfg",)
MAX_SCANNED_FILE = 1 << 20


@record(frozen=True)
class PrefixFile:
    """A file of the env that embeds its prefix, to rewrite where the env is copied to."""

    path: str  # relative to the env root
    mode: str  # "text" or "binary"
    placeholder_length: int = 0  # length of the placeholder conda replaced here (0: unknown)


class RelocationError(Exception):
    """The env cannot work at the new prefix; the message says why and what the admin can do."""


def prefix_files(root: str | os.PathLike[str], old_prefix: str) -> list[PrefixFile]:
    """The files under `root` that embed `old_prefix`: conda's records plus pip's known places."""
    root = Path(root)
    found: dict[str, PrefixFile] = {}
    meta = root / "conda-meta"
    if meta.is_dir():
        for record in sorted(meta.glob("*.json")):
            try:
                paths = json.loads(record.read_text(encoding="utf-8")).get("paths_data", {}).get("paths", [])
            except (OSError, ValueError):
                continue  # a damaged record is conda's problem; the pip scan below still runs
            for p in paths:
                if p.get("prefix_placeholder"):
                    mode = p.get("file_mode", "text")
                    found[p["_path"]] = PrefixFile(p["_path"], mode, len(p["prefix_placeholder"].encode()))
    needle = old_prefix.encode()
    candidates = [root / name for name in SCANNED_FILES]
    for directory in SCANNED_DIRS:
        if (root / directory).is_dir():
            candidates += sorted((root / directory).iterdir())
    for path in candidates:
        rel = path.relative_to(root).as_posix()
        if rel in found or path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_SCANNED_FILE:
            continue
        data = path.read_bytes()
        if needle in data:
            found[rel] = PrefixFile(rel, "binary" if b"\0" in data else "text")
    return [found[p] for p in sorted(found)]


def check(root: str | os.PathLike[str], files: list[PrefixFile], old_prefix: str, new_prefix: str) -> None:
    """Raise `RelocationError` if some binary file under `root` cannot take the new prefix.

    Reads only the binary prefix files (a handful per env), and only when the new prefix is longer.
    """
    old, new = old_prefix.encode(), new_prefix.encode()
    if len(new) <= len(old):
        return
    too_small: list[tuple[str, int]] = []
    for f in files:
        if f.mode == "binary" and Path(root, f.path).is_file():
            room = _room(Path(root, f.path).read_bytes(), old, f.placeholder_length)
            if room is not None and room < len(new):
                too_small.append((f.path, room))
    if too_small:
        path, room = min(too_small, key=lambda item: item[1])
        raise RelocationError(
            f"{len(too_small)} binary file(s) such as {path} have room for a prefix of at most {room} characters, "
            f"and {new_prefix} has {len(new)}. Bake the env at a prefix at least as long as its target, or at its "
            "target path"
        )


def relocate(root: str | os.PathLike[str], files: list[PrefixFile], old_prefix: str, new_prefix: str) -> int:
    """Rewrite `files` under `root` from `old_prefix` to `new_prefix`; return how many changed.

    Call `check` first: this function raises `RelocationError` halfway if a binary cannot be rewritten.
    """
    if old_prefix == new_prefix:
        return 0
    changed = 0
    for f in files:
        path = Path(root, f.path)
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        updated = relocated_bytes(data, f, old_prefix, new_prefix)
        if updated != data:
            _rewrite(path, updated)
            changed += 1
    return changed


def relocated_bytes(data: bytes, file: PrefixFile, old_prefix: str, new_prefix: str) -> bytes:
    """`data` of `file` as it reads once moved from `old_prefix` to `new_prefix`."""
    old, new = old_prefix.encode(), new_prefix.encode()
    if file.mode == "binary":
        return _replace_binary(data, old, new, file.placeholder_length)
    return data.replace(old, new)


def _replace_binary(data: bytes, old: bytes, new: bytes, placeholder_length: int) -> bytes:
    """conda's binary rule: rewrite each C string starting with `old`, NUL-pad it to the same length.

    The string may grow by up to `placeholder_length - len(old)` bytes, taken from the NULs that follow
    it: the padding conda wrote when it replaced the (longer) placeholder. NULs beyond that may belong
    to the next field of the binary and are never used.
    """
    growth = len(new) - len(old)
    spare = max(placeholder_length - len(old), 0)
    pattern = re.compile(re.escape(old) + rb"([^\0]*?)(\0+)")

    def replace(match: re.Match[bytes]) -> bytes:
        rest, nuls = match.group(1), match.group(2)
        if growth > min(len(nuls) - 1, spare):
            raise RelocationError(f"no room for {new.decode()} in place of {old.decode()}")
        return new + rest + b"\0" * (len(nuls) - growth)

    return pattern.sub(replace, data)


def _room(data: bytes, old: bytes, placeholder_length: int) -> int | None:
    """The longest prefix every string of `old` in a binary can take (None: it holds no such string)."""
    spare = max(placeholder_length - len(old), 0)
    nuls = [len(m.group(1)) for m in re.finditer(re.escape(old) + rb"[^\0]*?(\0+)", data)]
    return len(old) + min(min(nuls) - 1, spare) if nuls else None


def _rewrite(path: Path, data: bytes) -> None:
    """Replace the file's content in place, keeping its mode (a fresh copy is ours to change)."""
    mode = path.stat().st_mode
    if not os.access(path, os.W_OK):
        os.chmod(path, mode | 0o200)
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()
    os.chmod(path, mode)
    point("relocate:rewritten")
