"""End to end: a chat goes on across a crash of the product. `ivr-run` (default settings but
ports, as `make run` runs it) holds a chat between a citizen and a counselor, each in a real
browser (headless Chromium), and a second citizen waiting; it is killed with SIGKILL and
started again. The citizen's page comes back by itself with the conversation (kept with
consent) and a notice, the waiting chat keeps its place, the counselor is still signed in
(desk sessions are kept across a restart) and finds the chat on the desk, and the
conversation goes on, kept after the lines kept before (ivr.chat.restore)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from ivr.chat.restore import NOTICE_EARLIER_NOT_KEPT, NOTICE_RESUMED
from ivr.paths import PROJECT_ROOT
from tests.conftest import write_roster
from tests.desk_support import settled, sign_in, start_browser, wait_for
from tests.e2e_product import IvrRun, keep_log_and_remove
from tests.test_e2e_chat import desk_browser, lines, send, start_chat, step_of

__all__ = ["desk_browser"]  # a fixture of this module's tests

COUNSELOR = "counselor01"
PASSWORD = "chat-restart-desk-pass"
BEFORE = "재시작 전에 보낸 메시지입니다"
REPLY = "네, 잘 듣고 있어요"
AFTER = "다시 이어졌네요"


@pytest.fixture
async def product(tmp_path: Path) -> AsyncIterator[IvrRun]:
    roster = write_roster(tmp_path / "roster.toml", (COUNSELOR,))
    run = IvrRun.create(tmp_path, "chatrestart", rtp=35600, IVR120_ROSTER_FILE=str(roster))
    try:
        yield run
    finally:
        await run.close()
        keep_log_and_remove(run, tmp_path)


def set_desk_password(run: IvrRun) -> None:
    """As an administrator does: `ivr-admin desk-password`, the password on stdin."""
    subprocess.run(
        [sys.executable, "-m", "ivr.admin", "desk-password", COUNSELOR, "--by", "test"],
        input=PASSWORD + "\n", text=True, cwd=PROJECT_ROOT, env=run.env, check=True,
        capture_output=True, timeout=60,
    )  # fmt: skip


def open_desk(desk: Any, base: str, signed_in: bool = False) -> None:
    """The counselor's chat desk, pushed; signing in first unless `signed_in`."""
    if not signed_in:
        sign_in(desk, base, COUNSELOR, PASSWORD)
    desk.get(f"{base}/desk/chats")
    assert urlsplit(desk.current_url).path == "/desk/chats", desk.current_url
    settled(desk).until(
        lambda b: b.find_element(By.ID, "desk").get_attribute("data-pushed") == "yes"
    )


async def test_a_chat_goes_on_after_the_product_is_killed_and_started_again(
    product: IvrRun, browser: WebDriver, desk_browser: WebDriver
) -> None:
    run = product
    await run.start()
    set_desk_password(run)
    base = f"http://127.0.0.1:{run.env['IVR120_DESK_PORT']}"
    await asyncio.to_thread(open_desk, desk_browser, base)
    await asyncio.to_thread(start_chat, browser, base, "yes")
    await asyncio.to_thread(send, browser, BEFORE)
    accept = await wait_for(
        lambda: desk_browser.find_elements(By.CSS_SELECTOR, "#offers .offer button.accept"),
        timeout=15,
        message="the chat offer on the desk",
    )
    await asyncio.to_thread(accept[0].click)
    await wait_for(lambda: step_of(browser) == "connected", message="connected")
    await asyncio.to_thread(send, desk_browser, REPLY, ".deskchat textarea", ".deskchat .send")
    await wait_for(lambda: ("counselor", REPLY) in lines(browser, "#lines li"), message="reply")
    (chat,) = run.rows("SELECT chat_id, answered_at FROM chats")
    assert chat["answered_at"] is not None
    kept = run.rows("SELECT seq, sender FROM chat_messages ORDER BY seq")
    assert [m["sender"] for m in kept] == ["citizen", "counselor"]
    # A second citizen waits (no consent: nothing of theirs is kept).
    waiting = await asyncio.to_thread(start_browser)
    try:
        await asyncio.to_thread(start_chat, waiting, base, "no")
        assert await asyncio.to_thread(step_of, waiting) == "waiting"
        (second,) = run.rows("SELECT chat_id, queued_at FROM chats WHERE answered_at IS NULL")

        await run.kill()
        await run.start()

        # Each citizen's page reconnects by itself: the same chat, where it was.
        await wait_for(
            lambda: ("system", NOTICE_RESUMED) in lines(browser, "#lines li"),
            timeout=60,
            message="the talking citizen's chat taken up again",
        )
        shown = await asyncio.to_thread(lines, browser, "#lines li")
        assert ("citizen", BEFORE) in shown and ("counselor", REPLY) in shown
        assert await asyncio.to_thread(step_of, browser) == "connected"
        await wait_for(
            lambda: ("system", NOTICE_EARLIER_NOT_KEPT) in lines(waiting, "#lines li"),
            timeout=60,
            message="the waiting citizen's chat taken up again",
        )
        assert await asyncio.to_thread(step_of, waiting) == "waiting"
        again = run.rows(
            "SELECT queued_at, ended_at FROM chats WHERE chat_id = ?", second["chat_id"]
        )
        assert again == [{"queued_at": second["queued_at"], "ended_at": None}]
    finally:
        await asyncio.to_thread(waiting.quit)

    # The counselor's session outlived the process (ivr/web/session_store.py): still signed
    # in, the chat is on the desk.
    await asyncio.to_thread(open_desk, desk_browser, base, True)
    await wait_for(
        lambda: ("citizen", BEFORE) in lines(desk_browser, ".deskchat .lines li"),
        message="the chat on the counselor's desk again",
    )
    await asyncio.to_thread(send, browser, AFTER)
    await wait_for(
        lambda: ("citizen", AFTER) in lines(desk_browser, ".deskchat .lines li"),
        message="the citizen's message after the restart on the desk",
    )
    kept = await wait_for(
        lambda: (
            rows if len(rows := run.rows("SELECT seq, sender FROM chat_messages")) == 3 else None
        ),
        message="the message after the restart kept",
    )
    assert sorted(m["sender"] for m in kept) == ["citizen", "citizen", "counselor"]
    assert len({m["seq"] for m in kept}) == 3
    access = run.rows("SELECT who, action FROM chat_access WHERE chat_id = ?", chat["chat_id"])
    assert access == [{"who": "restart", "action": "read"}]
