"""The wallboard after a restart (ivr.wallboard.http Feed.seed, ivr.wallboard.records): a desk
started over a real Store (an SQLite file) already holding the last hours' rows shows their
silence alerts and abuse endings, and marks the counselor who has been on calls past the limit
without a break; nothing older than the window, nothing twice, no number."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ivr.chat import http as chat_http
from ivr.keys import STORE
from ivr.store import Store
from ivr.wallboard.http import FEED, SEED_RETRY, Feed
from ivr.wallboard.wellbeing import stretch_ko
from ivr.web.site import DESK, DESK_APP
from tests.test_desk_web import SUPERVISOR_PW, DeskSite, desk_site, http_client
from tests.test_wallboard_monitor_web import signed_in

CALL = (
    "INSERT INTO calls (call_id, caller_hash, started_at, queue, queued_at, answered_at, member,"
    " ended_at, outcome, wrapup_seconds) VALUES (?, 'hash', ?, ?, ?, ?, ?, ?, ?, ?)"
)


def call(
    cid: str, line: str, member: str, answered: float, ended: float, outcome: str = "completed"
) -> tuple[Any, ...]:
    return (cid, answered - 30, line, answered - 20, answered, member, ended, outcome, 30.0)


def rows(now: float) -> list[tuple[str, tuple[Any, ...]]]:
    """The last hours' rows, `now` the desk's start."""
    return [
        # counselor02: on calls from 2 h 12 min ago until a minute ago, 100 s between them.
        (CALL, call("1700.1", "loneliness", "counselor02", now - 7900, now - 4000)),
        (CALL, call("1700.2", "loneliness", "counselor02", now - 3900, now - 60)),
        (
            "INSERT INTO silence_events (call_id, party, started_at, seconds, action)"
            " VALUES ('1700.2', 'both', ?, 20, 'told_counselor')",
            (now - 620,),
        ),
        (  # the menu's gentle word is no alert
            "INSERT INTO silence_events (call_id, party, started_at, seconds, action)"
            " VALUES ('1700.2', 'caller', ?, 8, 'gentle_prompt')",
            (now - 900,),
        ),
        # counselor01: as long on calls, but paused between them: no mark; one call ended for abuse.
        (CALL, call("1700.3", "general", "counselor01", now - 7900, now - 4000)),
        (CALL, call("1700.4", "general", "counselor01", now - 3900, now - 300, "abuse_ended")),
        (
            "INSERT INTO caller_flags (caller_hash, kind, level, created_at, until, call_id,"
            " member) VALUES ('hash', 'abuse', 1, ?, ?, '1700.4', 'counselor01')",
            (now - 305, now + 86400),
        ),
        (
            "INSERT INTO counselor_events (member, at, field, old, new, reason)"
            " VALUES ('counselor01', ?, 'paused', 'false', 'true', 'break')",
            (now - 3990,),
        ),
        (
            "INSERT INTO counselor_events (member, at, field, old, new, reason)"
            " VALUES ('counselor01', ?, 'paused', 'true', 'false', '')",
            (now - 3950,),
        ),
        # A chat ended for abuse, and an abuse ending of two hours ago (past the hour: not shown).
        (
            "INSERT INTO chats (chat_id, identity_hash, started_at, queued_at, answered_at,"
            " ended_at, member, consent, outcome)"
            " VALUES ('chat-9', 'id', ?, ?, ?, ?, 'counselor01', 'no', 'abuse')",
            (now - 1000, now - 990, now - 980, now - 200),
        ),
        (CALL, call("1600.9", "general", "counselor01", now - 7300, now - 7200, "abuse_ended")),
        # counselor03: on one call still going on (its snapshot), answered 2 h 13 min 20 s ago.
        (
            "INSERT INTO live_calls (call_id, owner, state, caller_hash, channel_name, flag_level,"
            " started_at, stage_since, stage_seconds, menu_path, menu_failures, member,"
            " answered_at, consent_stored, recordings, updated_at) VALUES ('1700.5', 'run',"
            " 'talking', 'hash', 'PJSIP/trunk-1', 0, ?, ?, '{}', '1', 0, 'counselor03', ?, 0,"
            " '{}', ?)",
            (now - 8100, now - 8000, now - 8000, now),
        ),
    ]


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[DeskSite]:
    """The desk over a database that already holds `rows` when it starts."""

    async def stored(store: Store) -> None:
        for sql, args in rows(time.time()):
            await store.change(sql, args)

    async with desk_site(tmp_path, stored) as site:
        yield site


def alert_rows(page: str) -> list[tuple[str, str]]:
    """(data-kind, data-call) of each alert row, in the board's order."""
    return re.findall(r'<tr data-kind="([^"]+)" data-call="([^"]+)">', page)


