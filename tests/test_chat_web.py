"""The chat channel's pages that need no running controller, in a real browser against the
desk served over a real store: the public page's guided start and programmes, the
supervisors' chat records and the audited transcript (sealed at rest, shown as text), role
separation and CSRF on the chat's forms, a refused live screen told in Korean."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import aiohttp
from selenium.webdriver.common.by import By

from ivr.chat import records
from ivr.chat.cookies import CHAT_COOKIE
from ivr.chat.http import MSG_CALLBACKS_LIMIT, MSG_STREAM_REFUSED
from ivr.chat.limits import CALLBACKS_PER_ADDRESS
from ivr.crypto import Sealer
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.web.sessions import COOKIE as SESSION_COOKIE
from ivr.web.site import MSG_CSRF, MSG_FORBIDDEN
from tests.desk_support import settled, sign_in, submit
from tests.test_desk_web import COUNSELOR_PW, SUPERVISOR_PW, DeskSite, desk, text_of

__all__ = ["desk"]  # the fixture, shared with the desk's own tests

SCRIPT = "<script>window.pwned = 1</script>살려 주세요"


async def test_the_guided_start_shows_the_programmes_of_a_category(
    desk: DeskSite, browser: Any
) -> None:
    def script() -> tuple[str, list[str], dict[str, Any] | None]:
        browser.get(f"{desk.base}/chat")
        cookie = browser.get_cookie(CHAT_COOKIE)
        submit(browser, "opt-info")
        browser.find_element(By.CSS_SELECTOR, "button[value='category:주거']").click()
        found = settled(browser).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "#agencies strong")
        )
        names = [e.text for e in found]
        return browser.title, names, cookie

    title, names, cookie = await asyncio.to_thread(script)
    assert title.startswith("채팅 상담")
    assert "종로 주거안심지원센터 (예시)" in names
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    session = await asyncio.to_thread(browser.get_cookie, SESSION_COOKIE)
    assert session is not None and session["sameSite"] == "Lax"  # anonymous: Lax


async def test_a_chat_form_without_its_csrf_token_is_refused(desk: DeskSite, browser: Any) -> None:
    def script() -> str:
        browser.get(f"{desk.base}/chat")
        browser.execute_script("document.querySelector('input[name=csrf]').remove()")
        submit(browser, "opt-chat")
        return text_of(browser, "message")

    assert await asyncio.to_thread(script) == MSG_CSRF


async def test_a_supervisor_reads_a_kept_chat_and_the_read_is_recorded(
    desk: DeskSite, browser: Any
) -> None:
    store = desk.main[STORE]
    sealer = Sealer(desk.main[SECRETS].data_key)
    now = time.time()
    await records.opened(store, "chat-abc", "chat-identity", now - 60, now - 50, True, [], 0)
    await records.message(store, sealer, "chat-abc", 1, "citizen", now - 40, SCRIPT)
    await records.message(store, sealer, "chat-abc", 2, "counselor", now - 30, "듣고 있어요")
    sealed = await store.fetch("SELECT text_sealed FROM chat_messages")
    assert all("살려".encode() not in bytes(b) for (b,) in sealed)

    def script() -> tuple[list[str], Any]:
        sign_in(browser, desk.base, "supervisor01", SUPERVISOR_PW)
        browser.get(f"{desk.base}/desk/chats/records")
        browser.find_element(By.CSS_SELECTOR, "tr[data-chat='chat-abc'] a.transcript").click()
        lines = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#lines li .text")]
        return lines, browser.execute_script("return window.pwned")

    lines, pwned = await asyncio.to_thread(script)
    assert lines == [SCRIPT, "듣고 있어요"]
    assert pwned is None
    access = await store.fetch("SELECT chat_id, who, action FROM chat_access")
    assert access == [("chat-abc", "supervisor01", "read")]


async def test_a_counselor_cannot_open_the_chat_records(desk: DeskSite, browser: Any) -> None:
    def script() -> str:
        sign_in(browser, desk.base, "counselor01", COUNSELOR_PW)
        browser.get(f"{desk.base}/desk/chats/records")
        return text_of(browser, "message")

    assert await asyncio.to_thread(script) == MSG_FORBIDDEN
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{desk.base}/desk/chats/x/transcript", allow_redirects=False) as r:
            assert r.status == 303 and "/signin" in r.headers["Location"]
    assert await desk.main[STORE].fetch("SELECT * FROM chat_access") == []


async def test_callback_requests_are_limited_per_client_address(
    desk: DeskSite, browser: Any
) -> None:
    # No controller here: the chat ends unanswered at once, with the callback form open.
    def script() -> list[list[Any]]:
        browser.get(f"{desk.base}/chat")
        submit(browser, "opt-chat")
        submit(browser, "consent-no")
        return browser.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            const csrf = document.querySelector('input[name=csrf]').value;
            (async () => {
              const out = [];
              for (let i = 0; i < arguments[0]; i++) {
                const r = await fetch('/chat/callback', {method: 'POST',
                  headers: {'Accept': 'application/json'}, credentials: 'same-origin',
                  body: new URLSearchParams({csrf: csrf, number: '010-0000-5678'})});
                out.push([r.status, (await r.json()).error]);
              }
              return out;
            })().then(done);
            """,
            CALLBACKS_PER_ADDRESS + 1,
        )

    answers = await asyncio.to_thread(script)
    assert answers[0] == [200, None]
    assert [a[0] for a in answers[1:-1]] == [400] * (CALLBACKS_PER_ADDRESS - 1)  # once a chat
    assert answers[-1] == [429, MSG_CALLBACKS_LIMIT]


async def test_a_chat_screen_refused_for_too_many_streams_says_so_in_korean(
    desk: DeskSite, browser: Any
) -> None:
    # One live screen per address here; another client of this address holds it.
    desk.main[SETTINGS] = dataclasses.replace(desk.main[SETTINGS], chat_streams_per_address=1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        async with other.get(f"{desk.base}/chat") as r:
            assert r.status == 200
        async with other.get(f"{desk.base}/chat/events") as held:
            assert held.status == 200

            def script() -> str:
                browser.get(f"{desk.base}/chat")
                submit(browser, "opt-chat")
                submit(browser, "consent-no")  # no controller: ended at once, on the chat page
                return str(settled(browser).until(lambda b: b.find_element(By.ID, "refusal").text))

            assert await asyncio.to_thread(script) == MSG_STREAM_REFUSED


async def test_a_double_press_on_a_guide_button_sends_one_choice(
    desk: DeskSite, browser: Any
) -> None:
    """chat.js drops a second submit of a guide form while the first is on its way (a double
    click or an impatient tap); the first choice goes through with its button's value."""

    def run() -> tuple[int, str]:
        browser.get(f"{desk.base}/chat")
        sent = browser.execute_script(
            "var f = document.querySelector('form.buttons'), n = 0;"
            "f.addEventListener('submit', function (e) { if (!e.defaultPrevented) n++; });"
            "var b = document.getElementById('opt-info'); b.click(); b.click();"
            "return n;"
        )
        heading = settled(browser).until(
            lambda b: (h := b.find_elements(By.TAG_NAME, "h2")) and h[0].text
        )
        return sent, heading

    sent, heading = await asyncio.to_thread(run)
    assert sent == 1, f"{sent} submissions of one choice"
    assert heading == "지원 프로그램 안내"
