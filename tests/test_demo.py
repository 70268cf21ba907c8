"""The README's first command, `python -m osl_hooks.demo`, run for real and driven like a user would.

Through the REST API: the spawn progress stream carries osl-hooks' messages in order before "ready", the
kernelspecs API lists the synced env's kernel, a kernel runs a cell in it, a failed start says why, and
Ctrl-C stops the hub, the proxy and the servers. In a real browser (headless Chromium, driven by
Selenium through Debian's chromedriver): the spawn-pending page shows the progress, and a failed start
shows a sentence the user can read. Screenshots are kept in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from localhub import Hub, execute, free_port

from osl_hooks.demo.hub import FAILING_USER
from osl_hooks.engine import manifest
from osl_hooks.status import human_bytes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def start_demo(directory: Path) -> Hub:
    """Run the README's demo command in `directory` on free ports, with an API token for the test."""
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "osl_hooks.demo", "--dir", str(directory), "--port", str(port)]
    command += ["--hub-port", str(free_port()), "--proxy-api-port", str(free_port())]
    return Hub(directory, command, port, token, env={"OSL_HOOKS_DEMO_API_TOKEN": token}, start_timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    hub = start_demo(tmp_path_factory.mktemp("demo"))
    try:
        yield hub
    finally:
        hub.close()


def messages(events: list[dict]) -> list[str]:
    return [e.get("message", "") for e in events]


def index_of(texts: list[str], pattern: str) -> int:
    return next(i for i, text in enumerate(texts) if re.search(pattern, text))


def test_progress_reaches_the_user_in_order_then_the_env_runs(demo):
    assert demo.api("POST", "/hub/api/users/alice")[0] == 201
    started = time.monotonic()
    assert demo.api("POST", "/hub/api/users/alice/server")[0] == 202
    events = demo.progress("alice")
    first_start = time.monotonic() - started
    assert events[-1].get("ready"), events[-1]
    texts = messages(events)
    # The env's total is whatever the index served today: take it from the manifest the demo baked.
    total = human_bytes(manifest.load(demo.directory / "image/envs/python" / manifest.MANIFEST_FILE).bytes)
    order = [
        r"^Preparing your environments \(2 configured\)$",
        rf"^Syncing python: \d+(\.\d)? [kM]?B(ytes)? of {re.escape(total)} \(\d+%\)$",
        r"^Synced python: ",
        r"^Registered kernel Python \(demo env\)$",
        r"^Your own copy of geo will be made in the background",  # after the server started
        r"^Running setup script 10-hello\.sh$",
        r"^Your environments are ready \(\d+\.\d s\)$",
    ]
    positions = [index_of(texts, pattern) for pattern in order]
    assert positions == sorted(positions), texts
    copied = [int(m.group(1)) for t in texts if (m := re.search(r"^Syncing python: .* \((\d+)%\)$", t))]
    assert copied and copied == sorted(copied), "the copy's percentage never goes back"
    percents = [e["progress"] for e in events if "progress" in e]
    assert percents == sorted(percents), "the progress bar never goes back"

    home = demo.directory / "homes/alice"
    status, specs = demo.api("GET", "/user/alice/api/kernelspecs")
    assert status == 200 and specs["kernelspecs"]["osl-python"]["spec"]["display_name"] == "Python (demo env)"
    status, kernel = demo.api("POST", "/user/alice/api/kernels", {"name": "osl-python"})
    assert status == 201, kernel
    output = execute(
        demo, "alice", kernel["id"], "import os, sys; print(sys.prefix); print(os.environ['GEODEMO_DATA'])"
    )
    assert output.splitlines() == [f"{home}/.local/envs/python", f"{home}/.local/envs/python/share/geodemo"]

    demo.stop_server("alice")
    started = time.monotonic()
    assert demo.api("POST", "/hub/api/users/alice/server")[0] == 202
    again = messages(demo.progress("alice"))
    second_start = time.monotonic() - started
    assert "python is up to date" in again and "geo is up to date" in again
    print(f"\ndemo: Start -> Ready {first_start:.1f} s for the first start, {second_start:.1f} s for the second")


def test_failed_start_says_why(demo):
    assert demo.api("POST", f"/hub/api/users/{FAILING_USER}")[0] in (201, 409)  # 409: the browser test made it
    # 202: still starting; 201: the start had already ended (it fails fast when the browser test spawned first)
    assert demo.api("POST", f"/hub/api/users/{FAILING_USER}/server")[0] in (201, 202)
    events = demo.progress(FAILING_USER)
    assert events[-1].get("failed"), events[-1]
    final = events[-1]["message"]
    # the failure sentence carries the failing script's last output, and where the whole log is
    assert final.startswith(
        "Spawn failed: Your environments could not be prepared. Start failed: Setup script 10-hello.sh exited "
        "with code 1 (last output: "
    ), final
    assert "the demo setup script fails on purpose" in final, final
    assert final.endswith(". The full log is in ~/.local/state/osl-hooks/start.log."), final
    # the failing script's last output lines are on the page, with its event
    assert any(
        "10-hello.sh exited with code 1 (last output:" in m and "fails on purpose" in m for m in messages(events)
    ), messages(events)
    assert "the demo setup script fails on purpose" in demo.log_text(), "the admin finds the details in the hub log"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,800",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(browser, demo, user: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{demo.url}/hub/logout")
    browser.get(f"{demo.url}/hub/login")
    browser.find_element(By.ID, "username_input").send_keys(user)
    browser.find_element(By.ID, "password_input").send_keys("any password")
    browser.find_element(By.ID, "login_submit").click()


