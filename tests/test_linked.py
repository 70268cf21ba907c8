"""Linked mode on genuine envs: files are short links into the image, everything that must be real is real,
the kernel, compiled code and the tools of an env work from the home, and nothing-new restarts stay as cheap
as synced ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import podsandbox
import pytest
from conftest import all_files, kill_during_first_copy, tree_snapshot
from linkedenv import DEEP_DIRS, LONG_NAME, SERVER_CONFIG, native_package, odd_paths_package, pip, site
from test_kernels import run_in_kernel

from osl_hooks.demo.envbuild import build_python_env, demo_packages
from osl_hooks.engine.linked import own_links
from osl_hooks.engine.linkform import IMAGE_LINK, INODE_TARGET_BYTES
from osl_hooks.engine.linkplan import is_elf_program, is_program
from osl_hooks.engine.manifest import MANIFEST_FILE, bake, load
from osl_hooks.engine.packages import record_name
from osl_hooks.engine.runner import Outcome
from osl_hooks.engine.trees import STAGING_PREFIX

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def linked_image(tmp_path_factory, wheels) -> Path:
    """An image env with ipykernel, the demo conda packages, compiled `linkprobe`, odd paths and two big pip packages."""
    source = tmp_path_factory.mktemp("linked-image") / "envs" / "py"
    build_python_env(source, packages=[*demo_packages(), native_package("1.0"), odd_paths_package()])
    pip(source, "install", wheels / "bigprobe-1.0-py3-none-any.whl", wheels / "bigother-1.0-py3-none-any.whl")
    bake(source)
    return source


def linked_plan(source: Path, **extra) -> dict:
    return {"environments": [{"name": "py", "mode": "linked", "source": str(source), **extra}]}


def links_in(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): os.readlink(p) for p in root.rglob("*") if p.is_symlink()}


def file_links(root: Path) -> dict[str, str]:
    """The links at the env's paths (not the hidden per-directory links they go through)."""
    return {p: t for p, t in links_in(root).items() if not p.endswith(IMAGE_LINK)}


def blocks(root: Path) -> int:
    return sum(os.lstat(p).st_blocks * 512 for p in [root, *root.rglob("*")])


