"""The call flow (ivr.flow.call) on its own: events and the time in, commands out.

No event loop and no sleeps: every `handle` gets its `now` explicitly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from ivr.config import Settings
from ivr.configs import flow_config
from ivr.flow.call import (
    CONSENT_PROMPTS,
    CONSENT_TIMER,
    INPUT_TIMER,
    MAX_WAIT_TIMER,
    NO_WORDS,
    REASSURE_TIMER,
    YES_WORDS,
    Answer,
    CallerHungUp,
    CallFlow,
    CancelTimer,
    Command,
    Connect,
    Dequeue,
    Digit,
    Enqueue,
    Failed,
    Finish,
    FlowConfig,
    HangupCaller,
    HangupLeg,
    Heard,
    Hold,
    Listen,
    NotifyStaff,
    Outcome,
    Play,
    PlaybackDone,
    QueueStatus,
    RecordConsent,
    RecordSilence,
    Recover,
    RequestCallback,
    Silence,
    SpeechHeard,
    StaffAnswered,
    StaffDigit,
    StaffHungUp,
    Started,
    StartListening,
    StartRecording,
    StartTimer,
    State,
    StopPlayback,
    Target,
    TimerFired,
    WithdrawConsent,
)
from ivr.flow.menu import Menu, load_menu
from ivr.paths import PROJECT_ROOT

T = TypeVar("T")

MENU: Menu = load_menu(PROJECT_ROOT / "config" / "menu.toml")


def make_config(**changes: Any) -> FlowConfig:
    """The flow's config from the default settings and MENU, with `changes`."""
    return dataclasses.replace(flow_config(Settings(), MENU), **changes)


CONFIG = make_config()
OPTIONS = (*(o.prompt for o in MENU.options), MENU.repeat_hint)
LEG = "leg-1"


def of(cmds: list[Command], kind: type[T]) -> list[T]:
    """The commands of one type, in order."""
    return [c for c in cmds if isinstance(c, kind)]


def one(cmds: list[Command], kind: type[T]) -> T:
    found = of(cmds, kind)
    assert len(found) == 1, f"expected one {kind.__name__} in {cmds}"
    return found[0]


def last_play(flow: CallFlow, cmds: list[Command]) -> Play:
    play = one(cmds, Play)
    assert flow._playback == play.playback_id
    return play


# --- helpers that drive a flow to a given state ------------------------------------------


def started(now: float = 0.0) -> tuple[CallFlow, list[Command]]:
    flow = CallFlow("c1", CONFIG, now)
    return flow, flow.handle(Started(), now)


def menu_playing() -> tuple[CallFlow, str]:
    flow, cmds = started()
    return flow, one(cmds, Play).playback_id


def menu_waiting() -> CallFlow:
    flow, pb = menu_playing()
    flow.handle(PlaybackDone(pb), 1.0)
    assert flow.state is State.MENU_WAITING
    return flow


def intro() -> tuple[CallFlow, str]:
    """The general line (no consent question): queued, its intro playing."""
    flow = menu_waiting()
    cmds = flow.handle(Digit("1"), 2.0)
    assert flow.state is State.INTRO
    return flow, one(cmds, Play).playback_id


def consent_asked() -> tuple[CallFlow, str]:
    """The loneliness line: queued at once, the intro and the consent question playing."""
    flow = menu_waiting()
    cmds = flow.handle(Digit("5"), 2.0)
    assert flow.state is State.CONSENT
    return flow, one(cmds, Play).playback_id


def waiting(consent: str = "2") -> CallFlow:
    flow, _ = consent_asked()
    flow.handle(Digit(consent), 10.0)  # answered before the question ended
    assert flow.state is State.WAITING
    return flow


def nobody_waiting() -> CallFlow:
    """Waiting (consent answered) while nobody of the line could answer."""
    flow, _ = consent_asked()
    flow.handle(QueueStatus(0, None, reachable=0), 2.5)
    flow.handle(Digit("2"), 10.0)
    assert flow.state is State.WAITING
    return flow


def connecting() -> tuple[CallFlow, str]:
    flow = waiting()
    cmds = flow.handle(StaffAnswered(LEG, "counselor01"), 40.0)
    assert flow.state is State.CONNECTING
    return flow, one(cmds, Play).playback_id


