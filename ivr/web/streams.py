"""A room's live view as server-sent events, shared by the wallboard and the counselor screen.

Every `tick` seconds the view is built again and sent as one `data:` line of JSON when it
differs from the last one sent; a comment line keeps the connection open when nothing changed
for `keepalive` seconds. The stream re-checks its session every tick and ends when it is signed
out, idle too long (the stream itself is not activity, except a wall screen's: ivr.web.auth
KEPT_BY_SCREEN) or no longer of a role the room serves,
when the desk stops, or when the browser goes away (seen at the next tick).

A signed-in member holds at most `desk_streams_per_member` streams at once (`Desk.streams`,
the chat's `Slots`): one more is answered 429 in Korean, and a stream's slot is given back
however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web

from ivr.web.auth import KEPT_BY_SCREEN, Role, role_of
from ivr.web.sessions import Session
from ivr.web.site import SESSION, Desk, desk_of

log = logging.getLogger(__name__)

#: How often a stream builds its view again (s).
TICK = 0.25
#: A comment line after this long without a change (s), so proxies keep the stream open.
KEEPALIVE = 15.0
#: Seconds a member past the cap is asked to wait (Retry-After; the pages retry as often:
#: ivr/web/static/live.js).
RETRY_AFTER = 10
MSG_TOO_MANY_STREAMS = (
    "실시간 화면이 너무 많이 열려 있습니다. 사용하지 않는 창이나 탭을 닫은 뒤 다시 시도해 주세요."
)


async def view_stream(
    request: web.Request,
    roles: Collection[Role],
    view: Callable[[float], Awaitable[Any]],
    *,
    tick: float = TICK,
    keepalive: float = KEEPALIVE,
) -> web.StreamResponse:
    """Serve `view(now)` (JSON-able) as an event stream while the session holds one of `roles`."""
    desk = desk_of(request)
    session: Session = request[SESSION]
    member = session.member
    if member is None:  # the room's @requires lets only a signed-in session in
        raise web.HTTPForbidden()
    # Each open stream holds a task and a socket: capped per member (a runaway tab, a stolen
    # session). Members are the staff list, so the total needs no cap of its own.
    desk.streams.per_key = desk.settings.desk_streams_per_member
    desk.streams.total = desk.streams.per_key * max(1, len(desk.settings.staff_endpoints))
    if desk.streams.take(member) is not None:
        log.warning("desk stream refused: %s holds %d streams", member, desk.streams.held(member))
        return web.Response(
            status=429, text=MSG_TOO_MANY_STREAMS, headers={"Retry-After": str(RETRY_AFTER)}
        )
    try:
        return await _serve(request, desk, session, roles, view, tick, keepalive)
    finally:
        desk.streams.give(member)


async def _serve(
    request: web.Request,
    desk: Desk,
    session: Session,
    roles: Collection[Role],
    view: Callable[[float], Awaitable[Any]],
    tick: float,
    keepalive: float,
) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    last = None
    sent_at = time.monotonic()

    def holds() -> bool:
        if not desk.sessions.current(session, time.time()) or session.member is None:
            return False
        return role_of(desk.settings, session.member) in roles

    def gone() -> bool:
        # The browser went away: seen at the next tick, not only when a write fails (which,
        # with nothing new to send, waits for the keep-alive), so its slot is free at once.
        transport = request.transport
        return transport is None or transport.is_closing()

    kept = session.role in KEPT_BY_SCREEN
    try:
        while not desk.stopping.is_set() and holds() and not gone():
            if kept:  # a wall screen's open board is its activity (ivr.web.auth)
                session.last_seen = time.time()
            data = json.dumps(await view(time.time()), ensure_ascii=False, sort_keys=True)
            if data != last:
                await resp.write(f"data: {data}\n\n".encode())
                last, sent_at = data, time.monotonic()
            elif time.monotonic() - sent_at > keepalive:
                await resp.write(b": keep-alive\n\n")
                sent_at = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(desk.stopping.wait(), tick)
    except ConnectionResetError:
        pass  # the screen went away
    return resp
