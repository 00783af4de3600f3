"""The call flow (ivr.flow.call) on its own, the happy path: from the menu through the
queue to a counselor. Events and the time in, commands out.

No event loop and no sleeps: every `handle` gets its `now` explicitly. The helpers that
drive a flow to a given state are in tests/flow_support.py.
"""

from __future__ import annotations

import pytest

from ivr.flow.call import (
    CONSENT_PROMPTS,
    INPUT_TIMER,
    REASSURE_TIMER,
    Answer,
    CancelTimer,
    Connect,
    Dequeue,
    Digit,
    Enqueue,
    Finish,
    HangupCaller,
    HangupLeg,
    Hold,
    Outcome,
    Party,
    Play,
    PlaybackDone,
    StaffAnswered,
    StaffHungUp,
    StartListening,
    StartTimer,
    State,
    StopListening,
    StopPlayback,
    Target,
    TimerFired,
)
from tests.flow_support import (
    CONFIG,
    LEG,
    MENU,
    OPTIONS,
    connected,
    consent_asked,
    intro,
    menu_playing,
    menu_waiting,
    of,
    one,
    started,
    waiting,
)

# --- the happy path -----------------------------------------------------------------------


def test_started_answers_and_plays_greeting_and_options() -> None:
    flow, cmds = started()
    assert isinstance(cmds[0], Answer)
    play = one(cmds, Play)
    assert play.prompts == (*MENU.greeting, *OPTIONS)
    assert play.prompts[0] == "welcome"
    assert play.target is Target.CALLER
    assert flow.state is State.MENU_PLAYING
    assert flow.record.started_at == 0.0


def test_menu_playback_done_starts_input_timer() -> None:
    flow, pb = menu_playing()
    cmds = flow.handle(PlaybackDone(pb), 1.0)
    assert cmds == [StartTimer(INPUT_TIMER, CONFIG.input_timeout)]
    assert flow.state is State.MENU_WAITING


def test_the_greeting_names_the_loneliness_line_first() -> None:
    _, cmds = started()
    assert one(cmds, Play).prompts[len(MENU.greeting)] == "menu_5"


def test_digit_while_menu_plays_stops_it_and_acts() -> None:
    flow, pb = menu_playing()
    cmds = flow.handle(Digit("5"), 1.0)
    assert of(cmds, StopPlayback) == [StopPlayback(pb)]
    assert CancelTimer(INPUT_TIMER) in cmds
    play = one(cmds, Play)
    assert play.prompts == ("loneliness_intro", *CONSENT_PROMPTS)
    assert play.playback_id != pb
    assert flow.state is State.CONSENT
    assert flow.record.menu_path == ["5"]
    # The stopped menu playback reports done afterwards: ignored.
    assert flow.handle(PlaybackDone(pb), 1.1) == []
    assert flow.state is State.CONSENT


def test_pressing_5_queues_at_once_before_the_intro_plays() -> None:
    flow = menu_waiting()
    cmds = flow.handle(Digit("5"), 2.0)
    assert cmds.index(Enqueue("loneliness", 2.0)) < cmds.index(one(cmds, Play))
    assert Hold() in cmds
    assert one(cmds, Play).target is Target.HOLDING
    assert flow.record.queued_at == 2.0


def test_digit_after_menu_cancels_timer_and_queues() -> None:
    flow = menu_waiting()
    cmds = flow.handle(Digit("5"), 2.0)
    assert of(cmds, StopPlayback) == []
    assert cmds[0] == CancelTimer(INPUT_TIMER)
    assert one(cmds, Play).prompts[0] == "loneliness_intro"


def test_other_options_lead_to_the_general_queue_at_once() -> None:
    flow = menu_waiting()
    cmds = flow.handle(Digit("1"), 2.0)
    assert one(cmds, Play).prompts == ("general_intro",)
    assert Enqueue("general", 2.0) in cmds
    assert flow.record.queue == "general"


def test_intro_done_starts_the_reassurance_timer() -> None:
    flow, pb = intro()
    cmds = flow.handle(PlaybackDone(pb), 9.0)
    # No question is open while waiting: the caller's audio tap closes (issue 13).
    assert cmds == [
        StopListening(Party.CALLER),
        StartTimer(REASSURE_TIMER, CONFIG.reassurance_interval),
    ]
    assert flow.state is State.WAITING


