"""End to end: the counselor screen (ivr/desk) in a real browser (headless Chromium) against the
real product — Asterisk, the controller, pjsua2 phones. A caller who consented reaches
counselor09: the call is on counselor09's screen within a second with its context, a silence
notice arrives as it is sent to the phone, another counselor sees nothing of it (and cannot act
on it), counselor09 ends it for abuse with the button — the supervisor's wallboard shows the
silence alert and the abuse ending as they happen — then stores the wrap-up form."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from ivr.desk import http as desk_http
from ivr.desk import screen
from ivr.flow import call as flow
from ivr.flow.conversation import State as TalkState
from ivr.keys import STORE
from ivr.summary.records import note_purpose
from ivr.web.auth import hash_password
from tests.conftest import Hotline, PhoneFactory
from tests.desk_support import sign_in, start_browser, submit, wait_for
from tests.e2e_ringgroup_support import (
    api,
    counselor,
    dial,
    member,
    rows_where,
    until,
    wait_channel_gone,
)
from tests.test_e2e_wallboard import alert, open_board

#: The desk's counselor (tests/e2e_ringgroup_support.py: left in the abuse wrap-up).
COUNSELOR = "counselor09"
#: Another counselor: only signs in to the desk (their phone is not touched).
OTHER = "counselor03"
PASSWORD = "counsel-desk-e2e-pass"
#: A made-up number of this test only (it ends flagged).
NUMBER = "0299996901"
NOTE = "주거 문제로 상담, 다음 주 기관 연락 예정"
AGENCY = "jongno-housing"


def contact(browser: Any) -> dict[str, Any] | None:
    """The contact panel read in one script (the page rewrites it on every push)."""
    found: dict[str, Any] | None = browser.execute_script(
        "const p = document.getElementById('contact');"
        "if (p.dataset.present !== 'yes') return null;"
        "const f = {call: p.dataset.call};"
        "p.querySelectorAll('[data-field]').forEach(e => f[e.dataset.field] = e.textContent);"
        "f.notices = [...document.querySelectorAll('#notices li')].map(l => l.textContent);"
        "return f;"
    )
    return found


def pushed(browser: Any) -> bool:
    return bool(browser.execute_script("return document.body.dataset.pushed === 'yes'"))


async def open_screen(browser: Any, base: str, member: str) -> None:
    def go() -> None:
        sign_in(browser, base, member, PASSWORD)
        browser.get(f"{base}/desk")
        WebDriverWait(browser, 10).until(pushed)

    await asyncio.to_thread(go)


async def test_counselor_screen_shows_the_call_ends_it_for_abuse_and_stores_the_wrapup(
    clean_hotline: Hotline, phones: PhoneFactory, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    for name in (COUNSELOR, OTHER):
        await hotline.app[STORE].change(
            "INSERT OR REPLACE INTO desk_passwords (member, hash, set_at, set_by)"
            " VALUES (?, ?, 0, 'test')",
            (name, hash_password(PASSWORD)),
        )
    base = f"http://127.0.0.1:{hotline.settings.desk_port}"
    await open_screen(browser, base, COUNSELOR)
    assert await asyncio.to_thread(contact, browser) is None
    other = await asyncio.to_thread(start_browser)
    try:
        await open_screen(other, base, OTHER)

        caller, call_id = await dial(hotline, phones, "desk-caller", number=NUMBER)
        await hotline.press_5(caller, call_id, "1")  # yes: a summary (and a note) may be kept
        # The counselor registers once the caller answered (so that they do not answer first).
        await hotline.wait_state(call_id, flow.State.WAITING, timeout=90)
        phone = await counselor(hotline, phones, COUNSELOR, auto_answer=True)
        await hotline.wait_state(call_id, flow.State.CONNECTED, timeout=60)
        connected = time.monotonic()
        shown = await wait_for(lambda: contact(browser), message="the call on the screen")
        assert time.monotonic() - connected < 1.0, "not on the screen within a second"
        call = hotline.controller.calls[call_id]
        assert shown["call"] == call_id and shown["line"] == screen.line_ko(call.flow.record.queue)
        assert shown["menu_path"] == "5" and shown["consent"] == "동의함 (녹음·요약)"
        assert shown["nth"] == "1번째 연락 (첫 연락)" and shown["flag"] == "없음"
        assert ":" in shown["wait"] and ":" in shown["timer"]
        # The phones send no sound: the both-silent notice the phone gets is on the screen too.
        notices = await wait_for(
            lambda: (c := contact(browser)) and [n for n in c["notices"] if "양쪽 모두" in n],
            timeout=30,
            message="the silence notice",
        )
        assert "말이 없습니다" in notices[0]
        await wait_for(
            lambda: int((contact(browser) or {}).get("timer", "0:00").replace(":", "")) >= 2,
            message="the call timer running",
        )

        # Another counselor's screen shows nothing of it, and their POST does not reach it.
        assert await asyncio.to_thread(contact, other) is None

        def other_presses_abuse() -> str:
            other.execute_script(
                "const f = document.getElementById('btn-abuse').form;"
                "f.querySelector('.call-id').value = arguments[0]; f.submit();",
                call_id,
            )
            WebDriverWait(other, 10).until(lambda b: b.find_elements(By.ID, "error"))
            return str(other.find_element(By.ID, "error").text)

        assert await asyncio.to_thread(other_presses_abuse) == desk_http.ERROR_KO["no_call"]
        talk = hotline.controller.calls[call_id].flow.conversation
        assert talk is not None and talk.state is TalkState.TALKING
    finally:
        await asyncio.to_thread(other.quit)

    # A supervisor's wallboard lists the call's silence alert; the abuse ending below is
    # pushed to it as it happens (no reload).
    board = await asyncio.to_thread(start_browser)
    try:
        await open_board(hotline, board, base)
        silent = await wait_for(lambda: alert(board, call_id, "both_silent"), message="silence")
        assert silent["member"] == COUNSELOR

        # The counselor ends the call for abuse with the button.
        await asyncio.to_thread(submit, browser, "btn-abuse")
        done = await asyncio.to_thread(lambda: browser.find_element(By.ID, "done").text)
        assert done == desk_http.DONE_KO["abuse"]
        ended = await wait_for(lambda: alert(board, call_id, "abuse_end"), message="abuse end")
        assert (ended["text"], ended["member"]) == ("폭언으로 통화 종료", COUNSELOR)
        assert ended["line"] == screen.line_ko(call.flow.record.queue)
        assert NUMBER not in str(ended)
        assert await asyncio.to_thread(board.execute_script, "return window.loadedOnce") == "yes"
    finally:
        await asyncio.to_thread(board.quit)
    await phone.wait_for("call_state", state="DISCONNECTED", timeout=10)
    flags = await until(
        lambda: rows_where(hotline, "SELECT * FROM caller_flags WHERE call_id=?", call_id),
        what="the caller flag",
    )
    assert flags[0]["member"] == COUNSELOR and flags[0]["lifted_at"] is None
    # The caller hears the policy notice (about 11 s), then their channel is gone.
    await wait_channel_gone(hotline, call_id, what="the caller's channel", timeout=40)
    row = await hotline.wait_row(call_id)
    assert row["outcome"] == "abuse_ended" and row["end_reason"] == "abuse", row
    await wait_for(
        lambda: browser.find_element(By.ID, "me-state").text == "후처리",
        message="the counselor in wrap-up",
    )

    # The wrap-up form of that call: note, two needs, a referral, the outcome.
    def wrap_up() -> tuple[str, bool, bool, str]:
        WebDriverWait(browser, 10).until(
            lambda b: b.find_element(By.ID, "wrapup-call").get_attribute("value") == call_id
        )
        browser.find_element(By.ID, "note").send_keys(NOTE)
        browser.find_element(By.ID, "need-housing").click()
        browser.find_element(By.ID, "need-isolation").click()
        Select(browser.find_element(By.ID, "agency")).select_by_value(AGENCY)
        Select(browser.find_element(By.ID, "outcome")).select_by_value("abuse")
        submit(browser, "wrapup-save")
        WebDriverWait(browser, 10).until(pushed)  # the live view arrived: the form stays as is
        return (
            str(browser.find_element(By.ID, "done").text),
            browser.find_element(By.ID, "wrapup-saved").is_displayed(),
            browser.find_element(By.ID, "need-housing").is_selected(),
            str(Select(browser.find_element(By.ID, "outcome")).first_selected_option.text),
        )

    # Saved, and shown as saved: the needs ticked and the outcome chosen.
    assert await asyncio.to_thread(wrap_up) == (
        desk_http.DONE_KO["wrapup"],
        True,
        True,
        screen.OUTCOMES["abuse"],
    )
    wrap = rows_where(hotline, "SELECT * FROM call_wrapups WHERE call_id=?", call_id)
    assert [(w["member"], w["outcome"]) for w in wrap] == [(COUNSELOR, "abuse")]
    assert set(wrap[0]["needs"].split(",")) == {"housing", "isolation"}
    summary = rows_where(hotline, "SELECT * FROM summaries WHERE call_id=?", call_id)[0]
    sealer = hotline.controller.ctx.sealer
    assert sealer.open(summary["note_sealed"], note_purpose(call_id)) == NOTE
    assert summary["note_by"] == COUNSELOR
    referrals = rows_where(hotline, "SELECT * FROM referrals WHERE call_id=?", call_id)
    assert [(r["agency"], r["created_by"], r["status"]) for r in referrals] == [
        (AGENCY, COUNSELOR, "proposed")
    ]
    # As `ivr-admin referral add`: the referral schedules its monitoring call. Closed here so
    # that the follow-up tests find no task of this one.
    (task,) = rows_where(hotline, "SELECT * FROM followup_tasks WHERE call_id=?", call_id)
    assert (task["type"], task["referral_id"]) == ("monitoring", referrals[0]["id"])
    status, body = await api(
        hotline, "POST", f"/api/followups/{task['id']}/close", {"outcome": "cancelled"}
    )
    assert status == 200, body
    access = rows_where(hotline, "SELECT * FROM summary_access WHERE call_id=?", call_id)
    assert ("note", COUNSELOR) in {(a["action"], a["who"]) for a in access}
    assert NUMBER not in str(wrap) + str(referrals)
    audited = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    assert f"desk: {COUNSELOR} pressed abuse (*9) on call {call_id}" in audited
    assert any(
        m.startswith("abuse flag:") and f"call {call_id}, counselor {COUNSELOR}" in m
        for m in audited
    )
    assert any(m.startswith(f"desk: wrap-up of call {call_id} by {COUNSELOR}") for m in audited)
    assert any(m.startswith(f"follow-up worklist read by {COUNSELOR} (desk)") for m in audited)

    # Pause with a reason and back, from the screen: the phone's *53N / *54.
    def pause() -> str:
        Select(browser.find_element(By.ID, "pause-reason")).select_by_value("training")
        submit(browser, "me-pause")
        return str(browser.find_element(By.ID, "done").text)

    assert await asyncio.to_thread(pause) == desk_http.DONE_KO["pause"]
    m = member(hotline, COUNSELOR)
    assert m["paused"] and m["pause_reason"] == "training", m
    await wait_for(
        lambda: browser.find_element(By.ID, "me-reason").text.startswith("교육"),
        message="the pause on the screen",
    )
    await asyncio.to_thread(submit, browser, "me-unpause")
    assert not member(hotline, COUNSELOR)["paused"]
    events = rows_where(
        hotline,
        "SELECT field, new, reason FROM counselor_events WHERE member=? AND field='paused'",
        COUNSELOR,
    )
    assert [(e["new"], e["reason"]) for e in events][-2:] == [
        ("true", "training"),
        ("false", "desk"),
    ]
