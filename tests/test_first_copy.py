"""A first copy made by two rsyncs at once, each over half of the tree: the copy is the image, progress is summed."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from osl_hooks.engine.manifest import MANIFEST_FILE, bake
from osl_hooks.engine.sync import copy_tree, first_copy_halves, shared_dirs

OLD = 1_000_000_000 * 10**9  # an mtime (ns) no copy made now can have by chance


def every_path(root: Path) -> dict[str, os.stat_result]:
    found = {}
    for dirpath, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, root)] = os.lstat(path)
    return found


def test_the_halves_hold_every_path_of_the_image_once(python_image, tmp_path):
    source = tmp_path / "envs/py"
    shutil.copytree(python_image / "envs/py", source, symlinks=True)
    bake(source)
    halves = first_copy_halves(source)
    assert halves is not None, "a baked env of thousands of files is cut in two"
    first, second = halves
    assert first and second and not set(first) & set(second)
    roots = {*first, *second}
    through = shared_dirs(halves)
    for path in every_path(source):
        if path == MANIFEST_FILE or path in through:
            continue
        holders = [root for root in roots if path == root or path.startswith(f"{root}/")]
        assert len(holders) == 1, (path, holders)


def test_a_copy_in_two_halves_is_the_image_and_reports_the_bytes_of_both(python_image, tmp_path):
    source = tmp_path / "envs/py"
    shutil.copytree(python_image / "envs/py", source, symlinks=True)
    total = bake(source).bytes
    halves = first_copy_halves(source)
    assert halves is not None
    # The directories both rsyncs write into are read-only in the image, with an old mtime: the copy must
    # have the image's (plus the user's write permission), whichever rsync ends last.
    shared = sorted(shared_dirs(halves))
    for directory in shared:
        os.utime(source / directory, ns=(OLD, OLD))
    for directory in reversed(shared):
        os.chmod(source / directory, 0o555)
    destination = tmp_path / "copy"
    destination.mkdir(mode=0o700)
    try:
        done = [step.bytes_done for step in copy_tree(source, destination)]
    finally:
        for directory in shared:
            os.chmod(source / directory, 0o755)
    assert done == sorted(done) and done[-1] == total, "progress counts both rsyncs' bytes, up to the whole env"
    image, copy = every_path(source), every_path(destination)
    image.pop(MANIFEST_FILE)
    image[""], copy[""] = os.lstat(source), os.lstat(destination)
    assert sorted(copy) == sorted(image)
    for path, theirs in image.items():
        ours = copy[path]
        assert stat.S_IFMT(ours.st_mode) == stat.S_IFMT(theirs.st_mode), path
        if not stat.S_ISLNK(theirs.st_mode):
            assert stat.S_IMODE(ours.st_mode) == stat.S_IMODE(theirs.st_mode) | stat.S_IWUSR, path
            assert ours.st_mtime_ns == theirs.st_mtime_ns, path
        if stat.S_ISREG(theirs.st_mode):
            assert (destination / path).read_bytes() == (source / path).read_bytes(), path
