"""GET /api/callbacks: open callback requests (the sealed number is never served)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ivr.keys import STORE


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/callbacks", _callbacks)


async def _callbacks(request: web.Request) -> web.Response:
    rows = await request.app[STORE].callbacks()
    return web.json_response(
        [{k: v for k, v in dataclasses.asdict(r).items() if k != "number_sealed"} for r in rows]
    )