def page_text(browser) -> str:
    """The page's visible text, read in one script call (no element handle to go stale while the page
    redirects from the spawn page to JupyterLab); empty while a navigation is under way."""
    from selenium.common.exceptions import WebDriverException

    try:
        return browser.execute_script("return document.body ? document.body.innerText : ''") or ""
    except WebDriverException:
        return ""


def wait_for_text(browser, pattern: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = page_text(browser)
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} never appeared; the page says:\n{page_text(browser)}")


def test_spawn_page_shows_osl_hooks_progress(demo, browser):
    sign_in(browser, demo, "bob")
    wait_for_text(browser, r"Syncing python: .* of .* \(\d+%\)")
    # the other env's first copy is made in the background: the page says so, and that it is read-only meanwhile
    wait_for_text(browser, r"Your own copy of geo will be made in the background.*read-only")
    assert "/hub/spawn-pending/bob" in browser.current_url
    # osl-hooks' spawn page (c.JupyterHub.template_paths): the event log is open, every step a line in it
    assert browser.execute_script("return document.getElementById('progress-details').open") is True
    browser.save_screenshot(str(ARTIFACTS / "spawn-progress.png"))
    # while the server itself starts (95%), a clock shows the page is alive
    wait_for_text(browser, r"Starting your notebook server… still working \(\d+ s\)", timeout=180)
    wait_for_text(browser, r"Launcher", timeout=180)  # then JupyterLab, with the env's kernel
    text = wait_for_text(browser, r"Python \(demo env\)")
    assert "/user/bob/lab" in browser.current_url
    assert "Python (demo env)" in text
    browser.save_screenshot(str(ARTIFACTS / "jupyterlab-launcher.png"))


def test_spawn_page_shows_a_readable_error(demo, browser):
    sign_in(browser, demo, FAILING_USER)
    text = wait_for_text(browser, r"Spawn failed: ")
    text = wait_for_text(browser, r"Your server could not start")
    assert "Your environments could not be prepared. Start failed: Setup script 10-hello.sh exited with code 1" in text
    assert "Your server is starting up" not in text  # JupyterHub's heading, replaced
    assert "the demo setup script fails on purpose" in text  # the failing script's last output lines
    assert "~/.local/state/osl-hooks/start.log" in text  # where the whole log is
    assert browser.execute_script("return document.getElementById('progress-details').open") is True
    assert "SpawnException" not in text and "500" not in text
    browser.save_screenshot(str(ARTIFACTS / "spawn-failed.png"))


def test_ctrl_c_stops_hub_proxy_and_servers(demo, tmp_path):
    # A hub of its own (the image already built by the shared one, copied), so no other test loses its hub.
    subprocess.run(["cp", "-a", str(demo.directory / "image"), str(tmp_path / "image")], check=True)
    own = start_demo(tmp_path)
    try:
        assert own.api("POST", "/hub/api/users/carol")[0] == 201
        own.start_server("carol", timeout=300)
        processes = psutil.Process(own.process.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in processes)
        assert "configurable-http-proxy" in names and "jupyterhub-singleuser" in names
        os.kill(own.process.pid, signal.SIGINT)  # what Ctrl-C sends to the demo command
        assert own.process.wait(60) == 0
        gone, alive = psutil.wait_procs(processes, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        own.close()
