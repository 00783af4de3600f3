"""End to end: the supervisors' wallboard in a real browser (headless Chromium) against the
real product — Asterisk, the controller, pjsua2 phones. A caller waiting appears on the board,
then, without a reload, the counselor who answers is shown on the call, the silence alert of
the silent call as it is sent to the counselor's phone, and the counselor marked on calls
past the wellbeing limit (3 s in the tests)."""

from __future__ import annotations

import asyncio
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ivr.desk import screen
from ivr.flow.states import State
from ivr.keys import STORE
from ivr.web.auth import hash_password
from tests.conftest import TEST_CALLER_NUMBER, Hotline, PhoneFactory
from tests.desk_support import settled, sign_in, start_browser, submit, wait_for
from tests.e2e_ringgroup_support import WAITING, counselor, dial, member
from tests.test_e2e_metrics import scrape

SUPERVISOR_PW = "wallboard-e2e-password"
COUNSELOR_PW = "wallboard-e2e-counselor"
#: A counselor left logged in and unpaused by the other tests (tests/e2e_ringgroup_support.py).
COUNSELOR = "counselor02"


def row(browser: Any, name: str) -> tuple[str, str] | None:
    """(data-state, shown state) of a counselor's row on the board, read in one script: the
    page replaces the rows on every push, so an element found first may be gone a moment later."""
    found = browser.execute_script(
        "const r = document.querySelector(`#members tr[data-member='${arguments[0]}']`);"
        "return r ? [r.dataset.state, r.querySelector('.state').textContent] : null;",
        name,
    )
    return None if found is None else (found[0], found[1])


def alert(browser: Any, call_id: str, kind: str) -> dict[str, str] | None:
    """The board's alert of `kind` for the call (its cells by class), read in one script."""
    found: dict[str, str] | None = browser.execute_script(
        "const r = [...document.querySelectorAll('#alerts tbody tr')].find("
        "t => t.dataset.call === arguments[0] && t.dataset.kind === arguments[1]);"
        "if (!r) return null; const f = {};"
        "r.querySelectorAll('td').forEach(d => f[d.className] = d.textContent); return f;",
        call_id,
        kind,
    )
    return found


def wellbeing(browser: Any, name: str) -> str | None:
    """The counselor's wellbeing mark on the board (None: not marked)."""
    found: str | None = browser.execute_script(
        "const r = document.querySelector("
        "`#members tr[data-member='${arguments[0]}'][data-wellbeing='over']`);"
        "return r ? r.querySelector('.wellbeing').textContent : null;",
        name,
    )
    return found


async def open_board(hotline: Hotline, board: Any, base: str) -> None:
    """supervisor01's wallboard, marked so that a reload would show."""
    await hotline.app[STORE].change(
        "INSERT OR REPLACE INTO desk_passwords (member, hash, set_at, set_by)"
        " VALUES (?, ?, 0, 'test')",
        ("supervisor01", hash_password(SUPERVISOR_PW)),
    )

    def go() -> None:
        sign_in(board, base, "supervisor01", SUPERVISOR_PW)
        WebDriverWait(board, 10).until(lambda b: b.current_url.endswith("/wallboard"))
        WebDriverWait(board, 10).until(
            lambda b: b.execute_script("return document.body.dataset.pushed") == "yes"
        )
        board.execute_script("window.loadedOnce = 'yes'")  # gone if the page reloads

    await asyncio.to_thread(go)


