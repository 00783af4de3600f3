"""Desk sessions: a signed cookie naming a session the server keeps in memory.

The cookie holds ``<session id>.<HMAC-SHA256>``; the key is derived from the data key in
``state_dir/secrets.json`` (never committed, never in the code). The session itself (who, the
CSRF token, since when) lives in this process only: signing out, or a restart of the controller,
ends it for good — a copied cookie is worth nothing afterwards. Cookies are HttpOnly,
SameSite=Strict, and Secure when the desk is served over TLS.

Every session, signed in or not, has a CSRF token; every form carries it in a hidden field
``csrf`` and a POST without the session's token is refused (403).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from ivr.web.auth import Role

COOKIE = "ivr120_desk"
#: A session not used for this long ends (a night shift is 12 hours).
IDLE_SECONDS = 12 * 3600.0
#: Sessions kept at most (anonymous ones, from the sign-in page, are dropped first).
MAX_SESSIONS = 10_000


def cookie_key(data_key: str) -> bytes:
    """The cookie-signing key, derived from the secrets file's data key (one-way)."""
    return hmac.new(data_key.encode(), b"ivr120 desk session cookie v1", hashlib.sha256).digest()


@dataclass
class Session:
    sid: str
    csrf: str
    last_seen: float
    member: str | None = None
    role: Role | None = None
    signed_in_at: float | None = None


@dataclass
class Sessions:
    key: bytes
    _by_id: dict[str, Session] = field(default_factory=dict)

    def _sign(self, sid: str) -> str:
        mac = hmac.new(self.key, sid.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def cookie_value(self, s: Session) -> str:
        return f"{s.sid}.{self._sign(s.sid)}"

    def from_cookie(self, value: str | None, now: float) -> Session | None:
        if not value or "." not in value:
            return None
        sid, _, mac = value.partition(".")
        if not hmac.compare_digest(mac, self._sign(sid)):
            return None
        s = self._by_id.get(sid)
        if s is None or now - s.last_seen > IDLE_SECONDS:
            self._by_id.pop(sid, None)
            return None
        s.last_seen = now
        return s

    def new(self, now: float) -> Session:
        if len(self._by_id) >= MAX_SESSIONS:
            self._expire(now)
        s = Session(sid=secrets.token_urlsafe(24), csrf=secrets.token_urlsafe(24), last_seen=now)
        self._by_id[s.sid] = s
        return s

    def sign_in(self, old: Session, member: str, role: Role, now: float) -> Session:
        """A fresh session id and CSRF token at sign-in (no fixation of a planted cookie)."""
        self._by_id.pop(old.sid, None)
        s = self.new(now)
        s.member, s.role, s.signed_in_at = member, role, now
        return s

    def end(self, s: Session) -> None:
        self._by_id.pop(s.sid, None)

    def _expire(self, now: float) -> None:
        for sid, s in list(self._by_id.items()):
            if s.member is None or now - s.last_seen > IDLE_SECONDS:
                del self._by_id[sid]

    @staticmethod
    def csrf_ok(s: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(s.csrf, token or "")
