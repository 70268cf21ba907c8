"""Linked mode on genuine envs: big files are links into the image, everything that must be real is real,
the kernel and compiled code work from the home, and nothing-new restarts stay as cheap as synced ones."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import all_files
from linkedenv import big_wheel, native_package
from test_kernels import run_in_kernel

from osl_hooks.demo.envbuild import build_python_env, demo_packages
from osl_hooks.linkplan import is_elf_program
from osl_hooks.manifest import MANIFEST_FILE, bake, load
from osl_hooks.packages import record_name
from osl_hooks.runner import Outcome
from osl_hooks.sync import STAGING_PREFIX

pytestmark = pytest.mark.slow
THRESHOLD = 16384


def pip(prefix: Path, *args) -> None:
    extra = ["--no-index"] if args[0] == "install" else ["-y"]
    subprocess.run([prefix / "bin/python", "-m", "pip", "--disable-pip-version-check", "-q", *args, *extra], check=True)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("wheels")
    for name in ("bigprobe", "bigother"):
        for version in ("1.0", "2.0"):
            big_wheel(directory, name, version)
    return directory


@pytest.fixture(scope="session")
def linked_image(tmp_path_factory, wheels) -> Path:
    """An image env with ipykernel, the demo conda packages, compiled `linkprobe` and two big pip packages."""
    source = tmp_path_factory.mktemp("linked-image") / "envs" / "py"
    build_python_env(source, packages=[*demo_packages(), native_package("1.0")])
    pip(source, "install", wheels / "bigprobe-1.0-py3-none-any.whl", wheels / "bigother-1.0-py3-none-any.whl")
    bake(source)
    return source


def linked_plan(source: Path, **extra) -> dict:
    return {"environments": [{"name": "py", "mode": "linked", "source": str(source), **extra}]}


def links_in(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): os.readlink(p) for p in root.rglob("*") if p.is_symlink()}


def blocks(root: Path) -> int:
    return sum(os.lstat(p).st_blocks * 512 for p in [root, *root.rglob("*")])


def site(root: Path) -> Path:
    [path] = root.glob("lib/python3*/site-packages")
    return path


def test_first_linked_copy_links_big_files_and_copies_what_must_be_real(linked_image, home, run_start):
    result = run_start(linked_plan(linked_image))
    assert result.outcome == Outcome.OK, result.output
    target = home / ".local/envs/py"
    status = result.env("py")
    assert status["effective_mode"] == "linked" and status["prefix"] == str(target)
    manifest = load(linked_image / MANIFEST_FILE)
    links = links_in(target)
    image_links = {p for p, e in manifest.entries.items() if e.kind == "l"}
    made = {p: t for p, t in links.items() if p not in image_links}
    assert made, "big files must be links"
    for path, link in made.items():
        assert link == f"{linked_image}/{path}" and manifest.entries[path].size >= THRESHOLD, path
    assert {p: links[p] for p in image_links} == {p: manifest.entries[p].link for p in image_links}
    relocated = {f.path for f in manifest.prefix_files}
    must_be_real = relocated | {"pyvenv.cfg", "bin/linkprobe-run"}
    must_be_real |= {p for p in manifest.entries if p.startswith("conda-meta/") or record_name(p)}
    for path in must_be_real:
        assert (target / path).is_file() and not (target / path).is_symlink(), path
    assert is_elf_program(target / "bin/linkprobe-run") and not is_elf_program(linked_image / "lib/liblinkprobe.so")
    assert {"lib/liblinkprobe.so", "lib/libgeodemo.so"} & set(made) == {"lib/liblinkprobe.so"}  # geodemo: relocated
    assert any(p.endswith(".so") and "/linkprobe/_native" in p for p in made)
    for path in relocated:
        assert str(linked_image).encode() not in (target / path).read_bytes(), path
    real = {p.relative_to(target).as_posix() for p in all_files(target)}
    assert real | set(links) == {p for p, e in manifest.entries.items() if e.kind != "d"}
    assert all(manifest.entries[p].size < THRESHOLD for p in real - must_be_real - {"bin/linkprobe-run"})
    assert blocks(target) < blocks(linked_image) * 0.8
    assert not list(target.parent.glob(STAGING_PREFIX + "*"))


def test_kernel_and_compiled_code_run_from_the_home(linked_image, home, run_start, tmp_path):
    result = run_start(linked_plan(linked_image, kernel={"display_name": "Linked"}))
    assert result.outcome == Outcome.OK, result.output
    target = home / ".local/envs/py"
    output = run_in_kernel(
        home,
        "osl-py",
        "import sys, os, linkprobe\nprint(sys.prefix)\nloaded, version = linkprobe.where()\n"
        "print(os.path.realpath(os.path.dirname(loaded)), os.path.islink(loaded), version)",
    )
    prefix, library = output.strip().splitlines()
    assert prefix == str(target)
    # The extension module is a link; the loader gave it the link's directory as $ORIGIN, so the library
    # it loads is the home's (itself a link to the image's file).
    assert library == f"{target}/lib True 1.0"
    program = subprocess.run([target / "bin/linkprobe-run"], capture_output=True, text=True, check=True).stdout
    assert program.split()[0].startswith(f"{target}/bin/../lib/") and program.split()[1] == "1.0"
    # Why the program must be real: run through a link, its $ORIGIN is the image's directory.
    alias = tmp_path / "linkprobe-run"
    alias.symlink_to(linked_image / "bin/linkprobe-run")
    through_link = subprocess.run([alias], capture_output=True, text=True, check=True).stdout
    assert through_link.split()[0].startswith(f"{linked_image}/bin/../lib/")


def test_restart_with_nothing_new_is_up_to_date(linked_image, home, run_start):
    run_start(linked_plan(linked_image))
    target = home / ".local/envs/py"
    before = links_in(target)
    result = run_start(linked_plan(linked_image))
    assert result.outcome == Outcome.OK and "py is up to date" in result.messages()
    assert links_in(target) == before
