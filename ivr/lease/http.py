"""GET /health of a standby controller (ha_enabled, waiting for the lease), on its status port.

503 with `"role": "standby"`: alive, but not serving calls — a load balancer that sends to the
controllers answering 200 skips it, a monitor tells it from a dead one (no answer at all) by
the role. The lease it last saw says who is active and until when. Every other path (an
`ivr-admin` command sent to this node) is answered 503 with the error body the controller's
API uses, saying that this node stands by: nothing else of the controller exists yet.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from ivr.lease.model import Lease

#: The reason in a standby's /health (English, for monitoring, like ivr/health.py's).
STANDBY_REASON = "standby: waiting for the lease (another controller is active)"
MSG_STANDBY_KO = (
    "이 컨트롤러는 대기(standby) 중입니다. 활성 컨트롤러가 있는 서버에서 다시 실행해 주세요."
)


def lease_body(lease: Lease | None) -> dict[str, object] | None:
    if lease is None:
        return None
    return {"holder": lease.holder, "token": lease.token, "expires_at": lease.expires_at}


def standby_app(seen: Callable[[], Lease | None]) -> web.Application:
    """The standby's status page; `seen` gives the lease row of the keeper's last look."""

    async def health(request: web.Request) -> web.Response:
        body = {
            "ok": False,
            "role": "standby",
            "lease": lease_body(seen()),
            "reasons": [STANDBY_REASON],
        }
        return web.json_response(body, status=503)

    async def standing_by(request: web.Request) -> web.Response:
        body = {
            "error_id": "standby",
            "message": "this controller is standing by; run the command on the active one",
            "message_ko": MSG_STANDBY_KO,
            "lease": lease_body(seen()),
        }
        return web.json_response(body, status=503)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_route("*", "/{tail:.*}", standing_by)
    return app
