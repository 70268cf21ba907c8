"""The JupyterLab extension ships prebuilt (docs/lab.md, "The JupyterLab extension"): a wheel built from a source
tree that holds the build (`npm run build` in labextension/) carries it under share/jupyter/labextensions/osl-hooks,
and JupyterLab lists it enabled in a fresh venv where no Node is on the PATH; a tree without the build (an image
recipe's copied tree made without Node) still builds a wheel, without the extension.

The panel in a real JupyterLab (headless Chromium) on a home whose last start brought an image update that met
a file the user changed, and could not copy another env: what it shows and the notifications it gives. With the
demo hub, a copy made in the background and a reset from the panel: tests/test_demo.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from browser import ARTIFACTS, chromium, dismiss_news, wait_for_text
from labserver import LabServer
from localhub import SOURCE_ROOT

from osl_hooks.demo.envbuild import PLACEHOLDER, build_conda_env, demo_packages
from osl_hooks.demo.hub import CHECKOUT_LABEXTENSIONS, labextension_args
from osl_hooks.engine.manifest import bake
from osl_hooks.engine.runner import start
from osl_hooks.plan import Plan

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


@pytest.fixture
def browser():
    yield from chromium()


def test_the_panel_shows_conflicts_after_an_image_update_and_an_env_that_fell_back(tmp_path, browser):
    """geo: the user changed a file the image's update changes too (a conflict: theirs kept); tiny: its packages
    cannot be relocated into this home's long path, so it runs from the image (a fallback). JupyterLab's panel
    shows both, with the command that takes the image's version, and a notification says each once."""
    from selenium.webdriver.common.by import By

    assert (CHECKOUT_LABEXTENSIONS / "osl-hooks/package.json").is_file(), "cd labextension && npm ci && npm run build"
    geo = tmp_path / "image/envs/geo"
    build_conda_env(geo)
    bake(geo)
    tiny = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))  # a short path whose packages allow 105 characters
    home = tmp_path / ("h" * 110)  # longer than that
    try:
        build_conda_env(tiny, [replace(p, placeholder=PLACEHOLDER[:105]) for p in demo_packages()])
        envs = [
            {"name": "geo", "mode": "synced", "source": str(geo)},
            {"name": "tiny", "mode": "synced", "source": str(tiny)},
        ]
        plan = Plan.from_dict({"version": 1, "home": str(home), "environments": envs})
        home.mkdir()
        start(plan, allow_root=True, out=open(os.devnull, "w"))
        (home / ".local/envs/geo/share/geodemo/geodemo.ini").write_text("data_dir = /my/own/data\n")
        build_conda_env(geo, demo_packages("2.0"))  # the image's update changes geodemo.ini too
        bake(geo)
        start(plan, allow_root=True, out=open(os.devnull, "w"))

        lab = LabServer(home, tmp_path / "server", server_args=labextension_args())
        try:
            browser.get(f"{lab.url}lab?token={lab.token}")
            wait_for_text(browser, r"Launcher", timeout=120)
            browser.find_element(By.CSS_SELECTOR, 'li[data-id="osl-hooks-environments"]').click()
            dismiss_news(browser)
            text = wait_for_text(browser, r"conflict\(s\) with the image's last update")
            panel = browser.find_element(By.ID, "osl-hooks-environments").text
            assert "1 conflict(s) with the image's last update: yours were kept." in panel, panel
            command = "cp -a \"$HOME\"/'.local/state/osl-hooks/envs/conflicts/geo/share/geodemo/geodemo.ini' "
            command += "\"$HOME\"/'.local/envs/geo/share/geodemo/geodemo.ini'"
            assert command in panel, panel
            assert "fell back to the image" in panel and "It runs from the image, not from your own copy" in panel
            # the notifications: the update's conflict, naming the file and what was kept; the fallback and why
            assert re.search(
                r"An image update of geo changed files you had changed too; yours were kept: share/geodemo/geodemo\.ini",
                text,
            )
            wait_for_text(browser, r"tiny runs from the image, not from your own copy: ")
            time.sleep(1)  # the notifications slide in
            browser.save_screenshot(str(ARTIFACTS / "lab-conflict-fallback.png"))
            # Diff: what `osl-hooks diff geo` says, in a dialog
            browser.find_element(By.CSS_SELECTOR, '[data-env="geo"] button[data-action="Diff"]').click()
            dialog = wait_for_text(browser, r"geo: your packages against the image")
            assert "Your packages are the image's." in dialog, dialog  # the panel said: no drift
            browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()
            # said once per start: a reload shows the panel, not the same notifications again
            browser.refresh()
            wait_for_text(browser, r"Launcher", timeout=120)
            time.sleep(2)
            assert "changed files you had changed too" not in browser.find_element(By.TAG_NAME, "body").text
        finally:
            lab.close()
    finally:
        subprocess.run(["rm", "-rf", str(tiny)], check=True)
