"""A real browser for hub pages: headless Chromium driven by Selenium through Debian's chromedriver.

`browser` (a module-scoped fixture) skips when Chromium or its driver is missing; screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module", name="browser")
def browser_fixture():
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
