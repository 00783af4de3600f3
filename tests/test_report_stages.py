"""Where calls ended and the seconds per stage in the report: inbound calls (`endings`) and
follow-up calls (`followup_endings`), from records the pure journeys made and the store wrote
(real SQLite), read back by the report's reader; the numbers hand-computed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ivr.flow import call as flow
from ivr.followup.events import CitizenGone
from ivr.report import figures
from ivr.report.reader import connect, read_calls
from ivr.report.rows import Period
from ivr.store import Store
from ivr.timezone import SEOUL
from tests.flow_support import consent_asked
from tests.followup_journey_support import T0, connected, dialling

DAY = dt.datetime.fromtimestamp(T0, SEOUL).date()
PERIOD = Period(DAY, DAY)


async def _write(path: Path) -> None:
    """Two follow-up calls not reached (dialling 37 s and 57 s), one reached (talk 90 s, the
    outcome key after 4 s), and one inbound call hung up in the consent question."""
    calls = []
    for n, gone in enumerate((40.0, 60.0)):
        c = dialling()
        c.handle(CitizenGone(19), T0 + gone)
        c.handle(flow.PlaybackDone(c._playback or ""), T0 + gone + 5)
        calls.append((f"fu-{n}", c.record))
    c = connected()
    c.handle(flow.CallerHungUp(), T0 + 100)
    c.handle(flow.StaffDigit("1"), T0 + 104)
    c.handle(flow.PlaybackDone(c._playback or ""), T0 + 106)
    calls.append(("fu-2", c.record))
    store = await Store.open(path)
    try:
        for call_id, rec in calls:
            await store.write(
                "outbound call start",
                "INSERT INTO calls (call_id, caller_hash, started_at, direction)"
                " VALUES (?, 'h1', ?, 'outbound')",
                (call_id, rec.started_at),
            )
            await store.call_ended(call_id, rec)
        inbound, _ = consent_asked()
        inbound.handle(flow.CallerHungUp(), 9.5)
        inbound.record.started_at += T0  # the flow's clock starts at 0
        inbound.record.ended_at = (inbound.record.ended_at or 0) + T0
        await store.call_started("in-1", "h2", T0)
        await store.call_ended("in-1", inbound.record)
    finally:
        await store.close()


async def test_followup_and_inbound_stages_in_the_report(tmp_path: Path) -> None:
    path = tmp_path / "ivr.db"
    await _write(path)
    db = connect(path)
    try:
        calls = read_calls(db, PERIOD)
    finally:
        db.close()
    fu = figures.followup_endings(calls)
    assert fu.columns == (
        *("outcome", "ended_in", "calls"),
        *("whisper_s", "dialling_s", "staff_s", "outcome_s", "goodbye_s"),
    )
    got = {(r[0], r[1]): r[2:] for r in fu.rows}
    assert got == {
        ("not_reached", "dialling"): (
            2,
            pytest.approx(3.0),
            pytest.approx((37.0 + 57.0) / 2),
            0.0,
            0.0,
            pytest.approx(5.0),
        ),
        ("completed", "outcome"): (
            1,
            pytest.approx(3.0),
            pytest.approx(7.0),
            pytest.approx(90.0),
            pytest.approx(4.0),
            pytest.approx(2.0),
        ),
    }
    assert sum(r[2] for r in fu.rows) == sum(1 for c in calls if c.direction == "outbound") == 3
    inbound = {(r[0], r[1]): r[2:] for r in figures.endings(calls).rows}
    # menu 0-2 s, the consent question 2-9.5 s (tests/flow_support.py)
    assert inbound == {
        ("abandoned_consent", "consent"): (1, 2.0, 0.0, pytest.approx(7.5), 0.0, 0.0, 0.0)
    }
