"""End to end: the text chat channel in two real browsers (headless Chromium) against the real
product (the controller and its ring group, the store): a citizen's chat from the public page
reaches a signed-in counselor's desk, messages flow both ways without a reload, a `<script>`
typed by the citizen is shown as text, the abuse end flags the chat identity (the next chat is
flagged), and consent decides whether anything typed is kept (sealed)."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from ivr.chat import records
from ivr.chat.http import KEEPALIVE, SERVICE
from ivr.chat.journey import (
    MSG_TOO_FAST,
    NOTICE_ABUSE_END,
    NOTICE_ABUSE_POLICY,
    NOTICE_CALLBACK,
    NOTICE_CONNECTED,
    NOTICE_NO_COUNSELOR,
    NOTICE_WITHDRAWN,
)
from ivr.crypto import Sealer
from ivr.keys import SECRETS, STORE
from ivr.privacy import caller_hash
from ivr.report.cli import main
from ivr.report.rows import Period
from ivr.timezone import SEOUL
from ivr.web.auth import hash_password
from ivr.web.site import DESK_APP
from tests.conftest import Hotline
from tests.desk_support import settled, sign_in, start_browser, submit, wait_for
from tests.e2e_ringgroup_support import member, rows_where
from tests.test_e2e_wallboard import alert, open_board

COUNSELOR = "counselor02"
COUNSELOR_PW = "chat-e2e-counselor-pass"
SCRIPT = "<script>window.pwned = 1</script><b>안녕하세요</b>"
#: Not a real number (010-0000-xxxx is not in service).
FAKE_NUMBER = "010-0000-1234"
REPLY = "네, 반갑습니다. 편하게 말씀하세요."


@pytest.fixture
def desk_browser() -> Iterator[WebDriver]:
    """A second browser: the counselor's desk (the `browser` fixture is the citizen's phone)."""
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def lines(browser: Any, selector: str) -> list[tuple[str, str]]:
    """(sender class, text) of the conversation's lines, read in one script (they are
    replaced on every push)."""
    found = browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(li => [li.className, li.textContent]);",
        selector,
    )
    return [(c, t) for c, t in found]


def step_of(browser: Any) -> str | None:
    return browser.execute_script(
        "const c = document.getElementById('chat'); return c ? c.dataset.step : null;"
    )


def start_chat(browser: Any, base: str, consent: str) -> None:
    """The citizen's guided start: 상담사와 채팅하기, then the consent answer."""
    browser.get(f"{base}/chat")
    submit(browser, "opt-chat")
    assert browser.find_element(By.ID, "consent-question").text
    submit(browser, f"consent-{consent}")
    settled(browser).until(lambda b: step_of(b) == "waiting")
    settled(browser).until(
        lambda b: b.find_element(By.ID, "chat").get_attribute("data-pushed") == "yes"
    )


def send(browser: Any, text: str, textarea: str = "#text", button: str = "#send") -> None:
    area = browser.find_element(By.CSS_SELECTOR, textarea)
    # The page empties the box when the previous message's answer arrives (maybe after its
    # line was pushed): wait for that, or the new text would be wiped with it.
    settled(browser).until(lambda _: area.get_attribute("value") == "")
    area.send_keys(text)
    browser.find_element(By.CSS_SELECTOR, button).click()