def connected() -> CallFlow:
    flow, whisper = connecting()
    flow.handle(PlaybackDone(whisper), 40.0)
    assert flow.state is State.CONNECTED
    return flow


def goodbye() -> tuple[CallFlow, str]:
    flow = menu_waiting()
    cmds: list[Command] = []
    for _ in range(CONFIG.max_failures):
        cmds = flow.handle(Digit("9"), 3.0)
    assert flow.state is State.GOODBYE
    return flow, one(cmds, Play).playback_id


def ended() -> CallFlow:
    flow = menu_waiting()
    flow.handle(CallerHungUp(), 5.0)
    assert flow.ended
    return flow


def _menu_playing_flow() -> CallFlow:
    return menu_playing()[0]


def _intro_flow() -> CallFlow:
    return intro()[0]


def _goodbye_flow() -> CallFlow:
    return goodbye()[0]


def _consent_flow() -> CallFlow:
    return consent_asked()[0]


LIVE_STATES: dict[State, Callable[[], CallFlow]] = {
    State.MENU_PLAYING: _menu_playing_flow,
    State.MENU_WAITING: menu_waiting,
    State.INTRO: _intro_flow,
    State.CONSENT: _consent_flow,
    State.WAITING: waiting,
    State.CONNECTED: connected,
    State.GOODBYE: _goodbye_flow,
}


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
    assert cmds == [StartTimer(REASSURE_TIMER, CONFIG.reassurance_interval)]
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


# --- menu failures ------------------------------------------------------------------------


def test_star_repeats_menu_without_counting_a_failure() -> None:
    flow = menu_waiting()
    for i in range(CONFIG.max_failures + 2):
        cmds = flow.handle(Digit("*"), 2.0 + i)
        play = last_play(flow, cmds)
        assert play.prompts == OPTIONS
        assert flow.state is State.MENU_PLAYING
        flow.handle(PlaybackDone(play.playback_id), 2.5 + i)
    assert flow.failures == 0
    assert flow.record.menu_path == []


def test_star_while_menu_plays_restarts_it() -> None:
    flow, pb = menu_playing()
    cmds = flow.handle(Digit("*"), 1.0)
    assert StopPlayback(pb) in cmds
    new = one(cmds, Play)
    assert new.playback_id != pb
    assert new.prompts == OPTIONS
    # The old playback's done event must not start the input timer.
    assert flow.handle(PlaybackDone(pb), 1.1) == []
    assert flow.state is State.MENU_PLAYING
    assert flow.handle(PlaybackDone(new.playback_id), 2.0) == [
        StartTimer(INPUT_TIMER, CONFIG.input_timeout)
    ]


@pytest.mark.parametrize(
    ("event", "prompt"),
    [
        (Digit("9"), "invalid_choice"),
        (Digit("#"), "invalid_choice"),
        (TimerFired(INPUT_TIMER), "gentle_prompt"),
    ],
)
def test_failure_plays_prompt_then_menu(event: Digit | TimerFired, prompt: str) -> None:
    flow = menu_waiting()
    cmds = flow.handle(event, 8.0)
    assert one(cmds, Play).prompts == (prompt, *OPTIONS)
    assert flow.state is State.MENU_PLAYING
    assert flow.failures == 1


def test_input_timer_while_menu_plays_is_ignored() -> None:
    flow, _ = menu_playing()
    assert flow.handle(TimerFired(INPUT_TIMER), 1.0) == []
    assert flow.failures == 0


def test_unknown_timer_in_menu_is_ignored() -> None:
    flow = menu_waiting()
    assert flow.handle(TimerFired(REASSURE_TIMER), 1.0) == []
    assert flow.failures == 0