def test_consent_answer_moves_to_waiting_with_the_reassurance_timer() -> None:
    flow, _ = consent_asked()
    cmds = flow.handle(Digit("1"), 10.0)
    assert cmds[-1] == StartTimer(REASSURE_TIMER, CONFIG.reassurance_interval)
    assert flow.state is State.WAITING
    assert flow.record.queue == "loneliness"
    assert flow.record.queued_at == 2.0


def test_intro_ignores_digits_timers_and_stale_playbacks() -> None:
    flow, pb = intro()
    assert flow.handle(Digit("1"), 3.0) == []
    assert flow.handle(TimerFired(INPUT_TIMER), 3.0) == []
    assert flow.handle(PlaybackDone("not-" + pb), 3.0) == []
    assert flow.state is State.INTRO


def test_reassurance_plays_into_holding_bridge_and_restarts_timer() -> None:
    flow = waiting()
    for i in range(3):
        cmds = flow.handle(TimerFired(REASSURE_TIMER), 40.0 + 30 * i)
        play = one(cmds, Play)
        assert play.prompts == ("hold_reassurance",)
        assert play.target is Target.HOLDING
        assert flow.handle(PlaybackDone(play.playback_id), 45.0 + 30 * i) == [
            StartTimer(REASSURE_TIMER, CONFIG.reassurance_interval)
        ]
        # A second 'done' for the same playback does not start a second timer.
        assert flow.handle(PlaybackDone(play.playback_id), 46.0 + 30 * i) == []
    assert flow.state is State.WAITING


def test_waiting_ignores_digits_and_input_timer() -> None:
    flow = waiting()
    assert flow.handle(Digit("5"), 11.0) == []
    assert flow.handle(TimerFired(INPUT_TIMER), 11.0) == []


def test_staff_answer_whispers_to_the_counselor_then_connects() -> None:
    flow = waiting()
    cmds = flow.handle(StaffAnswered(LEG, "counselor03"), 39.0)
    assert CancelTimer(REASSURE_TIMER) in cmds
    assert Dequeue("loneliness") in cmds
    whisper = one(cmds, Play)
    assert whisper.prompts == ("counselor_whisper_loneliness",)
    assert whisper.target is Target.LEG and whisper.leg_id == LEG
    assert of(cmds, Connect) == []
    assert flow.state is State.CONNECTING
    cmds = flow.handle(PlaybackDone(whisper.playback_id), 40.0)
    assert Connect(LEG) in cmds and StartListening("staff") in cmds
    assert flow.state is State.CONNECTED
    assert flow.record.answered_at == 40.0
    assert flow.record.member == "counselor03"
    assert flow.record.wait_seconds == pytest.approx(38.0)  # queued at 2 s, when 5 was pressed
    assert flow.record.talk_seconds is None


def test_staff_answer_during_reassurance_stops_it() -> None:
    flow = waiting()
    pb = one(flow.handle(TimerFired(REASSURE_TIMER), 40.0), Play).playback_id
    cmds = flow.handle(StaffAnswered(LEG, "counselor01"), 41.0)
    assert StopPlayback(pb) in cmds
    assert one(cmds, Play).leg_id == LEG
    # The stopped reassurance reports done: no timer is started any more.
    assert flow.handle(PlaybackDone(pb), 41.5) == []


def test_staff_hangup_ends_completed() -> None:
    flow = connected()
    cmds = flow.handle(StaffHungUp(), 100.0)
    assert cmds == [HangupCaller(), Finish(Outcome.COMPLETED)]
    assert flow.ended
    assert flow.record.outcome is Outcome.COMPLETED
    assert flow.record.ended_at == 100.0
    assert flow.record.talk_seconds == pytest.approx(60.0)
    assert flow.record.wait_seconds == pytest.approx(38.0)


def test_second_staff_answer_while_connected_is_hung_up() -> None:
    flow = connected()
    assert flow.handle(StaffAnswered("leg-2", "counselor02"), 41.0) == [HangupLeg("leg-2")]
    assert flow.state is State.CONNECTED
    assert flow.record.member == "counselor01"
