"""Headless Chromium driven by Selenium, for the screenshot command and the browser tests.

Debian's ``chromium`` and ``chromium-driver`` (tools/bootstrap.sh; docs/chromium.md). The waits
here retry through a navigation: chromedriver answers a command that meets one with a generic
WebDriverException ("aborted by navigation", "Node with given id does not belong to the
document") rather than a stale element, which a plain Selenium wait does not retry.
"""

from __future__ import annotations

import shutil
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

#: The flags headless Chromium needs here: as root it refuses to start without --no-sandbox;
#: --headless=new is the real browser without a window.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--lang=ko-KR",
)

MISSING = "chromium and chromium-driver are not installed (Debian packages; tools/bootstrap.sh)"


class BrowserMissing(RuntimeError):
    """Debian's chromium or chromium-driver is not on PATH."""


def start_browser(width: int = 1400, height: int = 1000, *extra: str) -> WebDriver:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise BrowserMissing(MISSING)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", *extra):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(driver))


def settled(browser: WebDriver, seconds: float = 15) -> WebDriverWait[WebDriver]:
    """A wait that retries a read which met a navigation."""
    return WebDriverWait(browser, seconds, ignored_exceptions=(WebDriverException,))


def replaced(element: Any) -> bool:
    """The element's page is gone (stale, or "does not belong to the document" mid-navigation;
    a fresh-clone run met the second)."""
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
