"""The calls' views: GET /status (calls in progress, queues, counselors) and GET /api/calls
(recent call records)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ivr.api import ApiError
from ivr.keys import CONTROLLER, STORE


def add_routes(app: web.Application) -> None:
    app.router.add_get("/status", _status)
    app.router.add_get("/api/calls", _calls)


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTROLLER].status())


async def _calls(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "20"))))
    except ValueError:
        raise ApiError(
            400, "bad_limit", "limit must be a number", "limit은 숫자여야 합니다"
        ) from None
    rows = await request.app[STORE].calls(limit)
    return web.json_response([dataclasses.asdict(r) for r in rows])
