"""The calls' views: GET /status (calls in progress, queues, counselors) and GET /api/calls
(recent call records)."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from ivr.api import ApiError
from ivr.controller import Controller
from ivr.keys import CONTROLLER, STORE


def add_routes(app: web.Application) -> None:
    app.router.add_get("/status", _status)
    app.router.add_get("/api/calls", _calls)


def status_view(controller: Controller) -> dict[str, Any]:
    now = controller.clock()
    calls = [
        {
            "call_id": c.call_id,
            "caller": c.caller,
            "state": c.flow.state.value,
            "queue": c.flow.record.queue,
            "member": c.flow.record.member,
            "seconds": round(now - c.flow.record.started_at, 1),
        }
        for c in controller.calls.values()
    ]
    staff = controller.staff
    return {"calls": calls, "queues": staff.queues(), "counselors": staff.members()}


async def _status(request: web.Request) -> web.Response:
    return web.json_response(status_view(request.app[CONTROLLER]))


async def _calls(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "20"))))
    except ValueError:
        raise ApiError(
            400, "bad_limit", "limit must be a number", "limit은 숫자여야 합니다"
        ) from None
    rows = await request.app[STORE].calls(limit)
    return web.json_response([dataclasses.asdict(r) for r in rows])
