"""The report's reader (ivr.report.reader) over a real SQLite database written by the store:
read only, the period in Seoul days, the line filter, and repeat callers seen across the
period's start and across lines."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from ivr.flow.call import CallRecord, Outcome
from ivr.flow.record import CallEndReason
from ivr.privacy import ANONYMOUS
from ivr.report.reader import ReportError, connect, read_calls
from ivr.report.rows import Period
from ivr.store import Store
from ivr.timezone import SEOUL


def at(month: int, day: int, hour: int) -> float:
    return dt.datetime(2026, month, day, hour, tzinfo=SEOUL).timestamp()


async def _write(path: Path) -> None:
    store = await Store.open(path)
    try:
        for call_id, caller, start, queue in [
            ("a", "h1", at(10, 31, 23), "general"),  # the day before the period (Seoul)
            ("b", "h1", at(11, 1, 0), "loneliness"),  # repeat: h1 called before the period
            ("c", "h2", at(11, 1, 9), "general"),
            ("d", "h2", at(11, 1, 10), "loneliness"),  # repeat: earlier on another line
            ("e", "h3", at(11, 2, 0), "loneliness"),  # the day after the period
        ]:
            await store.call_started(call_id, caller, start)
            rec = CallRecord(started_at=start, queue=queue, queued_at=start + 5)
            rec.ended_at, rec.outcome = start + 60, Outcome.ABANDONED_QUEUE
            await store.call_ended(call_id, rec)
    finally:
        await store.close()


async def test_period_line_and_repeats(tmp_path: Path) -> None:
    path = tmp_path / "ivr.db"
    await _write(path)
    period = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    db = connect(path)
    try:
        every = {c.call_id: c.repeat for c in read_calls(db, period)}
        line = {c.call_id: c.repeat for c in read_calls(db, period, "loneliness")}
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            db.execute("DELETE FROM calls")
    finally:
        db.close()
    assert every == {"b": True, "c": False, "d": True}
    assert line == {"b": True, "d": True}


async def test_an_old_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE calls (call_id TEXT)")
    with pytest.raises(ReportError, match="schema version 0"):
        connect(path)


async def test_withheld_numbers_are_never_repeats_and_withdrawals_are_read(tmp_path: Path) -> None:
    """Calls without a number share the hash "anonymous": none of them is a repeat of another
    (also not of one before the period). A consent withdrawn with *6 is read as withdrawn."""
    path = tmp_path / "ivr.db"
    store = await Store.open(path)
    try:
        calls = [("w0", ANONYMOUS, at(10, 30, 12))]  # before the period
        calls += [(f"w{i}", ANONYMOUS, at(11, 1, 9) + 60 * i) for i in range(1, 4)]
        calls += [("k1", "h1", at(11, 1, 10)), ("k2", "h1", at(11, 1, 11))]
        for call_id, caller, start in calls:
            await store.call_started(call_id, caller, start)
            rec = CallRecord(started_at=start, queue="loneliness", queued_at=start + 5)
            rec.ended_at, rec.outcome = start + 60, Outcome.ABANDONED_QUEUE
            await store.call_ended(call_id, rec)
        for call_id in ("w1", "k1"):
            await store.record_consent(call_id, "yes", "key", at(11, 1, 9), "consent", "v", "-")
        await store.withdraw_consent("k1", "caller", at(11, 1, 10) + 30)
    finally:
        await store.close()
    db = connect(path)
    try:
        got = {
            c.call_id: c for c in read_calls(db, Period(dt.date(2026, 11, 1), dt.date(2026, 11, 1)))
        }
    finally:
        db.close()
    assert {k: c.repeat for k, c in got.items()} == {
        "w1": False,
        "w2": False,
        "w3": False,
        "k1": False,
        "k2": True,
    }
    assert (got["w1"].consent, got["w1"].consent_withdrawn) == ("yes", False)
    assert (got["k1"].consent, got["k1"].consent_withdrawn) == ("yes", True)
    assert (got["k2"].consent, got["k2"].consent_withdrawn) == (None, False)


async def test_wrapup_and_end_reason_are_read(tmp_path: Path) -> None:
    """The counselor's wrap-up (stored when their leg ends) and the end reason reach the rows;
    a call stored without a wrap-up reads None."""
    path = tmp_path / "ivr.db"
    store = await Store.open(path)
    try:
        for call_id, reason in (("a", None), ("b", "crisis_transfer")):
            start = at(11, 1, 9)
            await store.call_started(call_id, "h1", start)
            rec = CallRecord(started_at=start, queue="loneliness", queued_at=start + 5)
            rec.answered_at, rec.member = start + 10, "counselor01"
            rec.ended_at, rec.outcome = start + 70, Outcome.COMPLETED
            if reason is not None:
                rec.end_reason = CallEndReason(reason)
            await store.call_ended(call_id, rec)
        await store.call_wrapup("b", 45.0)
    finally:
        await store.close()
    db = connect(path)
    try:
        got = {
            c.call_id: c for c in read_calls(db, Period(dt.date(2026, 11, 1), dt.date(2026, 11, 1)))
        }
    finally:
        db.close()
    assert (got["a"].wrapup_seconds, got["a"].end_reason, got["a"].handle_seconds) == (
        None,
        None,
        60,
    )
    assert (got["b"].wrapup_seconds, got["b"].end_reason) == (45.0, "crisis_transfer")
    assert got["b"].handle_seconds == 105.0
