"""Voice-activity gating for recognition: a recognizer is fed only around speech.

The tap classifies every 20 ms frame with webrtcvad anyway; `SpeechGate` turns those verdicts
into utterances for a recognizer. While the caller is silent nothing is passed on (a recognizer
fed silence spends as much CPU as one fed speech). When a voiced frame comes, the utterance
starts with the ``preroll`` frames before it (webrtcvad is late on soft onsets, and the start of
"네" would be lost); it goes on while the caller speaks and ends after ``hangover`` unvoiced
frames in a row, which are passed on too (vosk needs some trailing silence for its final
result). An utterance longer than ``max_frames`` is ended there (a noisy line must not hold a
recognizer for ever); the next voiced frame starts a new one.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: Defaults for 20 ms frames: 300 ms of pre-roll, 600 ms of hangover, 10 s at most.
PREROLL_FRAMES = 15
HANGOVER_FRAMES = 30
MAX_FRAMES = 500


@dataclass(slots=True)
class Gated:
    """What one frame let through: an utterance started, frames to feed, the utterance ended."""

    started: bool = False
    frames: list[bytes] = field(default_factory=list)
    ended: bool = False


class SpeechGate:
    def __init__(
        self,
        preroll: int = PREROLL_FRAMES,
        hangover: int = HANGOVER_FRAMES,
        max_frames: int = MAX_FRAMES,
    ) -> None:
        if preroll < 0 or hangover < 1 or max_frames < 1:
            raise ValueError("preroll >= 0, hangover >= 1 and max_frames >= 1 frames")
        self.preroll = preroll
        self.hangover = hangover
        self.max_frames = max_frames
        self._before: deque[bytes] = deque(maxlen=preroll)
        self.active = False
        self._unvoiced = 0
        self._length = 0

    def push(self, pcm: bytes, voiced: bool) -> Gated:
        if not self.active:
            if not voiced:
                self._before.append(pcm)
                return Gated()
            frames = [*self._before, pcm]
            self._before.clear()
            self.active = True
            self._unvoiced = 0
            self._length = len(frames)
            return Gated(started=True, frames=frames)
        self._length += 1
        self._unvoiced = 0 if voiced else self._unvoiced + 1
        if self._unvoiced >= self.hangover or self._length >= self.max_frames:
            self.active = False
            return Gated(frames=[pcm], ended=True)
        return Gated(frames=[pcm])

    def reset(self) -> None:
        """Forget any utterance in progress and the pre-roll (a new question)."""
        self._before.clear()
        self.active = False
        self._unvoiced = 0
        self._length = 0
