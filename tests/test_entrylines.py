"""A loaded manifest finds each path's entry in the file's bytes, whatever the path's name shares with others."""

from __future__ import annotations

import pytest

from osl_hooks.engine.entrylines import Entry
from osl_hooks.engine.manifest import Manifest, load
from osl_hooks.engine.sortedbytes import SortedRecords

# Names that sort next to each other, or start like another, or that JSON escapes.
NAMES = [
    "a",
    "a b",
    "a.b",
    "a/b",
    "a/b/c",
    "ab",
    "a-",
    'q"uote',
    "back\\\\slash",
    "tab\tname",
    "new\nline",
    "über",
    "日本",
    "z" * 200,
]


@pytest.mark.parametrize("sample_bytes", [1, 300, SortedRecords.SAMPLE_BYTES])  # every line sampled, some, as used
def test_every_path_is_found_and_no_other(tmp_path, monkeypatch, sample_bytes):
    monkeypatch.setattr(SortedRecords, "SAMPLE_BYTES", sample_bytes)
    entries = {name: Entry("f", i, 0o644, i, f"{i:064x}") for i, name in enumerate(NAMES)}
    entries.update({f"lib/pkg{i:03d}/mod.py": Entry("f", i, 0o644, i, f"{i:064x}") for i in range(300)})
    path = tmp_path / "manifest.jsonl"
    Manifest(entries, baked=True).dump(path)
    loaded = load(path)
    assert len(loaded.entries) == len(entries)
    for name, entry in entries.items():
        assert loaded.entries.get(name) == entry, name
    for missing in ["", "a/", "aa", "a b c", "A", "lib/pkg", "lib/pkg000", "lib/pkg300/mod.py", "zz", "\\x00"]:
        assert loaded.entries.get(missing) is None and missing not in loaded.entries, missing
    assert "lines" not in loaded.entries.__dict__  # looked up in the bytes: no line of all was split
    # once every line is needed (a full comparison), lookups give the same answers from the lines
    assert sorted(loaded.entries) == sorted(entries)
    assert all(loaded.entries.get(name) == entry for name, entry in entries.items())


def test_an_empty_manifest_finds_nothing(tmp_path):
    path = tmp_path / "manifest.jsonl"
    Manifest({}, baked=True).dump(path)
    loaded = load(path)
    assert len(loaded.entries) == 0 and loaded.entries.get("a") is None
