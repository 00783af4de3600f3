"""The admin API's JSON body rule (ivr.api.json_body), shared by every route that takes one,
through a real in-process aiohttp server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.api import json_body


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await json_body(request))

    app = web.Application()
    app.router.add_post("/echo", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/echo"))
    finally:
        await server.close()


async def _post(url: str, data: bytes | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def test_an_object_is_the_body_and_no_body_is_an_empty_one(url: str) -> None:
    assert await _post(url, b'{"reason": "\xec\x83\x81\xeb\x8b\xb4"}') == (200, {"reason": "상담"})
    assert await _post(url, None) == (200, {})


@pytest.mark.parametrize(
    ("data", "message"),
    [(b'{"reason": ', "the body is not JSON"), (b'["a"]', "the body must be an object")],
)
async def test_anything_else_is_a_400_bad_json(url: str, data: bytes, message: str) -> None:
    status, body = await _post(url, data)
    assert status == 400
    assert body["error_id"] == "bad_json" and body["message"] == message
    assert body["message_ko"] == "요청 형식이 잘못되었습니다"
