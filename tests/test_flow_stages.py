"""Where each inbound call ended and the seconds it spent in each stage (ivr.flow.record.Stage),
kept by the pure call flow. One ending per test; the times are the ones the helpers in
tests/flow_support.py pass in (menu 0-2 s, the line chosen at 2 s, consent answered at 10 s,
a counselor answering at 40 s), so every figure is hand-computed from them.
"""

from __future__ import annotations

from ivr.flow.call import (
    CallerHungUp,
    CallFlow,
    CrisisAnswered,
    CrisisEnded,
    Digit,
    Failed,
    Outcome,
    Play,
    PlaybackDone,
    StaffDigit,
    StaffHungUp,
    State,
)
from ivr.flow.record import Stage
from tests.flow_support import (
    connected,
    consent_asked,
    goodbye,
    intro,
    menu_waiting,
    nobody_waiting,
    one,
    waiting,
)

MENU, INTRO, CONSENT, QUEUE = Stage.MENU, Stage.INTRO, Stage.CONSENT, Stage.QUEUE
STAFF, GOODBYE = Stage.STAFF, Stage.GOODBYE


def ending(flow: CallFlow) -> tuple[Outcome | None, Stage | None, dict[Stage, float]]:
    assert flow.ended
    rec = flow.record
    assert rec.ended_at is not None
    assert abs(sum(rec.stage_seconds.values()) - (rec.ended_at - rec.started_at)) < 1e-9
    return rec.outcome, rec.ended_in, rec.stage_seconds


def test_hangup_in_the_menu() -> None:
    flow = menu_waiting()
    flow.handle(CallerHungUp(), 5.0)
    assert ending(flow) == (Outcome.ABANDONED_MENU, MENU, {MENU: 5.0})


def test_hangup_during_the_intro_is_not_queue_abandonment() -> None:
    flow, _ = intro()
    flow.handle(CallerHungUp(), 6.0)
    assert ending(flow) == (Outcome.ABANDONED_INTRO, INTRO, {MENU: 2.0, INTRO: 4.0})


def test_hangup_during_the_consent_question_is_not_queue_abandonment() -> None:
    flow, _ = consent_asked()
    flow.handle(CallerHungUp(), 9.0)
    assert ending(flow) == (Outcome.ABANDONED_CONSENT, CONSENT, {MENU: 2.0, CONSENT: 7.0})


def test_intro_then_queue_then_hangup() -> None:
    flow, pb = intro()
    flow.handle(PlaybackDone(pb), 8.0)
    assert flow.state is State.WAITING
    flow.handle(CallerHungUp(), 30.0)
    assert ending(flow) == (Outcome.ABANDONED_QUEUE, QUEUE, {MENU: 2.0, INTRO: 6.0, QUEUE: 22.0})


def test_hangup_while_waiting_after_consent() -> None:
    flow = waiting()
    flow.handle(CallerHungUp(), 25.0)
    want = {MENU: 2.0, CONSENT: 8.0, QUEUE: 15.0}
    assert ending(flow) == (Outcome.ABANDONED_QUEUE, QUEUE, want)


def test_completed_with_staff_counts_the_whisper_as_queue() -> None:
    flow = connected()  # counselor answered at 40, whisper done at 40
    flow.handle(StaffHungUp(), 100.0)
    flow.handle(CallerHungUp(), 100.0)
    want = {MENU: 2.0, CONSENT: 8.0, QUEUE: 30.0, STAFF: 60.0}
    assert ending(flow) == (Outcome.COMPLETED, STAFF, want)


def test_callback_requested_ends_in_the_queue_with_its_goodbye() -> None:
    flow = nobody_waiting()  # offered a callback at once
    cmds = flow.handle(Digit("1"), 50.0)
    assert flow.state is State.GOODBYE
    flow.handle(PlaybackDone(one(cmds, Play).playback_id), 53.0)
    want = {MENU: 2.0, CONSENT: 8.0, QUEUE: 40.0, GOODBYE: 3.0}
    assert ending(flow) == (Outcome.CALLBACK_REQUESTED, QUEUE, want)


def test_no_choice_ends_in_the_menu() -> None:
    flow, pb = goodbye()  # third wrong key at 3 s
    flow.handle(PlaybackDone(pb), 7.0)
    assert ending(flow) == (Outcome.NO_CHOICE, MENU, {MENU: 3.0, GOODBYE: 4.0})


def test_abuse_ended_with_staff() -> None:
    flow = connected()
    flow.handle(StaffDigit("*"), 70.0)
    cmds = flow.handle(StaffDigit("9"), 70.0)
    flow.handle(PlaybackDone(one(cmds, Play).playback_id), 75.0)
    want = {MENU: 2.0, CONSENT: 8.0, QUEUE: 30.0, STAFF: 30.0, GOODBYE: 5.0}
    assert ending(flow) == (Outcome.ABUSE_ENDED, STAFF, want)


def test_transferred_to_the_crisis_line() -> None:
    flow = connected()
    flow.handle(StaffDigit("*"), 50.0)
    flow.handle(StaffDigit("7"), 50.0)
    flow.handle(CrisisAnswered("crisis-1"), 55.0)
    flow.handle(StaffHungUp(), 60.0)  # warm transfer done
    flow.handle(CrisisEnded(), 90.0)
    want = {MENU: 2.0, CONSENT: 8.0, QUEUE: 30.0, STAFF: 50.0}
    assert ending(flow) == (Outcome.TRANSFERRED, STAFF, want)


def test_error_says_the_stage_it_happened_in() -> None:
    flow, _ = consent_asked()
    flow.handle(Failed("ari down"), 4.0)
    assert ending(flow) == (Outcome.ERROR, CONSENT, {MENU: 2.0, CONSENT: 2.0})
