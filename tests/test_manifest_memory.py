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


def test_loading_a_large_manifest_holds_little_beyond_its_lines(tmp_path):
    path = large_manifest(tmp_path)
    size = path.stat().st_size
    tracemalloc.start()
    try:
        manifest = load(path)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(manifest.entries) == 40_000 and manifest.baked_diff is not None
    assert manifest.entries["lib/python3.11/site-packages/pkg0/module_0.py"].size == 1
    # What loading needed beyond what it keeps: a chunk of the file at a time, not the file (twice, with the diff
    # cut off) beside the lines made from it.
    assert peak - kept < size / 2, (peak - kept, size)
