"""Desk sessions: a signed cookie naming a session the server keeps.

The cookie holds ``<session id>.<HMAC-SHA256>``; the key is derived from the data key in
``state_dir/secrets.json`` (never committed, never in the code). The session itself (who,
since when) is held here by the SHA-256 of its id, and kept in the database by the same hash
(ivr/web/session_store.py) so that a restart or a hand-over signs nobody out; the id itself is
only in the cookie. Signing out ends a session for good — a copied cookie is worth nothing
afterwards. Cookies are HttpOnly, SameSite=Strict once signed in (Lax while anonymous:
docs/desk.md), and Secure over TLS.

Every session, signed in or not, has a CSRF token, derived from its id with the key (so a form
rendered before a restart still posts after it); every form carries it in a hidden field
``csrf`` and a POST without the session's token is refused (403). Only signed-in sessions are
kept here: a visitor who has not signed in gets a cookie signed for "anonymous" use whose CSRF
token is derived from its id with the key, so requests without a cookie (a flood of them, or
each static file) cost no memory and can never push out a sign-in in progress.
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
#: Signed-in sessions kept at most (beyond: the idle ones, then the least recently seen, end).
MAX_SESSIONS = 10_000


def cookie_key(data_key: str) -> bytes:
    """The cookie-signing key, derived from the secrets file's data key (one-way)."""
    return hmac.new(data_key.encode(), b"ivr120 desk session cookie v1", hashlib.sha256).digest()


def sid_hash(sid: str) -> str:
    """How a session is held and stored: the SHA-256 of its id (never the id itself)."""
    return hashlib.sha256(_b(sid)).hexdigest()


def _b(text: str) -> bytes:
    """Bytes of any text a client sent (compare_digest refuses non-ASCII str; a header may
    carry undecodable bytes as surrogates)."""
    return text.encode("utf-8", "surrogatepass")


@dataclass
class Session:
    sid: str
    csrf: str
    last_seen: float
    member: str | None = None
    role: Role | None = None
    signed_in_at: float | None = None
    #: `last_seen` as last written to the database (ivr/web/session_store.py).
    stored_seen: float = 0.0


@dataclass
class Sessions:
    key: bytes
    _by_id: dict[str, Session] = field(default_factory=dict)
    #: Signs the cookies of visitors not signed in, and derives their CSRF tokens.
    _anon_key: bytes = field(init=False, repr=False)
    _csrf_key: bytes = field(init=False, repr=False)
    #: Derives the CSRF tokens of signed-in sessions.
    _signed_csrf_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._anon_key = hmac.new(self.key, b"anonymous", hashlib.sha256).digest()
        self._csrf_key = hmac.new(self.key, b"anonymous csrf", hashlib.sha256).digest()
        self._signed_csrf_key = hmac.new(self.key, b"signed-in csrf", hashlib.sha256).digest()

    def __len__(self) -> int:
        """Sessions kept (the signed-in ones)."""
        return len(self._by_id)

    @staticmethod
    def _mac(key: bytes, sid: str) -> str:
        mac = hmac.new(key, _b(sid), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def cookie_value(self, s: Session) -> str:
        key = self.key if s.member is not None else self._anon_key
        return f"{s.sid}.{self._mac(key, s.sid)}"

    def from_cookie(self, value: str | None, now: float, touch: bool = True) -> Session | None:
        """The session of a cookie, or None. `touch`: the request is the member's activity
        (False for what a page asks on its own, a live stream: it keeps no one signed in)."""
        if not value or "." not in value:
            return None
        sid, _, mac = value.partition(".")
        if hmac.compare_digest(_b(mac), _b(self._mac(self._anon_key, sid))):
            return self._anonymous(sid, now)
        if not hmac.compare_digest(_b(mac), _b(self._mac(self.key, sid))):
            return None
        key = sid_hash(sid)
        s = self._by_id.get(key)
        if s is None or now - s.last_seen > IDLE_SECONDS:
            self._by_id.pop(key, None)
            return None
        if not s.sid:  # kept from before a restart: its id comes back with its cookie
            s.sid, s.csrf = sid, self._mac(self._signed_csrf_key, sid)
        if touch:
            s.last_seen = now
        return s

    def _anonymous(self, sid: str, now: float) -> Session:
        return Session(sid=sid, csrf=self._mac(self._csrf_key, sid), last_seen=now)

    def new(self, now: float) -> Session:
        """A visitor's session before signing in (nothing is kept for it here)."""
        return self._anonymous(secrets.token_urlsafe(24), now)

    def sign_in(self, old: Session, member: str, role: Role, now: float) -> Session:
        """A fresh session id and CSRF token at sign-in (no fixation of a planted cookie)."""
        self._by_id.pop(sid_hash(old.sid), None)
        if len(self._by_id) >= MAX_SESSIONS:
            self._expire(now)
        sid = secrets.token_urlsafe(24)
        s = Session(
            sid=sid,
            csrf=self._mac(self._signed_csrf_key, sid),
            last_seen=now,
            member=member,
            role=role,
            signed_in_at=now,
        )
        self._by_id[sid_hash(sid)] = s
        return s

    def restore(
        self, key: str, member: str, role: Role, signed_in_at: float, last_seen: float, now: float
    ) -> bool:
        """A session kept from before a restart, by its id's hash `key` (its id and CSRF token
        are filled in when its cookie comes back). False when idle too long."""
        if now - last_seen > IDLE_SECONDS or len(self._by_id) >= MAX_SESSIONS:
            return False
        self._by_id[key] = Session(
            sid="",
            csrf="",
            last_seen=last_seen,
            member=member,
            role=role,
            signed_in_at=signed_in_at,
            stored_seen=last_seen,
        )
        return True

    def current(self, s: Session, now: float) -> bool:
        """Whether signed-in session `s` still holds (not signed out, not idle too long)."""
        return self._by_id.get(sid_hash(s.sid)) is s and now - s.last_seen <= IDLE_SECONDS

    def end(self, s: Session) -> None:
        self._by_id.pop(sid_hash(s.sid), None)

    def _expire(self, now: float) -> None:
        for key, s in list(self._by_id.items()):
            if now - s.last_seen > IDLE_SECONDS:
                del self._by_id[key]
        excess = len(self._by_id) - MAX_SESSIONS + 1
        if excess > 0:
            oldest = sorted(self._by_id.items(), key=lambda kv: kv[1].last_seen)[:excess]
            for key, _ in oldest:
                del self._by_id[key]

    @staticmethod
    def csrf_ok(s: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(_b(s.csrf), _b(token or ""))
