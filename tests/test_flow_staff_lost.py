"""A counselor's phone lost mid-conversation (ivr.flow.call, ivr.flow.conversation): Asterisk
ended their channel for lack of media or a network failure, so the caller was cut off, not
helped to the end. The caller hears an apology and music, waits again ahead of later callers
(their first arrival), and the next counselor takes the call on. Pure: events and the time in,
commands out."""

from __future__ import annotations

from ivr.flow.call import (
    CallerHungUp,
    CallFlow,
    Connect,
    Enqueue,
    Finish,
    HangupCaller,
    HangupLeg,
    Hold,
    Outcome,
    Play,
    PlaybackDone,
    StaffAnswered,
    StaffDigit,
    StaffHungUp,
    StartListening,
    StartRecording,
    StartTimer,
    State,
    StopListening,
    StopRecording,
    Target,
    TimerFired,
    WithdrawConsent,
)
from ivr.flow.commands import ConsentAnswer, RingCrisis
from ivr.flow.conversation import State as TalkState
from ivr.flow.events import CrisisAnswered, CrisisEnded, Party
from ivr.flow.record import CallEndReason, Stage
from ivr.flow.restore import restore, take
from ivr.flow.states import MAX_WAIT_TIMER, REASSURE_TIMER, STAFF_LOST_PROMPT
from ivr.flow.waiting import Offer
from tests.flow_support import CONFIG, LEG, connecting, of, one, waiting

LEG2 = "leg-2"


def talking(consent: str = "2") -> CallFlow:
    """Connected with counselor01 (answered at 40.0, queued at 2.0)."""
    flow = waiting(consent)
    whisper = one(flow.handle(StaffAnswered(LEG, "counselor01"), 40.0), Play).playback_id
    flow.handle(PlaybackDone(whisper), 40.0)
    assert flow.state is State.CONNECTED
    return flow


def lost(flow: CallFlow, now: float = 100.0) -> list:  # type: ignore[type-arg]
    cmds = flow.handle(StaffHungUp(lost=True), now)
    assert flow.state is State.WAITING
    return cmds


def taken_on(flow: CallFlow, now: float = 130.0) -> list:  # type: ignore[type-arg]
    """counselor02 answers and, after the whisper, is bridged with the caller."""
    whisper = one(flow.handle(StaffAnswered(LEG2, "counselor02"), now), Play).playback_id
    cmds = flow.handle(PlaybackDone(whisper), now)
    assert flow.state is State.CONNECTED
    return cmds


def test_the_caller_hears_an_apology_over_music_and_waits_first_in_line() -> None:
    flow = talking()
    cmds = lost(flow)
    assert Hold() in cmds  # music under the apology and the wait: never dead air
    play = one(cmds, Play)
    assert (play.prompts, play.target) == ((STAFF_LOST_PROMPT,), Target.HOLDING)
    assert Enqueue("loneliness", 2.0) in cmds  # the first arrival: ahead of later callers
    assert StartTimer(MAX_WAIT_TIMER, CONFIG.max_wait) in cmds  # a full wait before the offer
    # No tap while waiting (no question open); the lost phone's is closed.
    assert StopListening(Party.STAFF) in cmds and StopListening(Party.CALLER) in cmds
    assert not of(cmds, HangupCaller) and not of(cmds, Finish) and not of(cmds, HangupLeg)
    assert flow.record.staff_lost == 1 and flow.conversation is None
    assert flow.record.requeued_at == 100.0  # the wallboard's and the announcements' wait


def test_the_announcements_count_the_wait_from_the_loss() -> None:
    flow = talking()
    lost(flow, now=400.0)  # after a long talk: by the first arrival, past the callback offer
    assert 400.0 - 2.0 > CONFIG.callback_offer_after
    said = flow.handle(TimerFired(REASSURE_TIMER), 400.0 + CONFIG.reassurance_interval)
    assert said and flow.offer is Offer.NOT_MADE  # waited 30 s since the loss: no offer yet


def test_the_next_counselor_takes_the_call_on_and_the_first_answer_stays() -> None:
    flow = talking()
    lost(flow)
    cmds = taken_on(flow)
    assert Connect(LEG2) in cmds
    assert StartListening(Party.STAFF, leg_id=LEG2) in cmds
    assert StartListening(Party.CALLER) in cmds
    rec = flow.record
    assert (rec.member, rec.answered_at, rec.queued_at) == ("counselor02", 40.0, 2.0)
    assert rec.wait_seconds == 38.0  # the first wait: the caller was answered then
    # The call ends the usual way with the second counselor.
    end = flow.handle(StaffHungUp(), 200.0)
    assert HangupCaller() in end and end[-1] == Finish(Outcome.COMPLETED)
    assert rec.end_reason is None and rec.staff_lost == 1
    # The wait between the two counselors counts as queue time, the talks as staff time.
    assert rec.stage_seconds[Stage.QUEUE] == 30.0 + 30.0  # 10-40 (after consent), 100-130
    assert rec.stage_seconds[Stage.STAFF] == 60.0 + 70.0


def test_a_consented_recording_stops_and_goes_on_with_the_next_counselor() -> None:
    flow = talking(consent="1")
    assert StopRecording() in lost(flow)
    assert StartRecording() in taken_on(flow)
    assert flow.consent is ConsentAnswer.YES


