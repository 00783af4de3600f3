"""The silence tracker on synthetic decision sequences, and webrtcvad on real audio: digital
silence, a tone, and Korean speech from espeak-ng at 8 kHz."""

from __future__ import annotations

from dataclasses import astuple
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speech import synth
from speech.recognizer import read_wav
from speech.silence import (
    Event,
    SilenceFor,
    SilenceParams,
    SilenceTracker,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    State,
    VadClassifier,
    track,
)

F = 0.02  # frame duration


def frames(pattern: str) -> list[bool]:
    """'#' voiced, '.' unvoiced; 'N*' repeats what follows N times: '3*# 2*#.' = '###.#.'."""
    out: list[bool] = []
    for token in pattern.split():
        count, _, symbols = token.rpartition("*")
        out += [c == "#" for c in symbols] * (int(count) if count else 1)
    return out


def seconds(s: float) -> int:
    return round(s / F)


def rounded(events: list[Event]) -> list[Event]:
    """Times rounded to the microsecond, to compare with exact values."""
    return [type(e)(*(round(v, 6) for v in astuple(e))) for e in events]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_speech_then_silence_then_speech() -> None:
    decisions = frames(f"{seconds(1)}*. {seconds(2)}*# {seconds(16)}*. {seconds(1)}*#")
    events = track(decisions)
    assert kinds(events) == [
        "SpeechStarted",
        "SpeechStopped",
        "SilenceFor",
        "SilenceFor",
        "SpeechResumed",
        "SpeechStarted",
    ]
    started, stopped, five, fifteen, resumed, again = rounded(events)
    assert started == SpeechStarted(1.0)
    assert stopped == SpeechStopped(3.0, 2.0)
    # silence counts from the end of the speech, not from the end of the hangover
    assert five == SilenceFor(5.0, 8.0)
    assert fifteen == SilenceFor(15.0, 18.0)
    assert resumed == SpeechResumed(16.0, 19.0)
    assert again == SpeechStarted(19.0)


def test_the_first_silence_counts_from_the_start() -> None:
    events = track(frames(f"{seconds(31)}*."))
    assert rounded(events) == [
        SilenceFor(5.0, 5.0),
        SilenceFor(15.0, 15.0),
        SilenceFor(30.0, 30.0),
    ]
    late = track(frames(f"{seconds(6)}*."), start=100.0)
    assert rounded(late) == [SilenceFor(5.0, 105.0)]


def test_thresholds_fire_once_per_stretch_and_again_in_the_next() -> None:
    pattern = f"{seconds(6)}*. 10*# {seconds(6)}*. 10*# {seconds(3)}*."
    events = track(frames(pattern))
    assert [e.seconds for e in events if isinstance(e, SilenceFor)] == [5.0, 5.0]
    assert [round(e.after_seconds, 2) for e in events if isinstance(e, SpeechResumed)] == [
        6.0,
        6.0,
    ]


def test_short_pauses_resume_nothing() -> None:
    events = track(frames(f"10*# {seconds(2)}*. 10*#"))
    assert kinds(events) == ["SpeechStarted", "SpeechStopped", "SpeechStarted"]


def test_isolated_voiced_frames_never_start_speech() -> None:
    # clicks and line noise: voiced frames never three in a row
    decisions = frames(f"{seconds(16) // 3}*##.")
    assert decisions[:6] == [True, True, False, True, True, False]
    tracker = SilenceTracker()
    events: list[Event] = []
    for i, voiced in enumerate(decisions):
        events += tracker.update(voiced, i * F)
        assert tracker.state in (State.QUIET, State.STARTING)
    assert [e.seconds for e in events if isinstance(e, SilenceFor)] == [5.0, 15.0]
    assert not any(isinstance(e, SpeechStarted) for e in events)


def test_flapping_inside_speech_does_not_stop_it() -> None:
    # unvoiced gaps shorter than the hangover (0.3 s) keep the speech going
    pattern = "5*# 3*. 4*# 1*. 2*# 14*. 3*# " + f"{seconds(1)}*."
    events = track(frames(pattern))
    assert kinds(events) == ["SpeechStarted", "SpeechStopped"]
    assert rounded(events)[1] == SpeechStopped(0.64, 0.64)  # 32 frames


