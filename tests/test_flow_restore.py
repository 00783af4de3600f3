"""The journey rebuilt after a controller restart (ivr.flow.restore): one snapshot, one restore,
its commands; then the restored machine handles the next event as the original would."""

from __future__ import annotations

import dataclasses

from ivr.flow.call import (
    CallerHungUp,
    CallFlow,
    Connect,
    Digit,
    Enqueue,
    Finish,
    HangupCaller,
    HangupLeg,
    Listen,
    Outcome,
    Play,
    PlaybackDone,
    StaffAnswered,
    StaffHungUp,
    StartListening,
    StartTimer,
    State,
    Target,
)
from ivr.flow.commands import ConsentAnswer, RecordConsent, RecordSurvey
from ivr.flow.events import Party
from ivr.flow.record import Stage
from ivr.flow.restore import THANKS_FOR_WAITING, Snapshot, restore, take
from ivr.flow.states import MAX_WAIT_TIMER, REASSURE_TIMER
from ivr.flow.survey import THANKS as SURVEY_THANKS
from tests.flow_support import (
    CONFIG,
    LEG,
    MENU,
    connected,
    connecting,
    consent_asked,
    goodbye,
    menu_playing,
    menu_waiting,
    of,
    one,
    waiting,
)
from tests.test_flow_survey import LEFT, asked

NOW = 100.0


def restored(flow: CallFlow, now: float = NOW) -> tuple[CallFlow, list]:  # type: ignore[type-arg]
    got = restore(take(flow), CONFIG, now, "r1")
    assert got is not None
    return got


def test_a_caller_in_the_menu_hears_the_menu_again_from_the_start() -> None:
    for flow in (menu_playing()[0], menu_waiting()):
        back, cmds = restored(flow)
        assert back.state is State.MENU_PLAYING
        assert one(cmds, StartListening).party is Party.CALLER
        assert of(cmds, Listen)[0].phrases == MENU.voice_phrases
        play = one(cmds, Play)
        assert play.prompts == MENU.option_prompts  # no greeting again, the options
        assert play.playback_id.startswith("c1-r1-")  # never a dead run's playback id
        # ... and the menu goes on as before: the line's key queues the caller.
        assert back.handle(Digit("1"), NOW + 1).__len__() > 0
        assert back.state is State.INTRO


def test_the_menu_failures_and_path_are_kept() -> None:
    flow = menu_waiting()
    flow.handle(Digit("9"), 3.0)
    back, _ = restored(flow)
    assert back.failures == 1


def test_a_waiting_caller_keeps_the_original_arrival_and_hears_thanks_once() -> None:
    flow = waiting()
    queued_at = flow.record.queued_at
    assert queued_at is not None
    back, cmds = restored(flow)
    assert back.state is State.WAITING
    assert one(cmds, Enqueue) == Enqueue("loneliness", queued_at)
    play = one(cmds, Play)
    assert play.prompts == (THANKS_FOR_WAITING,) and play.target is Target.HOLDING
    timer = one(cmds, StartTimer)
    assert timer.name == MAX_WAIT_TIMER
    assert timer.seconds == CONFIG.max_wait - (NOW - queued_at)
    assert back.consent is ConsentAnswer.NO  # the answer given before the restart
    assert of(cmds, StartListening) == []  # no audio tap while waiting (issue 13)
    assert of(cmds, RecordConsent) == []
    # The thanks ends: the usual announcements follow.
    after = back.handle(PlaybackDone(play.playback_id), NOW + 2)
    assert one(after, StartTimer).name == REASSURE_TIMER
    # A counselor answers afterwards: connected through the whisper as usual.
    whisper = one(back.handle(StaffAnswered(LEG, "counselor01"), NOW + 5), Play)
    back.handle(PlaybackDone(whisper.playback_id), NOW + 6)
    assert back.state is State.CONNECTED
    assert back.record.queued_at == queued_at


def test_an_open_consent_question_is_closed_as_no_answer() -> None:
    flow, _ = consent_asked()
    back, cmds = restored(flow)
    assert back.state is State.WAITING
    assert one(cmds, RecordConsent).answer is ConsentAnswer.NONE
    assert back.consent is ConsentAnswer.NONE


def test_a_connected_call_stays_connected_and_ends_completed_once() -> None:
    flow = connected()
    back, cmds = restored(flow)
    assert back.state is State.CONNECTED
    assert of(cmds, Connect) == []  # the talk bridge stands in Asterisk
    assert {c.party for c in of(cmds, StartListening)} == {Party.CALLER, Party.STAFF}
    assert back.record.member == "counselor01"
    assert back.record.answered_at == flow.record.answered_at
    assert back.conversation is not None and back.conversation.staff_leg == LEG
    ended = back.handle(StaffHungUp(), NOW + 30)
    assert HangupCaller() in ended
    assert one(ended, Finish).outcome is Outcome.COMPLETED
    assert back.record.talk_seconds == NOW + 30 - 40.0
    assert back.handle(CallerHungUp(), NOW + 31) == []  # once