@pytest.mark.parametrize(
    "failures",
    [
        ("9", "9", "9"),
        ("timer", "timer", "timer"),
        ("9", "timer", "#"),
        ("timer", "8", "timer"),
    ],
    ids=lambda f: "-".join(f),
)
def test_three_failures_say_goodbye_and_hang_up(failures: tuple[str, ...]) -> None:
    flow, pb = menu_playing()
    now = 1.0
    cmds: list[Command] = []
    for i, failure in enumerate(failures):
        flow.handle(PlaybackDone(pb), now)
        now += 6.0
        event = TimerFired(INPUT_TIMER) if failure == "timer" else Digit(failure)
        cmds = flow.handle(event, now)
        play = one(cmds, Play)
        pb = play.playback_id
        if i < len(failures) - 1:
            assert flow.state is State.MENU_PLAYING
            assert play.prompts[1:] == OPTIONS
    assert flow.state is State.GOODBYE
    silent_line = all(f == "timer" for f in failures)
    wrong_key_last = failures[-1] != "timer"
    expected = ("silent_goodbye",) if silent_line else ("goodbye",)
    assert play.prompts == (("invalid_choice", *expected) if wrong_key_last else expected)
    assert bool(of(cmds, RequestCallback)) is silent_line
    # Nothing the caller presses now changes the outcome.
    assert flow.handle(Digit("5"), now) == []
    assert flow.handle(TimerFired(INPUT_TIMER), now) == []
    assert flow.handle(PlaybackDone("stale"), now) == []
    cmds = flow.handle(PlaybackDone(pb), now + 3)
    assert cmds == [HangupCaller(), Finish(Outcome.NO_CHOICE)]
    assert flow.ended
    assert flow.record.outcome is Outcome.NO_CHOICE
    assert flow.record.queue is None


def test_star_between_failures_does_not_reset_or_count() -> None:
    flow = menu_waiting()
    flow.handle(Digit("9"), 2.0)
    flow.handle(Digit("*"), 3.0)
    flow.handle(Digit("9"), 4.0)
    assert flow.failures == 2
    assert flow.state is State.MENU_PLAYING
    flow.handle(Digit("9"), 5.0)
    assert flow.state is State.GOODBYE


def test_valid_choice_after_failures_proceeds() -> None:
    flow = menu_waiting()
    flow.handle(Digit("9"), 2.0)
    flow.handle(TimerFired(INPUT_TIMER), 3.0)
    flow.handle(Digit("5"), 4.0)
    assert flow.state is State.CONSENT


# --- caller hangs up, anywhere ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "outcome", "expect", "forbid"),
    [
        (State.MENU_PLAYING, Outcome.ABANDONED_MENU, [StopPlayback], [Dequeue, HangupLeg]),
        (State.MENU_WAITING, Outcome.ABANDONED_MENU, [], [StopPlayback, Dequeue, HangupLeg]),
        (State.INTRO, Outcome.ABANDONED_QUEUE, [StopPlayback, Dequeue], [HangupLeg]),
        (State.CONSENT, Outcome.ABANDONED_QUEUE, [StopPlayback, Dequeue], [HangupLeg]),
        (State.WAITING, Outcome.ABANDONED_QUEUE, [Dequeue], [HangupLeg]),
        (State.CONNECTED, Outcome.COMPLETED, [HangupLeg], [Dequeue]),
        (State.GOODBYE, Outcome.NO_CHOICE, [StopPlayback], [Dequeue, HangupLeg]),
    ],
    ids=lambda v: v.name if isinstance(v, State) else None,
)
def test_caller_hangup_in_each_state(
    state: State, outcome: Outcome, expect: list[type], forbid: list[type]
) -> None:
    flow = LIVE_STATES[state]()
    assert flow.state is state
    cmds = flow.handle(CallerHungUp(), 200.0)
    assert cmds[-1] == Finish(outcome)
    assert CancelTimer(INPUT_TIMER) in cmds and CancelTimer(REASSURE_TIMER) in cmds
    for kind in expect:
        assert of(cmds, kind), f"{kind.__name__} missing from {cmds}"
    for kind in forbid:
        assert not of(cmds, kind), f"unexpected {kind.__name__} in {cmds}"
    assert not of(cmds, HangupCaller) and not of(cmds, Recover)
    if Dequeue in expect:
        assert one(cmds, Dequeue) == Dequeue(flow.record.queue or "")
    if HangupLeg in expect:
        assert one(cmds, HangupLeg) == HangupLeg(LEG)
    assert flow.ended
    assert flow.record.outcome is outcome
    assert flow.record.ended_at == 200.0


