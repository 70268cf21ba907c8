"""A linked copy's links are committed with its sync record in a file of their own: the record stays small (a
restart reads it alone), an update reads them once and writes them only when they change, a record of an
older version that listed them in itself keeps working, and a damaged links file costs a safe comparison."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_linked import Images, linked_plan, versions

from osl_hooks.engine.linked import own_links
from osl_hooks.engine.manifest import bake
from osl_hooks.engine.runner import Outcome
from osl_hooks.engine.syncstate import read_links

pytestmark = pytest.mark.slow

ENVS = ".local/state/osl-hooks/envs"


@pytest.fixture(scope="module")
def two_images(tmp_path_factory, wheels) -> Images:
    return Images(tmp_path_factory.mktemp("images"), wheels)


def record(home: Path) -> dict:
    return json.loads((home / ENVS / "py.json").read_text())


def links_files(home: Path) -> list[str]:
    return sorted(p.name for p in (home / ENVS).glob("py.links.*"))


def linked_copy_of_an_image_of_its_own(two_images: Images, run_start, tmp_path: Path) -> tuple[Path, dict]:
    """A linked copy of version 1 made from a copy of the image (which the test then changes), and its plan."""
    two_images.use("1")
    source = tmp_path / "image/envs/py"
    source.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", two_images.source, source], check=True)
    bake(source)
    plan = linked_plan(source, kernel=False)
    assert run_start(plan).outcome == Outcome.OK
    return source, plan


def test_the_record_names_its_links_file_and_a_restart_never_reads_it(two_images, home, run_start):
    two_images.use("1")
    plan = linked_plan(two_images.source, kernel=False)
    assert run_start(plan).outcome == Outcome.OK
    target = home / ".local/envs/py"
    saved = record(home)
    assert "links" not in saved and links_files(home) == [saved["links_file"]]
    links = read_links(home / ENVS, "py", saved)
    assert links == set(own_links(target, two_images.source)) and saved["linked_files"] == len(links)
    # A restart with nothing new reads the record alone: even a links file it could not read changes nothing.
    links_file = home / ENVS / saved["links_file"]
    links_file.write_bytes(b"damaged")
    result = run_start(plan)
    assert result.outcome == Outcome.OK and "py is up to date" in result.messages(), result.output
    assert links_file.read_bytes() == b"damaged"


def test_an_update_behind_links_keeps_the_links_file(two_images, home, run_start, tmp_path):
    """An image update that changes only files behind links: the links are the same, so the record keeps naming
    the same links file (nothing rewritten), and the copy shows the new content."""
    source, plan = linked_copy_of_an_image_of_its_own(two_images, run_start, tmp_path)
    target = home / ".local/envs/py"
    before = record(home)
    changed = next(p for p in sorted(own_links(target, source)) if p.endswith(".py"))
    (source / changed).write_text((source / changed).read_text() + "# changed by the image\n")
    bake(source)
    result = run_start(plan)
    assert result.outcome == Outcome.OK and not result.env("py")["warnings"], result.output
    after = record(home)
    assert after["source_id"] != before["source_id"] and after["links_file"] == before["links_file"]
    assert links_files(home) == [after["links_file"]]
    assert (target / changed).read_text().endswith("# changed by the image\n")
    assert read_links(home / ENVS, "py", after) == set(own_links(target, source))


def test_an_update_that_changes_the_links_writes_a_new_links_file(two_images, home, run_start):
    two_images.use("1")
    plan = linked_plan(two_images.source, kernel=False)
    run_start(plan)
    before = record(home)
    two_images.use("2")
    result = run_start(plan)
    assert result.outcome == Outcome.OK, result.output
    target = home / ".local/envs/py"
    assert versions(target) == ("2.0", "2.0", "2.0")
    after = record(home)
    assert read_links(home / ENVS, "py", after) != read_links(home / ENVS, "py", before)
    assert after["links_file"] != before["links_file"] and links_files(home) == [after["links_file"]]
    assert read_links(home / ENVS, "py", after) == set(own_links(target, two_images.source))


def test_a_record_that_lists_its_links_is_updated_and_rewritten_with_a_links_file(two_images, home, run_start):
    """Records of the versions before the links file list the links in themselves: an update reads them, finds
    no false conflict, and writes the record the new way."""
    two_images.use("1")
    plan = linked_plan(two_images.source, kernel=False)
    run_start(plan)
    old = record(home)
    old["links"] = sorted(read_links(home / ENVS, "py", old) or ())
    (home / ENVS / old.pop("links_file")).unlink()
    del old["linked_files"]
    (home / ENVS / "py.json").write_text(json.dumps(old))
    two_images.use("2")
    result = run_start(plan)
    assert result.outcome == Outcome.OK and not result.env("py")["warnings"], result.output
    target = home / ".local/envs/py"
    assert versions(target) == ("2.0", "2.0", "2.0")
    new = record(home)
    assert "links" not in new and links_files(home) == [new["links_file"]]
    assert read_links(home / ENVS, "py", new) == set(own_links(target, two_images.source))


def cut_short(data: bytes) -> bytes:
    return data[: len(data) // 2]  # fewer paths than its header says


def one_byte_changed(data: bytes) -> bytes:
    at = data.rindex(b".py")  # as many paths as its header says, one of them not what was written
    return data[:at] + b".pz" + data[at + 3 :]


@pytest.mark.parametrize("damage", [cut_short, one_byte_changed])
def test_a_damaged_links_file_makes_the_update_a_safe_comparison(two_images, home, run_start, damage):
    """Without its links, an update could not tell osl-hooks' links from the user's files: it compares the
    copy with the image instead (nothing the user made is lost), and commits the links it finds."""
    two_images.use("1")
    plan = linked_plan(two_images.source, kernel=False)
    run_start(plan)
    target = home / ".local/envs/py"
    mine = target / "lib/mine.txt"
    mine.write_text("mine\n")
    saved = record(home)
    links_file = home / ENVS / saved["links_file"]
    damaged = links_file.read_bytes()
    links_file.write_bytes(damage(damaged))
    two_images.use("2")
    result = run_start(plan)
    assert result.outcome in (Outcome.OK, Outcome.DEGRADED), result.output
    assert "no usable record" in result.output
    assert mine.read_text() == "mine\n"
    assert versions(target) == ("2.0", "2.0", "2.0")
    new = record(home)
    assert links_files(home) == [new["links_file"]]
    # The comparison removes nothing: the links of files the image no longer has stay, and are not recorded.
    shown = {p for p in own_links(target, two_images.source) if (two_images.source / p).exists()}
    assert read_links(home / ENVS, "py", new) == shown


def test_a_links_file_of_before_is_read_and_written_anew(two_images, home, run_start, tmp_path):
    """A links file of the format before (paths in no order, no checksum), left by an older osl-hooks: an update
    reads it (no false conflict, the new content shows) and commits the same links in the current format."""
    source, plan = linked_copy_of_an_image_of_its_own(two_images, run_start, tmp_path)
    target = home / ".local/envs/py"
    before = record(home)
    links = sorted(read_links(home / ENVS, "py", before) or (), reverse=True)
    older = f"osl-hooks-links 1 {len(links)}\n" + "\0".join(links)
    (home / ENVS / before["links_file"]).write_bytes(older.encode())
    changed = next(p for p in links if p.endswith(".py"))
    (source / changed).write_text((source / changed).read_text() + "# changed by the image\n")
    bake(source)
    result = run_start(plan)
    assert result.outcome == Outcome.OK and not result.env("py")["warnings"], result.output
    assert (target / changed).read_text().endswith("# changed by the image\n")
    after = record(home)
    assert after["links_file"] != before["links_file"] and links_files(home) == [after["links_file"]]
    assert (home / ENVS / after["links_file"]).read_bytes().startswith(b"osl-hooks-links 2 ")
    assert read_links(home / ENVS, "py", after) == set(links) == set(own_links(target, source))


def test_an_update_counts_the_copy_as_a_first_copy_of_the_new_version_would(two_images, home, run_start):
    """The figures of the sync record (what the copy takes on the volume, what its links serve) after an update
    that changes which files are links: the same as counted over the whole new version, though the update looked
    only at the paths it changed."""
    from osl_hooks.engine.linkplan import volume_bytes
    from osl_hooks.engine.manifest import MANIFEST_FILE, load

    two_images.use("1")
    plan = linked_plan(two_images.source, kernel=False)
    assert run_start(plan).outcome == Outcome.OK
    two_images.use("2")
    assert run_start(plan).outcome == Outcome.OK
    after = record(home)
    links = read_links(home / ENVS, "py", after) or set()
    theirs = load(two_images.source / MANIFEST_FILE)
    assert after["volume_bytes"] == volume_bytes(theirs, links, two_images.source)
    assert after["linked_bytes"] == sum(theirs.entries[p].size for p in links)
