"""The web desk in tests: headless Chromium through chromedriver (Selenium), and a desk served
on a free port over a real store. Nothing skips: a missing chromium or chromedriver fails."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

#: The flags headless Chromium needs here (docs/chromium.md): as root it refuses to start
#: without --no-sandbox; --headless=new is the real browser without a window.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--window-size=1400,1000",
    "--lang=ko-KR",
)


def start_browser() -> WebDriver:
    chromium = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail(
            "chromium and chromium-driver are not installed (Debian packages; "
            "tools/bootstrap.sh installs them)"
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(driver))


async def wait_for(what: Callable[[], Any], timeout: float = 10.0, message: str = "") -> Any:
    """Poll `what()` (a Selenium read, off the event loop) until it is truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(what)
        if last:
            return last
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {message or what} (last: {last!r})")


def set_desk_password(config: Path, member: str, password: str) -> None:
    """`ivr-admin desk-password MEMBER` as an administrator runs it (password on stdin)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ivr.admin", "--config", str(config), "desk-password", member],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def settled(browser: WebDriver, seconds: float = 15) -> WebDriverWait[WebDriver]:
    """A wait that retries through a navigation: chromedriver answers a command that meets one
    with "aborted by navigation" (a WebDriverException, which a plain wait does not retry)."""
    return WebDriverWait(browser, seconds, ignored_exceptions=(WebDriverException,))


def replaced(element: Any) -> bool:
    """The element's page is gone. Mid-navigation chromedriver may say so as "Node with given
    id does not belong to the document" instead of a stale element (a fresh-clone run met it)."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise  # anything else mid-navigation: the wait retries
    return False


def submit(browser: WebDriver, element_id: str) -> None:
    """Click the form's button and wait until the answer has replaced its page and loaded."""
    button = browser.find_element(By.ID, element_id)
    button.click()
    settled(browser).until(lambda _: replaced(button))
    settled(browser).until(lambda b: b.execute_script("return document.readyState") == "complete")


def sign_in(browser: WebDriver, base: str, member: str, password: str) -> None:
    browser.get(f"{base}/signin")
    field = browser.find_element(By.ID, "member")
    field.clear()  # after a refused try the page keeps the name typed
    field.send_keys(member)
    browser.find_element(By.ID, "password").send_keys(password)
    submit(browser, "signin")