def test_caller_hangup_while_waiting_records_wait() -> None:
    flow = waiting()
    flow.handle(CallerHungUp(), 55.0)
    assert flow.record.wait_seconds == pytest.approx(53.0)
    assert flow.record.talk_seconds is None
    assert flow.record.answered_at is None


def test_caller_hangup_while_connected_records_talk() -> None:
    flow = connected()
    flow.handle(CallerHungUp(), 100.0)
    assert flow.record.talk_seconds == pytest.approx(60.0)


# --- adapter failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "cleanup"),
    [
        (State.MENU_PLAYING, []),
        (State.MENU_WAITING, []),
        (State.INTRO, [Dequeue("general")]),
        (State.CONSENT, [Dequeue("loneliness")]),
        (State.WAITING, [Dequeue("loneliness")]),
        (State.CONNECTED, [HangupLeg(LEG)]),
        (State.GOODBYE, []),
    ],
    ids=lambda v: v.name if isinstance(v, State) else None,
)
def test_failure_recovers_and_ends_with_error(state: State, cleanup: list[Command]) -> None:
    flow = LIVE_STATES[state]()
    cmds = flow.handle(Failed("ARI said no"), 300.0)
    assert cmds[-2:] == [Recover(), Finish(Outcome.ERROR)]
    assert of(cmds, Dequeue) + of(cmds, HangupLeg) == cleanup
    assert not of(cmds, HangupCaller)
    assert flow.ended
    assert flow.record.outcome is Outcome.ERROR
    assert flow.record.ended_at == 300.0
    # Once recovered, the caller's later hangup changes nothing.
    assert flow.handle(CallerHungUp(), 301.0) == []
    assert flow.record.outcome is Outcome.ERROR


# --- stray and late events ----------------------------------------------------------------


@pytest.mark.parametrize("state", [State.MENU_PLAYING, State.MENU_WAITING, State.GOODBYE])
def test_staff_answer_outside_waiting_is_hung_up(state: State) -> None:
    flow = LIVE_STATES[state]()
    assert flow.handle(StaffAnswered("leg-9", "counselor09"), 5.0) == [HangupLeg("leg-9")]
    assert flow.state is state
    assert flow.record.answered_at is None


def test_staff_answer_after_the_end_is_hung_up() -> None:
    flow = ended()
    assert flow.handle(StaffAnswered("leg-9", "counselor09"), 6.0) == [HangupLeg("leg-9")]
    assert flow.record.outcome is Outcome.ABANDONED_MENU


@pytest.mark.parametrize(
    "state", [State.MENU_PLAYING, State.MENU_WAITING, State.INTRO, State.WAITING, State.GOODBYE]
)
def test_stale_playback_done_is_ignored(state: State) -> None:
    flow = LIVE_STATES[state]()
    assert flow.handle(PlaybackDone("c1-pb999"), 5.0) == []
    assert flow.state is state


def test_staff_hangup_outside_connected_is_ignored() -> None:
    flow = waiting()
    assert flow.handle(StaffHungUp(), 20.0) == []
    assert flow.state is State.WAITING


@pytest.mark.parametrize(
    "event",
    [
        Started(),
        Digit("5"),
        Digit("*"),
        PlaybackDone("c1-pb1"),
        TimerFired(INPUT_TIMER),
        TimerFired(REASSURE_TIMER),
        CallerHungUp(),
        StaffHungUp(),
        Failed("late"),
    ],
    ids=repr,
)
def test_events_after_the_end_do_nothing(
    event: Started | Digit | PlaybackDone | TimerFired | CallerHungUp | StaffHungUp | Failed,
) -> None:
    flow = ended()
    before = (flow.record.outcome, flow.record.ended_at)
    assert flow.handle(event, 99.0) == []
    assert flow.ended
    assert (flow.record.outcome, flow.record.ended_at) == before


def test_after_normal_completion_nothing_more_happens() -> None:
    flow = connected()
    flow.handle(StaffHungUp(), 100.0)
    for event in (CallerHungUp(), StaffHungUp(), Failed("x"), TimerFired(REASSURE_TIMER)):
        assert flow.handle(event, 101.0) == []
    assert flow.record.outcome is Outcome.COMPLETED


