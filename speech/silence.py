"""Silence and speech in a call, from per-frame voice decisions.

`SilenceTracker` is a pure state machine: no I/O and no clock. Each frame's voiced/unvoiced
decision comes in with the frame's start time (the media time of `speech.rtp.Frame.time`), and
events come out:

- `SpeechStarted(at)` when speech is confirmed (``start_frames`` voiced frames in a row); ``at``
  is the start of the first of them.
- `SpeechStopped(at, duration)` when speech has been followed by ``hangover`` seconds without a
  confirmed restart; ``at`` is the end of the last voiced frame.
- `SilenceFor(seconds, at)` once per silent stretch for each threshold in ``thresholds``, when the
  stretch reaches it. A stretch starts at the end of the last speech (or at ``start`` for the
  first one) and ends when speech is confirmed; voiced frames that do not make up a confirmed
  start (clicks, a cough, line noise) do not end it.
- `SpeechResumed(after_seconds, at)` when speech is confirmed after a stretch long enough to
  have fired at least one `SilenceFor`: "the caller spoke again after 17 s".

States: QUIET → STARTING (voiced, not yet confirmed) → SPEAKING → STOPPING (unvoiced, within the
hangover) → QUIET. A voiced frame in STOPPING goes back to SPEAKING; an unvoiced frame in STARTING
goes back to QUIET.

`VadClassifier` is the thin webrtcvad wrapper that produces the voiced/unvoiced decisions.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import webrtcvad

#: Voiced frames in a row that confirm speech (60 ms with 20 ms frames).
DEFAULT_START_FRAMES = 3
#: Seconds without confirmed speech before speech counts as stopped.
DEFAULT_HANGOVER = 0.3
#: Silence thresholds (seconds) that each fire once per silent stretch.
DEFAULT_THRESHOLDS: tuple[float, ...] = (5.0, 15.0, 30.0)

#: webrtcvad's limits.
VAD_SAMPLE_RATES = (8000, 16000, 32000, 48000)
VAD_FRAME_MS = (10, 20, 30)
#: 0 is the least aggressive about filtering out non-speech, 3 the most.
DEFAULT_AGGRESSIVENESS = 2


class State(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at: float


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    at: float
    duration: float


@dataclass(frozen=True, slots=True)
class SilenceFor:
    seconds: float
    at: float


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    after_seconds: float
    at: float


Event = SpeechStarted | SpeechStopped | SilenceFor | SpeechResumed


@dataclass(frozen=True)
class SilenceParams:
    start_frames: int = DEFAULT_START_FRAMES
    hangover: float = DEFAULT_HANGOVER
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS

    def __post_init__(self) -> None:
        if self.start_frames < 1:
            raise ValueError("start_frames must be at least 1")
        if self.hangover < 0:
            raise ValueError("hangover must not be negative")
        if any(t <= 0 for t in self.thresholds):
            raise ValueError("silence thresholds must be positive")
        # accept any order from the caller, keep them sorted and unique
        object.__setattr__(self, "thresholds", tuple(sorted(set(self.thresholds))))


class SilenceTracker:
    """Voice decisions per frame in, speech/silence events out (see the module docstring)."""

    def __init__(
        self,
        params: SilenceParams | None = None,
        *,
        frame_duration: float = 0.020,
        start: float = 0.0,
    ) -> None:
        if frame_duration <= 0:
            raise ValueError("frame_duration must be positive")
        self.params = params or SilenceParams()
        self.frame_duration = frame_duration
        self.state = State.QUIET
        #: Start of the current silent stretch (None while speaking).
        self.silence_since: float | None = start
        self._fired = 0  # thresholds already fired in this stretch (they are sorted)
        self._voiced_run = 0
        self._run_start = start
        self._speech_start = start
        self._last_voiced_end = start
        self._now = start

    @property
    def speaking(self) -> bool:
        return self.state in (State.SPEAKING, State.STOPPING)

    def silent_for(self, now: float | None = None) -> float:
        """Length of the current silent stretch at ``now`` (default: the last frame's end)."""
        if self.silence_since is None:
            return 0.0
        return max(0.0, (self._now if now is None else now) - self.silence_since)

    def update(self, voiced: bool, time: float) -> list[Event]:
        """One frame starting at ``time`` (seconds); frames must not go back in time."""
        if time < self._now - 1e-9:
            raise ValueError(f"frame at {time} s is before the previous frame's end {self._now} s")
        end = time + self.frame_duration
        self._now = end
        events: list[Event] = []
        state = self.state
        if voiced:
            if state is State.QUIET:
                self._voiced_run, self._run_start = 1, time
                self.state = State.STARTING
            elif state is State.STARTING:
                self._voiced_run += 1
            elif state is State.STOPPING:
                self.state = State.SPEAKING
            self._last_voiced_end = end
            if self.state is State.STARTING and self._voiced_run >= self.params.start_frames:
                self._confirm_speech(events)
        else:
            if state is State.STARTING:
                self.state = State.QUIET
                self._voiced_run = 0
            elif state is State.SPEAKING:
                self.state = State.STOPPING
            if (
                self.state is State.STOPPING
                and end - self._last_voiced_end >= self.params.hangover - 1e-9
            ):
                self.state = State.QUIET
                self.silence_since = self._last_voiced_end
                self._fired = 0
                events.append(
                    SpeechStopped(self._last_voiced_end, self._last_voiced_end - self._speech_start)
                )
        if self.silence_since is not None:
            self._check_thresholds(end, events)
        return events

    def _confirm_speech(self, events: list[Event]) -> None:
        self.state = State.SPEAKING
        self._speech_start = self._run_start
        if self.silence_since is not None:
            if self._fired:
                events.append(SpeechResumed(self._run_start - self.silence_since, self._run_start))
            self.silence_since = None
        self._fired = 0
        events.append(SpeechStarted(self._run_start))

    def _check_thresholds(self, now: float, events: list[Event]) -> None:
        assert self.silence_since is not None
        thresholds = self.params.thresholds
        silent = now - self.silence_since
        while self._fired < len(thresholds) and silent >= thresholds[self._fired] - 1e-9:
            seconds = thresholds[self._fired]
            events.append(SilenceFor(seconds, self.silence_since + seconds))
            self._fired += 1


class VadClassifier:
    """webrtcvad with the frame format checked once, here, rather than deep in C."""

    def __init__(
        self,
        sample_rate: int = 8000,
        frame_ms: int = 20,
        aggressiveness: int = DEFAULT_AGGRESSIVENESS,
    ) -> None:
        if sample_rate not in VAD_SAMPLE_RATES:
            raise ValueError(f"webrtcvad takes {VAD_SAMPLE_RATES} Hz, not {sample_rate}")
        if frame_ms not in VAD_FRAME_MS:
            raise ValueError(f"webrtcvad takes {VAD_FRAME_MS} ms frames, not {frame_ms}")
        if aggressiveness not in (0, 1, 2, 3):
            raise ValueError(f"aggressiveness must be 0..3, not {aggressiveness}")
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_bytes = 2 * sample_rate * frame_ms // 1000
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, pcm: bytes) -> bool:
        """One frame of s16le mono PCM of exactly ``frame_bytes`` bytes."""
        if len(pcm) != self.frame_bytes:
            raise ValueError(
                f"a {self.frame_ms} ms frame at {self.sample_rate} Hz is {self.frame_bytes} bytes,"
                f" got {len(pcm)}"
            )
        return bool(self._vad.is_speech(pcm, self.sample_rate))

    def classify(self, pcm: bytes) -> list[bool]:
        """Every whole frame of a longer buffer (a trailing partial frame is ignored)."""
        size = self.frame_bytes
        return [self.is_speech(pcm[i : i + size]) for i in range(0, len(pcm) - size + 1, size)]


def track(
    decisions: Sequence[bool],
    params: SilenceParams | None = None,
    *,
    frame_duration: float = 0.020,
    start: float = 0.0,
) -> list[Event]:
    """Run a whole sequence of consecutive frame decisions through a fresh tracker."""
    tracker = SilenceTracker(params, frame_duration=frame_duration, start=start)
    events: list[Event] = []
    for i, voiced in enumerate(decisions):
        events += tracker.update(voiced, start + i * frame_duration)
    return events
