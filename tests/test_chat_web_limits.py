"""The public chat page's limits and its guided start, over HTTP against the desk served over
a real store (no controller: a chat that reaches the queue ends at once, unanswered): chats
started per client address and in all, the citizens' event streams open per address, each
answered in Korean with the 120 line; and a guided start (the buttons) that holds nothing in
the server's memory, whose beginning is still the chat's `started_at`."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import time
from typing import Any

import aiohttp
from yarl import URL

from ivr.chat.cookies import GUIDE_COOKIE
from ivr.chat.http import (
    MSG_FULL,
    MSG_STARTS_LIMIT,
    MSG_STREAMS_LIMIT,
    SERVICE,
    STREAMS,
)
from ivr.chat.journey import NOTICE_NO_COUNSELOR
from ivr.chat.service import ChatService
from ivr.keys import SETTINGS, STORE
from ivr.web.site import DESK_APP
from tests.desk_support import wait_for
from tests.test_desk_web import DeskSite, csrf_of, desk, http_client

__all__ = ["desk"]  # the fixture


def service_of(site: DeskSite) -> ChatService:
    return site.main[DESK_APP][SERVICE]


async def post(
    http: aiohttp.ClientSession, site: DeskSite, path: str, csrf: str, **form: str
) -> tuple[int, str]:
    """A form of the page, as its buttons send it (no JavaScript): 303 back to /chat, or a
    page saying why not."""
    data = {"csrf": csrf, **form}
    async with http.post(f"{site.base}/chat/{path}", data=data, allow_redirects=False) as r:
        return r.status, await r.text()


async def ask_for_a_counselor(http: aiohttp.ClientSession, site: DeskSite) -> tuple[int, str]:
    """Open the page and press 상담사와 채팅하기."""
    csrf = await csrf_of(http, f"{site.base}/chat")
    return await post(http, site, "choose", csrf, option="chat")


async def open_events(http: aiohttp.ClientSession, site: DeskSite) -> aiohttp.ClientResponse:
    resp = await http.get(f"{site.base}/chat/events")
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    return resp


async def next_view(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    """The stream's next view (fails after 10 s, or if the stream ends)."""
    while True:
        line = await asyncio.wait_for(resp.content.readline(), 10)
        assert line, "the stream ended"
        if line.startswith(b"data: "):
            view: dict[str, Any] = json.loads(line[6:])
            return view


async def view_at(resp: aiohttp.ClientResponse, step: str) -> dict[str, Any]:
    """The stream's first view at `step` (each change is pushed; fails after 10 s each)."""
    while (view := await next_view(resp))["step"] != step:
        pass
    return view


async def test_a_fourth_chat_from_one_address_is_refused_in_korean_and_the_others_go_on(
    desk: DeskSite,
) -> None:
    clients = [http_client() for _ in range(4)]  # four identities (cookies), one address
    try:
        answers = [await ask_for_a_counselor(c, desk) for c in clients]
        assert [status for status, _ in answers[:3]] == [303, 303, 303]
        status, page = answers[3]
        assert status == 429
        assert MSG_STARTS_LIMIT.format(minutes=10) in page and "120" in MSG_STARTS_LIMIT
        assert len(service_of(desk).chats) == 3  # the refused one holds nothing
        # The earlier ones go on: the first answers the consent question.
        csrf = await csrf_of(clients[0], f"{desk.base}/chat")
        assert (await post(clients[0], desk, "consent", csrf, answer="no"))[0] == 303
    finally:
        for c in clients:
            await c.close()
    steps = sorted(c.journey.step.value for c in service_of(desk).chats.values())
    assert steps == ["consent", "consent", "ended"]


async def test_the_live_chats_are_capped_by_their_setting_at_once(desk: DeskSite) -> None:
    desk.main[SETTINGS] = dataclasses.replace(desk.main[SETTINGS], chat_max_live=1)
    async with http_client() as one, http_client() as two:
        assert (await ask_for_a_counselor(one, desk))[0] == 303
        status, page = await ask_for_a_counselor(two, desk)
        assert status == 503 and MSG_FULL in page
        # Refused as JSON too, for a script.
        csrf = await csrf_of(two, f"{desk.base}/chat")
        async with two.post(
            f"{desk.base}/chat/choose",
            data={"csrf": csrf, "option": "chat"},
            headers={"Accept": "application/json"},
        ) as r:
            assert (r.status, await r.json()) == (503, {"ok": False, "error": MSG_FULL})


