"""The web desk in tests: headless Chromium through chromedriver (Selenium), and a desk served
on a free port over a real store. Nothing skips: a missing chromium or chromedriver fails."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.remote.webdriver import WebDriver

from ivr.web import browser
from ivr.web.browser import settled, sign_in, submit

__all__ = ["set_desk_password", "settled", "sign_in", "start_browser", "submit", "wait_for"]


def start_browser() -> WebDriver:
    try:
        return browser.start_browser()
    except browser.BrowserMissing as exc:
        pytest.fail(str(exc))


async def wait_for(what: Callable[[], Any], timeout: float = 10.0, message: str = "") -> Any:
    """Poll `what()` (a Selenium read, off the event loop) until it is truthy. A read that met
    the live page re-rendering under it (an element gone stale between finding it and reading
    it) is read again."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await asyncio.to_thread(what)
        except StaleElementReferenceException as exc:
            last = exc
        else:
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