def test_first_linked_copy_links_big_files_and_copies_what_must_be_real(linked_image, home, run_start):
    result = run_start(linked_plan(linked_image))
    assert result.outcome == Outcome.OK, result.output
    target = home / ".local/envs/py"
    status = result.env("py")
    assert status["effective_mode"] == "linked" and status["prefix"] == str(target)
    manifest = load(linked_image / MANIFEST_FILE)
    links = file_links(target)
    image_links = {p for p, e in manifest.entries.items() if e.kind == "l"}
    made = {p: t for p, t in links.items() if p not in image_links}
    assert made, "files must be links"
    for path in made:
        assert os.path.realpath(target / path) == os.path.realpath(linked_image / path), path
    # Every link's target lives in its inode (ext4: up to 59 bytes), but the root's (naming the image's env),
    # those of files whose own name is too long for it (naming the image's file) and, on the path nested too
    # deep for one lookup to follow all its directories' links, a few directories' (naming the image's).
    assert os.readlink(target / IMAGE_LINK) == str(linked_image)
    long_names = {p for p in made if len(os.fsencode(f"{IMAGE_LINK}/{Path(p).name}")) > INODE_TARGET_BYTES}
    long_links = {p for p, t in links_in(target).items() if len(os.fsencode(t)) > INODE_TARGET_BYTES}
    long_dir_links = {Path(p).parent.as_posix() for p in long_links if p.endswith(f"/{IMAGE_LINK}")}
    assert long_links - {IMAGE_LINK} - {f"{d}/{IMAGE_LINK}" for d in long_dir_links} == long_names
    assert all(made[p] == f"{linked_image}/{p}" for p in long_names)
    assert long_dir_links and all(d.startswith("share/oddpaths/d/d/") for d in long_dir_links)
    assert all(os.readlink(target / d / IMAGE_LINK) == f"{linked_image}/{d}" for d in long_dir_links)
    assert sum(os.lstat(target / p).st_blocks for p in made if p not in long_names) == 0
    assert {p: links[p] for p in image_links} == {p: manifest.entries[p].link for p in image_links}
    relocated = {f.path for f in manifest.prefix_files}
    must_be_real = relocated | {"pyvenv.cfg", "bin/linkprobe-run"}
    records = {p for p in manifest.entries if p.startswith("conda-meta/") or record_name(p)}
    must_be_real |= records | {p for p, e in manifest.entries.items() if p.startswith("etc/") and e.kind == "f"}
    for path in must_be_real:
        assert (target / path).is_file() and not (target / path).is_symlink(), path
    assert is_elf_program(target / "bin/linkprobe-run") and not is_elf_program(linked_image / "lib/liblinkprobe.so")
    assert {"lib/liblinkprobe.so", "lib/libgeodemo.so"} & set(made) == {"lib/liblinkprobe.so"}  # geodemo: relocated
    assert any(p.endswith(".so") and "/linkprobe/_native" in p for p in made)
    for path in relocated:
        assert str(linked_image).encode() not in (target / path).read_bytes(), path
    real = {p.relative_to(target).as_posix() for p in all_files(target)}
    assert real | set(links) == {p for p, e in manifest.entries.items() if e.kind != "d"}
    for path in real - must_be_real:  # nothing else is real but empty files and programs (ELF or #! scripts)
        assert manifest.entries[path].size == 0 or is_program(linked_image / path), path
    assert blocks(target) < blocks(linked_image) * 0.5
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


def run(*command, **kwargs) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, **kwargs).stdout


def test_tools_see_a_linked_copy_as_the_env_and_never_write_the_image(linked_image, home, run_start):
    """The short links and the hidden per-directory links trip none of the tools that read or change an env."""
    assert run_start(linked_plan(linked_image)).outcome == Outcome.OK
    target = home / ".local/envs/py"
    image_before = tree_snapshot(linked_image)
    deep = target / "share/oddpaths" / ("d/" * DEEP_DIRS) / "deep.txt"
    assert os.path.islink(deep) and deep.read_text() == "deep\n"  # deeper than 40 links: still resolves
    assert os.readlink(target / "share/oddpaths" / LONG_NAME) == f"{linked_image}/share/oddpaths/{LONG_NAME}"
    python, image_python = target / "bin/python", linked_image / "bin/python"
    metadata = (
        "import importlib.metadata as m; print(sorted((d.metadata['Name'], d.version) for d in m.distributions()))"
    )
    assert run(python, "-c", metadata) == run(image_python, "-c", metadata)
    pip_list = ("-m", "pip", "--disable-pip-version-check", "list", "--format=json")
    assert json.loads(run(python, *pip_list)) == json.loads(run(image_python, *pip_list))
    run(python, "-m", "pip", "--disable-pip-version-check", "check")
    run(python, "-m", "compileall", "-q", site(target))  # the linked .pyc files are current: nothing to write
    module, compiled = (
        site(target) / "bigprobe.py",
        site(target) / f"__pycache__/bigprobe.{sys.implementation.cache_tag}.pyc",
    )
    assert compiled.is_symlink()
    module.unlink()  # the user edits a module: importing it compiles it into the home, replacing the link
    module.write_text("VERSION = 'mine'\n")
    writes_bytecode = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    assert run(python, "-c", "import bigprobe; print(bigprobe.VERSION)", env=writes_bytecode).strip() == "mine"
    assert not compiled.is_symlink()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "PYTHON"))}
    specs = json.loads(run(target / "bin/jupyter", "kernelspec", "list", "--json", env={**clean, "HOME": str(home)}))
    kernels = {name: spec["resource_dir"] for name, spec in specs["kernelspecs"].items()}
    assert kernels["python3"] == f"{target}/share/jupyter/kernels/python3" and "osl-py" in kernels
    assert not [name for name in kernels if name.startswith(".")]
    extensions = subprocess.run(
        ["jupyter", "labextension", "list"],
        capture_output=True,
        text=True,
        env={**clean, "JUPYTER_PATH": f"{target}/share/jupyter"},
    )
    listed = extensions.stdout + extensions.stderr
    assert f"{target}/share/jupyter/labextensions" in listed and "linkprobe-lab v1.0.0" in listed, listed
    assert IMAGE_LINK not in listed
    config = target / SERVER_CONFIG  # what `jupyter server extension enable --sys-prefix` does to it
    config.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"oddpaths": True}}}))
    assert "OK" in run_in_kernel(home, "osl-py", "import linkprobe; print('OK' if linkprobe.where() else '')")
    # A conda transaction (py-rattler) upgrades conda packages in the copy: the old files (links) go, the new
    # ones are the user's; the image is not written.
    from osl_hooks.demo.envbuild import build_conda_env

    build_conda_env(target, [*demo_packages("2.0"), native_package("2.0"), odd_paths_package()])
    assert run(python, "-c", "import linkprobe; print(linkprobe.where()[1])").strip() == "2.0"
    assert not (target / "lib/liblinkprobe.so").is_symlink()
    assert tree_snapshot(linked_image) == image_before


