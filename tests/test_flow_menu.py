"""The call flow (ivr.flow.call) on its own, the menu's failures: wrong keys, silence, the
goodbye, one failure per caller action. Events and the time in, commands out.

No event loop and no sleeps: every `handle` gets its `now` explicitly. The helpers that
drive a flow to a given state are in tests/flow_support.py.
"""

from __future__ import annotations

import pytest

from ivr.flow.call import (
    INPUT_TIMER,
    REASSURE_TIMER,
    Command,
    Digit,
    Finish,
    HangupCaller,
    Heard,
    Outcome,
    Play,
    PlaybackDone,
    RequestCallback,
    SpeechHeard,
    StartTimer,
    State,
    StopPlayback,
    TimerFired,
)
from tests.flow_support import CONFIG, OPTIONS, last_play, menu_playing, menu_waiting, of, one

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
