"""The image's previous version, baked into its manifest: an update of 1% reads 1%, not two whole manifests.

`osl-hooks bake PATH --since OLD` (OLD: the previous image's manifest of the env) adds to the new manifest a last
line (the diff) with what the previous version had where the two differ: its id, its packages' records, the paths
whose lines differ, and its lines for them (written by `manifest.since_section`; read here). The header gives the
line's length and CRC-32 (`since_bytes`, `since_crc32`), so a start that only reads the header (nothing new) never
reads it, and an older engine, whose checksum of the entries then fails, describes the env instead. A start whose
copy was synced from exactly that version (the sync record's `source_id` is the diff's id) then knows the previous
version without reading the base manifest it kept, and without comparing the two manifests line by line: every path
the diff does not name is as the image has it now (`PreviousEntries`).

The check that makes this safe is the id: ids are content hashes of every entry, so the user's recorded copy and
the diff's base are the same tree. A diff from another version, or a damaged one, is not used: the update compares
the two whole manifests as before, and the log says why, once per update."""

from __future__ import annotations

import json
import zlib

from .entrylines import EntryLines, LineOwners, OverlaidEntries
from .manifest import Manifest
from .packages import PackageIndex


def previous_version(theirs: Manifest, base_id: str | None) -> tuple[Manifest | None, str | None]:
    """The version of the env the copy was synced from (`base_id`), as the image's baked diff gives it; or None
    and why not (None too when the image has no diff: that is the usual case, not worth a word)."""
    if theirs.baked_diff is None:
        return None, None
    line, crc = theirs.baked_diff
    try:
        since = json.loads(line) if zlib.crc32(line) == crc else None
    except ValueError:
        since = None
    if not isinstance(since, dict):
        return None, "its baked diff does not match its checksum (damaged)"
    if since.get("id") != base_id:
        return None, "its baked diff starts from another version than your copy's"
    if not isinstance(theirs.entries, EntryLines):
        return None, "it has no manifest file for the diff to complete"
    try:
        entries = PreviousEntries(theirs.entries, since["paths"], [line.encode() for line in since["lines"]])
    except (KeyError, TypeError, ValueError) as e:
        return None, f"its baked diff cannot be read ({e})"
    previous = Manifest(entries, packages=PackageIndex(since["packages"], LineOwners(entries)), baked=True)
    previous.__dict__["id"] = base_id  # checked above: the diff's id is the recorded copy's
    previous.built_prefix = theirs.built_prefix
    return previous, None


class PreviousEntries(OverlaidEntries):
    """The previous version's entries: the diff's own lines for the paths it names (no line: the path is new),
    the current manifest's for every other path. Only what an update asks for is parsed."""

    def differing(self, other: EntryLines) -> list[str]:
        if other is self.under:
            return self.paths  # exactly the paths whose lines differ, sorted (`manifest.since_section`)
        return super().differing(other)
