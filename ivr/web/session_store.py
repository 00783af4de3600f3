"""Desk sessions kept in the database (`desk_sessions`), so that a restart of the product or
a hand-over for an update (ivr/stopping.py) signs no counselor out of the desk mid-shift.

Only the SHA-256 of a session's id is kept (the id itself is only in the member's cookie, and
the cookie is signed with a key derived from the data key): the database alone opens no
session. A sign-in writes the row, a sign-out deletes it, the member's activity moves its
`last_seen` at most every SEEN_EVERY seconds, and at start the rows seen within the idle limit
come back, each only while the member still has that desk role (the settings may have changed
across the restart); the rest are deleted. `ivr-admin desk-password` deletes the member's rows
(their sessions end at the next start; a running desk keeps its own until sign-out).
"""

from __future__ import annotations

import logging

from ivr.config import Settings
from ivr.store import Store
from ivr.web.auth import Role, role_of
from ivr.web.sessions import IDLE_SECONDS, Session, Sessions, sid_hash

log = logging.getLogger(__name__)

#: Seconds between two writes of a session's `last_seen` (the idle limit is 12 hours).
SEEN_EVERY = 60.0


async def load(store: Store, sessions: Sessions, settings: Settings, now: float) -> int:
    """Take back the sessions kept before this start; the number taken back."""
    await store.change("DELETE FROM desk_sessions WHERE last_seen < ?", (now - IDLE_SECONDS,))
    rows = await store.fetch(
        "SELECT sid_hash, member, role, signed_in_at, last_seen FROM desk_sessions"
    )
    kept = 0
    for key, member, role, signed_in_at, last_seen in rows:
        current = role_of(settings, str(member))
        if current is None or current.value != role:
            await store.change("DELETE FROM desk_sessions WHERE sid_hash = ?", (key,))
            continue
        kept += sessions.restore(
            str(key), str(member), Role(current), float(signed_in_at), float(last_seen), now
        )
    return kept


async def signed_in(store: Store, s: Session) -> None:
    assert s.member is not None and s.role is not None and s.signed_in_at is not None
    s.stored_seen = s.last_seen
    await store.write(
        "desk session",
        "INSERT OR REPLACE INTO desk_sessions (sid_hash, member, role, signed_in_at, last_seen)"
        " VALUES (?, ?, ?, ?, ?)",
        (sid_hash(s.sid), s.member, s.role.value, s.signed_in_at, s.last_seen),
    )


async def signed_out(store: Store, s: Session) -> None:
    await store.write(
        "desk session end", "DELETE FROM desk_sessions WHERE sid_hash = ?", (sid_hash(s.sid),)
    )


async def seen(store: Store, s: Session) -> None:
    """The member was active: their row's `last_seen`, when SEEN_EVERY has passed."""
    if s.member is None or s.last_seen - s.stored_seen < SEEN_EVERY:
        return
    s.stored_seen = s.last_seen
    await store.write(
        "desk session seen",
        "UPDATE desk_sessions SET last_seen = ? WHERE sid_hash = ?",
        (s.last_seen, sid_hash(s.sid)),
    )
