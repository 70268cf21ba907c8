"""Reading a manifest holds its entries once: a first copy of a large env (131k entries, a 26 MB manifest) must fit
the memory a start is given (docs/benchmarks.md: ≤ 80 MB peak), so the file is never held whole beside its lines."""

from __future__ import annotations

import tracemalloc

from osl_hooks.engine.manifest import Entry, Manifest, load


def large_manifest(tmp_path, count: int = 40_000):
    """A baked manifest of `count` entries with a baked diff from a version before it (as `bake --since` writes)."""
    entries = {
        f"lib/python3.11/site-packages/pkg{i // 100}/module_{i}.py": Entry("f", i, 0o644, i, f"{i:064x}")
        for i in range(count)
    }
    old = tmp_path / "old.jsonl"
    Manifest(dict(entries), baked=True).dump(old)
    entries["lib/python3.11/site-packages/pkg0/module_0.py"] = Entry("f", 1, 0o644, 1, "f" * 64)
    new = tmp_path / "new.jsonl"
    Manifest(entries, baked=True).dump(new, since=load(old))
    return new


def test_a_large_manifest_is_never_held_twice(tmp_path):
    """Loading keeps the entries as the file's bytes (an update's lookups bisect them); a caller that needs every
    line (a first copy, a full comparison) gets them read a chunk at a time, the bytes dropped first."""
    path = large_manifest(tmp_path)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        manifest = load(path)
        kept, peak = tracemalloc.get_traced_memory()
        assert len(manifest.entries) == 40_000 and manifest.baked_diff is not None
        assert manifest.entries["lib/python3.11/site-packages/pkg0/module_0.py"].size == 1
        # What loading needed beyond what it keeps: the body once, not the file (twice, with the diff cut off).
        assert peak - kept < size / 2, (peak - kept, size)
        tracemalloc.reset_peak()
        lines = manifest.entries.lines
        with_lines, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) == 40_000
    # The lines replaced the bytes (not held beside them), and were read without the whole file beside them.
    assert with_lines - kept < size, (with_lines - kept, size)
    assert peak - with_lines < size / 2, (peak - with_lines, size)
