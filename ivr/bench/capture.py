"""Greeting and DTMF latencies from a packet capture on loopback (`ivr-bench load`).

A helper process (`python -m ivr.bench.capture`, root: an AF_PACKET socket on `lo` with a
classic BPF filter, so it sees only what it needs) writes one small record per packet:

- the PBX's 200 OK to an INVITE, with the RTP port its SDP names (the call's key below);
- each RTP audio frame the PBX sends to a SIPp caller: its mean absolute level;
- each RFC 2833 packet a caller sends: the digit (+100 on the event's end packets).

`latencies()` then finds, per call, when a prompt's audio began by matching the prompt's level
envelope (its first half second, from the built WAV file) against the frames the caller
received: "200 OK -> first greeting audio" and "key 5 released (the first RFC 2833 end packet,
when Asterisk reports the digit) -> first audio of the intro". Matching
the envelope, not the bytes, holds whether Asterisk played the 8 or the 16 kHz file and through
a bridge or not. The capture process's own CPU is not counted in the benchmark's figures.
"""

from __future__ import annotations

import argparse
import math
import re
import signal
import socket
import struct
import sys
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ETH_P_IP = 0x0800
#: Record kinds.
AUDIO, DIGIT, ANSWER = 0, 1, 2
RECORD = struct.Struct("<dBHf")
FRAME_S = 0.020
#: Frames of a prompt's envelope matched (half a second) and the mean level difference allowed.
MATCH_FRAMES = 25
MATCH_DB = 4.0
#: Level (mean |sample| / 128) from which a frame counts as sound, not line noise or silence.
SOUND_LEVEL = 2.0
RTP_PT_PCMA = 8
RTP_PT_EVENT = 101


def _alaw_to_linear(code: int) -> int:
    code ^= 0x55
    mantissa, exponent = code & 0x0F, (code & 0x70) >> 4
    value = (mantissa << 4) + 8
    if exponent:
        value = (value + 0x100) << (exponent - 1)
    return -value if code & 0x80 == 0 else value


#: A-law byte -> |sample| >> 7 (0..252): a frame's level is the mean of its translated bytes.
ALAW_LEVEL = bytes(min(255, abs(_alaw_to_linear(c)) >> 7) for c in range(256))


def bpf_program(sip_port: int, media_lo: int, media_hi: int) -> bytes:
    """Accept UDP/IPv4 from `sip_port`, to SIPp's media ports, and RFC 2833 from them."""
    ins = [
        (0x28, 0, 0, 12),  # 0 ldh [12] ethertype
        (0x15, 0, 14, 0x0800),  # 1 IPv4 or drop(16)
        (0x30, 0, 0, 23),  # 2 ldb [23] protocol
        (0x15, 0, 12, 17),  # 3 UDP or drop
        (0xB1, 0, 0, 14),  # 4 ldxb 4*([14]&0xf)
        (0x48, 0, 0, 14),  # 5 ldh [x+14] source port
        (0x15, 8, 0, sip_port),  # 6 from the PBX's SIP port: accept(15)
        (0x35, 0, 4, media_lo),  # 7 source >= media_lo, else dst(12)
        (0x35, 3, 0, media_hi),  # 8 source >= media_hi: dst(12)
        (0x50, 0, 0, 23),  # 9 ldb [x+23] RTP payload type byte
        (0x54, 0, 0, 0x7F),  # 10 and 0x7f
        (0x15, 3, 4, RTP_PT_EVENT),  # 11 telephone-event: accept(15) else drop(16)
        (0x48, 0, 0, 16),  # 12 ldh [x+16] destination port
        (0x35, 0, 2, media_lo),  # 13 dst >= media_lo, else drop
        (0x35, 1, 0, media_hi),  # 14 dst >= media_hi: drop
        (0x06, 0, 0, 0xFFFF),  # 15 accept
        (0x06, 0, 0, 0),  # 16 drop
    ]
    return b"".join(struct.pack("HBBI", *i) for i in ins)


_M_AUDIO = re.compile(rb"\r?\nm=audio (\d+) ")