async def test_the_wallboard_shows_a_waiting_caller_then_the_counselor_on_the_call(
    clean_hotline: Hotline, phones: PhoneFactory, browser: Any
) -> None:
    hotline = clean_hotline
    assert member(hotline, COUNSELOR)["logged_in"] and not member(hotline, COUNSELOR)["paused"]
    base = f"http://127.0.0.1:{hotline.settings.desk_port}"
    await open_board(hotline, browser, base)
    await wait_for(lambda: row(browser, COUNSELOR) == ("offline", "오프라인"), message="offline")
    assert await asyncio.to_thread(lambda: browser.find_element(By.ID, "waiting").text) == "0"

    caller, call_id = await dial(hotline, phones, "wallboard-caller")
    await caller.dtmf("5")
    # Asked for consent the caller is already in the queue (the ring group may ring for them):
    # on the board as waiting, before any answer.
    await hotline.wait_state(call_id, State.CONSENT)
    await wait_for(
        lambda: browser.find_element(By.ID, "waiting").text == "1", message="1 caller waiting"
    )
    assert hotline.controller.calls[call_id].flow.state is State.CONSENT
    await caller.dtmf("2")
    await hotline.wait_state(call_id, WAITING)
    await wait_for(
        lambda: browser.find_element(By.ID, "waiting").text == "1", message="still 1 waiting"
    )
    longest = await wait_for(
        lambda: (t := browser.find_element(By.ID, "longest").text) != "–" and t,
        message="the longest wait",
    )
    assert ":" in longest

    await counselor(hotline, phones, COUNSELOR, auto_answer=True)
    await wait_for(
        lambda: row(browser, COUNSELOR) == ("on_call", "통화 중"),
        timeout=30,
        message=f"{COUNSELOR} on the call",
    )
    await wait_for(lambda: browser.find_element(By.ID, "waiting").text == "0", message="0 waiting")
    # The phones send no sound: the both-silent notice to the counselor's phone (after 4 s) is
    # on the board as it happens, with the line, the counselor and the call.
    silent = await wait_for(
        lambda: alert(browser, call_id, "both_silent"), timeout=30, message="the silence alert"
    )
    line = screen.line_ko(hotline.controller.calls[call_id].flow.record.queue)
    assert silent["text"].startswith("침묵 알림: 양쪽 모두") and "초째 말이 없음" in silent["text"]
    assert (silent["line"], silent["member"]) == (line, COUNSELOR)
    assert call_id.endswith(silent["call"].lstrip("…")) and ":" in silent["time"]
    assert TEST_CALLER_NUMBER not in str(silent)
    # On the call past the tests' wellbeing limit (3 s): marked, without a reload.
    mark = await wait_for(lambda: wellbeing(browser, COUNSELOR), message="the wellbeing mark")
    assert mark.startswith("휴식 없이 ") and mark.endswith("분")
    # The call is offered for listen / whisper / barge, without a reload.
    buttons = await wait_for(
        lambda: browser.execute_script(
            "return [...document.querySelectorAll(`#live-calls tr[data-call='${arguments[0]}']"
            " button`)].map(b => b.value + ':' + b.textContent);",
            call_id,
        ),
        message="the call offered for monitoring",
    )
    assert buttons == ["listen:듣기", "whisper:귓속말", "barge:끼어들기"]
    assert await asyncio.to_thread(browser.execute_script, "return window.loadedOnce") == "yes"
    live = await asyncio.to_thread(browser.find_element, By.ID, "live")
    assert await asyncio.to_thread(live.get_attribute, "data-state") == "connected"

    await caller.hangup()
    await hotline.wait_row(call_id)
    # The call is counted in today's figures once its record is stored (read every few s).
    await wait_for(
        lambda: int(browser.find_element(By.CSS_SELECTOR, '[data-figure="answered"]').text) >= 1,
        timeout=15,
        message="the answered call in today's figures",
    )

    # A citizen's chat waiting (the public chat page, in a second tab) appears beside the calls;
    # when the citizen leaves, it is gone and counted abandoned in today's chat figures.
    def text(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    before = int(await asyncio.to_thread(text, "chats-waiting"))
    # A chat waits only while a counselor on shift has the chat page open (else the citizen is
    # told at once that nobody can chat now): the counselor opens it in a browser of their own.
    await hotline.app[STORE].change(
        "INSERT OR REPLACE INTO desk_passwords (member, hash, set_at, set_by)"
        " VALUES (?, ?, 0, 'test')",
        (COUNSELOR, hash_password(COUNSELOR_PW)),
    )
    desk = await asyncio.to_thread(start_browser)
    try:
        await chat_waits_on_the_board(hotline, browser, desk, base, before)
    finally:
        await asyncio.to_thread(desk.quit)


async def chat_waits_on_the_board(
    hotline: Hotline, browser: Any, desk: Any, base: str, before: int
) -> None:
    """A citizen's chat from the public page (in a second tab of the board's browser) is shown
    waiting beside the calls while `desk` (a counselor) has the chat page open; when the citizen
    leaves it is gone from the board and counted abandoned in today's chat figures."""

    def text(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    def open_chat_page() -> None:
        sign_in(desk, base, COUNSELOR, COUNSELOR_PW)
        desk.get(f"{base}/desk/chats")
        settled(desk).until(
            lambda b: b.find_element(By.ID, "desk").get_attribute("data-pushed") == "yes"
        )

    await asyncio.to_thread(open_chat_page)
    board_tab = await asyncio.to_thread(lambda: browser.current_window_handle)

    def start_chat() -> str:
        browser.switch_to.new_window("tab")
        browser.get(f"{base}/chat")
        submit(browser, "opt-chat")
        submit(browser, "consent-no")
        settled(browser).until(
            lambda b: b.find_element(By.ID, "chat").get_attribute("data-step") == "waiting"
        )
        chat_tab = str(browser.current_window_handle)
        browser.switch_to.window(board_tab)
        return chat_tab

    chat_tab = await asyncio.to_thread(start_chat)
    await wait_for(
        lambda: text("chats-waiting") == str(before + 1), message="the chat waiting on the board"
    )
    waiting = ("ivr120_chats", (("step", "waiting"),))
    assert (await scrape(hotline))[waiting] == before + 1  # and on /metrics
    longest = await wait_for(
        lambda: (t := text("chats-longest")) != "–" and t, message="the chat's wait"
    )
    assert ":" in longest
    assert await asyncio.to_thread(browser.execute_script, "return window.loadedOnce") == "yes"

    def leave() -> None:
        browser.switch_to.window(chat_tab)
        submit(browser, "leave")
        browser.close()
        browser.switch_to.window(board_tab)

    await asyncio.to_thread(leave)
    await wait_for(lambda: text("chats-waiting") == str(before), message="the chat gone")
    await wait_for(
        lambda: (
            int(browser.find_element(By.CSS_SELECTOR, '[data-chat-figure="abandoned"]').text) >= 1
        ),
        timeout=15,
        message="the abandoned chat in today's chat figures",
    )
