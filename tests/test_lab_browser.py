"""The Environments panel in a real JupyterLab (headless Chromium) on homes that real starts left: a linked env
made real from the panel, and an env that fell back to the image because the home was really full.

Make real: the user picks Make real on a linked env, gives a directory (then nothing: the whole env), confirms;
the task runs (202, polled) and the home's env and its record end exactly as `osl-hooks materialize` leaves them
on the same home; the panel shows how many files are links into the image before and after. (A root start links:
`notlinked.user_can_write` does not ask root, so the servers here run as root on a root start's home.)

Full disk: a home on its own small filesystem (tmpfs) that another writer fills while the first copy is made
(the start held right after it made its staging directory), so rsync runs out of space for real; the engine's
out-of-space rule makes the start fall back to the image with its sentence, and the panel and a notification
say so. With the demo hub, the copy made in the background and a reset: tests/test_demo.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from browser import ARTIFACTS, chromium, dismiss_news, wait_for_text
from conftest import fill_to, mounted_tmpfs, tree_snapshot
from labserver import LabServer
from test_demo import wait_for_panel

from osl_hooks.demo.envbuild import build_conda_env
from osl_hooks.demo.hub import CHECKOUT_LABEXTENSIONS, labextension_args
from osl_hooks.engine.faultpoints import HOLD_AT_ENV_VAR
from osl_hooks.engine.linkform import IMAGE_LINK
from osl_hooks.engine.manifest import MANIFEST_FILE, bake, load
from osl_hooks.engine.runner import start
from osl_hooks.engine.syncstate import read_links
from osl_hooks.engine.trees import STAGING_PREFIX
from osl_hooks.plan import Plan
from osl_hooks.status import human_bytes

pytestmark = pytest.mark.slow
STATE = ".local/state/osl-hooks"


@pytest.fixture
def browser():
    assert (CHECKOUT_LABEXTENSIONS / "osl-hooks/package.json").is_file(), "cd labextension && npm ci && npm run build"
    yield from chromium()


def open_panel(browser, lab: LabServer) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{lab.url}lab?token={lab.token}")
    wait_for_text(browser, r"Launcher", timeout=120)
    browser.find_element(By.CSS_SELECTOR, 'li[data-id="osl-hooks-environments"]').click()
    dismiss_news(browser)


def cli(home: Path, *args: str) -> None:
    """`osl-hooks COMMAND --plan <the start's plan> --allow-root ARGS...` in `home`, as a user in a terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSL_HOOKS_")} | {"HOME": str(home)}
    command, rest = args[0], args[1:]
    plan = ["--plan", str(home / STATE / "plan.json"), "--allow-root"]
    done = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", command, *plan, *rest], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr


def image_links(env: Path) -> list[str]:
    """The env's files that are links into the image (the hidden `.osl-image` links only lead there)."""
    found = []
    for directory, dirs, files in os.walk(env):
        for name in dirs + files:
            path = Path(directory, name)
            if path.is_symlink() and name != IMAGE_LINK:
                found.append(str(path.relative_to(env)))
    return sorted(found)


def env_state(home: Path, name: str) -> tuple[dict, dict]:
    """The env's tree and its sync record, as a materialize leaves them; what differs between two copies made of
    the same image aside (the time of the sync, the relocated files' mtimes, the random names of the base manifest
    and of the links file: the links it holds count, not its name), as the CLI's reset below makes the copy again."""
    record = json.loads((home / STATE / f"envs/{name}.json").read_text())
    record["links"] = read_links(home / STATE / "envs", name, record)
    record.pop("synced_at"), record.pop("base"), record.pop("links_file", None)
    record["overrides"] = {path: size for path, (size, _mtime) in record["overrides"].items()}
    return tree_snapshot(home / ".local/envs" / name), record


