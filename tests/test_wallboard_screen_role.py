"""Wall screens (`wallboard_screens`): desk accounts that see the wallboard and nothing else,
whose open board keeps their session. Against the desk served on a free port over a real
SQLite store (tests/test_desk_web.py's site, no controller), over HTTP and in Chromium."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from yarl import URL

from ivr.config import ConfigError, Settings
from ivr.wallboard.http import _board_of
from ivr.web.auth import Role, role_of
from ivr.web.sessions import COOKIE, IDLE_SECONDS, Session
from tests.desk_support import set_desk_password, sign_in
from tests.test_desk_web import (
    DeskSite,
    csrf_of,
    desk_site,
    desk_state,
    http_client,
    open_stream,
    post_sign_in,
    read_to_the_end,
)

SCREEN = "wall-night"
SCREEN_PW = "wall-screen-password"


def test_a_wall_screen_is_its_own_account_not_a_person_or_a_phone() -> None:
    s = Settings(wallboard_screens=(SCREEN,)).validate()
    assert role_of(s, SCREEN) is Role.WALL_SCREEN
    assert SCREEN not in s.staff_endpoints  # no SIP account, no generated secret
    for bad, says in (
        (("supervisor01",), "are staff accounts"),
        (("wall screen",), "letters, digits"),
        (("<script>",), "letters, digits"),
    ):
        with pytest.raises(ConfigError, match=says):
            Settings(wallboard_screens=bad).validate()


async def signed_in_screen(site: DeskSite, http: Any) -> str:
    """Sign the wall screen in over HTTP; where the desk sent it."""
    csrf = await csrf_of(http, f"{site.base}/signin")
    resp = await post_sign_in(http, site.base, SCREEN, SCREEN_PW, csrf)
    assert resp.status == 303
    return str(resp.headers["Location"])


@pytest.fixture
async def screen_site(tmp_path: Path) -> Any:
    async with desk_site(tmp_path, more=f'wallboard_screens = ["{SCREEN}"]\n') as site:
        set_desk_password(site.config, SCREEN, SCREEN_PW)
        yield site


async def test_a_wall_screen_sees_the_board_and_nothing_else(screen_site: DeskSite) -> None:
    site = screen_site
    async with http_client() as http:
        assert await signed_in_screen(site, http) == "/wallboard"
        async with http.get(f"{site.base}/wallboard") as r:
            page = await r.text()
        assert r.status == 200 and 'id="waiting"' in page
        assert 'id="monitor"' not in page and "/wallboard/monitor" not in page
        async with http.get(f"{site.base}/") as r:
            home = await r.text()
        assert re.findall(r'href="(/[^"]*)"', home.split("<main>")[1]) == ["/wallboard"]
        for path in ("/desk", "/desk/chats", "/desk/chats/records"):
            async with http.get(f"{site.base}{path}", allow_redirects=False) as r:
                assert r.status == 403, path
        csrf = re.search(r'data-csrf="([^"]+)"', page) or re.search(
            r'name="csrf" value="([^"]+)"', page
        )
        assert csrf is not None
        form = {"csrf": csrf[1], "call_id": "any", "mode": "spy"}
        async with http.post(
            f"{site.base}/wallboard/monitor", data=form, allow_redirects=False
        ) as r:
            assert r.status == 403
        async with http.get(f"{site.base}/wallboard/events") as stream:
            first = await asyncio.wait_for(stream.content.readline(), 10)
        board = json.loads(first.removeprefix(b"data: "))
        assert board["calls"] == [] and "members" in board


def test_a_wall_screens_board_carries_no_live_calls_a_supervisors_does() -> None:
    board = {"waiting": 2, "calls": [{"call_id": "c1", "member": "counselor01"}]}
    wall = Session("s1", "t1", 0.0, SCREEN, Role.WALL_SCREEN)
    supervisor = Session("s2", "t2", 0.0, "supervisor01", Role.SUPERVISOR)
    assert _board_of(wall, board) == {"waiting": 2, "calls": []}
    assert _board_of(supervisor, board) == board


async def test_the_open_board_keeps_the_wall_screens_session(screen_site: DeskSite) -> None:
    site = screen_site
    async with http_client() as http:
        await signed_in_screen(site, http)
        stream = await open_stream(http, site.base)
        cookie = http.cookie_jar.filter_cookies(URL(site.base))[COOKIE].value
        sessions = desk_state(site).sessions
        session = sessions.from_cookie(cookie, time.time(), touch=False)
        assert session is not None and session.role is Role.WALL_SCREEN
        # Nothing but the board for almost 12 hours: a person's session would end in 2 s.
        near_the_end = time.time() - IDLE_SECONDS + 2
        session.last_seen = near_the_end
        deadline = time.monotonic() + 10
        while session.last_seen <= near_the_end:
            assert time.monotonic() < deadline, "the open board did not keep the session"
            await asyncio.sleep(0.05)
        assert sessions.current(session, near_the_end + IDLE_SECONDS + 1)
        # Closed, it ends like anyone's: signed out, the stream ends.
        sessions.end(session)
        await read_to_the_end(stream)


async def test_a_wall_screen_in_chromium_shows_the_live_board_without_monitoring(
    screen_site: DeskSite, browser: Any
) -> None:
    def open_board() -> tuple[str, int, str]:
        sign_in(browser, screen_site.base, SCREEN, SCREEN_PW)
        # Set at the end of the script's show(): the pushed board went through all of it.
        WebDriverWait(browser, 10).until(
            lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-pushed") == "yes"
        )
        return (
            str(browser.current_url),
            len(browser.find_elements(By.ID, "monitor")),
            str(browser.find_element(By.ID, "live").text),
        )

    url, monitor, live = await asyncio.to_thread(open_board)
    # No controller in this site: the pushed board says so.
    assert url.endswith("/wallboard") and monitor == 0 and live == "제어기 연결 없음"
    errors = [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert errors == [], errors
