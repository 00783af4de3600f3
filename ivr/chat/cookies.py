"""The public chat page's two cookies (ivr.chat.http), both HMAC-signed with keys derived
from `data_key` (HttpOnly, SameSite=Lax: docs/chat.md, Secure over TLS):

- `ivr120_chat`: the chat identity, a random token kept a year (an abuse flag follows it);
  only its keyed hash (:func:`identity_of`) is stored anywhere.
- `ivr120_chat_guide`: where the citizen's guided start is (:class:`~ivr.chat.journey.Guide`:
  when it began, the step, the category shown, the buttons pressed), so that a page opened
  and left holds nothing in the server's memory; the chat (and its memory) begins when the
  citizen asks for a counselor. A guide not used for KEEP_IDLE is begun afresh.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from typing import Any

from aiohttp import web

from ivr.chat.journey import MAX_PATH, Guide, Step
from ivr.chat.service import KEEP_IDLE
from ivr.followup.agencies import CATEGORIES
from ivr.keys import SECRETS
from ivr.web.site import desk_of

CHAT_COOKIE = "ivr120_chat"
GUIDE_COOKIE = "ivr120_chat_guide"
#: The chat identity outlives a chat (an abuse flag follows it): a year.
IDENTITY_SECONDS = 365 * 86400
#: Characters of one guide button kept in the cookie at most (the journey's options are short).
OPTION_CHARS = 100


def _key(request: web.Request, purpose: bytes) -> bytes:
    data_key = desk_of(request).main[SECRETS].data_key
    return hmac.new(
        data_key.encode(), b"ivr120 chat identity v1 " + purpose, hashlib.sha256
    ).digest()


def _mac(key: bytes, token: str) -> str:
    mac = hmac.new(key, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _signed(request: web.Request, cookie: str, purpose: bytes) -> str | None:
    """The cookie's token when its signature holds, else None."""
    token, _, mac = request.cookies.get(cookie, "").partition(".")
    if not token or not hmac.compare_digest(
        mac.encode("utf-8", "surrogatepass"), _mac(_key(request, purpose), token).encode()
    ):
        return None
    return token


def _set(request: web.Request, resp: web.StreamResponse, cookie: str, value: str, age: int) -> None:
    resp.set_cookie(
        cookie,
        value,
        max_age=age,
        path="/",
        httponly=True,
        samesite="Lax",  # a link from another site keeps the citizen's chat (docs/chat.md)
        secure=desk_of(request).settings.desk_tls,
    )


# -- the chat identity -------------------------------------------------------------------------
def identity_of(request: web.Request) -> str | None:
    """The keyed hash of the request's chat identity (None: no valid cookie)."""
    token = _signed(request, CHAT_COOKIE, b"cookie")
    return None if token is None else "chat-" + _mac(_key(request, b"hash"), token)[:20]


def give_identity(request: web.Request, resp: web.StreamResponse) -> None:
    token = secrets.token_urlsafe(18)
    _set(
        request, resp, CHAT_COOKIE, f"{token}.{_mac(_key(request, b'cookie'), token)}",
        IDENTITY_SECONDS,
    )  # fmt: skip


# -- the guided start --------------------------------------------------------------------------
def _guide(data: Any, now: float) -> Guide | None:
    """The guide the cookie's JSON describes, if it is one this site writes and still fresh."""
    if not isinstance(data, dict):
        return None
    started, seen, step = data.get("t"), data.get("s"), data.get("step")
    category, path = data.get("c"), data.get("p")
    if not (isinstance(started, float | int) and isinstance(seen, float | int)):
        return None
    if isinstance(started, bool) or not started <= seen <= now or now - seen > KEEP_IDLE:
        return None
    if step not in (Step.GUIDE.value, Step.INFO.value):
        return None
    if category is not None and category not in CATEGORIES:
        return None
    if not isinstance(path, list) or len(path) > MAX_PATH:
        return None
    if not all(isinstance(p, str) and len(p) <= OPTION_CHARS for p in path):
        return None
    return Guide(float(started), Step(step), category, tuple(path))


def guide_of(request: web.Request, now: float) -> Guide:
    """The citizen's guided start from its cookie, or one beginning `now`."""
    token = _signed(request, GUIDE_COOKIE, b"guide")
    if token is not None:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):
            data = None
        guide = _guide(data, now)
        if guide is not None:
            return guide
    return Guide(now)


def keep_guide(request: web.Request, resp: web.StreamResponse, guide: Guide, now: float) -> None:
    """Give the citizen `guide` to keep (seen `now`)."""
    data = {
        "t": guide.started_at,
        "s": now,
        "step": guide.step.value,
        "c": guide.category,
        "p": list(guide.path),
    }
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    _set(
        request, resp, GUIDE_COOKIE, f"{token}.{_mac(_key(request, b'guide'), token)}",
        int(KEEP_IDLE),
    )  # fmt: skip


def drop_guide(resp: web.StreamResponse) -> None:
    """The guided start is over (the chat holds it now) or begins afresh."""
    resp.del_cookie(GUIDE_COOKIE, path="/")
