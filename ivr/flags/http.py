"""GET /api/flags (active abuse flags, hashed callers) and DELETE /api/flags/{caller_hash}."""

from __future__ import annotations

import dataclasses
import time

from aiohttp import web

from ivr.api import ApiError
from ivr.audit import audit
from ivr.keys import STORE


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/flags", _flags)
    app.router.add_delete("/api/flags/{caller_hash}", _lift_flag)


async def _flags(request: web.Request) -> web.Response:
    flags = await request.app[STORE].flags(time.time())
    return web.json_response([dataclasses.asdict(f) for f in flags])


async def _lift_flag(request: web.Request) -> web.Response:
    caller = request.match_info["caller_hash"]
    lifted = await request.app[STORE].lift_flags(caller, "admin", time.time())
    if not lifted:
        raise ApiError(
            404, "no_active_flag", "no active flag for that caller", "해당 표시가 없습니다"
        )
    audit.info("abuse flag lifted by an administrator: caller %s", caller)
    return web.json_response({"caller_hash": caller, "lifted": lifted})
