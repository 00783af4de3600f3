"""Format and level of the prompt builder's WAV files (`ivr.prompts.build` uses these).

The level is a gated loudness in the manner of ITU-R BS.1770 without its K-weighting (see
:func:`loudness_dbfs`); prompts and music on hold are brought to :data:`TARGET_LOUDNESS_DBFS`.
Hand-written over the standard library's ``wave`` and ``array``: a 16-bit mono RMS with two
gates is a few lines, and pulling numpy or pyloudnorm into the runtime for it would not pay.
"""

from __future__ import annotations

import array
import itertools
import math
import sys
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: The loudness (gated RMS, see :func:`loudness_dbfs`) of every prompt and the music on hold;
#: -23 as in EBU R128's -23 LUFS. Peaks stay at or below :data:`MAX_PEAK_DBFS`.
TARGET_LOUDNESS_DBFS = -23.0
MAX_PEAK_DBFS = -1.0


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int
    frames: int
    rms_dbfs: float
    peak_dbfs: float
    #: Gated loudness (:func:`loudness_dbfs`).
    loudness_dbfs: float = -math.inf

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


def _dbfs(value: float) -> float:
    return 20 * math.log10(value / 32768) if value > 0 else -math.inf


def analyze_wav(path: Path) -> WavInfo:
    """Format and level of a 16-bit PCM WAV file (raises ``wave.Error`` otherwise)."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width, frames = (
            w.getframerate(),
            w.getnchannels(),
            w.getsampwidth(),
            w.getnframes(),
        )
        raw = w.readframes(frames)
    if width != 2:
        raise wave.Error(f"{path}: expected 16-bit samples, got {8 * width}-bit")
    samples = array.array("h")
    samples.frombytes(raw[: len(raw) - len(raw) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return WavInfo(rate, channels, width, frames, -math.inf, -math.inf)
    rms = math.sqrt(math.fsum(s * s for s in samples) / len(samples))
    peak = max(max(samples), -min(samples))
    loud = loudness_dbfs(samples, rate * channels)
    return WavInfo(rate, channels, width, frames, _dbfs(rms), _dbfs(peak), loud)


def loudness_dbfs(samples: Sequence[int], rate: int) -> float:
    """Gated RMS level of 16-bit samples in dBFS, as ITU-R BS.1770 gates (no K-weighting).

    Mean squares of 400 ms blocks every 100 ms; blocks below -70 dBFS are dropped, then those
    more than 10 dB below the mean of the rest; the level is the mean of what remains. Pauses
    between words or notes thus do not pull the level down.
    """
    block, step = max(1, int(0.4 * rate)), max(1, int(0.1 * rate))
    sums = list(itertools.accumulate((s * s for s in samples), initial=0))
    n = len(samples)
    starts = range(0, max(1, n - block + 1), step)
    full = 32768.0**2
    ms = [(sums[min(n, i + block)] - sums[i]) / min(block, n - i) / full for i in starts]
    ms = [m for m in ms if m > 10 ** (-70 / 10)]
    if not ms:
        return -math.inf
    gate = math.fsum(ms) / len(ms) / 10
    kept = [m for m in ms if m >= gate]
    return 10 * math.log10(math.fsum(kept) / len(kept))


def level_gain(info: WavInfo, target: float = TARGET_LOUDNESS_DBFS) -> float:
    """The gain in dB that brings a file to `target` loudness without peaks above the ceiling."""
    return min(target - info.loudness_dbfs, MAX_PEAK_DBFS - info.peak_dbfs)


def wav_problem(path: Path, rate: int) -> str | None:
    """Why a built file is not what Asterisk should play (None when it is fine)."""
    if not path.is_file():
        return "missing"
    try:
        info = analyze_wav(path)
    except (wave.Error, EOFError, OSError) as exc:
        return f"unreadable ({exc})"
    if info.rate != rate or info.channels != 1:
        return f"wrong format ({info.rate} Hz, {info.channels} channel(s); want {rate} Hz mono)"
    if info.frames == 0:
        return "empty"
    return None