def test_playback_ids_are_unique_per_call() -> None:
    flow, pb1 = menu_playing()
    pb2 = one(flow.handle(Digit("*"), 1.0), Play).playback_id
    pb3 = one(flow.handle(Digit("5"), 2.0), Play).playback_id
    assert len({pb1, pb2, pb3}) == 3
    assert all(pb.startswith("c1-") for pb in (pb1, pb2, pb3))


def test_counselor_drops_during_whisper_caller_waits_on_keeping_place() -> None:
    flow, whisper = connecting()
    cmds = flow.handle(StaffHungUp(), 41.0)
    assert flow.state is State.WAITING
    assert StopPlayback(whisper) in cmds
    assert Enqueue("loneliness", 2.0) in cmds  # the original place in the queue
    assert StartTimer(REASSURE_TIMER, CONFIG.reassurance_interval) in cmds
    assert flow.record.member is None
    # A late 'done' of the stopped whisper does not connect anyone.
    assert flow.handle(PlaybackDone(whisper), 41.5) == []


def test_caller_hangs_up_during_whisper() -> None:
    flow, _ = connecting()
    cmds = flow.handle(CallerHungUp(), 41.0)
    assert HangupLeg(LEG) in cmds
    assert cmds[-1] == Finish(Outcome.ABANDONED_QUEUE)


# --- listening: silence, spoken answers (issue "Listening to the call") ---------------------


def test_call_start_opens_the_caller_tap_and_listens_for_menu_words() -> None:
    _, cmds = started()
    assert StartListening("caller") in cmds
    assert Listen(MENU.voice_phrases) in cmds
    assert "외로움" in MENU.voice_phrases


def test_saying_a_menu_word_chooses_that_option() -> None:
    flow = menu_waiting()
    cmds = flow.handle(Heard("외로움"), 3.0)
    assert flow.state is State.CONSENT
    assert flow.record.menu_path == ["5"]
    assert Listen((*YES_WORDS, *NO_WORDS)) in cmds  # now listening for the consent answer


def test_silence_in_the_menu_gets_the_gentle_prompt_and_is_recorded() -> None:
    flow = menu_waiting()
    cmds = flow.handle(TimerFired(INPUT_TIMER), 8.0)
    assert one(cmds, Play).prompts[0] == "gentle_prompt"
    silence = one(cmds, RecordSilence)
    assert silence.party == "caller" and silence.action == "gentle_prompt"


def test_speech_that_is_not_understood_gets_a_different_prompt() -> None:
    flow = menu_waiting()
    flow.handle(SpeechHeard("caller", 2.0), 3.0)
    cmds = flow.handle(TimerFired(INPUT_TIMER), 8.0)
    assert one(cmds, Play).prompts[0] == "not_understood"
    assert of(cmds, RecordSilence) == []


def test_a_caller_who_spoke_is_not_treated_as_a_silent_line() -> None:
    flow = menu_waiting()
    flow.handle(SpeechHeard("caller", 1.0), 2.0)
    cmds: list[Command] = []
    for i in range(CONFIG.max_failures):
        cmds = flow.handle(TimerFired(INPUT_TIMER), 10.0 + i)
        if flow.state is State.MENU_PLAYING:
            flow.handle(PlaybackDone(one(cmds, Play).playback_id), 10.5 + i)
    assert one(cmds, Play).prompts == ("goodbye",)
    assert of(cmds, RequestCallback) == []


def test_silent_line_is_flagged_for_a_welfare_callback() -> None:
    flow = menu_waiting()
    cmds: list[Command] = []
    for i in range(CONFIG.max_failures):
        cmds = flow.handle(TimerFired(INPUT_TIMER), 40.0 * (i + 1))
        if flow.state is State.MENU_PLAYING:
            flow.handle(PlaybackDone(one(cmds, Play).playback_id), 40.0 * (i + 1) + 30)
    request = one(cmds, RequestCallback)
    assert request.reason == "welfare_silence"
    assert one(cmds, RecordSilence).action == "welfare_callback"
    assert flow.record.end_reason == "silent"


def test_waiting_caller_is_not_disturbed_by_silence() -> None:
    flow = waiting()
    assert flow.handle(Silence("caller", 30.0), 60.0) == []
    assert flow.state is State.WAITING