def capture(out: Path, sip_port: int, media_lo: int, media_hi: int) -> None:
    """Capture until SIGTERM; prints "ready" once the socket is bound and filtered."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    prog = bpf_program(sip_port, media_lo, media_hi)
    import ctypes

    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HL", len(prog) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("lo", ETH_P_IP))
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    sock.settimeout(0.2)
    print("ready", flush=True)
    with out.open("wb") as f:
        while not stop:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            except InterruptedError:
                continue
            now = time.time()
            ihl = (data[14] & 0x0F) * 4
            u = 14 + ihl
            sport, dport = struct.unpack_from("!HH", data, u)
            payload = data[u + 8 :]
            if sport == sip_port:
                if payload.startswith(b"SIP/2.0 200") and b"INVITE" in _cseq(payload):
                    m = _M_AUDIO.search(payload)
                    if m:
                        f.write(RECORD.pack(now, ANSWER, int(m.group(1)), 0.0))
            elif media_lo <= dport < media_hi:
                if len(payload) > 12 and payload[1] & 0x7F == RTP_PT_PCMA:
                    audio = payload[12:]
                    level = sum(audio.translate(ALAW_LEVEL)) / len(audio)
                    f.write(RECORD.pack(now, AUDIO, sport, level))
            elif len(payload) > 12:
                end = 100 if payload[13] & 0x80 else 0  # the event's end packets
                f.write(RECORD.pack(now, DIGIT, dport, float(payload[12] + end)))


def _cseq(msg: bytes) -> bytes:
    i = msg.find(b"\nCSeq:")
    return msg[i : msg.find(b"\n", i + 1)] if i >= 0 else b""


def prompt_envelope(path: Path) -> list[float]:
    """A WAV file's level per 20 ms frame, in the units of ALAW_LEVEL (mean |sample| / 128)."""
    with wave.open(str(path)) as w:
        rate, n = w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    samples = struct.unpack(f"<{len(raw) // 2}h", raw)
    step = int(rate * FRAME_S)
    return [
        sum(abs(s) for s in samples[i : i + step]) / step / 128
        for i in range(0, len(samples) - step + 1, step)
    ]


def _db(level: float) -> float:
    return 20 * math.log10(max(level, 0.05))


@dataclass(frozen=True)
class Signature:
    """The start of a prompt: its level envelope from its first sounding frame."""

    lead_frames: int
    envelope: tuple[float, ...]

    @classmethod
    def of(cls, path: Path) -> Signature:
        env = prompt_envelope(path)
        k = next(i for i, v in enumerate(env) if v >= SOUND_LEVEL)
        return cls(k, tuple(_db(v) for v in env[k : k + MATCH_FRAMES]))

    def find(self, frames: Sequence[tuple[float, float]], after: float) -> float | None:
        """When the prompt began in `frames` ((time, level), time order) after `after`."""
        n = len(self.envelope)
        first = next((i for i, (t, _) in enumerate(frames) if t >= after), None)
        if first is None:
            return None
        for i in range(first, len(frames) - n + 1):
            if frames[i][1] < SOUND_LEVEL:
                continue
            diff = sum(abs(_db(frames[i + j][1]) - self.envelope[j]) for j in range(n)) / n
            if diff <= MATCH_DB:
                return frames[i][0] - self.lead_frames * FRAME_S
        return None


@dataclass(frozen=True)
class Latencies:
    """Seconds per call where found, and how many calls were looked at."""

    greeting: tuple[float, ...]
    dtmf: tuple[float, ...]
    calls: int


def latencies(
    records: Path, greeting: Signature, after_digit: Signature, digit: int = 5
) -> Latencies:
    answers: dict[int, float] = {}
    digits: dict[int, float] = {}
    frames: dict[int, list[tuple[float, float]]] = {}
    data = records.read_bytes()
    for t, kind, port, value in RECORD.iter_unpack(data[: len(data) // RECORD.size * RECORD.size]):
        if kind == AUDIO:
            frames.setdefault(port, []).append((t, value))
        elif kind == ANSWER:
            answers.setdefault(port, t)
        elif kind == DIGIT and int(value) == digit + 100:  # the key released
            digits.setdefault(port, t)
    g: list[float] = []
    d: list[float] = []
    for port, t200 in answers.items():
        got = frames.get(port, [])
        start = greeting.find(got, t200)
        if start is not None:
            g.append(max(0.0, start - t200))
        if port in digits:
            start = after_digit.find(got, digits[port])
            if start is not None:
                d.append(max(0.0, start - digits[port]))
    return Latencies(tuple(g), tuple(d), len(answers))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ivr.bench.capture")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sip-port", type=int, required=True)
    p.add_argument("--media-lo", type=int, required=True)
    p.add_argument("--media-hi", type=int, required=True)
    a = p.parse_args(argv)
    capture(a.out, a.sip_port, a.media_lo, a.media_hi)
    return 0


if __name__ == "__main__":
    sys.exit(main())
