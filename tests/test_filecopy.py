"""An update's in-process transfer (`osl_hooks.engine.filecopy`): exactly the listed paths, as rsync left them
(content, mode plus u+w, mtime, links), each file renamed into place, and never through a link in the copy.
A kill in the middle of a file, and the next start removing what it left, is test_update.py's
test_update_killed_halfway_completes_on_the_next_start (a real SIGKILL)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from osl_hooks.engine.filecopy import copy_paths


def image_tree(root):
    names = ["-rf", "a:b", "sp ace", "üñí", "*glob?", "new/deep/er/file", "pkg/mod.py", "pkg/ro.py"]
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"image {i}\n" * (i + 1))
        os.utime(path, ns=(1_000_000_000, 1_600_000_000_123_456_789 + i))
    (root / "pkg/ro.py").chmod(0o444)
    (root / "new/deep").chmod(0o750)
    os.symlink("mod.py", root / "pkg/alias.py")
    return names + ["pkg/alias.py", "new", "new/deep", "new/deep/er"]


def test_copies_exactly_the_listed_paths_with_modes_times_and_links(tmp_path):
    source, target = tmp_path / "image", tmp_path / "copy"
    listed = image_tree(source)
    target.mkdir()
    (target / "user-file").write_text("mine\n")
    (target / "pkg").mkdir()
    (target / "pkg/mod.py").write_text("old\n")
    (target / "pkg/other.py").write_text("not listed: kept\n")

    copy_paths(source, target, sorted(listed))

    for path in listed:
        image, copy = source / path, target / path
        if image.is_symlink():
            assert os.readlink(copy) == os.readlink(image)
            continue
        st, cst = image.lstat(), copy.lstat()
        assert stat.S_IMODE(cst.st_mode) == stat.S_IMODE(st.st_mode) | 0o200, path  # rsync's --chmod=u+w
        if image.is_file():
            assert copy.read_bytes() == image.read_bytes(), path
            assert cst.st_mtime_ns == st.st_mtime_ns, path  # what an update recognizes as osl-hooks' own
    assert (target / "new/deep").lstat().st_mtime_ns == (source / "new/deep").lstat().st_mtime_ns
    assert (target / "user-file").read_text() == "mine\n"
    assert (target / "pkg/other.py").read_text() == "not listed: kept\n"
    left = {str(p.relative_to(target)) for p in target.rglob("*")}
    assert left == set(listed) | {"user-file", "pkg", "pkg/other.py"}, "no temporary file is left"


def test_a_link_in_the_copy_where_the_image_has_a_directory_is_never_written_through(tmp_path):
    source, target, outside = tmp_path / "image", tmp_path / "copy", tmp_path / "outside"
    listed = image_tree(source)
    target.mkdir()
    outside.mkdir()
    (target / "pkg").symlink_to(outside)

    with pytest.raises(OSError, match="pkg is not a directory"):
        copy_paths(source, target, sorted(p for p in listed if p.startswith("pkg/")))
    assert list(outside.iterdir()) == [], "nothing is written through the user's link"
    assert (target / "pkg").is_symlink()


def test_a_file_osl_hooks_left_where_the_image_now_has_a_directory_is_replaced(tmp_path):
    source, target = tmp_path / "image", tmp_path / "copy"
    listed = image_tree(source)
    target.mkdir()
    (target / "new").write_text("a file osl-hooks copied from the previous image\n")
    copy_paths(source, target, sorted(p for p in listed if p.startswith("new")))
    assert (target / "new/deep/er/file").read_text() == (source / "new/deep/er/file").read_text()


def test_an_update_of_thousands_of_directories_fits_a_containers_open_files_limit(tmp_path):
    """Containers often get a soft limit of 1,024 open files; an update of half of a large env names thousands of
    directories. The transfer keeps few of them open at once, so it completes under a low limit."""
    source, target = tmp_path / "image", tmp_path / "copy"
    paths = []
    for i in range(1500):
        (source / f"pkg{i}").mkdir(parents=True)
        (source / f"pkg{i}/__init__.py").write_text(f"version = {i}\n")
        paths += [f"pkg{i}", f"pkg{i}/__init__.py"]
    target.mkdir()
    script = textwrap.dedent(
        f"""
        import resource, sys
        from pathlib import Path
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        from osl_hooks.engine.filecopy import copy_paths
        copy_paths(Path({str(source)!r}), Path({str(target)!r}), sorted({paths!r}))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert all((target / f"pkg{i}/__init__.py").read_text() == f"version = {i}\n" for i in range(1500))


def test_a_parent_the_update_does_not_list_keeps_the_mode_the_user_gave_it(tmp_path):
    """Only the listed paths are the image's to set: a directory the user made private (chmod 700) keeps its mode
    when a file in it is updated, as the three-way update keeps every other change of the user's."""
    source, target = tmp_path / "image", tmp_path / "copy"
    image_tree(source)
    (target / "pkg").mkdir(parents=True)
    (target / "pkg").chmod(0o700)
    copy_paths(source, target, ["pkg/mod.py"])
    assert (target / "pkg/mod.py").read_text() == (source / "pkg/mod.py").read_text()
    assert stat.S_IMODE((target / "pkg").lstat().st_mode) == 0o700