def test_yes_by_voice_accepts_the_callback_offer_and_no_declines_it() -> None:
    config = make_config(callback_offer_after=5.0, reassurance_interval=10.0)
    for word, accepted in (("네", True), ("예", True), ("아니요", False), ("아니오", False)):
        flow = CallFlow("c9", config, 0.0)
        pb = one(flow.handle(Started(), 0.0), Play).playback_id
        flow.handle(PlaybackDone(pb), 1.0)
        pb = one(flow.handle(Digit("5"), 2.0), Play).playback_id
        flow.handle(PlaybackDone(pb), 3.0)
        flow.handle(Digit("2"), 3.0)  # the consent question
        offer = one(flow.handle(TimerFired(REASSURE_TIMER), 20.0), Play)
        assert "callback_offer" in offer.prompts
        cmds = flow.handle(Heard(word), 21.0)
        assert bool(of(cmds, RequestCallback)) is accepted
        assert flow.state is (State.GOODBYE if accepted else State.WAITING)
        if not accepted:
            flow.handle(PlaybackDone(offer.playback_id), 22.0)
            again = one(flow.handle(TimerFired(REASSURE_TIMER), 40.0), Play)
            assert "callback_offer" not in again.prompts  # declined: not offered again


def test_connected_both_silent_tells_the_counselor_and_speech_clears_it() -> None:
    flow = connected()
    assert flow.handle(Silence("caller", 20.0), 70.0) == []  # the counselor still talks
    cmds = flow.handle(Silence("staff", 20.0), 75.0)
    note = one(cmds, NotifyStaff)
    assert note.kind == "both_silent" and note.seconds == pytest.approx(20.0)
    assert one(cmds, RecordSilence).party == "both"
    later = of(flow.handle(Silence("staff", 45.0), 100.0), NotifyStaff)
    assert [n.kind for n in later] == ["caller_silent"]  # "both" is told once per stretch
    assert of(flow.handle(SpeechHeard("caller", 30.0), 101.0), NotifyStaff) == [
        NotifyStaff("resumed", 30.0)
    ]
    assert flow.state is State.CONNECTED  # never hung up on silence


def test_connected_caller_silent_long_tells_the_counselor_only() -> None:
    flow = connected()
    cmds = flow.handle(Silence("caller", 45.0), 100.0)
    assert one(cmds, NotifyStaff).kind == "caller_silent"
    assert of(cmds, Play) == [] and of(cmds, HangupCaller) == []


def _caller_silent_told() -> CallFlow:
    """Connected; the caller silent 45 s while the counselor talks: caller_silent was told."""
    flow = connected()
    assert one(flow.handle(Silence("caller", 45.0), 100.0), NotifyStaff).kind == "caller_silent"
    return flow


def _both_silent_told() -> CallFlow:
    flow = connected()
    flow.handle(Silence("caller", 20.0), 70.0)
    assert one(flow.handle(Silence("staff", 20.0), 75.0), NotifyStaff).kind == "both_silent"
    return flow


def test_counselor_speaking_does_not_end_the_caller_silent_notice() -> None:
    flow = _caller_silent_told()
    assert of(flow.handle(SpeechHeard("staff", 2.0), 100.8), NotifyStaff) == []


def test_caller_speaking_ends_the_caller_silent_notice() -> None:
    flow = _caller_silent_told()
    assert of(flow.handle(SpeechHeard("caller", 45.0), 101.0), NotifyStaff) == [
        NotifyStaff("resumed", 45.0)
    ]


def test_caller_speaking_after_the_counselor_spoke_still_ends_the_notice() -> None:
    flow = _caller_silent_told()
    flow.handle(SpeechHeard("staff", 2.0), 100.8)
    assert of(flow.handle(SpeechHeard("caller", 47.0), 103.0), NotifyStaff) == [
        NotifyStaff("resumed", 47.0)
    ]


def test_counselor_speaking_ends_both_silent_without_a_resumed_notice() -> None:
    flow = _both_silent_told()
    assert of(flow.handle(SpeechHeard("staff", 20.0), 76.0), NotifyStaff) == []


def test_both_silent_is_told_again_after_the_counselor_broke_it() -> None:
    flow = _both_silent_told()
    flow.handle(SpeechHeard("staff", 20.0), 76.0)
    again = of(flow.handle(Silence("staff", 20.0), 97.0), NotifyStaff)
    assert "both_silent" in [n.kind for n in again]


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
    assert cmds[-1] == Finish(Outcome.ABANDONED_QUEUE)