def test_a_caller_whispered_about_is_bridged_with_the_answered_counselor() -> None:
    flow, _ = connecting()
    back, cmds = restored(flow)
    assert back.state is State.CONNECTED
    assert one(cmds, Connect).leg_id == LEG
    hung = back.handle(CallerHungUp(), NOW + 10)
    assert HangupLeg(LEG) in hung and one(hung, Finish).outcome is Outcome.COMPLETED


def test_stage_times_carry_over_the_restart() -> None:
    flow = waiting()
    back, _ = restored(flow)
    back.handle(CallerHungUp(), NOW + 10)
    seconds = back.record.stage_seconds
    assert seconds[Stage.MENU] == flow.record.stage_seconds[Stage.MENU]
    assert back.record.ended_in is Stage.QUEUE
    assert sum(seconds.values()) == NOW + 10 - back.record.started_at


def test_what_cannot_be_understood_is_not_restored() -> None:
    snap = take(waiting())
    assert restore(dataclasses.replace(snap, state="dancing"), CONFIG, NOW, "r1") is None
    assert restore(dataclasses.replace(snap, queue="gone"), CONFIG, NOW, "r1") is None
    assert restore(dataclasses.replace(snap, consent="maybe"), CONFIG, NOW, "r1") is None
    assert restore(take(goodbye()[0]), CONFIG, NOW, "r1") is None
    conn = take(connected())
    assert restore(dataclasses.replace(conn, staff_leg=None), CONFIG, NOW, "r1") is None
    assert restore(dataclasses.replace(conn, talk="dancing"), CONFIG, NOW, "r1") is None
    assert restore(dataclasses.replace(conn, talk="handed_over"), CONFIG, NOW, "r1") is None


def test_the_snapshot_is_small_and_plain() -> None:
    snap = take(connected())
    assert snap == Snapshot(
        call_id="c1",
        state="connected",
        started_at=0.0,
        stage_since=40.0,
        menu_path="5",
        menu_failures=0,
        flagged=False,
        queue="loneliness",
        queued_at=2.0,
        member="counselor01",
        staff_leg=LEG,
        answered_at=40.0,
        consent="no",
        talk="talking",
        last_playback=snap.last_playback,
        stage_seconds=snap.stage_seconds,
    )
    assert all(isinstance(v, float) for v in snap.stage_seconds.values())


def test_a_caller_whispered_about_whose_counselor_hung_up_meanwhile_waits_again() -> None:
    flow, _ = connecting()
    queued_at = flow.record.queued_at
    assert queued_at is not None
    got = restore(take(flow), CONFIG, NOW, "r1", staff_gone=True)
    assert got is not None
    back, cmds = got
    assert back.state is State.WAITING
    assert of(cmds, Connect) == []  # no bridge with a leg that is gone
    assert one(cmds, Enqueue) == Enqueue("loneliness", queued_at)  # the original place
    assert one(cmds, Play).prompts == (THANKS_FOR_WAITING,)
    assert back.record.member is None
    # The next counselor who answers gets the call as usual.
    whisper = one(back.handle(StaffAnswered("leg-2", "counselor02"), NOW + 5), Play)
    back.handle(PlaybackDone(whisper.playback_id), NOW + 6)
    assert back.state is State.CONNECTED and back.record.member == "counselor02"


def test_a_connected_call_whose_counselor_hung_up_meanwhile_listens_to_the_caller_only() -> None:
    got = restore(take(connected()), CONFIG, NOW, "r1", staff_gone=True)
    assert got is not None
    back, cmds = got
    assert back.state is State.CONNECTED
    assert [c.party for c in of(cmds, StartListening)] == [Party.CALLER]
    # The adapter then feeds the counselor's hang-up: the call ends completed.
    ended = back.handle(StaffHungUp(), NOW)
    assert HangupCaller() in ended and one(ended, Finish).outcome is Outcome.COMPLETED


def test_a_caller_answering_the_survey_hears_the_thanks_and_the_call_completes_once() -> None:
    flow, _ = asked()
    snap = take(flow)
    back, cmds = restored(flow, LEFT + 20)
    assert back.state is State.SURVEY
    play = one(cmds, Play)
    assert play.prompts == (SURVEY_THANKS,) and play.target is Target.CALLER
    assert play.playback_id.startswith("c1-r1-")
    assert of(cmds, RecordSurvey) == [] and of(cmds, StartTimer) == []
    assert back.handle(Digit("5"), LEFT + 21) == []  # the answer window is over
    done = back.handle(PlaybackDone(play.playback_id), LEFT + 23)
    assert HangupCaller() in done and one(done, Finish).outcome is Outcome.COMPLETED
    assert of(done, RecordSurvey) == []
    rec = back.record
    assert (rec.outcome, rec.member, rec.answered_at) == (Outcome.COMPLETED, "counselor01", 40.0)
    assert rec.talk_seconds == LEFT - 40.0  # the talk ended when the counselor left
    assert rec.ended_in is Stage.STAFF
    assert sum(rec.stage_seconds.values()) == LEFT + 23 - rec.started_at
    assert snap.stage_since == LEFT
    assert back.handle(CallerHungUp(), LEFT + 24) == []  # once
