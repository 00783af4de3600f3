"""Test and benchmark audio: Korean speech from espeak-ng (via sox), tones, silence.

Blocking helpers (they run external programs); not for the call path.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from array import array
from os import PathLike
from pathlib import Path

from speech.g711 import array_to_pcm


def require_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"needed to synthesise speech, not found: {', '.join(missing)}")


def espeak_korean(
    text: str,
    path: str | PathLike[str],
    *,
    rate: int = 8000,
    speed: int | None = None,
) -> Path:
    """``text`` spoken by espeak-ng's Korean voice into a mono 16-bit WAV at ``rate``."""
    require_tools()
    out = Path(path)
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        raw = Path(tmp) / "raw.wav"
        command = ["espeak-ng", "-v", "ko", "-w", str(raw)]
        if speed is not None:
            command += ["-s", str(speed)]
        subprocess.run([*command, "--", text], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", out],
            check=True,
            capture_output=True,
        )
    return out


def silence(seconds: float, rate: int = 8000) -> bytes:
    """Digital silence, s16le."""
    return bytes(2 * round(seconds * rate))


def tone(frequency: float, seconds: float, rate: int = 8000, amplitude: float = 0.5) -> bytes:
    """A sine tone, s16le, ``amplitude`` relative to full scale."""
    n = round(seconds * rate)
    peak = amplitude * 32767
    step = 2 * math.pi * frequency / rate
    return array_to_pcm(array("h", (round(peak * math.sin(step * i)) for i in range(n))))