async def test_a_citizen_chats_with_a_counselor_who_ends_it_for_abuse(
    clean_hotline: Hotline,
    browser: WebDriver,
    desk_browser: WebDriver,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="ivr")
    hotline = clean_hotline
    assert member(hotline, COUNSELOR)["logged_in"] and not member(hotline, COUNSELOR)["paused"]
    store = hotline.app[STORE]
    # Chats of earlier tests of the session (the same database) are not this test's.
    earlier = [r["chat_id"] for r in rows_where(hotline, "SELECT chat_id FROM chats")]
    new = f"chat_id NOT IN ({', '.join('?' * len(earlier))})"
    await store.change(
        "INSERT OR REPLACE INTO desk_passwords (member, hash, set_at, set_by)"
        " VALUES (?, ?, 0, 'test')",
        (COUNSELOR, hash_password(COUNSELOR_PW)),
    )
    base = f"http://127.0.0.1:{hotline.settings.desk_port}"

    def open_desk() -> None:
        sign_in(desk_browser, base, COUNSELOR, COUNSELOR_PW)
        desk_browser.get(f"{base}/desk/chats")
        settled(desk_browser).until(
            lambda b: b.find_element(By.ID, "desk").get_attribute("data-pushed") == "yes"
        )
        desk_browser.execute_script("window.loadedOnce = 'yes'")

    await asyncio.to_thread(open_desk)
    await asyncio.to_thread(start_chat, browser, base, "yes")
    await asyncio.to_thread(browser.execute_script, "window.loadedOnce = 'yes'")

    # Typed while waiting: shown to the citizen at once, as text.
    await asyncio.to_thread(send, browser, SCRIPT)
    await wait_for(
        lambda: ("citizen", SCRIPT) in lines(browser, "#lines li"), message="the citizen's line"
    )

    # The offer reaches the counselor's desk; accepting shows what was typed, as text.
    accept = await wait_for(
        lambda: desk_browser.find_elements(By.CSS_SELECTOR, "#offers .offer button.accept"),
        timeout=10,
        message="the chat offer on the desk",
    )
    await asyncio.to_thread(accept[0].click)
    await wait_for(
        lambda: ("citizen", SCRIPT) in lines(desk_browser, ".deskchat .lines li"),
        message="the citizen's message on the desk",
    )
    await wait_for(
        lambda: ("system", NOTICE_CONNECTED) in lines(browser, "#lines li"),
        message="connected, on the citizen's page",
    )
    assert await asyncio.to_thread(step_of, browser) == "connected"

    # The counselor answers; the citizen reads it without a reload.
    await asyncio.to_thread(send, desk_browser, REPLY, ".deskchat textarea", ".deskchat .send")
    await wait_for(lambda: ("counselor", REPLY) in lines(browser, "#lines li"), message="the reply")
    for b in (browser, desk_browser):
        assert await asyncio.to_thread(b.execute_script, "return window.loadedOnce") == "yes"
        assert await asyncio.to_thread(b.execute_script, "return window.pwned") is None
        assert (
            await asyncio.to_thread(
                b.execute_script, "return document.querySelectorAll('main script, main b').length"
            )
            == 0
        )

    # The abuse end (after the confirmation): the citizen's chat ends, the identity is flagged.
    def abuse_end() -> None:
        desk_browser.find_element(By.CSS_SELECTOR, ".deskchat button.abuse").click()
        settled(desk_browser).until(lambda b: b.switch_to.alert).accept()

    await asyncio.to_thread(abuse_end)
    await wait_for(lambda: step_of(browser) == "ended", message="the citizen's chat ended")
    assert ("system", NOTICE_ABUSE_END) in await asyncio.to_thread(lines, browser, "#lines li")

    (chat,) = rows_where(
        hotline, f"SELECT * FROM chats WHERE outcome = 'abuse' AND {new}", *earlier
    )
    chat_id = chat["chat_id"]
    assert (chat["member"], chat["consent"], chat["ended_by"]) == (COUNSELOR, "yes", COUNSELOR)
    assert chat["answered_at"] >= chat["queued_at"] >= chat["started_at"]
    flags = rows_where(hotline, "SELECT * FROM caller_flags WHERE call_id = ?", chat["chat_id"])
    assert [(f["caller_hash"], f["member"]) for f in flags] == [(chat["identity_hash"], COUNSELOR)]
    # The supervisors' wallboard lists the abuse ending (heard from the desk's start, with no
    # board open), under 채팅 상담 with the counselor, never the citizen's identity.
    board = await asyncio.to_thread(start_browser)
    try:
        await open_board(hotline, board, base)
        shown = await wait_for(
            lambda: alert(board, chat_id, "chat_abuse_end"), message="the abuse end on the board"
        )
        assert (shown["text"], shown["line"], shown["member"]) == (
            "폭언으로 채팅 종료",
            "채팅 상담",
            COUNSELOR,
        )
        assert chat["identity_hash"] not in str(shown)
    finally:
        await asyncio.to_thread(board.quit)

    # Kept with consent, sealed: the database holds no text; a read decrypts it and is audited.
    kept = rows_where(hotline, "SELECT * FROM chat_messages WHERE chat_id = ?", chat["chat_id"])
    assert [m["sender"] for m in kept] == ["citizen", "counselor"]
    assert all("안녕".encode() not in m["text_sealed"] for m in kept)
    sealer = Sealer(hotline.app[SECRETS].data_key)
    read = await records.read_transcript(
        store, sealer, chat["chat_id"], "supervisor01", time.time()
    )
    assert [(m.sender, m.text) for m in read] == [("citizen", SCRIPT), ("counselor", REPLY)]
    access = rows_where(
        hotline, "SELECT who, action FROM chat_access WHERE chat_id = ?", chat["chat_id"]
    )
    assert access == [{"who": "supervisor01", "action": "read"}]

    # The citizen withdraws consent (the ended chat is still on their page): what was kept is
    # deleted, and the chat says when.
    await asyncio.to_thread(submit, browser, "withdraw")
    await wait_for(
        lambda: ("system", NOTICE_WITHDRAWN) in lines(browser, "#lines li"),
        message="the withdrawal's notice",
    )
    assert rows_where(hotline, "SELECT * FROM chat_messages WHERE chat_id = ?", chat_id) == []
    (withdrawn,) = rows_where(hotline, "SELECT * FROM chats WHERE chat_id = ?", chat_id)
    assert withdrawn["consent"] == "no" and withdrawn["withdrawn_at"] >= chat["ended_at"]

    # The same identity again: flagged (told the policy; the counselor sees the flag). Without
    # consent nothing typed is stored.
    def again() -> None:
        submit(browser, "new")
        start_chat(browser, base, "no")

    await asyncio.to_thread(again)
    assert ("system", NOTICE_ABUSE_POLICY) in await asyncio.to_thread(lines, browser, "#lines li")
    await wait_for(
        lambda: "주의 표시 1단계" in " ".join(t for _, t in lines(desk_browser, "#offers .offer")),
        message="the flag on the new offer",
    )

    # A callback request from the chat: the number is sealed, hashed as a caller's, never logged.
    def ask_callback() -> None:
        browser.find_element(By.CSS_SELECTOR, "#callback-box summary").click()
        browser.find_element(By.ID, "number").send_keys(FAKE_NUMBER)
        submit(browser, "callback")

    await asyncio.to_thread(ask_callback)
    await wait_for(
        lambda: ("system", NOTICE_CALLBACK) in lines(browser, "#lines li"),
        message="the callback's notice",
    )
    (second_id,) = [
        r["chat_id"]
        for r in rows_where(
            hotline, f"SELECT chat_id FROM chats WHERE chat_id != ? AND {new}", chat_id, *earlier
        )
    ]
    (cb,) = rows_where(hotline, "SELECT * FROM callbacks WHERE call_id = ?", second_id)
    digits = FAKE_NUMBER.replace("-", "")
    assert (cb["reason"], cb["consent"]) == ("chat", "citizen_chat")
    assert cb["caller_hash"] == caller_hash(digits, hotline.app[SECRETS].caller_hash_key)
    assert digits.encode() not in cb["number_sealed"]
    assert sealer.open(cb["number_sealed"], f"callback:{second_id}") == digits
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ivr"))
    assert digits not in logged and FAKE_NUMBER not in logged

    # Five messages within ten seconds pass; the sixth is refused, in Korean, and not shown.
    for n in range(1, 7):
        await asyncio.to_thread(send, browser, f"다시 왔어요 {n}")
        if n < 6:
            await wait_for(
                lambda n=n: ("citizen", f"다시 왔어요 {n}") in lines(browser, "#lines li"),
                message=f"line {n}",
            )
    await wait_for(
        lambda: browser.find_element(By.ID, "refusal").text == MSG_TOO_FAST,
        message="the rate limit's refusal",
    )
    assert ("citizen", "다시 왔어요 6") not in await asyncio.to_thread(lines, browser, "#lines li")
    await asyncio.to_thread(submit, browser, "leave")
    await wait_for(lambda: step_of(browser) == "ended", message="the second chat ended")
    (second,) = rows_where(
        hotline, f"SELECT * FROM chats WHERE chat_id != ? AND {new}", chat_id, *earlier
    )
    assert (second["consent"], second["outcome"], second["flag_level"]) == ("no", "abandoned", 1)
    assert second["identity_hash"] == chat["identity_hash"]
    assert (
        rows_where(hotline, "SELECT * FROM chat_messages WHERE chat_id = ?", second["chat_id"])
        == []
    )
    await wait_for(
        lambda: not desk_browser.find_elements(By.CSS_SELECTOR, "#offers .offer"),
        message="the offer withdrawn when the citizen left",
    )

    # The report built now counts both chats (channel chat, line: the counselors' ring group).
    assert chat["queue"] == second["queue"] == "loneliness"
    await report_counts_the_chats(hotline, tmp_path)


