"""Headless Chromium (Debian's chromium and chromedriver, driven by Selenium) on a local hub's pages, as a user.

Screenshots go to test-artifacts/; the README's and docs' images in docs/images are copies of the ones
tests/test_demo.py takes.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def chromium() -> Iterator[object]:
    """A headless Chromium (a fixture's body: yields the driver, quits it after)."""
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


def sign_in(browser, hub, user: str) -> None:
    """Sign in with the dummy authenticator: the hub then starts the user's server and shows the spawn page."""
    from selenium.webdriver.common.by import By

    browser.get(f"{hub.url}/hub/logout")
    browser.get(f"{hub.url}/hub/login")
    browser.find_element(By.ID, "username_input").send_keys(user)
    browser.find_element(By.ID, "password_input").send_keys("any password")
    browser.find_element(By.ID, "login_submit").click()
    # Signed in once the hub has answered the form and sent the browser on: a page asked for before that would
    # be overtaken by the login's own redirect.
    deadline = time.monotonic() + 60
    while "/hub/login" in browser.current_url and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "/hub/login" not in browser.current_url, f"{user} was not signed in: {page_text(browser)}"


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


def spawn_page(browser) -> dict:
    """What the spawn page shows, read in one script call: the bar's percentage and its visible label, the
    line under the bar, the event log's lines, whether a Stop Server button is visible, the whole text."""
    return browser.execute_script(
        """
        var bar = document.getElementById('progress-bar');
        var label = document.getElementById('sr-progress');
        var message = document.getElementById('progress-message');
        var stop = document.getElementById('stop-server-btn');
        var visible = function (e) { return !!e && e.offsetParent !== null && e.getClientRects().length > 0; };
        return {
          percent: bar ? bar.getAttribute('aria-valuenow') : null,
          label: visible(label) ? label.innerText : null,
          message: visible(message) ? message.innerText : '',
          log: Array.prototype.map.call(document.querySelectorAll('#progress-log .progress-log-event'),
                                        function (e) { return e.innerText; }),
          stop_button: visible(stop),
          text: document.body.innerText,
        };
        """
    )


def dismiss_news(browser) -> None:
    """JupyterLab asks in a toast whether to fetch Jupyter news (no network here): answer no, out of the way."""
    browser.execute_script(
        "document.querySelectorAll('.Toastify button').forEach(function (b) {"
        "  if (b.innerText.trim() === 'No') { b.click(); } });"
    )