def test_a_withdrawal_holds_for_the_next_counselor() -> None:
    flow = talking(consent="1")
    flow.handle(StaffDigit("*"), 60.0)
    assert one(flow.handle(StaffDigit("6"), 60.5), WithdrawConsent)
    cmds = lost(flow)
    assert not of(cmds, StopRecording)  # nothing was being recorded any more
    assert not of(taken_on(flow), StartRecording)
    assert flow.consent is ConsentAnswer.WITHDRAWN


def test_a_caller_who_hangs_up_waiting_again_was_counselled_not_abandoned() -> None:
    flow = talking()
    lost(flow)
    cmds = flow.handle(CallerHungUp(), 110.0)
    assert cmds[-1] == Finish(Outcome.COMPLETED)
    rec = flow.record
    assert (rec.end_reason, rec.member, rec.answered_at) == (
        CallEndReason.STAFF_LOST,
        "counselor01",
        40.0,
    )


def test_a_counselor_who_hangs_up_still_ends_the_call() -> None:
    flow = talking()
    cmds = flow.handle(StaffHungUp(lost=False), 100.0)
    assert HangupCaller() in cmds and cmds[-1] == Finish(Outcome.COMPLETED)
    assert flow.record.staff_lost == 0


def test_lost_during_the_whisper_the_caller_waits_on_as_before() -> None:
    flow, _ = connecting()
    cmds = flow.handle(StaffHungUp(lost=True), 41.0)
    assert flow.state is State.WAITING and Enqueue("loneliness", 2.0) in cmds
    assert flow.record.staff_lost == 0  # nobody had talked with the caller yet


def test_lost_while_the_crisis_line_rings_a_late_answer_is_hung_up() -> None:
    flow = talking()
    flow.handle(StaffDigit("*"), 60.0)
    assert one(flow.handle(StaffDigit("7"), 60.5), RingCrisis)
    lost(flow)
    # The crisis line answers while the caller waits again: not joined to nothing.
    assert flow.handle(CrisisAnswered("crisis-1"), 70.0) == [HangupLeg("crisis-1")]
    assert flow.handle(CrisisEnded(), 71.0) == []
    assert flow.state is State.WAITING


def test_lost_after_the_crisis_line_joined_it_stays_with_the_caller() -> None:
    flow = talking()
    flow.handle(StaffDigit("*"), 60.0)
    flow.handle(StaffDigit("7"), 60.5)
    flow.handle(CrisisAnswered("crisis-1"), 65.0)
    assert flow.handle(StaffHungUp(lost=True), 70.0) == []
    assert flow.conversation is not None
    assert flow.conversation.state is TalkState.HANDED_OVER


def test_a_restart_while_waiting_again_keeps_the_first_answer() -> None:
    flow = talking()
    lost(flow)
    got = restore(take(flow), CONFIG, 120.0, "r1")
    assert got is not None
    again, cmds = got
    assert again.state is State.WAITING and Enqueue("loneliness", 2.0) in cmds
    rec = again.record
    assert (rec.member, rec.answered_at, rec.staff_lost) == ("counselor01", 40.0, 1)
    taken_on(again)
    assert again.record.answered_at == 40.0


def test_a_callback_offer_made_before_the_talk_is_not_left_open() -> None:
    flow = talking()
    flow.waiting.offer = Offer.OPEN  # offered while waiting, then a counselor answered
    cmds = lost(flow)
    assert flow.offer is Offer.NOT_MADE
    assert StopListening(Party.CALLER) in cmds  # no "네" to the apology taken as a yes


def test_the_next_counselor_dropping_in_the_whisper_keeps_who_talked_and_the_wait() -> None:
    flow = talking()
    lost(flow, now=700.0)  # a talk longer than the longest wait
    whisper = one(flow.handle(StaffAnswered(LEG2, "counselor02"), 720.0), Play).playback_id
    cmds = flow.handle(StaffHungUp(), 721.0)
    assert flow.state is State.WAITING and flow.record.member == "counselor01"
    assert StartTimer(MAX_WAIT_TIMER, CONFIG.max_wait - 21.0) in cmds  # from the loss
    assert flow.handle(PlaybackDone(whisper), 722.0) == []
    flow.handle(CallerHungUp(), 730.0)
    assert (flow.record.member, flow.record.answered_at) == ("counselor01", 40.0)


def test_the_talk_time_is_the_talks_without_the_wait_between() -> None:
    flow = talking()
    lost(flow)  # talked 40-100
    taken_on(flow)  # again from 130
    flow.handle(StaffHungUp(), 200.0)
    assert flow.record.talk_seconds == 60.0 + 70.0


def test_a_restart_during_the_next_whisper_keeps_the_first_answer() -> None:
    flow = talking()
    lost(flow)
    flow.handle(StaffAnswered(LEG2, "counselor02"), 130.0)
    assert flow.state is State.CONNECTING
    got = restore(take(flow), CONFIG, 135.0, "r1")
    assert got is not None
    again, _ = got
    assert again.record.answered_at == 40.0 and again.record.member == "counselor02"


def test_a_restart_while_waiting_again_counts_the_wait_from_the_loss() -> None:
    flow = talking()
    lost(flow, now=700.0)
    got = restore(take(flow), CONFIG, 710.0, "r1")
    assert got is not None
    again, cmds = got
    assert StartTimer(MAX_WAIT_TIMER, CONFIG.max_wait - 10.0) in cmds
    assert again.record.requeued_at == 700.0
