"""End to end: the counselor screen's call buttons other than the abuse end (that one is in
tests/test_e2e_desk.py) in a real browser against the real product — Asterisk, the
controller, pjsua2 phones. A caller who consented talks with counselor10; from the desk,
counselor10 requests a callback (a callback row and its follow-up task), records the caller's
withdrawal of consent (both recordings stop, and a second press is refused in Korean), and
rings the crisis line, which joins the call: after counselor10 hangs up the caller hears the
crisis counselor, and the call ends as a crisis transfer."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from ivr.desk import http as desk_http
from ivr.flow import call as flow
from ivr.flow.conversation import State as TalkState
from ivr.keys import STORE
from ivr.phone.audio import read_wav, rms_dbfs, tone_present
from ivr.web.auth import hash_password
from tests.conftest import COUNSELOR_TONE, CRISIS_TONE, Hotline, PhoneFactory
from tests.desk_support import submit, wait_for
from tests.e2e_ringgroup_support import api, counselor, dial, record_for, rows_where, until
from tests.test_e2e_consent import live_recording, recording_running
from tests.test_e2e_desk import PASSWORD, contact, open_screen

#: This test's counselor (tests/e2e_ringgroup_support.py lists who uses whom).
COUNSELOR = "counselor10"
#: A made-up number of this test only.
NUMBER = "0299996902"


def press(browser: Any, button: str) -> tuple[str, str]:
    """Press a call button; the page's (done, error) message after it."""
    submit(browser, button)
    done = browser.find_elements(By.ID, "done")
    error = browser.find_elements(By.ID, "error")
    return (done[0].text if done else ""), (error[0].text if error else "")


async def recordings_stopped(hotline: Hotline, call_id: str, timeout: float = 10) -> None:
    """Until Asterisk has neither party's live recording of the call."""
    async with asyncio.timeout(timeout):
        for party in ("caller", "staff"):
            while await live_recording(hotline, f"ivr120-{call_id}-{party}", wait=0):
                await asyncio.sleep(0.2)


async def test_desk_buttons_request_a_callback_withdraw_consent_and_ring_the_crisis_line(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    browser: Any,
    tones: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    await hotline.app[STORE].change(
        "INSERT OR REPLACE INTO desk_passwords (member, hash, set_at, set_by)"
        " VALUES (?, ?, 0, 'test')",
        (COUNSELOR, hash_password(PASSWORD)),
    )
    base = f"http://127.0.0.1:{hotline.settings.desk_port}"
    await open_screen(browser, base, COUNSELOR)
    crisis = await counselor(hotline, phones, "crisis", auto_answer=True)
    await crisis.play(tones["crisis"])

    caller, call_id = await dial(hotline, phones, "buttons-caller", number=NUMBER)
    await hotline.press_5(caller, call_id, "1")  # yes: both parties are recorded
    await hotline.wait_state(call_id, flow.State.WAITING, timeout=90)
    phone = await counselor(hotline, phones, COUNSELOR, auto_answer=True)
    await hotline.wait_state(call_id, flow.State.CONNECTED, timeout=60)
    await phone.play(tones["counselor"])
    await wait_for(lambda: contact(browser), message="the call on the screen")
    for party in ("caller", "staff"):
        live = await recording_running(hotline, f"ivr120-{call_id}-{party}")
        assert live is not None and live["state"] == "recording", (party, live)

    # 콜백(심층 상담) 요청: the callback row (the number sealed for it) and its follow-up task.
    done, error = await asyncio.to_thread(press, browser, "btn-callback")
    assert (done, error) == (desk_http.DONE_KO["callback"], "")
    (cb,) = await until(
        lambda: rows_where(hotline, "SELECT * FROM callbacks WHERE call_id=?", call_id),
        what="the callback row",
    )
    assert (cb["reason"], cb["consent"], cb["requested_by"], cb["status"]) == (
        "social_worker",
        "verbal_to_counselor",
        COUNSELOR,
        "open",
    )
    assert cb["number_sealed"] and NUMBER.encode() not in cb["number_sealed"]
    tasks = rows_where(hotline, "SELECT * FROM followup_tasks WHERE call_id=?", call_id)
    # An in-depth follow-up for the social workers (콜백(심층 상담)), the callback linked to it.
    assert [(t["type"], t["team"], t["status"]) for t in tasks] == [
        ("in_depth", "social_workers", "open")
    ], tasks
    assert cb["task_id"] == tasks[0]["id"]

    # 동의 철회: recorded as the counselor's, both recordings stop; a second press is refused.
    done, error = await asyncio.to_thread(press, browser, "btn-withdraw")
    assert (done, error) == (desk_http.DONE_KO["withdraw"], "")
    (consent,) = await until(
        lambda: rows_where(
            hotline,
            "SELECT * FROM consents WHERE call_id=? AND withdrawn_at IS NOT NULL",
            call_id,
        ),
        what="the withdrawal",
    )
    assert consent["withdrawn_by"] == COUNSELOR
    await recordings_stopped(hotline, call_id)
    done, error = await asyncio.to_thread(press, browser, "btn-withdraw")
    assert (done, error) == ("", desk_http.ERROR_KO["no_consent"])

    # 위기 상담 연결: the crisis line rings (the caller's number not in its INVITE) and joins.
    done, error = await asyncio.to_thread(press, browser, "btn-crisis")
    assert (done, error) == (desk_http.DONE_KO["crisis"], "")
    incoming = await crisis.wait_for("incoming", timeout=15)
    assert NUMBER not in str(incoming)
    await crisis.wait_for("call_state", state="CONFIRMED", timeout=15)
    journey = hotline.controller.calls[call_id].flow
    assert isinstance(journey, flow.CallFlow)
    talk = journey.conversation
    assert talk is not None
    await until(lambda: talk.state is TalkState.THREE_WAY, what="the three-way call")
    # A second crisis press while the line is on is refused (one transfer at a time).
    done, error = await asyncio.to_thread(press, browser, "btn-crisis")
    assert (done, error) == ("", desk_http.ERROR_KO["not_now"])

    # The counselor hands over and drops: the caller stays, with the crisis counselor.
    await phone.hangup()
    await phone.wait_for("call_state", state="DISCONNECTED", timeout=10)
    await until(lambda: talk.state is TalkState.HANDED_OVER, what="the handover")
    assert call_id in hotline.controller.calls
    assert not [e for e in caller.events if e.get("state") == "DISCONNECTED"]
    heard = read_wav(await record_for(caller, tmp_path / "crisis-heard.wav", 2.0))
    assert tone_present(heard.samples, heard.rate, CRISIS_TONE), rms_dbfs(heard.samples)
    assert not tone_present(heard.samples, heard.rate, COUNSELOR_TONE)

    await caller.hangup()
    await crisis.wait_for("call_state", state="DISCONNECTED", timeout=10)
    row = await hotline.wait_row(call_id)
    assert row["outcome"] == "transferred" and row["end_reason"] == "crisis_transfer", row
    assert row["member"] == COUNSELOR

    audited = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    for action, key in (("callback", "8"), ("withdraw", "6"), ("crisis", "7")):
        line = f"desk: {COUNSELOR} pressed {action} (*{key}) on call {call_id}"
        assert audited.count(line) == 1, (line, audited)
    assert NUMBER not in "\n".join(audited)
    # Closed so that the follow-up tests find no task of this one.
    status, body = await api(
        hotline, "POST", f"/api/followups/{tasks[0]['id']}/close", {"outcome": "cancelled"}
    )
    assert status == 200, body
