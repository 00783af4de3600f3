"""The administrators' HTTP API (loopback only, bearer token from state_dir/secrets.json).

Everything but ``/health`` needs the token: ``/status`` lists live calls with callers' hashes,
and anyone on the machine can reach loopback.

Errors are JSON objects with `status`, a stable `error_id`, a `message` (English) and
`message_ko`, so scripts can branch on the id and people can read the text.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ADMIN_TOKEN = web.AppKey("admin_token", str)

#: Paths anyone may read: only the liveness check, which says nothing about calls.
UNAUTHENTICATED = frozenset({"/health"})


class ApiError(web.HTTPException):
    def __init__(self, status: int, error_id: str, message: str, message_ko: str) -> None:
        self.status_code = status
        super().__init__(
            text=_json(
                {
                    "status": status,
                    "error_id": error_id,
                    "message": message,
                    "message_ko": message_ko,
                }
            ),
            content_type="application/json",
        )


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} without a body); anything else is a 400 `bad_json`."""
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        raise ApiError(
            400, "bad_json", "the body is not JSON", "요청 형식이 잘못되었습니다"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the body must be an object", "요청 형식이 잘못되었습니다")
    return body


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in UNAUTHENTICATED:
        expected = f"Bearer {request.app[ADMIN_TOKEN]}"
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong admin token", "인증 실패")
    return await handler(request)
