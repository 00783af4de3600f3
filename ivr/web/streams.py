"""A room's live view as server-sent events, shared by the wallboard and the counselor screen.

Every `tick` seconds the view is built again and sent as one `data:` line of JSON when it
differs from the last one sent; a comment line keeps the connection open when nothing changed
for `keepalive` seconds. The stream re-checks its session every tick and ends when it is signed
out, idle too long (the stream itself is not activity) or no longer of a role the room serves,
when the desk stops, or when the browser goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from aiohttp import web

from ivr.web.auth import Role, role_of
from ivr.web.sessions import Session
from ivr.web.site import SESSION, desk_of

#: How often a stream builds its view again (s).
TICK = 0.25
#: A comment line after this long without a change (s), so proxies keep the stream open.
KEEPALIVE = 15.0


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
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    session: Session = request[SESSION]
    last = None
    sent_at = time.monotonic()

    def holds() -> bool:
        if not desk.sessions.current(session, time.time()) or session.member is None:
            return False
        return role_of(desk.settings, session.member) in roles

    try:
        while not desk.stopping.is_set() and holds():
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
