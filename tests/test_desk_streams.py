"""The cap on the staff's live streams (ivr.web.streams: the wallboard's and the counselor
screen's event streams), over HTTP against the desk served on a free port over a real store:
one member past `desk_streams_per_member` is answered 429 in Korean with Retry-After, another
member is not held back by it, and a stream that ends gives its slot back. And in a real
browser (headless Chromium): a wallboard refused so says it and tries again, without reloading."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ivr.config import ConfigError, load_settings
from ivr.keys import SETTINGS
from ivr.web.streams import MSG_TOO_MANY_STREAMS
from tests.desk_support import sign_in, wait_for
from tests.test_desk_web import (
    COUNSELOR_PW,
    SUPERVISOR_PW,
    DeskSite,
    csrf_of,
    desk,
    desk_state,
    http_client,
    open_stream,
    post_sign_in,
    read_to_the_end,
)

__all__ = ["desk"]  # the fixture, shared with tests/test_desk_web.py

CAP = 2


async def signed_in(http: aiohttp.ClientSession, site: DeskSite, member: str, pw: str) -> None:
    csrf = await csrf_of(http, f"{site.base}/signin")
    resp = await post_sign_in(http, site.base, member, pw, csrf)
    assert resp.status == 303


async def refused(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(url, allow_redirects=False) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"].isdigit()
        assert await resp.text() == MSG_TOO_MANY_STREAMS


async def test_one_member_past_the_cap_is_refused_and_another_member_is_not(
    desk: DeskSite,
) -> None:
    desk.main[SETTINGS] = dataclasses.replace(desk.main[SETTINGS], desk_streams_per_member=CAP)
    async with http_client() as sup, http_client() as other_tab, http_client() as counselor:
        await signed_in(sup, desk, "supervisor01", SUPERVISOR_PW)
        streams = [await open_stream(sup, desk.base) for _ in range(CAP)]
        await refused(sup, f"{desk.base}/wallboard/events")
        # The cap is the member's, not the browser's: the same member signed in elsewhere
        # (another browser, a stolen session) is refused all the same.
        await signed_in(other_tab, desk, "supervisor01", SUPERVISOR_PW)
        await refused(other_tab, f"{desk.base}/wallboard/events")
        # Another member is not held back by it.
        await signed_in(counselor, desk, "counselor01", COUNSELOR_PW)
        mine = [await open_stream(counselor, desk.base, "/desk/events") for _ in range(CAP)]
        await refused(counselor, f"{desk.base}/desk/events")
        for resp in streams + mine:
            resp.close()


async def test_a_closed_stream_gives_its_slot_back(desk: DeskSite) -> None:
    desk.main[SETTINGS] = dataclasses.replace(desk.main[SETTINGS], desk_streams_per_member=CAP)
    slots = desk_state(desk).streams
    async with http_client() as http:
        await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        streams = [await open_stream(http, desk.base) for _ in range(CAP)]
        await refused(http, f"{desk.base}/wallboard/events")
        # The browser goes away (a tab closed): the desk notices on its next write.
        streams.pop().close()
        await wait_for(lambda: slots.held("supervisor01") == CAP - 1, 10)
        streams.append(await open_stream(http, desk.base))
        await refused(http, f"{desk.base}/wallboard/events")
        # Signed out: the streams end and give every slot back.
        out_csrf = await csrf_of(http, f"{desk.base}/")
        async with http.post(
            f"{desk.base}/signout", data={"csrf": out_csrf}, allow_redirects=False
        ) as out:
            assert out.status == 303
        for resp in streams:
            await read_to_the_end(resp)
        await wait_for(lambda: slots.held() == 0, 10)
        await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        fresh = [await open_stream(http, desk.base) for _ in range(CAP)]
        for resp in fresh:
            resp.close()


async def test_a_stream_request_is_not_the_members_activity(desk: DeskSite) -> None:
    # A refused tab retries every RETRY_AFTER seconds, and a live screen reconnects on its own:
    # neither may keep the session from its idle sign-out. A page is activity.
    desk.main[SETTINGS] = dataclasses.replace(desk.main[SETTINGS], desk_streams_per_member=1)
    sessions = desk_state(desk).sessions
    async with http_client() as http:
        await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        (session,) = [s for s in sessions._by_id.values() if s.member == "supervisor01"]
        session.last_seen = seen = session.last_seen - 600  # ten minutes without a page
        stream = await open_stream(http, desk.base)
        await refused(http, f"{desk.base}/wallboard/events")
        assert session.last_seen == seen
        stream.close()
        async with http.get(f"{desk.base}/wallboard") as page:
            assert page.status == 200
        assert session.last_seen > seen


async def test_streams_ended_by_the_desk_stopping_give_their_slots_back(desk: DeskSite) -> None:
    state = desk_state(desk)
    async with http_client() as http:
        await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        streams = [await open_stream(http, desk.base) for _ in range(CAP)]
        assert state.streams.held("supervisor01") == CAP
        state.stopping.set()
        for resp in streams:
            await read_to_the_end(resp)
        await wait_for(lambda: state.streams.held() == 0, 10)


#: What the page shows while refused (ivr/web/static/live.js).
PAGE_TOO_MANY = "실시간 화면이 너무 많이 열려 있습니다 — 사용하지 않는 창이나 탭을 닫아 주세요"


async def test_a_wallboard_past_the_cap_says_so_and_tries_again_without_reloading(
    desk: DeskSite, browser: Any
) -> None:
    desk.main[SETTINGS] = dataclasses.replace(desk.main[SETTINGS], desk_streams_per_member=1)
    async with http_client() as http:
        await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        held = await open_stream(http, desk.base)

        def refused_board() -> Any:
            sign_in(browser, desk.base, "supervisor01", SUPERVISOR_PW)
            WebDriverWait(browser, 20).until(
                lambda b: b.find_element(By.ID, "live").text == PAGE_TOO_MANY
            )
            return browser.find_element(By.TAG_NAME, "body")

        body = await asyncio.to_thread(refused_board)
        assert browser.current_url.endswith("/wallboard")
        held.close()  # the other screen closed: the page's next try gets the stream
        # The same page (a reload would leave `body` stale) gets its first board.
        await wait_for(lambda: body.get_attribute("data-pushed") == "yes", 30, "the board")


def test_the_cap_must_be_positive() -> None:
    assert load_settings(env={}).desk_streams_per_member == 8
    with pytest.raises(ConfigError, match="desk_streams_per_member"):
        load_settings(env={}, overrides={"desk_streams_per_member": "0"})