def test_hangover_and_start_frames_are_parameters() -> None:
    params = SilenceParams(start_frames=1, hangover=0.1, thresholds=(1.0, 0.5))
    assert params.thresholds == (0.5, 1.0)
    events = track(frames("# 6*. # 60*."), params)
    assert kinds(events) == [
        "SpeechStarted",
        "SpeechStopped",
        "SpeechStarted",
        "SpeechStopped",
        "SilenceFor",
        "SilenceFor",
    ]


def test_a_jump_in_time_fires_every_threshold_it_crosses() -> None:
    tracker = SilenceTracker()
    assert tracker.update(False, 0.0) == []
    events = tracker.update(False, 40.0)  # e.g. frames were not classified for a while
    assert [e.seconds for e in events if isinstance(e, SilenceFor)] == [5.0, 15.0, 30.0]
    assert tracker.silent_for() == 40.02
    with pytest.raises(ValueError, match="before"):
        tracker.update(False, 39.0)


def test_parameters_are_validated() -> None:
    with pytest.raises(ValueError):
        SilenceParams(start_frames=0)
    with pytest.raises(ValueError):
        SilenceParams(thresholds=(0.0,))
    with pytest.raises(ValueError):
        SilenceTracker(frame_duration=0)


@given(st.lists(st.booleans(), max_size=3000))
def test_event_invariants_on_any_sequence(decisions: list[bool]) -> None:
    events = track(decisions, SilenceParams(thresholds=(1.0, 2.0, 3.0)))
    speaking = False
    fired: list[float] = []
    last_at = 0.0
    for e in events:
        if isinstance(e, SpeechStarted):
            assert not speaking
            speaking, fired = True, []
        elif isinstance(e, SpeechStopped):
            assert speaking and e.duration > 0
            speaking = False
        elif isinstance(e, SilenceFor):
            assert not fired or e.seconds > fired[-1]  # in order, each once per stretch
            fired.append(e.seconds)
        else:
            assert fired and e.after_seconds >= fired[-1] - 1e-9
        at = e.at
        assert at >= last_at - 2 * F  # events come out in (nearly) time order
        last_at = max(last_at, at)


# -- webrtcvad on real audio ----------------------------------------------------------------


def test_vad_frame_format_is_checked() -> None:
    with pytest.raises(ValueError, match="Hz"):
        VadClassifier(sample_rate=11025)
    with pytest.raises(ValueError, match="ms"):
        VadClassifier(frame_ms=25)
    with pytest.raises(ValueError, match="aggressiveness"):
        VadClassifier(aggressiveness=4)
    vad = VadClassifier(16000, 30)
    assert vad.frame_bytes == 960
    with pytest.raises(ValueError, match="960 bytes"):
        vad.is_speech(bytes(320))


@pytest.mark.parametrize("rate", [8000, 16000])
def test_digital_silence_is_unvoiced(rate: int) -> None:
    vad = VadClassifier(rate, 20)
    assert not any(vad.classify(synth.silence(2.0, rate)))


def test_a_steady_tone_counts_as_voiced() -> None:
    # webrtcvad is a voice *activity* detector: a steady 440 Hz tone at -10 dBFS is "voiced"
    # (so are hold music and ringback). Recorded here because it shapes how results are used.
    decisions = VadClassifier(8000, 20).classify(synth.tone(440, 2.0, 8000, 0.3))
    assert sum(decisions) > 0.9 * len(decisions)


@pytest.fixture(scope="module")
def korean_speech(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """1 s of silence, a Korean sentence from espeak-ng at 8 kHz, 2 s of silence."""
    path = tmp_path_factory.mktemp("vad") / "sentence.wav"
    synth.espeak_korean("안녕하세요. 요즘 너무 외로워요.", Path(path), rate=8000)
    pcm, rate = read_wav(path)
    assert rate == 8000
    return synth.silence(1.0) + pcm + synth.silence(2.0)


def test_korean_speech_is_voiced_and_tracked(korean_speech: bytes) -> None:
    decisions = VadClassifier(8000, 20).classify(korean_speech)
    speech_frames = decisions[seconds(1) : -seconds(2)]
    assert not any(decisions[: seconds(1)])
    assert sum(speech_frames) > 0.7 * len(speech_frames)
    events = track(decisions)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    assert starts[0].at == pytest.approx(1.0, abs=0.1)
    speech_end = len(decisions) * F - 2.0
    # webrtcvad keeps saying "voiced" a few frames after the end (its own hangover)
    assert stops[-1].at == pytest.approx(speech_end, abs=0.25)