def test_restart_with_nothing_new_is_up_to_date(linked_image, home, run_start):
    run_start(linked_plan(linked_image))
    target = home / ".local/envs/py"
    before = links_in(target)
    result = run_start(linked_plan(linked_image))
    assert result.outcome == Outcome.OK and "py is up to date" in result.messages()
    assert links_in(target) == before


class Images:
    """Two versions of one env, built for real, swapped in and out of one image path (two images, one path)."""

    def __init__(self, tmp_path: Path, wheels: Path):
        self.source = tmp_path / "image/envs/py"
        self.stored = {"1": tmp_path / "v1", "2": tmp_path / "v2"}
        build_python_env(self.source, ipykernel=False, packages=[*demo_packages(), native_package("1.0")])
        pip(self.source, "install", wheels / "bigprobe-1.0-py3-none-any.whl", wheels / "bigother-1.0-py3-none-any.whl")
        bake(self.source)
        subprocess.run(["cp", "-a", self.source, self.stored["1"]], check=True)
        from osl_hooks.demo.envbuild import build_conda_env

        build_conda_env(self.source, [*demo_packages("2.0"), native_package("2.0")])
        pip(self.source, "install", "-U", wheels / "bigprobe-2.0-py3-none-any.whl")
        bake(self.source)
        self.current = "2"

    def use(self, version: str) -> None:
        """Put image version `version` at the source path (what a start in that image sees)."""
        if version != self.current:
            self.source.rename(self.stored[self.current])
            self.stored[version].rename(self.source)
            self.current = version


