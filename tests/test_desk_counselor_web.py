"""The counselor screen (ivr/desk) in a real browser against the desk served over a real
store, without the controller (tests/test_desk_web.py's `desk`): who is served it, and the
worklist. With the product running: tests/test_e2e_desk.py."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ivr.followup.model import Status, TaskType
from ivr.followup.records import FollowupRecords
from ivr.keys import STORE
from ivr.web.site import MSG_FORBIDDEN
from tests.desk_support import sign_in, submit
from tests.test_desk_web import COUNSELOR_PW, SUPERVISOR_PW, DeskSite, desk, text_of

__all__ = ["desk"]  # the fixture, shared with tests/test_desk_web.py


async def test_the_counselor_screen_is_served_to_counselors_only(
    desk: DeskSite, browser: Any
) -> None:
    def script() -> tuple[str, bool, str, str]:
        sign_in(browser, desk.base, "counselor01", COUNSELOR_PW)
        browser.get(f"{desk.base}/")
        link = browser.find_element(By.LINK_TEXT, "상담 화면").get_attribute("href")
        browser.get(f"{desk.base}/desk")
        WebDriverWait(browser, 10).until(
            lambda b: b.execute_script("return document.body.dataset.pushed") == "yes"
        )
        live = text_of(browser, "live")
        empty = browser.find_element(By.ID, "nocontact").is_displayed()
        submit(browser, "signout")
        sign_in(browser, desk.base, "supervisor01", SUPERVISOR_PW)
        browser.get(f"{desk.base}/desk")
        return str(link), empty, live, text_of(browser, "message")

    link, empty, live, message = await asyncio.to_thread(script)
    assert link.endswith("/desk") and empty
    assert live == "제어기 연결 없음"  # no controller runs here: the screen says so
    assert message == MSG_FORBIDDEN


async def test_the_counselor_screen_lists_their_teams_open_tasks(
    desk: DeskSite, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    records = FollowupRecords(desk.main[STORE])
    now = time.time()
    free, _ = await records.add_or_merge(TaskType.CALLBACK, "hash-a", None, None, now, now + 60)
    mine, _ = await records.add_or_merge(
        TaskType.CALLBACK, "hash-b", None, None, now, now + 120, member="counselor01"
    )
    theirs, _ = await records.add_or_merge(
        TaskType.CALLBACK, "hash-c", None, None, now, now + 180, member="counselor02"
    )
    done, _ = await records.add_or_merge(TaskType.CALLBACK, "hash-d", None, None, now, now)
    await records.close(done, Status.DONE, "reached", now, "test")
    social, _ = await records.add_or_merge(TaskType.IN_DEPTH, "hash-e", None, None, now, now)

    def script() -> list[tuple[str, str]]:
        sign_in(browser, desk.base, "counselor01", COUNSELOR_PW)
        browser.get(f"{desk.base}/desk")
        rows = browser.find_elements(By.CSS_SELECTOR, "#worklist tr[data-task]")
        return [(str(r.get_attribute("data-task")), str(r.text)) for r in rows]

    rows = await asyncio.to_thread(script)
    assert [task for task, _ in rows] == [str(free), str(mine)]
    assert "콜백" in rows[0][1] and "내 담당" in rows[1][1] and "내 담당" not in rows[0][1]
    assert str(theirs) not in dict(rows) and str(social) not in dict(rows)
    assert any(
        r.name == "ivr.audit"
        and r.getMessage().startswith("follow-up worklist read by counselor01 (desk): 2 tasks")
        for r in caplog.records
    )
