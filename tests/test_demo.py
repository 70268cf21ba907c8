"""The README's first command, `python -m osl_hooks.demo`, run for real and driven like a user would.

Through the REST API: the spawn progress stream carries osl-hooks' messages in order before "ready", the
kernelspecs API lists the synced env's kernel, a kernel runs a cell in it, a failed start says why, and
Ctrl-C stops the hub, the proxy and the servers; the demo's own configuration draws no osl-hooks warning.
In a real browser (headless Chromium, driven by Selenium through Debian's chromedriver, tests/browser.py):
the spawn-pending page shows the progress (one number, the log kept to the steps), and a failed start says
its sentence once. Screenshots are kept in test-artifacts/; docs/images holds copies of them.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from browser import ARTIFACTS, chromium, dismiss_news, page_text, sign_in, spawn_page, wait_for_text
from conftest import tree_snapshot
from localhub import Hub, execute, free_port

from osl_hooks.demo.hub import CHECKOUT_LABEXTENSIONS, FAILING_USER
from osl_hooks.engine import manifest
from osl_hooks.engine.faultpoints import HOLD_AT_ENV_VAR
from osl_hooks.status import human_bytes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("configurable-http-proxy") is None, reason="needs configurable-http-proxy (npm)"),
]


HOLD_COPY, HOLD_SERVER = "hold-copy", "hold-server"  # files in the demo's directory that hold a start
HOLD_BACKGROUND = "hold-background"  # holds a copy made in the background before it copies anything


def start_demo(directory: Path) -> Hub:
    """Run the README's demo command in `directory` on free ports, with an API token for the test; a start
    waits at its copy's first progress tick while `HOLD_COPY` exists there, and before its server starts while
    `HOLD_SERVER` does (`hold_start`), and a copy made in the background before it begins while `HOLD_BACKGROUND`
    does."""
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "osl_hooks.demo", "--dir", str(directory), "--port", str(port)]
    command += ["--hub-port", str(free_port()), "--proxy-api-port", str(free_port())]
    holds = f"first-copy:progress={directory / HOLD_COPY};start:server-exec={directory / HOLD_SERVER}"
    holds += f";background:staging-made={directory / HOLD_BACKGROUND}"
    env = {"OSL_HOOKS_DEMO_API_TOKEN": token, HOLD_AT_ENV_VAR: holds}
    return Hub(directory, command, port, token, env=env, start_timeout=300)


@contextmanager
def hold_start(demo: Hub) -> Iterator[Callable[[str], None]]:
    """Hold every start of `demo` at its copy's progress and before its server starts, until the test lets each
    go (`release(HOLD_COPY)`): a page is checked while the start is at a known step, never raced."""
    files = [demo.directory / HOLD_COPY, demo.directory / HOLD_SERVER]
    for file in files:
        file.touch()
    try:
        yield lambda name: (demo.directory / name).unlink()
    finally:
        for file in files:
            file.unlink(missing_ok=True)


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
        rf"^Syncing python: \d+(\.\d)? [kM]?B(ytes)? of {re.escape(total)}$",  # no percentage: the bar's is it
        r"^Synced python: ",
        r"^Registered kernel Python \(demo env\)$",
        r"^Your own copy of geo will be made in the background",  # after the server started
        r"^Running setup script 10-hello\.sh$",
        r"^Your environments are ready \(\d+\.\d s\)$",
    ]
    positions = [index_of(texts, pattern) for pattern in order]
    assert positions == sorted(positions), texts
    ticks = [e for e in events if re.search(rf"^Syncing python: .* of {re.escape(total)}$", e.get("message", ""))]
    assert ticks and all(e["html_message"].startswith('<span class="osl-hooks-tick">') for e in ticks), ticks
    assert not any(re.search(r"\d+%", t) for t in texts), "one number on the page: the bar's percentage"
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


def user_token(hub: Hub, user: str) -> str:
    """A token of `user` alone, made as the user makes one: sign in on the hub's page, then ask its API."""
    import requests

    session = requests.Session()
    session.get(hub.url + "/hub/login", timeout=30)
    xsrf = session.cookies["_xsrf"]
    signed_in = session.post(
        hub.url + "/hub/login", data={"username": user, "password": "x", "_xsrf": xsrf}, timeout=30
    )
    assert signed_in.status_code == 200, signed_in.text
    # signing in binds a new XSRF token to the session: take it from a page, as the hub's own scripts do
    xsrf = re.search(r'xsrf_token: "([^"]+)"', session.get(hub.url + "/hub/token", timeout=30).text).group(1)
    answer = session.post(
        hub.url + f"/hub/api/users/{user}/tokens", json={"note": "test"}, headers={"X-XSRFToken": xsrf}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def test_the_envs_api_answers_the_user_through_the_hub_and_nobody_else(demo):
    """The demo's servers have osl-hooks' server extension (docs/lab.md): the hub's proxy reaches it, with the
    server's credentials only."""
    import requests

    assert demo.api("POST", "/hub/api/users/erin")[0] == 201
    demo.start_server("erin", timeout=300)
    status, data = demo.api("GET", "/user/erin/osl-hooks/api/envs")
    assert status == 200, data
    envs = {e["name"]: e for e in data["envs"]}
    assert set(envs) == {"python", "geo"} and data["plan_found"] is True  # the plan the wrap start recorded
    assert envs["python"]["start"]["state"] == "ready" and envs["python"]["sync"]["mode"] == "synced"
    assert envs["geo"]["background_copy"]["state"] in ("queued", "running", "done")
    status, diff = demo.api("GET", "/user/erin/osl-hooks/api/envs/python/diff")
    assert status == 200 and diff["summary"] == {"added": 0, "upgraded": 0, "removed": 0}, diff

    api = demo.url + "/user/erin/osl-hooks/api/envs"
    assert requests.get(api, timeout=30, allow_redirects=False).status_code == 403
    someone_else = {"Authorization": f"token {user_token(demo, 'frank')}"}
    assert requests.get(api, headers=someone_else, timeout=30).status_code == 403
    assert requests.post(api + "/python/reset", json={}, headers=someone_else, timeout=30).status_code == 403
    assert not (demo.directory / "homes/erin/.local/state/osl-hooks/backups").exists()


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


def test_spawn_page_shows_osl_hooks_progress(demo, browser):
    with hold_start(demo) as release:
        sign_in(browser, demo, "bob")
        check_spawn_page(browser, release)
    wait_for_text(browser, r"Launcher", timeout=180)  # then JupyterLab, with the env's kernel
    text = wait_for_text(browser, r"Python \(demo env\)")
    assert "/user/bob/lab" in browser.current_url
    assert "Python (demo env)" in text
    browser.save_screenshot(str(ARTIFACTS / "jupyterlab-launcher.png"))


def check_spawn_page(browser, release: Callable[[str], None]) -> None:
    """What bob's spawn page shows at each step of a start held there: the copy's progress, then the log of the
    steps, then the clock while the server starts."""
    wait_for_text(browser, r"Syncing python: .* of ")
    assert "/hub/spawn-pending/bob" in browser.current_url
    # osl-hooks' spawn page (c.JupyterHub.template_paths): the event log is open, every step a line in it
    assert browser.execute_script("return document.getElementById('progress-details').open") is True
    page = spawn_page(browser)
    # one number: the bar's percentage is its visible label; the line under it says the copy's bytes
    assert page["label"] == f"{page['percent']}%", page
    assert re.fullmatch(r"Syncing python: \S+ \S+ of \S+ \S+", page["message"]), page
    browser.save_screenshot(str(ARTIFACTS / "spawn-progress.png"))
    release(HOLD_COPY)
    # the log keeps to the steps: the copy's progress stays under the bar
    wait_for_text(browser, r"Synced python: ", timeout=180)
    page = spawn_page(browser)
    assert not [line for line in page["log"] if re.match(r"Syncing python: \S+ \S+ of ", line)], page["log"]
    assert any(line.startswith("Synced python: ") for line in page["log"]), page["log"]
    # the other env's first copy is made in the background: the page says so, and that it is read-only meanwhile
    wait_for_text(browser, r"Your own copy of geo will be made in the background.*read-only")
    browser.save_screenshot(str(ARTIFACTS / "spawn-background.png"))
    # while the server itself starts (95%), a clock shows the page is alive
    wait_for_text(browser, r"Starting your notebook server… still working \(\d+ s\)", timeout=180)
    release(HOLD_SERVER)


def test_spawn_page_shows_a_readable_error(demo, browser):
    sign_in(browser, demo, FAILING_USER)
    text = wait_for_text(browser, r"Your server could not start")
    assert "Your environments could not be prepared. Start failed: Setup script 10-hello.sh exited with code 1" in text
    assert "Your server is starting up" not in text  # JupyterHub's heading, replaced
    assert browser.execute_script("return document.getElementById('progress-details').open") is True
    assert "SpawnException" not in text and "500" not in text
    page = spawn_page(browser)
    # the sentence once, in full; the script's last output once; where the log is, once
    assert page["text"].count("could not be prepared") == 1, page["text"]
    assert page["text"].count("the demo setup script fails on purpose") == 1, page["text"]
    assert page["text"].count("~/.local/state/osl-hooks/start.log") == 1, page["text"]
    assert "Spawn failed" not in page["text"] and not page["message"] and page["label"] is None, page
    assert not page["stop_button"], "nothing to stop under a start that failed"
    # the event log keeps the steps, the failing one included
    assert any(line.startswith("Running setup script 10-hello.sh") for line in page["log"]), page["log"]
    assert any(line.startswith("Error: Setup script 10-hello.sh exited with code 1") for line in page["log"])
    browser.save_screenshot(str(ARTIFACTS / "spawn-failed.png"))


def test_the_demo_is_configured_as_the_docs_recommend(demo):
    """No osl-hooks warning about the demo's own configuration when its hub starts (e.g. a start_timeout below
    what a first start may need)."""
    demo.wait_for(lambda: "JupyterHub is now running" in demo.log_text(), 60, "the hub to be running")
    warnings = [line for line in demo.log_text().splitlines() if re.search(r"^\[W .*\] osl-hooks: ", line)]
    assert not warnings, warnings


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


def environments_panel(browser) -> dict[str, dict]:
    """What the Environments panel (osl-hooks' JupyterLab extension) shows, per env card: its state's label,
    its text, its buttons; read in one script call."""
    return browser.execute_script(
        """
        var cards = document.querySelectorAll('#osl-hooks-environments .osl-hooks-env');
        var shown = {};
        cards.forEach(function (card) {
          shown[card.dataset.env] = {
            state: card.querySelector('.osl-hooks-state').innerText,
            text: card.innerText,
            buttons: Array.prototype.map.call(card.querySelectorAll('button'), function (b) {
              return b.dataset.action + (b.disabled ? ' (disabled)' : ''); }),
          };
        });
        return shown;
        """
    )


def wait_for_panel(browser, check: Callable[[dict], bool], what: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = environments_panel(browser)
        if check(shown):
            return shown
        time.sleep(0.2)
    raise AssertionError(f"the Environments panel never showed {what}: {environments_panel(browser)}")


def status_item(browser) -> str:
    return browser.execute_script(
        "var e = document.querySelector('.osl-hooks-status-item'); "
        "return e && e.offsetParent !== null ? e.innerText : '';"
    )


def test_jupyterlab_shows_the_envs_the_copy_in_the_background_and_resets_as_the_cli_does(demo, browser):
    """osl-hooks' JupyterLab extension (docs/lab.md) in the demo's JupyterLab: the Environments panel lists the
    envs with their states while geo's own copy is made in the background (held there), the status bar says so
    meanwhile and nothing afterwards, a notification says when the copy is complete; Reset from the panel, after
    its confirmation, leaves the tree `osl-hooks reset` leaves."""
    from selenium.webdriver.common.by import By

    assert (CHECKOUT_LABEXTENSIONS / "osl-hooks/package.json").is_file(), (
        "build it: cd labextension && npm ci && npm run build"
    )
    user, home = "dora", demo.directory / "homes/dora"
    background = demo.directory / HOLD_BACKGROUND
    background.touch()  # geo's own copy, made in the background once the server runs, waits before it begins
    try:
        sign_in(browser, demo, user)
        wait_for_text(browser, r"Launcher", timeout=180)
        browser.find_element(By.CSS_SELECTOR, 'li[data-id="osl-hooks-environments"]').click()
        dismiss_news(browser)
        shown = wait_for_panel(
            browser, lambda s: s.get("geo", {}).get("state", "").startswith("copying"), "geo being copied"
        )
        assert shown["python"]["state"] == "ready", shown
        assert "Kernels run from your copy" in shown["python"]["text"] and "on your volume" in shown["python"]["text"]
        assert "runs read-only from the image" in shown["geo"]["text"], shown["geo"]
        assert "Kernels run from the image" in shown["geo"]["text"], shown["geo"]
        assert "Reset (disabled)" in shown["geo"]["buttons"], "no reset while the copy is being made"
        assert re.fullmatch(r"Copying geo: \d+% \(read-only until done\)", status_item(browser)), status_item(browser)
        browser.save_screenshot(str(ARTIFACTS / "lab-environments-copying.png"))
        background.unlink()
        wait_for_text(browser, r"Your own copy of geo is complete: kernels started from now on use your copy")
        shown = wait_for_panel(browser, lambda s: s["geo"]["state"] == "ready", "geo ready")
        assert "Kernels run from your copy (~/.local/envs/geo)" in shown["geo"]["text"], shown["geo"]
        assert status_item(browser) == "", "nothing in the status bar once all is well"
        time.sleep(1)  # the notification slides in: its screenshot shows it in place
        browser.save_screenshot(str(ARTIFACTS / "lab-copy-complete.png"))
    finally:
        background.unlink(missing_ok=True)

    # Reset from the panel: the confirmation says what happens to the user's files, then the task's outcome.
    env = home / ".local/envs/geo"
    ini = env / "share/geodemo/geodemo.ini"
    ini.write_text(ini.read_text() + "\n# the user's own setting\n")
    changed = tree_snapshot(env)
    browser.find_element(By.CSS_SELECTOR, '[data-env="geo"] button[data-action="Reset"]').click()
    dialog = wait_for_text(browser, r"Reset geo\?")
    assert "is moved to ~/.local/state/osl-hooks/backups/ and replaced by a fresh copy" in dialog
    assert "Your notebooks and other files are not touched" in dialog
    browser.save_screenshot(str(ARTIFACTS / "lab-reset-confirm.png"))
    browser.find_element(By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept").click()
    wait_for_text(browser, r"Reset geo: Reset geo to the image's version", timeout=120)
    by_panel = tree_snapshot(env)
    assert by_panel != changed
    (backup,) = (home / ".local/state/osl-hooks/backups").iterdir()
    assert tree_snapshot(backup) == changed, "the user's copy is kept aside, as the dialog said"

    ini.write_text(ini.read_text() + "\n# the user's own setting\n")
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("OSL_HOOKS_")} | {"HOME": str(home)}
    plan = home / ".local/state/osl-hooks/plan.json"
    done = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "reset", "geo", "--plan", str(plan), "--allow-root"],
        capture_output=True,
        text=True,
        env=cli_env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert tree_snapshot(env) == by_panel, "the panel's reset leaves what the CLI's leaves"
    assert "Reset geo" in page_text(browser)