def versions(target: Path) -> tuple[str, str, str]:
    """(linkprobe's library as the extension sees it, the program's, bigprobe's module) in the copy."""
    code = "import linkprobe, bigprobe; print(linkprobe.where()[1], bigprobe.VERSION)"
    ext, big = subprocess.run(
        [target / "bin/python", "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    program = subprocess.run([target / "bin/linkprobe-run"], capture_output=True, text=True, check=True).stdout.split()
    return ext, program[1], big


@pytest.fixture(scope="module")
def images(tmp_path_factory, wheels) -> Images:
    return Images(tmp_path_factory.mktemp("images"), wheels)


def test_image_update_behind_links_and_two_images_alternating(images, home, run_start, wheels):
    images.use("1")
    plan = linked_plan(images.source, kernel=False)
    assert run_start(plan).outcome == Outcome.OK
    target = home / ".local/envs/py"
    assert versions(target) == ("1.0", "1.0", "1.0")
    pip(target, "install", "-U", wheels / "bigother-2.0-py3-none-any.whl")  # the user's own upgrade
    assert not (site(target) / "bigother.py").is_symlink()
    big_lib = target / "lib/liblinkprobe.so"
    assert big_lib.is_symlink()
    for version in ("2", "1", "2"):
        images.use(version)
        result = run_start(plan)
        assert result.outcome == Outcome.OK, result.output
        assert any(m.startswith("Updated py from the image") for m in result.messages()), result.messages()
        expected = f"{version}.0"
        assert versions(target) == (expected, expected, expected)
        assert os.readlink(big_lib) == f"{IMAGE_LINK}/liblinkprobe.so"
        assert os.path.realpath(big_lib) == str(images.source / "lib/liblinkprobe.so")
        assert (site(target) / "bigprobe.py").is_symlink()
        user_module = site(target) / "bigother.py"
        assert not user_module.is_symlink() and "VERSION = '2.0'" in user_module.read_text()
        assert not [p for p in links_in(target) if not (target / p).exists()], "no dangling links"
        again = run_start(plan)
        assert "py is up to date" in again.messages()


def test_link_replaced_by_the_user_is_theirs_when_the_image_changes_the_file(images, home, run_start):
    images.use("1")
    plan = linked_plan(images.source, kernel=False)
    run_start(plan)
    target = home / ".local/envs/py"
    module = site(target) / "bigprobe.py"
    assert module.is_symlink()
    module.unlink()
    module.write_text("VERSION = 'mine'\n")
    images.use("2")
    result = run_start(plan)
    assert result.outcome == Outcome.DEGRADED  # a conflict is a warning, as for synced
    assert module.read_text() == "VERSION = 'mine'\n" and not module.is_symlink()
    assert any("changed both in the image and by you" in w for w in result.env("py")["warnings"])
    saved = home / ".local/state/osl-hooks/envs/conflicts/py" / module.relative_to(target)
    assert "VERSION = '2.0'" in saved.read_text()


def test_image_without_the_env_gets_no_kernel_and_says_why(linked_image, home, run_start, tmp_path):
    plan = linked_plan(linked_image)
    assert run_start(plan).outcome == Outcome.OK
    kernel_dir = home / ".local/share/jupyter/kernels/osl-py"
    assert kernel_dir.is_dir()
    away = tmp_path / "elsewhere"
    linked_image.rename(away)
    try:
        result = run_start(plan)
    finally:
        away.rename(linked_image)
    assert result.outcome == Outcome.DEGRADED
    [error] = result.env("py")["errors"]
    assert "is not in this image" in error and "its kernel is not registered" in error
    assert not kernel_dir.exists()
    assert run_start(plan).outcome == Outcome.OK and kernel_dir.is_dir()


def test_materialize_then_reset(linked_image, home, run_start, tmp_path):
    from osl_hooks.engine.commands import materialize, reset
    from osl_hooks.plan import Plan

    data = {"version": 1, "home": str(home), **linked_plan(linked_image, kernel=False)}
    run_start(data)
    target = home / ".local/envs/py"
    outside = tmp_path / "outside.txt"  # neither in the image nor in the home
    outside.write_text("not yours to copy")
    planted = site(target) / "planted.txt"
    planted.symlink_to(outside)
    ours = own_links(target, linked_image)
    old_style = site(target) / "bigprobe.py"  # a link as versions before short links made it: still osl-hooks'
    old_style.unlink()
    old_style.symlink_to(linked_image / old_style.relative_to(target))
    assert own_links(target, linked_image) == ours
    import io

    out = io.StringIO()
    assert materialize(Plan.from_dict(data), "py", allow_root=True, out=out) == Outcome.OK, out.getvalue()
    assert not own_links(target, linked_image) and not list(target.rglob(IMAGE_LINK)), "nothing names the image"
    for path in ours:
        assert (target / path).read_bytes() == (linked_image / path).read_bytes()
    assert planted.is_symlink() and os.readlink(planted) == str(outside)
    assert "py is up to date" in run_start(data).messages()
    assert reset(Plan.from_dict(data), "py", discard=True, allow_root=True, out=io.StringIO()) == Outcome.OK
    assert set(ours) <= set(own_links(target, linked_image))


@podsandbox.needed
def test_pip_upgrade_and_uninstall_in_a_pod_leave_the_read_only_image_alone(linked_image, wheels, tmp_path):
    plan = {
        "version": 1,
        "environments": [
            {"name": "py", "mode": "linked", "source": "/opt/osl/envs/py", "built_prefix": str(linked_image)}
        ],
    }
    home = tmp_path / "volume"
    home.mkdir()
    pod = podsandbox.PodSandbox(
        home=home,
        mounts={"/opt/osl/envs/py": linked_image, "/opt/wheels": wheels},
        env={"OSL_HOOKS_PLAN": json.dumps(plan)},
    )
    image_modules = {p: p.read_bytes() for p in site(linked_image).glob("big*.py")}
    started = pod.run(["osl-hooks", "start"])
    assert started.returncode == 0, started.stdout + started.stderr
    env = f"{podsandbox.POD_HOME}/.local/envs/py"
    target = home / ".local/envs/py"
    assert os.readlink(site(target) / "bigprobe.py") == f"{IMAGE_LINK}/bigprobe.py"
    assert os.readlink(target / IMAGE_LINK) == "/opt/osl/envs/py"
    assert os.readlink(site(target) / IMAGE_LINK) == f"../{IMAGE_LINK}/site-packages"
    pip_run = [f"{env}/bin/python", "-m", "pip", "--disable-pip-version-check", "-q"]
    upgrade = pod.run([*pip_run, "install", "-U", "--no-index", "/opt/wheels/bigprobe-2.0-py3-none-any.whl"])
    assert upgrade.returncode == 0, upgrade.stderr
    removal = pod.run([*pip_run, "uninstall", "-y", "bigother"])
    assert removal.returncode == 0, removal.stderr
    assert {p: p.read_bytes() for p in site(linked_image).glob("big*.py")} == image_modules
    upgraded = site(target) / "bigprobe.py"
    assert not upgraded.is_symlink() and os.lstat(upgraded).st_uid == 1000 and "VERSION = '2.0'" in upgraded.read_text()
    assert not os.path.lexists(site(target) / "bigother.py")
    again = pod.run(["osl-hooks", "start"])
    assert again.returncode == 0 and "py is up to date" in again.stdout, again.stdout + again.stderr
    kernel = pod.run(["python3", "-c", podsandbox.kernel_probe("osl-py", "sys.prefix, __import__('bigprobe').VERSION")])
    assert kernel.returncode == 0, kernel.stderr
    assert kernel.stdout.split() == [env, "2.0"]
    status = pod.run(["osl-hooks", "status"])
    assert f"linked env py: {env}, " in status.stdout and "through links)" in status.stdout, status.stdout


def test_disk_check_counts_what_a_linked_copy_writes(linked_image, tmp_path):
    """A home too small for a synced copy, big enough for the linked one: the check tells them apart."""
    import io

    from osl_hooks.engine.linkplan import linked_paths, volume_bytes
    from osl_hooks.engine.runner import start
    from osl_hooks.plan import DEFAULT_LINK_THRESHOLD, Plan

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    manifest = load(linked_image / MANIFEST_FILE)
    linked_need = volume_bytes(manifest, linked_paths(manifest, linked_image, DEFAULT_LINK_THRESHOLD), linked_image)
    assert linked_need < manifest.disk_bytes
    size_kib = (linked_need + manifest.disk_bytes) // 2 // 1024
    small = tmp_path / "small-home"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(small)], check=True)
    try:
        outcomes = {}
        for mode in ("synced", "linked"):
            env = {"name": "py", "mode": mode, "source": str(linked_image), "kernel": False}
            data = {"version": 1, "home": str(small), "environments": [env], "disk_margin_bytes": 0}
            outcomes[mode] = start(Plan.from_dict(data), allow_root=True, out=(out := io.StringIO())), out.getvalue()
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert outcomes["synced"][0] == Outcome.DEGRADED and "your home has" in outcomes["synced"][1]
    assert outcomes["linked"][0] == Outcome.OK, outcomes["linked"][1]


