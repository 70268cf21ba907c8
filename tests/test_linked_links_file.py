"""The links file answers as the set of links it was written from: an update searches it for the paths the image
changed instead of reading every path, so its search, and the file an update writes from it with a few paths
added and removed, must agree with plain set arithmetic for any paths, names that sort next to each other and
names that are not UTF-8 included; a file that does not hold what its header says reads as none."""

from __future__ import annotations

import io
import os
import random

import pytest

from osl_hooks.engine.linkform import drop_dir_links
from osl_hooks.engine.linksfile import LinkChanges, SortedLinks, read, write
from osl_hooks.engine.sortedbytes import SortedRecords

# Neighbours in every order Python and the bytes could disagree on: a prefix, '-' and '.' (below '/'), '0' (above
# it), non-ASCII, and a name that is not UTF-8 (os.fsdecode keeps its byte as a lone surrogate).
NAMES = ["a", "a-b", "a.b", "a0", "ab", "é", "z", "ü.py", os.fsdecode(b"\xff.so"), "__init__.py", "x y"]


def some_paths(rng: random.Random, count: int) -> set[str]:
    paths = set()
    while len(paths) < count:
        paths.add("/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 4))))
    return paths


def written(links: set[str] | LinkChanges, tmp_path) -> SortedLinks | None:
    path = tmp_path / f"links-{os.urandom(4).hex()}"
    with open(path, "wb") as f:
        write(f, links)
    return read(path)


@pytest.mark.parametrize("sample_bytes", [1, 40, 8192])
def test_the_links_file_answers_as_the_set_it_was_written_from(tmp_path, monkeypatch, sample_bytes):
    """(Searches bisect a sample of the paths first: sampled every few bytes, or never, as well.)"""
    monkeypatch.setattr(SortedRecords, "SAMPLE_BYTES", sample_bytes)
    rng = random.Random(33)
    universe = some_paths(rng, 600)
    for _ in range(20):
        old = set(rng.sample(sorted(universe), rng.randint(0, 300)))
        sorted_links = written(old, tmp_path)
        assert sorted_links is not None and len(sorted_links) == len(old)
        assert set(sorted_links) == old
        assert all((p in sorted_links) == (p in old) for p in universe)
        for directory in {p.rpartition("/")[0] for p in universe}:
            inside = {p for p in old if not directory or p.startswith(directory + "/")}
            assert set(sorted_links.under(directory)) == inside
        # An update: some links go, some come, some go and come back; the file it writes is the set's.
        changes = LinkChanges(sorted_links)
        expected = set(old)
        for path in rng.sample(sorted(universe), 80):
            if rng.random() < 0.5:
                changes.discard(path)
                expected.discard(path)
            else:
                changes.add(path)
                expected.add(path)
        assert len(changes) == len(expected) and set(changes) == expected
        assert all((p in changes) == (p in expected) for p in universe)
        for directory in {p.rpartition("/")[0] for p in universe} | {""}:
            assert changes.holds_under(directory) == any(
                not directory or p.startswith(directory + "/") for p in expected
            )
        merged = written(changes, tmp_path)
        assert merged is not None and set(merged) == expected and len(merged) == len(expected)


def test_a_links_file_that_does_not_hold_what_its_header_says_reads_as_none(tmp_path):
    path = tmp_path / "links"
    with open(path, "wb") as f:
        write(f, {"lib/a.py", "lib/b.py", "share/c"})
    good = path.read_bytes()
    assert set(read(path) or ()) == {"lib/a.py", "lib/b.py", "share/c"}
    for damaged in (good[:-3], good.replace(b"b.py", b"x.py"), good + b"lib/d\0", b"", b"osl-hooks-links 2"):
        path.write_bytes(damaged)
        assert read(path) is None, damaged
    # The format of before (no order, no checksum) is still read, and marked to be written anew.
    path.write_bytes(b"osl-hooks-links 1 2\nshare/c\0lib/a.py")
    older = read(path)
    assert older is not None and set(older) == {"share/c", "lib/a.py"} and "lib/a.py" in older and older.rewrite


def test_an_update_drops_the_directory_links_only_of_directories_left_without_links(tmp_path):
    """The directory links an update removes are those of the directories its dropped links leave empty of
    links, found by searching the file (the same as a walk of every remaining link finds)."""
    root = tmp_path / "copy"
    old = {"lib/a/x.py", "lib/a/y.py", "lib/ab/z.py", "lib/b/w.py", "share/v"}
    for directory in ["", "lib", "lib/a", "lib/ab", "lib/b", "share"]:
        (root / directory).mkdir(parents=True, exist_ok=True)
        os.symlink("elsewhere", root / directory / ".osl-image")
    changes = LinkChanges(SortedLinks.of(old))
    for path in ("lib/a/x.py", "lib/a/y.py", "share/v"):
        changes.discard(path)
    drop_dir_links(root, old, changes)
    left = sorted(os.path.relpath(d, root) for d, _, files in os.walk(root) if ".osl-image" in files)
    assert left == [".", "lib", "lib/ab", "lib/b"]


def test_the_header_is_filled_in_after_the_body(tmp_path):
    """A writer streams the body and then fills in the header: it says how many paths there are, and a file of
    no links is a header alone."""
    f = io.BytesIO()
    write(f, set())
    assert f.getvalue() == b"osl-hooks-links 2 0000000000 00000000\n"
    path = tmp_path / "none"
    path.write_bytes(f.getvalue())
    empty = read(path)
    assert empty is not None and len(empty) == 0 and "a" not in empty and list(empty.under("")) == []