async def test_a_fifth_stream_from_one_address_is_refused_while_the_earlier_ones_go_on(
    desk: DeskSite,
) -> None:
    slots = desk.main[DESK_APP][STREAMS]
    async with http_client() as http:
        assert (await ask_for_a_counselor(http, desk))[0] == 303
        csrf = await csrf_of(http, f"{desk.base}/chat")
        streams = [await open_events(http, desk) for _ in range(4)]
        try:
            assert [(await next_view(s))["step"] for s in streams] == ["consent"] * 4
            async with http.get(f"{desk.base}/chat/events") as refused:
                assert refused.status == 429
                assert await refused.text() == MSG_STREAMS_LIMIT
            # The four go on: the chat's next steps reach each of them.
            assert (await post(http, desk, "consent", csrf, answer="no"))[0] == 303
            for s in streams:
                lines = [ln["text"] for ln in (await view_at(s, "ended"))["lines"]]
                assert NOTICE_NO_COUNSELOR in lines
            # A stream closed gives its place back (seen within a second, not at a write).
            streams.pop().close()
            await wait_for(lambda: slots.held("127.0.0.1") == 3, message="the place given back")
            streams.append(await open_events(http, desk))
            assert (await next_view(streams[-1]))["step"] == "ended"
        finally:
            for s in streams:
                s.close()
    await wait_for(lambda: slots.held() == 0, message="every place given back")


async def test_the_guided_start_holds_no_chat_and_its_beginning_is_the_chat_s_start(
    desk: DeskSite,
) -> None:
    service = service_of(desk)
    async with http_client() as http:
        before = time.time()
        csrf = await csrf_of(http, f"{desk.base}/chat")
        opened = time.time()
        buttons = ["info", "category:주거", "back", "info", "category:돌봄"]
        for option in buttons:
            assert (await post(http, desk, "choose", csrf, option=option))[0] == 303
        async with http.get(f"{desk.base}/chat") as r:
            page = await r.text()  # the programmes, from the citizen's cookie
        assert 'class="on">돌봄</button>' in page and 'id="opt-back"' in page
        assert service.chats == {} and service.live() == 0
        asked = time.time()
        assert (await post(http, desk, "choose", csrf, option="chat"))[0] == 303
        (chat,) = service.chats.values()
        assert before <= chat.journey.started_at <= opened < asked
        assert chat.journey.path == [*buttons, "chat"]
        assert (await post(http, desk, "consent", csrf, answer="yes"))[0] == 303
    store = desk.main[STORE]
    await wait_for(lambda: service.chats[chat.chat_id].ended_at, message="the chat ended")
    query = "SELECT started_at, path FROM chats WHERE chat_id = ?"
    rows = await store.fetch(query, (chat.chat_id,))
    assert rows == [(chat.journey.started_at, ",".join([*buttons, "chat"]))]


async def test_a_guide_cookie_not_signed_by_the_desk_is_begun_afresh(desk: DeskSite) -> None:
    async with http_client() as http:
        csrf = await csrf_of(http, f"{desk.base}/chat")
        assert (await post(http, desk, "choose", csrf, option="info"))[0] == 303
        # Its own signature on another guide (one that began long ago): not accepted.
        jar = {c.key: c.value for c in http.cookie_jar}
        _, _, mac = jar[GUIDE_COOKIE].partition(".")
        forged = json.dumps({"t": 0, "s": time.time(), "step": "info", "c": None, "p": []})
        fake = base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")
        http.cookie_jar.update_cookies({GUIDE_COOKIE: f"{fake}.{mac}"}, URL(desk.base))
        started = time.time()
        assert (await post(http, desk, "choose", csrf, option="chat"))[0] == 303
    (chat,) = service_of(desk).chats.values()
    assert chat.journey.started_at >= started and chat.journey.path == ["chat"]


async def test_a_double_click_on_the_chat_button_starts_one_chat_counted_once(
    desk: DeskSite,
) -> None:
    """The second click arrives while the first is still starting the chat (held in its read
    of the abuse flags): it waits for that chat and is not counted as a start of its own."""
    service = service_of(desk)
    assert service.store is not None
    reading, release, second_waits = asyncio.Event(), asyncio.Event(), asyncio.Event()
    read_flag, starting = service.store.active_flag, service.starting

    async def held_flag(identity: str, now: float) -> Any:
        reading.set()
        await release.wait()
        return await read_flag(identity, now)

    def seen_starting(identity: str) -> asyncio.Event | None:
        started = starting(identity)
        if started is not None:
            second_waits.set()
        return started

    service.store.active_flag = held_flag  # type: ignore[method-assign]
    service.starting = seen_starting  # type: ignore[method-assign]
    clients = [http_client() for _ in range(3)]
    try:
        double = clients[0]
        csrf = await csrf_of(double, f"{desk.base}/chat")
        first = asyncio.create_task(post(double, desk, "choose", csrf, option="chat"))
        await asyncio.wait_for(reading.wait(), 10)
        second = asyncio.create_task(post(double, desk, "choose", csrf, option="chat"))
        await asyncio.wait_for(second_waits.wait(), 10)
        release.set()
        assert [(await first)[0], (await second)[0]] == [303, 303]
        assert len(service.chats) == 1
        # Counted once: the address's other two starts (3 in 10 minutes) are still allowed.
        service.store.active_flag = read_flag  # type: ignore[method-assign]
        assert [(await ask_for_a_counselor(c, desk))[0] for c in clients[1:]] == [303, 303]
    finally:
        for c in clients:
            await c.close()
    assert len(service.chats) == 3
