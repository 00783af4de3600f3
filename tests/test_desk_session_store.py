"""Desk sessions kept across a restart (ivr/web/session_store.py), over a real SQLite store:
a member signed in before it is still signed in after it (the cookie and the form's CSRF
token from before both hold), a sign-out, a role taken away, the idle limit and a new desk
password end it, and the database holds no session id."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.config import Settings
from ivr.store import Store
from ivr.web import admin_commands, session_store
from ivr.web.auth import Role
from ivr.web.sessions import IDLE_SECONDS, Sessions, cookie_key

KEY = cookie_key("k" * 44)
T0 = 1_000_000.0


@pytest.fixture
async def store(db_store: Store) -> Store:
    """One database for every run of a test, as a restart finds it."""
    return db_store


async def signed_in(store: Store, member: str = "counselor01") -> tuple[str, str]:
    """A member signs in on one run's desk: (their cookie, their session's CSRF token)."""
    sessions = Sessions(KEY)
    s = sessions.sign_in(sessions.new(T0), member, Role.COUNSELOR, T0)
    await session_store.signed_in(store, s)
    return sessions.cookie_value(s), s.csrf


async def test_a_member_signed_in_before_a_restart_still_is_after_it(store: Store) -> None:
    cookie, csrf = await signed_in(store)
    later = Sessions(KEY)  # the next run
    assert await session_store.load(store, later, Settings(), T0 + 30) == 1
    s = later.from_cookie(cookie, T0 + 31)
    assert s is not None and (s.member, s.role) == ("counselor01", Role.COUNSELOR)
    assert later.cookie_value(s) == cookie and Sessions.csrf_ok(s, csrf)
    assert later.current(s, T0 + 31)
    # Only the id's hash is kept: the cookie's id is nowhere in the database.
    sid = cookie.partition(".")[0]
    rows = await store.fetch("SELECT * FROM desk_sessions")
    assert len(rows) == 1 and not any(sid in str(v) for v in rows[0])

    await session_store.signed_out(store, s)
    later.end(s)
    again = Sessions(KEY)
    assert await session_store.load(store, again, Settings(), T0 + 40) == 0
    assert again.from_cookie(cookie, T0 + 41) is None


async def test_activity_moves_last_seen_at_most_every_minute(store: Store) -> None:
    cookie, _ = await signed_in(store)
    later = Sessions(KEY)
    await session_store.load(store, later, Settings(), T0 + 1)
    s = later.from_cookie(cookie, T0 + 10)
    assert s is not None
    await session_store.seen(store, s)
    assert await store.fetch("SELECT last_seen FROM desk_sessions") == [(T0,)]
    s = later.from_cookie(cookie, T0 + session_store.SEEN_EVERY + 1)
    assert s is not None
    await session_store.seen(store, s)
    seen = T0 + session_store.SEEN_EVERY + 1
    assert await store.fetch("SELECT last_seen FROM desk_sessions") == [(seen,)]


async def test_idle_ones_and_members_without_the_role_do_not_come_back(store: Store) -> None:
    idle, _ = await signed_in(store, "counselor01")
    gone, _ = await signed_in(store, "counselor02")
    kept, _ = await signed_in(store, "counselor03")
    later = Sessions(KEY)
    settings = Settings(counselors=("counselor01", "counselor03"))  # counselor02 taken off
    assert await session_store.load(store, later, settings, T0 + IDLE_SECONDS - 1) == 2
    assert later.from_cookie(gone, T0 + IDLE_SECONDS - 1) is None
    assert later.from_cookie(kept, T0 + IDLE_SECONDS - 1) is not None
    after = Sessions(KEY)
    assert await session_store.load(store, after, settings, T0 + IDLE_SECONDS + 1) == 0
    assert after.from_cookie(idle, T0 + IDLE_SECONDS + 1) is None
    assert await store.fetch("SELECT count(*) FROM desk_sessions") == [(0,)]


async def test_a_new_desk_password_ends_the_members_kept_sessions(
    store: Store, tmp_path: Path
) -> None:
    cookie, _ = await signed_in(store, "counselor01")
    other, _ = await signed_in(store, "counselor03")
    await store.close()
    await admin_commands._store(
        Settings(state_dir=tmp_path, database=Path("ivr.db")), "counselor01", "hash", "test"
    )
    reopened = await Store.open(tmp_path / "ivr.db")
    try:
        later = Sessions(KEY)
        assert await session_store.load(reopened, later, Settings(), T0 + 5) == 1
        assert later.from_cookie(cookie, T0 + 6) is None
        assert later.from_cookie(other, T0 + 6) is not None
    finally:
        await reopened.close()
