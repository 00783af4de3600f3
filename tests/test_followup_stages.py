"""Where each follow-up call ended and the seconds it spent in each stage (whisper, dialling,
with the citizen, the outcome question, the closing words), kept by the pure journey
(ivr.followup.journey) like an inbound call's (tests/test_flow_stages.py), and stored with the
call's end (real SQLite). The times: the whisper ends at T0 + 3, the citizen answers at T0 + 10
(tests/followup_journey_support.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ivr.flow import call as flow
from ivr.flow.record import Stage
from ivr.followup.events import CitizenGone
from ivr.followup.journey import FollowupCall
from ivr.store import Store
from tests.followup_journey_support import T0, answered, connected, dialling

WHISPER, DIALLING, STAFF = Stage.WHISPER, Stage.DIALLING, Stage.STAFF
OUTCOME, GOODBYE = Stage.OUTCOME, Stage.GOODBYE


def ending(c: FollowupCall) -> tuple[flow.Outcome | None, Stage | None, dict[Stage, float]]:
    assert c.ended
    rec = c.record
    assert rec.ended_at is not None
    assert abs(sum(rec.stage_seconds.values()) - (rec.ended_at - rec.started_at)) < 1e-9
    return rec.outcome, rec.ended_in, rec.stage_seconds


def test_not_reached_ends_in_dialling() -> None:
    c = dialling()
    c.handle(CitizenGone(19), T0 + 40)
    c.handle(flow.PlaybackDone(c._playback or ""), T0 + 45)
    assert ending(c) == (
        flow.Outcome.NOT_REACHED,
        DIALLING,
        {WHISPER: 3.0, DIALLING: 37.0, GOODBYE: 5.0},
    )


def test_staff_leaving_during_the_whisper() -> None:
    c = answered()
    c.handle(flow.StaffHungUp(), T0 + 1)
    assert ending(c) == (flow.Outcome.NOT_REACHED, WHISPER, {WHISPER: 1.0})


def test_reached_then_the_outcome_key() -> None:
    c = connected()
    c.handle(flow.CallerHungUp(), T0 + 100)
    c.handle(flow.StaffDigit("1"), T0 + 104)
    c.handle(flow.PlaybackDone(c._playback or ""), T0 + 106)
    assert ending(c) == (
        flow.Outcome.COMPLETED,
        OUTCOME,
        {WHISPER: 3.0, DIALLING: 7.0, STAFF: 90.0, OUTCOME: 4.0, GOODBYE: 2.0},
    )


def test_staff_hanging_up_during_the_talk() -> None:
    c = connected()
    c.handle(flow.StaffHungUp(), T0 + 100)
    assert ending(c) == (
        flow.Outcome.COMPLETED,
        STAFF,
        {WHISPER: 3.0, DIALLING: 7.0, STAFF: 90.0},
    )


def test_abuse_ending_ends_with_the_citizen() -> None:
    c = connected()
    c.handle(flow.StaffDigit("*"), T0 + 50)
    c.handle(flow.StaffDigit("9"), T0 + 51)
    c.handle(flow.PlaybackDone(c._playback or ""), T0 + 55)
    assert ending(c) == (
        flow.Outcome.ABUSE_ENDED,
        STAFF,
        {WHISPER: 3.0, DIALLING: 7.0, STAFF: 41.0, GOODBYE: 4.0},
    )


async def test_stages_stored_with_the_end(tmp_path: Path) -> None:
    c = dialling()
    c.handle(CitizenGone(19), T0 + 40)
    c.handle(flow.PlaybackDone(c._playback or ""), T0 + 45)
    store = await Store.open(tmp_path / "calls.db")
    try:
        await store.call_started("fu-1", "h1", T0)
        await store.call_ended("fu-1", c.record)
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "calls.db") as db:
        row = db.execute(
            "SELECT outcome, ended_in, whisper_seconds, dialling_seconds, staff_seconds,"
            " outcome_seconds, goodbye_seconds, menu_seconds FROM calls WHERE call_id='fu-1'"
        ).fetchone()
    assert row == ("not_reached", "dialling", 3.0, 37.0, None, None, 5.0, None)
