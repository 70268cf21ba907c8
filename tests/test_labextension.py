"""The JupyterLab extension ships prebuilt (docs/lab.md, "The JupyterLab extension"): a wheel built from a source
tree that holds the build (`npm run build` in labextension/) carries it under share/jupyter/labextensions/osl-hooks,
and JupyterLab lists it enabled in a fresh venv where no Node is on the PATH; a tree without the build (an image
recipe's copied tree made without Node) still builds a wheel, without the extension.

The panel itself, in a real JupyterLab behind the demo hub: tests/test_demo.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from localhub import SOURCE_ROOT

from osl_hooks.demo.hub import CHECKOUT_LABEXTENSIONS

pytestmark = pytest.mark.slow
DATA = "osl_hooks-0.2.0.data/data/share/jupyter/labextensions/osl-hooks/"


def source_tree(destination: Path, with_build: bool) -> Path:
    """What an image recipe copies (pyproject.toml, README.md, osl_hooks/), with or without the extension's build."""
    destination.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(SOURCE_ROOT / name, destination / name)
    skip = shutil.ignore_patterns("__pycache__", *([] if with_build else ["labextensions"]))
    shutil.copytree(SOURCE_ROOT / "osl_hooks", destination / "osl_hooks", ignore=skip)
    return destination


def build_wheel(tree: Path, out: Path) -> Path:
    """Offline, without build isolation, as tests/test_image_recipe.py builds osl-hooks."""
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*command, "-w", str(out), str(tree)], check=True, capture_output=True)
    (wheel,) = out.glob("osl_hooks-*.whl")
    return wheel


def test_the_wheel_carries_the_prebuilt_extension_and_jupyterlab_lists_it_enabled_without_node(tmp_path):
    assert (CHECKOUT_LABEXTENSIONS / "osl-hooks/package.json").is_file(), (
        "build the extension first: cd labextension && npm ci && npm run build"
    )
    wheel = build_wheel(source_tree(tmp_path / "src", with_build=True), tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert {DATA + "package.json", DATA + "install.json"} <= set(names), names
    assert any(re.fullmatch(re.escape(DATA) + r"static/remoteEntry\.[0-9a-f]+\.js", n) for n in names), names

    # A fresh venv (the current Python's JupyterLab visible through its site-packages), osl-hooks from the wheel.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin/python"
    # --ignore-installed: an osl-hooks of the same version in the current Python (an editable install) would
    # otherwise count as installed already
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--ignore-installed"]
    install.append(str(wheel))
    subprocess.run(install, check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env["PATH"] = str(venv / "bin")  # no node, no npm
    assert shutil.which("node", path=env["PATH"]) is None
    listed = subprocess.run(
        [str(python), "-m", "jupyterlab.labextensions", "list"], capture_output=True, text=True, env=env, check=True
    )
    out = listed.stdout + listed.stderr
    # listed under the venv's own share/jupyter (the wheel's copy), enabled, and nothing is missing
    section = out.split(f"{venv}/share/jupyter/labextensions", 1)
    assert len(section) == 2, out
    assert re.search(r"^\s+osl-hooks v0\.2\.0 \S*enabled\S* \S*OK\S*", section[1], re.MULTILINE), out


def test_a_source_tree_without_the_build_still_installs_without_the_extension(tmp_path):
    """An image recipe that copies a tree where nobody ran npm (offline builds) gets osl-hooks and its server
    extension, without the panel: the data-files globs match nothing, and nothing fails."""
    wheel = build_wheel(source_tree(tmp_path / "src", with_build=False), tmp_path / "dist")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if "labextensions" in n], names
    assert "osl_hooks-0.2.0.data/data/etc/jupyter/jupyter_server_config.d/osl_hooks.json" in names