# --- one failure per caller action (issue 8, item 2) ----------------------------------------


def test_a_key_and_a_recognizer_result_together_count_as_one_failure() -> None:
    flow = menu_waiting()
    flow.handle(SpeechHeard("caller", 2.0), 7.0)  # the caller spoke as they pressed
    flow.handle(Heard("네"), 7.0)  # recognised, but not a menu word
    flow.handle(Digit("9"), 7.0)
    flow.handle(TimerFired(INPUT_TIMER), 7.0)  # the input timer fired in the same moment
    assert flow.failures == 1


def test_the_record_keeps_the_failure_count() -> None:
    flow = menu_waiting()
    flow.handle(Digit("9"), 7.0)
    assert flow.record.menu_failures == 1


def test_every_counted_failure_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    flow = menu_waiting()
    with caplog.at_level("INFO", logger="ivr.flow.call"):
        flow.handle(Digit("9"), 7.0)
    assert "call c1: menu failure 1 of 3 in menu_waiting: key 9" in caplog.messages


def test_the_last_wrong_key_is_named_before_the_goodbye() -> None:
    flow = menu_waiting()
    for _ in range(CONFIG.max_failures - 1):
        flow.handle(Digit("9"), 7.0)
    assert one(flow.handle(Digit("7"), 8.0), Play).prompts == ("invalid_choice", "goodbye")


# --- nobody could answer (issue 8, item 5) ----------------------------------------------------


def test_nobody_reachable_the_caller_is_told_and_offered_a_callback_at_once() -> None:
    flow, _ = consent_asked()
    flow.handle(QueueStatus(0, None, reachable=0), 2.5)
    cmds = flow.handle(Digit("2"), 10.0)
    assert one(cmds, Play).prompts == ("nobody_available", "callback_offer")


def test_nobody_reachable_key_1_requests_the_callback() -> None:
    flow = nobody_waiting()
    assert one(flow.handle(Digit("1"), 12.0), RequestCallback).reason == "max_wait"


def test_nobody_reachable_declined_keeps_waiting_with_the_honest_message() -> None:
    flow = nobody_waiting()
    offer = flow._playback
    flow.handle(Heard("아니요"), 12.0)
    flow.handle(PlaybackDone(offer or ""), 13.0)
    assert one(flow.handle(TimerFired(REASSURE_TIMER), 43.0), Play).prompts == (
        "nobody_available_wait",
    )


def test_everybody_gone_while_waiting_is_announced_at_once() -> None:
    flow = waiting()
    cmds = flow.handle(QueueStatus(0, None, reachable=0), 20.0)
    assert one(cmds, Play).prompts == ("nobody_available", "callback_offer")


def test_everybody_gone_during_an_announcement_is_announced_right_after_it() -> None:
    flow = waiting()
    pb = one(flow.handle(TimerFired(REASSURE_TIMER), 40.0), Play).playback_id
    assert flow.handle(QueueStatus(0, None, reachable=0), 41.0) == []  # not cut off
    assert one(flow.handle(PlaybackDone(pb), 45.0), Play).prompts[0] == "nobody_available"


def test_reachable_counselors_keep_the_usual_reassurance() -> None:
    flow = waiting()
    flow.handle(QueueStatus(0, None, reachable=2), 20.0)
    assert "hold_reassurance" in one(flow.handle(TimerFired(REASSURE_TIMER), 40.0), Play).prompts


def test_max_wait_offers_the_callback_at_the_latest() -> None:
    config = make_config(callback_offer_after=9999.0, max_wait=600.0)
    flow = CallFlow("c2", config, 0.0)
    flow.handle(Digit("5"), 1.0)  # barge-in: no need to wait for the menu
    flow.handle(Digit("2"), 2.0)
    assert "callback_offer" in one(flow.handle(TimerFired(MAX_WAIT_TIMER), 601.0), Play).prompts


def test_queueing_starts_the_max_wait_timer() -> None:
    flow = menu_waiting()
    assert StartTimer(MAX_WAIT_TIMER, 600.0) in flow.handle(Digit("5"), 2.0)
