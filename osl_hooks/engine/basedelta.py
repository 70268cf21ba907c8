"""A sync's base kept as the last full base plus a delta: an update writes what the image changed, not the env.

The base is the image's manifest as last synced, what the next three-way update compares with. Written whole
at every update, it cost what the env costs, not what the change costs: 7 MB for a 33k-file env, 26 MB for
131k, written to every user's volume at every image update (and the old one deleted), for an update of a few
hundred files. An update that knows every path where the new version's entries may differ from the recorded
base (those its decision compared) writes a delta instead: the new version's header, those paths, and the new
version's lines for the ones it still has. A delta lies on the full base the record already names; deltas do
not chain: the next update's delta lies on the same full base and also covers the paths of the delta before it.
Once a delta would cover more than 1/`FOLD_SHARE` of the env's files, the update writes a full base again.

Why a delta is the recorded version: where the new version differs from the full base, a path is either one
the old delta covered or one where the new version differs from the old (base + old delta); both are covered,
and every other path is the full base's. The delta names the full base's id, and both are checked (CRC-32) when
read; a damaged or missing one makes the base unusable, and the update falls back to the full comparison, as for
a damaged full base.

A delta file: a header line (the format, the full base's id, the new version's header fields, the paths, and the
CRC-32 of the rest), then the new version's lines for those paths, sorted, as a manifest has them.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

from .entrylines import EntryLines, LineOwners, OverlaidEntries
from .manifest import Manifest, ManifestError

FORMAT = "osl-hooks-base-delta"
FORMAT_VERSION = 1
FOLD_SHARE = 8


def can_lie_on(theirs: Manifest) -> bool:
    """Whether `theirs` can be kept as a delta: its lines are read from its file (`apply` checks the full base's)."""
    return isinstance(theirs.entries, EntryLines)


def covered(paths: Iterable[str], theirs: Manifest) -> list[str] | None:
    """`paths` sorted, or None when a delta of them would be too large (a full base is written instead)."""
    found = sorted(set(paths))
    return found if len(found) <= max(theirs.files, 1) / FOLD_SHARE else None


def write(path: Path, theirs: Manifest, full_id: str, paths: list[str]) -> None:
    """A new delta file at `path` (a name no record uses: never replaced), of `theirs` on the full base `full_id`."""
    assert isinstance(theirs.entries, EntryLines)
    lines = [line for p in paths if (line := theirs.entries.line(p)) is not None]
    body = b"".join(line + b"\n" for line in lines)
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "of": full_id,
        "manifest": theirs.header_fields(),
        "paths": paths,
        "lines_crc32": zlib.crc32(body),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps(header, ensure_ascii=False).encode() + b"\n" + body)


def read(path: Path) -> tuple[dict, list[bytes]]:
    """A delta file's header and lines, checked; raises `ManifestError` if it is damaged."""
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            body = f.read()
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise ManifestError(f"{path}: not an osl-hooks base delta of version {FORMAT_VERSION}")
        if zlib.crc32(body) != header["lines_crc32"] or not isinstance(header["paths"], list):
            raise ManifestError(f"{path}: its lines do not match its checksum (damaged)")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise ManifestError(f"{path}: cannot be read ({e})") from None
    return header, body.split(b"\n")[:-1]


def apply(path: Path, full: Manifest) -> Manifest:
    """The version the delta at `path` describes, on `full`; raises `ManifestError` if either does not fit."""
    header, lines = read(path)
    if header["of"] != full.id or not isinstance(full.entries, EntryLines):
        raise ManifestError(f"{path}: made on another base than the one kept")
    entries = OverlaidEntries(full.entries, header["paths"], lines)
    try:
        return Manifest.from_header(header["manifest"], entries, LineOwners(entries))
    except (ValueError, TypeError, KeyError) as e:
        raise ManifestError(f"{path}: cannot be read ({e})") from None