async def report_counts_the_chats(hotline: Hotline, tmp_path: Path) -> None:
    """`ivr-report` over the hotline's database: its chat figures are the `chats` rows."""
    today = dt.datetime.now(SEOUL).date()
    period = Period(today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    db = hotline.settings.state_path(hotline.settings.database)
    argv = ["--from", str(period.first), "--to", str(period.last), "--db", str(db)]
    out, tables = tmp_path / "report.html", tmp_path / "csv"
    argv += ["--no-roster", "--out", str(out), "--csv", str(tables)]
    assert await asyncio.to_thread(main, argv) == 0
    where = "started_at >= ? AND started_at < ?"
    chats = rows_where(hotline, f"SELECT * FROM chats WHERE {where}", period.start, period.end)
    assert len(chats) >= 2
    with (tables / "chats.csv").open(encoding="utf-8") as fh:
        got = {r["measure"]: r["value"] for r in csv.DictReader(fh)}
    assert int(got["offered"]) == len(chats)
    assert int(got["answered"]) == sum(1 for c in chats if c["answered_at"] is not None)
    assert int(got["abuse_endings"]) == sum(1 for c in chats if c["outcome"] == "abuse")
    assert int(got["abandoned_waiting"]) == sum(
        1 for c in chats if c["outcome"] == "abandoned" and c["answered_at"] is None
    )
    with (tables / "contacts_per_day.csv").open(encoding="utf-8") as fh:
        per_day = [r for r in csv.DictReader(fh) if r["channel"] == "chat"]
    by_line: Counter[str] = Counter()
    for r in per_day:
        by_line[r["line"]] += int(r["contacts"])
    assert +by_line == Counter(c["queue"] or "chat" for c in chats)
    with (tables / "workload.csv").open(encoding="utf-8") as fh:
        work = {r["member"]: int(r["chats"]) for r in csv.DictReader(fh)}
    taken = Counter(c["member"] for c in chats if c["answered_at"] is not None)
    assert {m: n for m, n in work.items() if n} == dict(taken)
    assert work[COUNSELOR] >= 1


async def test_with_no_counselor_on_the_chat_page_the_citizen_is_told_and_offered_a_callback(
    clean_hotline: Hotline, browser: WebDriver
) -> None:
    # Nobody has /desk/chats open: the chat is not left on "연결하고 있습니다" forever.
    base = f"http://127.0.0.1:{clean_hotline.settings.desk_port}"
    service = clean_hotline.app[DESK_APP][SERVICE]
    await wait_for(  # a desk closed by an earlier test is seen gone at its next keep-alive
        lambda: not any(n > 0 for n in service.present.values()),
        timeout=KEEPALIVE + 10,
        message="no counselor on the chat page",
    )

    def ask() -> None:
        browser.get(f"{base}/chat")
        submit(browser, "opt-chat")
        submit(browser, "consent-no")

    await asyncio.to_thread(ask)
    await wait_for(lambda: step_of(browser) == "ended", message="the chat ended at once")
    assert ("system", NOTICE_NO_COUNSELOR) in await asyncio.to_thread(lines, browser, "#lines li")
    box = await asyncio.to_thread(browser.find_element, By.ID, "callback-box")
    assert await asyncio.to_thread(box.is_displayed)
    await wait_for(
        lambda: rows_where(clean_hotline, "SELECT * FROM chats WHERE outcome = 'unanswered'"),
        message="the chat's row: unanswered",
    )
