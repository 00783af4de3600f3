"""The call flow (ivr.flow.call) on its own, the consent to keep a summary, asked while
queued. Events and the time in, commands out.

No event loop and no sleeps: every `handle` gets its `now` explicitly. The helpers that
drive a flow to a given state are in tests/flow_support.py.
"""

from __future__ import annotations

import pytest

from ivr.flow.call import (
    CONSENT_PROMPTS,
    CONSENT_TIMER,
    CallerHungUp,
    CallFlow,
    CancelTimer,
    Command,
    Digit,
    Enqueue,
    Finish,
    Heard,
    Listen,
    Outcome,
    Play,
    PlaybackDone,
    QueueStatus,
    RecordConsent,
    StaffAnswered,
    StaffDigit,
    StartRecording,
    State,
    StopPlayback,
    TimerFired,
    WithdrawConsent,
)
from tests.flow_support import LEG, menu_waiting, of, one, waiting

# --- consent to keep a summary (issue "Consented call summaries") ---------------------------


def _consent_asked() -> tuple[CallFlow, list[Command]]:
    flow = menu_waiting()
    cmds = flow.handle(Digit("5"), 2.0)
    return flow, cmds


def test_loneliness_line_asks_consent_while_queued_and_listens_for_yes_no() -> None:
    flow, cmds = _consent_asked()
    assert flow.state is State.CONSENT
    assert one(cmds, Play).prompts[-2:] == CONSENT_PROMPTS
    assert "네" in one(cmds, Listen).phrases and "아니요" in one(cmds, Listen).phrases
    assert of(cmds, Enqueue) == [Enqueue("loneliness", 2.0)]


def test_the_counselors_phone_is_told_consent_is_pending_while_asked() -> None:
    flow, _ = _consent_asked()
    assert flow.consent == "pending"


def test_counselor_answering_before_the_caller_answered_gets_no_recording() -> None:
    flow, _ = _consent_asked()
    cmds = flow.handle(StaffAnswered(LEG, "counselor01"), 5.0)
    assert one(cmds, RecordConsent) == RecordConsent("none", "counselor_first", CONSENT_PROMPTS)
    cmds = flow.handle(PlaybackDone(one(cmds, Play).playback_id), 6.0)
    assert of(cmds, StartRecording) == []


def test_counselor_answering_first_stops_the_question() -> None:
    flow, cmds = _consent_asked()
    question = one(cmds, Play).playback_id
    cmds = flow.handle(StaffAnswered(LEG, "counselor01"), 5.0)
    assert StopPlayback(question) in cmds and CancelTimer(CONSENT_TIMER) in cmds


def test_the_consent_question_is_not_cut_off_by_queue_announcements() -> None:
    flow, _ = _consent_asked()
    assert flow.handle(QueueStatus(0, None, reachable=0), 3.0) == []


@pytest.mark.parametrize(
    ("event", "answer", "by"),
    [
        (Digit("1"), "yes", "key"),
        (Digit("2"), "no", "key"),
        (Heard("네"), "yes", "voice"),
        (Heard("아니요"), "no", "voice"),
    ],
)
def test_consent_answer_is_recorded_then_the_caller_queues(
    event: Digit | Heard, answer: str, by: str
) -> None:
    flow, _ = _consent_asked()
    cmds = flow.handle(event, 12.0)
    assert one(cmds, RecordConsent) == RecordConsent(answer, by, CONSENT_PROMPTS)
    assert flow.state is State.WAITING
    assert flow.consent == answer


def test_no_answer_is_no_consent() -> None:
    flow, cmds = _consent_asked()
    flow.handle(PlaybackDone(one(cmds, Play).playback_id), 20.0)
    cmds = flow.handle(TimerFired(CONSENT_TIMER), 28.0)
    assert one(cmds, RecordConsent).answer == "none"
    assert flow.state is State.WAITING


def test_other_keys_do_not_answer_the_consent_question() -> None:
    flow, _ = _consent_asked()
    assert flow.handle(Digit("5"), 12.0) == []


def test_recording_starts_on_connect_only_with_consent() -> None:
    for answer, recorded in (("1", True), ("2", False)):
        flow = waiting(answer)
        cmds = flow.handle(StaffAnswered(LEG, "counselor01"), 40.0)
        cmds = flow.handle(PlaybackDone(one(cmds, Play).playback_id), 41.0)
        assert bool(of(cmds, StartRecording)) is recorded


def test_counselor_marks_withdrawal_during_the_call() -> None:
    flow = waiting("1")
    cmds = flow.handle(StaffAnswered(LEG, "counselor01"), 40.0)
    flow.handle(PlaybackDone(one(cmds, Play).playback_id), 41.0)
    flow.handle(StaffDigit("*"), 50.0)
    cmds = flow.handle(StaffDigit("6"), 50.1)
    assert one(cmds, WithdrawConsent).by == "counselor01"
    assert flow.consent == "withdrawn"
    flow.handle(StaffDigit("*"), 51.0)
    assert flow.handle(StaffDigit("6"), 51.1) == []  # once


def test_hangup_while_asked_for_consent() -> None:
    flow, _ = _consent_asked()
    cmds = flow.handle(CallerHungUp(), 12.0)
    assert CancelTimer(CONSENT_TIMER) in cmds
    assert cmds[-1] == Finish(Outcome.ABANDONED_CONSENT)
