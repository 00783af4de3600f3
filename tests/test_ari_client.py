"""The ARI client (ivr.ari.client) against an in-process fake ARI server.

Only what a real Asterisk will not do on demand: error statuses, a refused connection, and a
websocket that drops (and garbage on it). Everything else is tested against Asterisk itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from ivr.ari.client import (
    AriClient,
    AriConflict,
    AriConnectionError,
    AriError,
    AriNotFound,
    AriServerError,
)
from ivr.ari.events import Connected, Disconnected, Event, StasisStart

USER, PASSWORD, APP = "ivr120", "s3cret", "ivr120"

STASIS_START = {
    "type": "StasisStart",
    "application": APP,
    "args": ["carrier", "5"],
    "channel": {
        "id": "1700000000.1",
        "name": "PJSIP/carrier-00000001",
        "state": "Ring",
        "caller": {"name": "", "number": "01012345678"},
        "dialplan": {"context": "from-carrier", "exten": "120", "priority": 1},
        "language": "ko",
    },
}
PLAYBACK_FINISHED = {
    "type": "PlaybackFinished",
    "application": APP,
    "playback": {"id": "c1-pb1", "state": "done"},
}


@dataclass
class FakeAri:
    """Records what the client sent; each websocket connection gets the next script."""

    requests: list[web.Request] = field(default_factory=list)
    ws_connections: list[web.Request] = field(default_factory=list)
    #: One list of messages per connection; `None` means "close the socket now".
    scripts: list[list[Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ari/events", self.events)
        app.router.add_route("*", "/ari/{tail:.*}", self.rest)
        return app

    async def rest(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        raw = await request.text()
        tail = request.match_info["tail"]
        if tail == "boom":
            return web.json_response({"message": "Allocation failed"}, status=500)
        if tail.startswith("channels/gone"):
            return web.json_response({"message": "Channel not found"}, status=404)
        if tail == "bridges/busy":
            return web.json_response({"message": "Channel not in Stasis application"}, status=409)
        if tail == "plain":
            return web.Response(text="upstream broke", status=502)
        if tail == "empty":
            return web.Response(status=204)
        body = json.loads(raw) if raw else None
        return web.json_response(
            {"path": tail, "query": dict(request.query), "body": body, "method": request.method}
        )

    async def events(self, request: web.Request) -> web.StreamResponse:
        self.ws_connections.append(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        script = self.scripts.pop(0) if self.scripts else []
        for item in script:
            if item is None:
                await ws.close()
                return ws
            if isinstance(item, str):
                await ws.send_str(item)
            else:
                await ws.send_json(item)
        async for msg in ws:  # hold the socket open until the client closes it
            if msg.type == WSMsgType.ERROR:
                break
        return ws


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeAri, str]]:
    fake = FakeAri()
    server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield fake, str(server.make_url("/ari"))
    finally:
        await server.close()


@pytest.fixture
async def client(fake: tuple[FakeAri, str]) -> AsyncIterator[AriClient]:
    _, url = fake
    async with AriClient(
        url, USER, PASSWORD, APP, request_timeout=5, backoff_initial=0.01, backoff_max=0.05
    ) as c:
        yield c


# --- REST ---------------------------------------------------------------------------------


async def test_success_returns_json_and_sends_basic_auth(
    fake: tuple[FakeAri, str], client: AriClient
) -> None:
    server, _ = fake
    result = await client.get("channels/abc")
    assert result["path"] == "channels/abc"
    assert result["method"] == "GET"
    (req,) = server.requests
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert req.headers["Authorization"] == expected


async def test_query_params_are_formatted(client: AriClient) -> None:
    result = await client.post(
        "channels/abc/play",
        media="sound:welcome",
        skipms=0,
        beep=True,
        terminateOn=False,
        gain=1.5,
    )
    assert result["method"] == "POST"
    assert result["query"] == {
        "media": "sound:welcome",
        "skipms": "0",
        "beep": "true",
        "terminateOn": "false",
        "gain": "1.5",
    }


async def test_json_body_is_sent(client: AriClient) -> None:
    result = await client.post("channels/abc/variable", {"variables": {"X": "1"}})
    assert result["body"] == {"variables": {"X": "1"}}


async def test_empty_response_is_none(client: AriClient) -> None:
    assert await client.delete("empty") is None


async def test_server_error_carries_status_and_message(client: AriClient) -> None:
    with pytest.raises(AriServerError) as info:
        await client.post("boom")
    err = info.value
    assert err.status == 500
    assert err.message == "Allocation failed"
    assert (err.method, err.path) == ("POST", "boom")
    assert "Allocation failed" in str(err) and "500" in str(err)


async def test_non_json_error_body_is_the_message(client: AriClient) -> None:
    with pytest.raises(AriServerError) as info:
        await client.get("plain")
    assert info.value.status == 502
    assert info.value.message == "upstream broke"


async def test_not_found_is_a_lookup_error(client: AriClient) -> None:
    with pytest.raises(AriNotFound) as info:
        await client.delete("channels/gone")
    assert info.value.status == 404
    assert info.value.message == "Channel not found"
    assert isinstance(info.value, LookupError)
    assert isinstance(info.value, AriError)


async def test_conflict(client: AriClient) -> None:
    with pytest.raises(AriConflict) as info:
        await client.post("bridges/busy")
    assert info.value.status == 409
    assert "not in Stasis" in info.value.message


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{_refused_port()}/ari"
    async with AriClient(url, USER, PASSWORD, APP, request_timeout=5) as c:
        with pytest.raises(AriConnectionError) as info:
            await c.get("channels")
    assert info.value.status == 0
    assert isinstance(info.value, ConnectionError)
    assert isinstance(info.value, AriError)


async def test_client_can_be_closed_twice_and_reused(fake: tuple[FakeAri, str]) -> None:
    _, url = fake
    c = AriClient(url, USER, PASSWORD, APP)
    await c.close()
    assert (await c.get("a"))["path"] == "a"
    await c.close()
    await c.close()


# --- the events websocket -----------------------------------------------------------------


def _stream(client: AriClient) -> AsyncGenerator[Event, None]:
    """`events()` is an async generator; closing it closes the websocket."""
    return cast(AsyncGenerator[Event, None], client.events())


async def _next(events: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(events), timeout=10)


async def test_events_reconnect_after_the_socket_drops(
    fake: tuple[FakeAri, str], client: AriClient
) -> None:
    server, _ = fake
    server.scripts = [
        [STASIS_START, None],
        ["this is not json", ["a", "list"], PLAYBACK_FINISHED],
    ]
    events = _stream(client)
    try:
        assert isinstance(await _next(events), Connected)

        ev = await _next(events)
        assert isinstance(ev, StasisStart)
        assert ev.type == "StasisStart"
        assert ev.channel.id == "1700000000.1"
        assert ev.channel.name == "PJSIP/carrier-00000001"
        assert ev.channel.caller_number == "01012345678"
        assert ev.channel.exten == "120"
        assert ev.args == ("carrier", "5")

        assert isinstance(await _next(events), Disconnected)
        assert isinstance(await _next(events), Connected)

        # The non-JSON text and the non-object JSON are skipped.
        ev = await _next(events)
        assert ev.type == "PlaybackFinished"
        assert ev.raw["playback"]["id"] == "c1-pb1"
    finally:
        await events.aclose()

    assert len(server.ws_connections) == 2
    for req in server.ws_connections:
        assert req.query["app"] == APP
        assert req.query["subscribeAll"] == "false"
        assert req.headers["Authorization"].startswith("Basic ")


async def test_events_retry_until_the_server_is_there() -> None:
    port = _refused_port()
    url = f"http://127.0.0.1:{port}/ari"
    fake = FakeAri(scripts=[[STASIS_START]])
    server = TestServer(fake.app(), host="127.0.0.1", port=port)
    async with AriClient(url, USER, PASSWORD, APP, backoff_initial=0.01, backoff_max=0.02) as c:
        events = _stream(c)
        first = asyncio.ensure_future(anext(events))
        try:
            await asyncio.sleep(0.05)  # a few refused attempts
            assert not first.done()
            await server.start_server()
            assert isinstance(await asyncio.wait_for(first, 10), Connected)
            assert isinstance(await _next(events), StasisStart)
        finally:
            if not first.done():
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first
            await events.aclose()
            await server.close()
