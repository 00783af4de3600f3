"""Small audio helpers for phone tests: WAV I/O, levels and single-tone detection.

Pure standard library (no numpy, no pjsua2).  Samples are 16-bit PCM values in the
range -32768..32767 (as read from a 16-bit WAV file); levels are in dBFS where 0 dBFS
is a full-scale square wave of amplitude 32768 (a full-scale sine is about -3 dBFS).
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FULL_SCALE = 32768.0
SILENCE_DBFS = -120.0  # reported for an all-zero or empty span


@dataclass(frozen=True)
class Wav:
    rate: int
    samples: array[int]

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0

    def span(self, start: float = 0.0, end: float | None = None) -> array[int]:
        """Samples between `start` and `end` seconds (end None = to the end)."""
        return span(self.samples, self.rate, start, end)


def read_wav(path: str | Path) -> Wav:
    """Read a 16-bit mono PCM WAV file."""
    with wave.open(str(path), "rb") as w:
        if w.getnchannels() != 1:
            raise ValueError(f"{path}: expected mono, got {w.getnchannels()} channels")
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit samples, got {8 * w.getsampwidth()}-bit")
        rate = w.getframerate()
        data = w.readframes(w.getnframes())
    samples = array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if samples.itemsize != 2:  # pragma: no cover - exotic platforms
        raise RuntimeError("array('h') is not 16 bits on this platform")
    if sys.byteorder == "big":  # pragma: no cover - WAV is little-endian
        samples.byteswap()
    return Wav(rate=rate, samples=samples)


def span(
    samples: Sequence[float], rate: int, start: float = 0.0, end: float | None = None
) -> array[int]:
    """Slice `samples` by time in seconds; returns a new int16 array."""
    i = max(0, int(start * rate))
    j = len(samples) if end is None else min(len(samples), int(end * rate))
    out = array("h")
    if j > i:
        out.extend(int(s) for s in samples[i:j])
    return out


def rms(samples: Sequence[float]) -> float:
    if not samples:
        return 0.0
    return math.sqrt(sum(float(s) * float(s) for s in samples) / len(samples))


def rms_dbfs(samples: Sequence[float]) -> float:
    """RMS level of the span in dBFS (SILENCE_DBFS for digital silence or empty)."""
    level = rms(samples)
    if level <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(level / FULL_SCALE))


def is_silent(samples: Sequence[float], threshold_dbfs: float = -50.0) -> bool:
    """True if the RMS level of the span is below `threshold_dbfs`."""
    return rms_dbfs(samples) < threshold_dbfs


def longest_silence(
    samples: Sequence[float], rate: int, frame: float = 0.1, threshold_dbfs: float = -50.0
) -> float:
    """Seconds of the longest run of silent `frame`-long spans (dead air in what was heard)."""
    step = max(1, int(rate * frame))
    longest = run = 0
    for i in range(0, len(samples), step):
        if is_silent(samples[i : i + step], threshold_dbfs):
            run += 1
            longest = max(longest, run)
        else:
            run = 0
    return longest * step / rate if rate else 0.0


def goertzel_power(samples: Sequence[float], rate: int, freq: float) -> float:
    """Squared magnitude of the DTFT of `samples` at `freq` (Goertzel recurrence)."""
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = 0.0
    s2 = 0.0
    for x in samples:
        s0 = float(x) + coeff * s1 - s2
        s2 = s1
        s1 = s0
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def tone_ratio(samples: Sequence[float], rate: int, freq: float) -> float:
    """Power at `freq` relative to the total power of the span.

    Normalised so that a pure sine at `freq` gives about 1.0, white noise or other
    tones give about 0.  Returns 0.0 for an empty or all-zero span.
    """
    n = len(samples)
    if n == 0:
        return 0.0
    energy = sum(float(s) * float(s) for s in samples)
    if energy <= 0.0:
        return 0.0
    return 2.0 * goertzel_power(samples, rate, freq) / (n * energy)


def tone_present(
    samples: Sequence[float],
    rate: int,
    freq: float,
    *,
    min_ratio: float = 0.3,
    min_dbfs: float = -45.0,
) -> bool:
    """True if the span is loud enough and a good share of its power is at `freq`."""
    return rms_dbfs(samples) >= min_dbfs and tone_ratio(samples, rate, freq) >= min_ratio


def sine_samples(
    freq: float, seconds: float, rate: int = 8000, amplitude: float = 0.5
) -> array[int]:
    """A sine tone as int16 samples; amplitude is relative to full scale."""
    n = int(round(seconds * rate))
    peak = max(0.0, min(1.0, amplitude)) * 32767.0
    step = 2.0 * math.pi * freq / rate
    return array("h", (int(round(peak * math.sin(step * i))) for i in range(n)))


def write_wav(path: str | Path, samples: Sequence[int], rate: int = 8000) -> Path:
    """Write int16 samples as a 16-bit mono PCM WAV file."""
    pcm = samples if isinstance(samples, array) and samples.typecode == "h" else None
    if pcm is None:
        pcm = array("h", (max(-32768, min(32767, int(s))) for s in samples))
    if sys.byteorder == "big":  # pragma: no cover
        pcm = array("h", pcm)
        pcm.byteswap()
    out = Path(path)
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return out


def write_tone_wav(
    path: str | Path,
    freq: float,
    seconds: float = 1.0,
    rate: int = 8000,
    amplitude: float = 0.5,
) -> Path:
    """Write a sine-tone WAV file (16-bit mono) and return its path."""
    return write_wav(path, sine_samples(freq, seconds, rate, amplitude), rate)