def make_real_from_the_panel(browser, name: str, paths: str) -> str:
    """Make real on the env's card, `paths` typed into its confirmation (nothing: the whole env); the dialog's text."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, f'[data-env="{name}"] button[data-action="Make real"]').click()
    dialog = wait_for_text(browser, rf"Make {name} real\?")
    assert "Nothing you changed is lost" in dialog, dialog
    browser.find_element(By.CSS_SELECTOR, ".jp-Dialog textarea").send_keys(paths)
    return dialog


def test_make_real_from_the_panel_leaves_what_the_cli_leaves(image, tmp_path, browser):
    from selenium.webdriver.common.by import By

    home = tmp_path / "home"
    home.mkdir()
    plan = {
        "version": 1,
        "home": str(home),
        "environments": [{"name": "lgeo", "mode": "linked", "source": str(image / "envs/geo")}],
    }
    start(Plan.from_dict(plan), allow_root=True, out=open(os.devnull, "w"))
    env = home / ".local/envs/lgeo"
    fresh = env_state(home, "lgeo")
    links = image_links(env)
    assert links, "the start linked the image's larger files"
    # The directory holding the most links: the one a user would make real first.
    chosen = Counter(str(Path(p).parent) for p in links).most_common(1)[0][0]
    left = [p for p in links if not p.startswith(chosen + "/")]
    record = fresh[1]

    lab = LabServer(home, tmp_path / "server", server_args=labextension_args())
    try:
        open_panel(browser, lab)
        shown = wait_for_panel(browser, lambda s: "lgeo" in s, "lgeo")["lgeo"]
        assert f"{len(links)} file(s) are still links into the image" in shown["text"], shown
        assert f"(+ {human_bytes(record['linked_bytes'])} through links)" in shown["text"], shown

        # A directory first: only its links become files.
        dialog = make_real_from_the_panel(browser, "lgeo", chosen)
        assert "only those at or under the paths you give" in dialog
        dismiss_news(browser)  # its toast may have come after the panel opened
        browser.save_screenshot(str(ARTIFACTS / "lab-make-real-confirm.png"))
        browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()
        wait_for_text(browser, r"Make real lgeo: Materialized lgeo")  # the task's end, said for 10 s
        after = f"{len(left)} file(s) are still links into the image"
        shown = wait_for_panel(
            browser, lambda s: "materialize ok" in s["lgeo"]["text"] and after in s["lgeo"]["text"], "the change"
        )["lgeo"]
        assert shown["state"] == "ready", shown
        assert image_links(env) == left
        by_panel = env_state(home, "lgeo")
        # The same request by the CLI, on the same home as the start left it (a reset makes the copy again).
        cli(home, "reset", "lgeo")
        assert env_state(home, "lgeo") == fresh, "the reset gives back the start's copy: the same home"
        cli(home, "materialize", "lgeo", "--", chosen)
        assert env_state(home, "lgeo") == by_panel, "the panel's Make real leaves what the CLI's leaves"

        # Then the whole env: nothing typed.
        cli(home, "reset", "lgeo")
        make_real_from_the_panel(browser, "lgeo", "")
        browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()
        shown = wait_for_panel(
            browser, lambda s: "No file is a link into the image any more" in s["lgeo"]["text"], "the whole env real"
        )["lgeo"]
        assert "through links" not in shown["text"], shown
        assert image_links(env) == []
        by_panel = env_state(home, "lgeo")
        cli(home, "reset", "lgeo")
        cli(home, "materialize", "lgeo")
        assert env_state(home, "lgeo") == by_panel
    finally:
        lab.close()


def test_the_panel_and_a_notification_say_an_env_fell_back_because_the_home_was_full(tmp_path, browser):
    geo = tmp_path / "image/envs/geo"
    build_conda_env(geo)
    bake(geo)
    needed = load(geo / MANIFEST_FILE).disk_bytes  # what the copy takes on the volume (no margin asked below)
    with mounted_tmpfs(tmp_path / "home", "32m") as home:
        plan = tmp_path / "plan.json"
        envs = [{"name": "geo", "mode": "synced", "source": str(geo)}]
        margins = {"disk_margin_fraction": 0, "disk_margin_bytes": 0}
        plan.write_text(json.dumps({"version": 1, "home": str(home), "environments": envs, **margins}))
        hold = tmp_path / "hold"
        hold.touch()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("OSL_HOOKS_")}
        environ[HOLD_AT_ENV_VAR] = f"first-copy:staging-made={hold}"
        command = [sys.executable, "-m", "osl_hooks.cli", "start", "--allow-root", "--plan", str(plan)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ)
        try:
            deadline = time.monotonic() + 120  # a bound for the start to reach its hold, not a speed expectation
            while not list(home.glob(f".local/envs/{STAGING_PREFIX}*")):
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0]
                time.sleep(0.05)
            filler = fill_to(home, 0)  # another writer takes the room the preflight saw
        finally:
            hold.unlink()
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 3, output  # degraded: the env runs from the image
        said = json.loads((home / STATE / "status.json").read_text())["environments"]["geo"]
        assert said["state"] == "fallback" and said["fallback"] == "disk_full", said
        [warning] = said["warnings"]
        # The engine's out-of-space sentence, with the size the copy needs and what to free
        why = re.escape(f"your home ran out of space while copying it (it needs about {human_bytes(needed)}); free ")
        assert re.search(why + r"(at least \d+(\.\d)? (bytes|kB|MB)|some space) in your home", warning), warning
        filler.unlink()  # the server runs; what the panel shows is what the start said

        lab = LabServer(home, tmp_path / "server", server_args=labextension_args())
        try:
            open_panel(browser, lab)
            shown = wait_for_panel(browser, lambda s: "geo" in s, "geo")["geo"]
            assert shown["state"] == "fell back to the image", shown
            assert (
                "It runs from the image, not from your own copy: your home has no room for your own copy: free "
                in (shown["text"])
            )
            assert warning in shown["text"], "the start's sentence: why, the size and what to free"
            assert "Kernels run from the image" in shown["text"], shown
            text = wait_for_text(
                browser, r"geo runs from the image, not from your own copy: your home is full\. Free space in it"
            )
            assert "Details" in text
            time.sleep(1)  # the notification slides in: its screenshot shows it in place
            browser.save_screenshot(str(ARTIFACTS / "lab-disk-full.png"))
        finally:
            lab.close()


def test_a_reset_while_a_kernel_of_the_env_runs_says_so_and_goes_on_only_when_confirmed(
    python_image, tmp_path, browser
):
    """The server refuses a reset while a kernel of the env runs unless the request says to go on: the panel's
    confirmation says the kernel runs and what going on means, Cancel leaves the copy, "Reset anyway" resets."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    home = tmp_path / "home"
    home.mkdir()
    envs = [{"name": "py", "mode": "synced", "source": str(python_image / "envs/py")}]
    start(
        Plan.from_dict({"version": 1, "home": str(home), "environments": envs}),
        allow_root=True,
        out=open(os.devnull, "w"),
    )
    backups = home / STATE / "backups"
    lab = LabServer(home, tmp_path / "server", server_args=labextension_args())
    try:
        kernel = lab.session.post(lab.url + "api/kernels", json={"name": "osl-py"}, timeout=60)
        assert kernel.status_code == 201, kernel.text
        open_panel(browser, lab)
        wait_for_panel(browser, lambda s: "kernel osl-py, running" in s.get("py", {}).get("text", ""), "the kernel")
        reset = '[data-env="py"] button[data-action="Reset"]'
        browser.find_element(By.CSS_SELECTOR, reset).click()
        dialog = wait_for_text(browser, r"Reset py\?")
        assert "A kernel of py is running: it keeps using the old files until you restart it" in dialog, dialog
        assert browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").text == "Reset anyway"
        browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-reject").click()
        WebDriverWait(browser, 30).until_not(lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-Dialog"))
        assert not backups.exists(), "Cancel leaves the copy as it is"

        browser.find_element(By.CSS_SELECTOR, reset).click()
        wait_for_text(browser, r"Reset py\?")
        browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()
        wait_for_text(browser, r"Reset py: Reset py to the image's version", timeout=120)
        assert len(list(backups.iterdir())) == 1
    finally:
        lab.close()