def test_killed_first_linked_copy_is_undone_by_the_next_start(linked_image, home, tmp_path):
    import sys

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "home": str(home), **linked_plan(linked_image, kernel=False)}))
    command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan)]
    envs = home / ".local/envs"
    kill_during_first_copy(command, envs)
    assert not (envs / "py").exists()
    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0 and "left by an interrupted start" in rerun.stdout, rerun.stdout + rerun.stderr
    assert not list(envs.glob(STAGING_PREFIX + "*")) and (envs / "py/lib/liblinkprobe.so").is_symlink()


def test_diff_lists_and_exports_the_users_package_changes(images, home, run_start, wheels, tmp_path, capsys):
    from osl_hooks.cli import main
    from osl_hooks.demo.envbuild import build_wheel

    images.use("1")
    data = {"version": 1, "home": str(home), **linked_plan(images.source, kernel=False)}
    run_start(data)
    target = home / ".local/envs/py"
    pip(target, "install", "-U", wheels / "bigother-2.0-py3-none-any.whl")
    pip(target, "install", build_wheel(tmp_path / "new", "oslprobe", "1.5"))
    pip(target, "uninstall", "bigprobe")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["diff", "py", "--plan", str(plan)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "+ oslprobe 1.5 (pip)",
        "~ bigother 1.0 -> 2.0 (pip)",
        "- bigprobe 1.0 (pip)",
    ]
    assert main(["diff", "py", "--plan", str(plan), "--export", "requirements"]) == 0
    assert capsys.readouterr().out == "# removed by the user: bigprobe 1.0\nbigother==2.0\noslprobe==1.5\n"
    assert main(["diff", "py", "--plan", str(plan), "--export", "environment"]) == 0
    assert "dependencies:\n  - pip:\n    - bigother==2.0\n    - oslprobe==1.5\n" in capsys.readouterr().out
    assert main(["status", "--state-dir", str(home / ".local/state/osl-hooks")]) == 0
    status = capsys.readouterr().out
    assert f"linked env py: {target}, " in status and " through links)" in status
    assert "your packages against the image: 1 added, 1 upgraded, 1 removed (osl-hooks diff py)" in status


def test_env_moved_to_another_path_in_the_image_gets_its_links_renewed(images, home, run_start):
    images.use("1")
    run_start(linked_plan(images.source, kernel=False))
    target = home / ".local/envs/py"
    old_style = site(target) / "bigprobe.py"  # a link as versions before short links made it
    old_style.unlink()
    old_style.symlink_to(images.source / old_style.relative_to(target))
    short = file_links(target)
    moved = images.source.parent / "py-moved"
    images.source.rename(moved)
    try:
        result = run_start(linked_plan(moved, kernel=False))
        links = file_links(target)
        resolved = {p: os.path.realpath(target / p) for p in own_links(target, moved)}
    finally:
        moved.rename(images.source)
    assert result.outcome == Outcome.OK, result.output
    assert os.readlink(target / IMAGE_LINK) == str(moved)
    assert links == {**short, old_style.relative_to(target).as_posix(): f"{IMAGE_LINK}/bigprobe.py"}
    assert resolved and all(r == f"{moved}/{p}" for p, r in resolved.items()), resolved
