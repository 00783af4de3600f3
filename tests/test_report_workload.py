"""Per-counselor workload (ivr.report.workload) on a hand-made Monday, every number worked out
in the comments, and its reads over a real SQLite database written by the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ivr.flow.call import CallRecord, Outcome
from ivr.flow.record import CallEndReason
from ivr.report import workload as wl
from ivr.report.rows import CallRow, Period
from ivr.report.text import TEXT
from ivr.store import Store
from ivr.timezone import SEOUL

PERIOD = Period(dt.date(2026, 11, 2), dt.date(2026, 11, 2))


def at(hour: int, minute: int = 0, second: int = 0) -> float:
    return dt.datetime(2026, 11, 2, hour, minute, second, tzinfo=SEOUL).timestamp()


def answered(
    n: int,
    member: str,
    ans: float,
    talk: float,
    *,
    wrapup: float = 0.0,
    outcome: str = "completed",
    end_reason: str | None = None,
    direction: str = "inbound",
) -> CallRow:
    return CallRow(
        f"c{n}",
        "h",
        ans - 20,
        direction,
        "5",
        "loneliness" if direction == "inbound" else None,
        ans - 10 if direction == "inbound" else None,
        ans,
        member,
        10.0,
        talk,
        ans + talk,
        outcome,
        "staff",
        wrapup_seconds=wrapup,
        end_reason=end_reason,
    )


CALLS = [
    # k1: busy 9:00-9:11 (10 min talk + 1 min wrap-up) and, 4 min later, 9:15-9:36: one stretch.
    answered(1, "k1", at(9), 600, wrapup=60),
    answered(
        2, "k1", at(9, 15), 1200, wrapup=60, outcome="transferred", end_reason="crisis_transfer"
    ),
    # 14 min idle (a break); 9:50-9:55, then paused 9:56:00-9:56:30 (a break, however short);
    # 9:57-10:38 (41 min: a hard call by its length).
    answered(3, "k1", at(9, 50), 300),
    answered(4, "k1", at(9, 57), 41 * 60),
    # k2: an abuse ending and a follow-up call; 10:00-10:02 + 5 min wrap-up, 10:10-10:15.
    answered(5, "k2", at(10), 120, wrapup=300, outcome="abuse_ended", end_reason="abuse"),
    answered(6, "k2", at(10, 10), 300, direction="outbound"),
    # Nobody answered: nobody's workload.
    CallRow(
        "c7",
        "h",
        at(11),
        "inbound",
        "5",
        "loneliness",
        at(11),
        None,
        None,
        30.0,
        None,
        at(11, 0, 30),
        "abandoned_queue",
        "queue",
    ),
]
EVENTS = [
    wl.MemberEvent("k1", at(9, 56), "paused", "true"),
    wl.MemberEvent("k1", at(9, 56, 30), "paused", "false"),
    wl.MemberEvent("k2", at(9, 30), "logged_in", "true"),  # logged out since the day began
]
SILENT = frozenset({"c3"})


def test_workload_per_counselor() -> None:
    table = wl.workload(CALLS, wl.Rows(EVENTS, SILENT), PERIOD)
    assert table.columns == wl.COLUMNS
    got = {r[0]: r[1:] for r in table.rows}
    assert list(got) == ["k1", "k2"]  # by member id, not ranked
    # k1: 4 calls, 600+1200+300+2460 s; hard: c2 (crisis transfer), c3 (silence alert), c4
    # (41 min); longest call 41 min; stretches 9:00-9:36 = 36 min, 9:50-9:55, 9:57-10:38 = 41.
    assert got["k1"] == (
        4,
        0,
        pytest.approx(4560 / 3600),
        3,
        0,
        pytest.approx(41.0),
        pytest.approx(41.0),
    )
    # k2: 2 calls, 420 s; hard: c5 (abuse); stretch: 10:00-10:07 (with the 5-min wrap-up),
    # then a 3-min gap without a pause: on to 10:15 = 15 min.
    assert got["k2"] == (
        2,
        0,
        pytest.approx(420 / 3600),
        1,
        1,
        pytest.approx(5.0),
        pytest.approx(15.0),
    )
    assert sum(r[1] for r in table.rows) == sum(1 for c in CALLS if c.answered_at is not None)


def test_chats_are_counted_per_counselor() -> None:
    """Chats taken count per counselor; one who only took chats has a row of their own."""
    table = wl.workload(CALLS, wl.Rows(EVENTS, SILENT), PERIOD, {"k1": 3, "k9": 2})
    got = {r[0]: r[1:] for r in table.rows}
    assert list(got) == ["k1", "k2", "k9"]
    assert got["k1"][:2] == (4, 3) and got["k2"][:2] == (2, 0)
    assert got["k9"] == (0, 2, 0.0, 0, 0, 0.0, 0.0)


def test_a_pause_and_a_long_gap_are_breaks() -> None:
    k1 = [c for c in CALLS if c.member == "k1"]
    # Without the pause, 9:50-10:38 would be one stretch of 48 min.
    assert wl.longest_stretch(k1, []) == pytest.approx(48 * 60)
    # With a 15-minute break rule the 14-min gap is no break: 9:00-10:38 = 98 min.
    assert wl.longest_stretch(k1, [], gap=15) == pytest.approx(98 * 60)
    away = wl.away_intervals(EVENTS, PERIOD)
    assert away["k1"] == [(at(9, 56), at(9, 56, 30))]
    assert away["k2"] == [(PERIOD.start, at(9, 30))]


def test_an_open_pause_lasts_to_the_end() -> None:
    away = wl.away_intervals([wl.MemberEvent("k1", at(9, 56), "logged_in", "false")], PERIOD)
    assert away["k1"] == [(at(9, 56), float("inf"))]


@pytest.mark.parametrize("lang", sorted(TEXT))
def test_the_note_says_the_thresholds(lang: str) -> None:
    note = TEXT[lang]["workload_note"]
    assert f"{wl.HARD_CALL_MINUTES:g}" in note and f"{wl.BREAK_MINUTES:g}" in note


async def test_read_events_and_silent_calls(tmp_path: Path) -> None:
    """counselor_events and silence_events as the store writes them reach the workload."""
    path = tmp_path / "ivr.db"
    store = await Store.open(path)
    try:
        for n, (ans, talk) in enumerate([(at(9), 600.0), (at(9, 12), 300.0)], start=1):
            await store.call_started(f"c{n}", "h1", ans - 20)
            rec = CallRecord(started_at=ans - 20, queue="loneliness", queued_at=ans - 10)
            rec.answered_at, rec.member, rec.ended_at = ans, "counselor01", ans + talk
            rec.outcome = Outcome.COMPLETED
            if n == 2:
                rec.end_reason = CallEndReason.CRISIS_TRANSFER
            await store.call_ended(f"c{n}", rec)
            await store.call_wrapup(f"c{n}", 30.0)
        await store.silence_event("c1", "caller", at(9, 3), 30.0, "gentle_prompt")
        await store.counselor_event("counselor01", at(9, 11), "paused", "false", "true", "break")
        await store.counselor_event("counselor01", at(9, 11, 30), "paused", "true", "false", "")
    finally:
        await store.close()
    from ivr.report.reader import connect, read_calls

    db = connect(path)
    try:
        calls, rows = read_calls(db, PERIOD), wl.read(db, PERIOD)
    finally:
        db.close()
    assert rows.silent_calls == {"c1"}
    assert [(e.field, e.new) for e in rows.events] == [("paused", "true"), ("paused", "false")]
    got = {r[0]: r[1:] for r in wl.workload(calls, rows, PERIOD).rows}
    # Both calls hard (a silence alert; a crisis transfer); the pause at 9:11 between them
    # (9:00-9:10:30, 9:12-9:17:30) is a break: the longest stretch is 10.5 min.
    assert got["counselor01"][:4] == (2, 0, pytest.approx(900 / 3600), 2)
    assert got["counselor01"][-1] == pytest.approx(10.5)