async def test_a_restarted_board_shows_the_stored_alerts_once(desk: DeskSite) -> None:
    async with http_client() as http:
        await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        async with http.get(f"{desk.base}/wallboard") as resp:
            assert resp.status == 200
            page = await resp.text()
    assert alert_rows(page) == [
        ("chat_abuse_end", "chat-9"),
        ("abuse_end", "1700.4"),
        ("both_silent", "1700.2"),
    ]
    assert "침묵 알림: 양쪽 모두 20초째 말이 없음" in page
    assert "폭언으로 통화 종료" in page and "폭언으로 채팅 종료" in page
    assert "1600.9" not in page
    # A notice written after the start was heard live (the controller's listeners): the
    # stored row is not read again while no new controller is heard.
    await desk.main[STORE].change(
        "INSERT INTO silence_events (call_id, party, started_at, seconds, action)"
        " VALUES ('1700.2', 'caller', ?, 45, 'told_counselor')",
        (time.time() - 45,),
    )
    feed = desk.main[DESK_APP][FEED]
    await feed.seed(time.time())
    assert [a.call_id for a in feed.alert_log.recent(time.time())] == ["chat-9", "1700.4", "1700.2"]


async def test_a_restarted_board_marks_the_counselor_on_calls_past_the_limit(
    desk: DeskSite,
) -> None:
    feed = desk.main[DESK_APP][FEED]
    await feed.seed(time.time())
    # counselor03's live call counts to the seed's end (the desk's looks go on from there):
    # however long the rows took to write, the mark is that of its answer to the seed.
    [(answered,)] = await desk.main[STORE].fetch(
        "SELECT answered_at FROM live_calls WHERE call_id = '1700.5'"
    )
    assert feed._seeded_to is not None
    # counselor02: 1700.1 answered 7900 s ago to 1700.2's wrap-up end 30 s ago, 7870 s;
    # counselor01 was paused between the calls.
    assert feed.stretches.marks(time.time()) == {
        "counselor02": "휴식 없이 2시간 11분",
        "counselor03": stretch_ko(feed._seeded_to - answered),
    }


async def test_a_failed_seed_is_tried_again_later_and_the_board_still_shows(
    desk: DeskSite, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = desk.main[DESK_APP]
    feed = Feed(app[DESK], app=app)  # a board of its own, not yet seeded
    store = desk.main[STORE]
    real, failures = store.fetch, [sqlite3.OperationalError("database is locked")]

    async def fetch(sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if failures:
            raise failures.pop()
        return await real(sql, args)

    monkeypatch.setattr(store, "fetch", fetch)  # a fake for the error path: fails once
    now = time.time()
    board = await feed.view(now)  # the board without what is stored, not an error
    assert board["alerts"] == [] and feed._seeded_to is None
    assert "could not be read" in caplog.text
    await feed.seed(now + SEED_RETRY - 1)  # not before the back-off
    assert feed.alert_log.recent(now) == []
    await feed.seed(now + SEED_RETRY)
    assert [a.call_id for a in feed.alert_log.recent(now)] == ["chat-9", "1700.4", "1700.2"]


async def test_the_chat_service_is_heard_from_the_desk_start_before_any_seed(
    desk: DeskSite,
) -> None:
    app = desk.main[DESK_APP]
    assert app[FEED].heard_chat in app[chat_http.SERVICE].command_listeners
