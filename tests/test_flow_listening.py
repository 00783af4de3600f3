"""The call flow (ivr.flow.call) on its own, listening: silence and spoken answers.
Events and the time in, commands out.

No event loop and no sleeps: every `handle` gets its `now` explicitly. The helpers that
drive a flow to a given state are in tests/flow_support.py.
"""

from __future__ import annotations

import pytest

from ivr.flow.call import (
    INPUT_TIMER,
    NO_WORDS,
    REASSURE_TIMER,
    YES_WORDS,
    CallFlow,
    Command,
    Digit,
    HangupCaller,
    Heard,
    Listen,
    NotifyStaff,
    Party,
    Play,
    PlaybackDone,
    QueueStatus,
    RecordSilence,
    RequestCallback,
    Silence,
    SpeechHeard,
    StaffAnswered,
    StaffHungUp,
    Started,
    StartListening,
    State,
    StopListening,
    TimerFired,
)
from tests.flow_support import (
    CONFIG,
    MENU,
    connected,
    connecting,
    consent_asked,
    make_config,
    menu_waiting,
    of,
    one,
    started,
    waiting,
)

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


def test_the_callers_tap_closes_in_the_queue_and_opens_again_at_the_connect() -> None:
    """No question is open while a caller waits: their audio tap (a snoop, a bridge and an RTP
    stream in Asterisk for each caller) closes, and opens again when they are connected, where
    silence is a signal again (issue 13)."""
    flow, _ = consent_asked()
    cmds = flow.handle(Digit("2"), 10.0)
    assert StopListening(Party.CALLER) in cmds and flow.state is State.WAITING
    flow, whisper = connecting()
    cmds = flow.handle(PlaybackDone(whisper), 40.0)
    assert StartListening(Party.CALLER) in cmds
    assert StartListening(Party.STAFF) in cmds


def test_the_tap_stays_when_the_callback_offer_opens_as_waiting_begins() -> None:
    """Nobody can answer and the offer is made at once: the tap is kept for "네"."""
    flow, _ = consent_asked()
    flow.handle(QueueStatus(0, None, reachable=0), 2.5)
    cmds = flow.handle(Digit("2"), 10.0)
    assert flow.state is State.WAITING
    assert not of(cmds, StopListening) and not of(cmds, StartListening)
    assert Listen((*YES_WORDS, *NO_WORDS)) in cmds


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
        offered = flow.handle(TimerFired(REASSURE_TIMER), 20.0)
        offer = one(offered, Play)
        assert "callback_offer" in offer.prompts
        assert offered.index(StartListening(Party.CALLER)) < offered.index(
            Listen((*YES_WORDS, *NO_WORDS))
        )
        cmds = flow.handle(Heard(word), 21.0)
        assert bool(of(cmds, RequestCallback)) is accepted
        assert (StopListening(Party.CALLER) in cmds) is not accepted  # declined: closed again
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


def test_a_caller_back_in_the_queue_after_the_whisper_has_no_tap() -> None:
    """The counselor answered during the consent question (the caller's tap still open) and
    hung up during the whisper: the caller waits again, with no question open and no tap."""
    flow, _ = consent_asked()
    flow.handle(StaffAnswered("leg-1", "counselor01"), 5.0)
    assert flow.state is State.CONNECTING
    cmds = flow.handle(StaffHungUp(), 6.0)
    assert flow.state is State.WAITING
    assert Listen(()) in cmds and StopListening(Party.CALLER) in cmds
