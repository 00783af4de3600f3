"""The RTP receiver over real UDP on loopback (crafted packets: order, loss, reordering,
duplicates, foreign payload types and SSRCs, malformed packets, wrap-around, release of the
port), plus the timeline rules of the pure `RtpStream` with a made-up clock."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

import pytest

from speech import g711
from speech.rtp import (
    PCMA,
    PCMU,
    SLIN16,
    AudioFormat,
    Frame,
    JitterParams,
    MalformedPacket,
    RtpReceiver,
    RtpStream,
    build_rtp,
    parse_rtp,
)

SSRC = 0x1234ABCD
SAMPLES = 160  # 20 ms at 8 kHz
#: µ-law codes 0x80..0xFE decode to 127 distinct non-zero values: one per packet, so every
#: frame says which packet it came from (0 = silence put in by the receiver).
CODE_OF_VALUE = {g711.ULAW_TO_LINEAR[c]: c for c in range(0x80, 0xFF)}


def code(seq: int) -> int:
    return 0x80 + seq % 127


def pcmu(seq: int, *, ts: int | None = None, ssrc: int = SSRC, pt: int = 0, **kw: object) -> bytes:
    """Packet ``seq`` of a 20 ms PCMU stream whose samples all carry code(seq)."""
    return build_rtp(
        bytes([code(seq)]) * SAMPLES,
        sequence=seq,
        timestamp=(seq * SAMPLES if ts is None else ts),
        ssrc=ssrc,
        payload_type=pt,
        **kw,  # type: ignore[arg-type]
    )


def labels(frames: Iterable[Frame]) -> list[int | None]:
    """Which packet (seq % 127) each frame came from; None for inserted silence."""
    out: list[int | None] = []
    for f in frames:
        value = g711.pcm_to_array(f.pcm)[0]
        out.append(None if value == 0 else CODE_OF_VALUE[value] - 0x80)
    return out


async def until(done: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not done():
            await asyncio.sleep(0.005)


@dataclass
class Link:
    receiver: RtpReceiver
    frames: list[Frame] = field(default_factory=list)
    sock: socket.socket = field(default_factory=lambda: socket.socket(type=socket.SOCK_DGRAM))

    def send(self, *packets: bytes) -> None:
        for p in packets:
            self.sock.sendto(p, ("127.0.0.1", self.receiver.port))

    async def until(self, done: Callable[[], bool], timeout: float = 3.0) -> None:
        await until(done, timeout)

    async def wait_packets(self, n: int) -> None:
        """Until ``n`` datagrams were counted in any category."""
        s = self.receiver.stats
        await self.until(lambda: s.received + s.wrong_pt + s.wrong_ssrc + s.malformed >= n)


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    frames: list[Frame] = []
    receiver = await RtpReceiver.open(
        PCMU, params=JitterParams(stall_fill_after=None), on_frame=frames.append
    )
    lk = Link(receiver, frames)
    yield lk
    lk.sock.close()
    await receiver.aclose()


async def test_in_order_packets_become_consecutive_frames(link: Link) -> None:
    link.send(*(pcmu(i) for i in range(50)))
    await link.until(lambda: len(link.frames) == 50)
    assert labels(link.frames) == list(range(50))
    assert [f.time for f in link.frames] == pytest.approx([i * 0.02 for i in range(50)])
    assert all(len(f.pcm) == 320 and f.sample_rate == 8000 for f in link.frames)
    s = link.receiver.stats
    assert (s.received, s.lost, s.duplicates, s.reordered, s.filled_samples) == (50, 0, 0, 0, 0)
    assert link.receiver.remote is not None and link.receiver.remote[0] == "127.0.0.1"


async def test_lost_packets_become_silence_after_the_buffer_depth(link: Link) -> None:
    link.send(*(pcmu(i) for i in range(10) if i not in (4, 5)))
    await link.until(lambda: len(link.frames) == 10)
    assert labels(link.frames) == [0, 1, 2, 3, None, None, 6, 7, 8, 9]
    s = link.receiver.stats
    assert (s.lost, s.filled_samples) == (2, 2 * SAMPLES)
    # the missing one arriving now is too late: dropped, not played
    link.send(pcmu(4))
    await link.until(lambda: s.late == 1)
    assert len(link.frames) == 10


async def test_a_gap_at_the_end_is_given_up_after_max_delay(link: Link) -> None:
    link.send(pcmu(0), pcmu(2))  # nothing newer arrives to push 1 out
    await link.until(lambda: len(link.frames) == 3)  # the receiver's timer gives up on 1
    assert labels(link.frames) == [0, None, 2]
    assert link.receiver.stats.lost == 1


async def test_reordered_packets_are_put_back_in_order(link: Link) -> None:
    order = [0, 1, 3, 2, 4, 6, 5, 7, 9, 8]
    link.send(*(pcmu(i) for i in order))
    await link.until(lambda: len(link.frames) == 10)
    assert labels(link.frames) == list(range(10))
    s = link.receiver.stats
    assert (s.reordered, s.lost, s.filled_samples) == (3, 0, 0)


async def test_duplicates_are_dropped_and_counted(link: Link) -> None:
    link.send(*(pcmu(i) for i in [0, 1, 1, 2, 3, 3, 3, 0, 4]))
    await link.until(lambda: link.receiver.stats.received == 9)
    await link.until(lambda: len(link.frames) == 5)
    assert labels(link.frames) == [0, 1, 2, 3, 4]
    assert link.receiver.stats.duplicates == 4


async def test_other_payload_types_are_dropped_and_counted(link: Link) -> None:
    packets = []
    for i in range(6):
        packets.append(pcmu(i))
        packets.append(pcmu(100 + i, pt=8))  # PCMA from the same source
        packets.append(build_rtp(b"\x01\x0a\x00\xa0", sequence=i, timestamp=0, ssrc=SSRC,
                                 payload_type=101))  # fmt: skip  # a DTMF event
    link.send(*packets)
    await link.wait_packets(18)
    await link.until(lambda: len(link.frames) == 6)
    assert labels(link.frames) == list(range(6))
    assert (link.receiver.stats.wrong_pt, link.receiver.stats.received) == (12, 6)


async def test_malformed_packets_are_dropped_and_counted(link: Link) -> None:
    good = pcmu(0)
    bad = [
        b"\x80\x00\x00",  # shorter than a header
        bytes([0x40]) + good[1:],  # RTP version 1
        bytes([0x83]) + good[1:12],  # three CSRCs announced, none there
        bytes([0x90]) + good[1:12] + b"\xbe",  # extension header cut short
        bytes([0x90]) + good[1:12] + b"\xbe\xde\x00\x09",  # extension longer than the packet
        bytes([0xA0]) + good[1:-1] + b"\x00",  # padding count 0
        bytes([0xA0]) + good[1:-1] + b"\xff",  # padding longer than the packet
        build_rtp(b"", sequence=1, timestamp=0, ssrc=SSRC, payload_type=0),  # no payload
    ]
    link.send(*bad)
    await link.wait_packets(len(bad))
    assert link.receiver.stats.malformed == len(bad)
    # CSRCs, a header extension and padding are skipped to find the payload
    fancy = pcmu(1, csrcs=(1, 2), extension=b"\x10\xff", padding=3, marker=True)
    link.send(pcmu(0), fancy)
    await link.until(lambda: len(link.frames) == 2)
    assert labels(link.frames) == [0, 1]
    assert link.receiver.stats.received == 2


async def test_rtcp_on_the_rtp_port_is_not_audio(link: Link) -> None:
    receiver_report = bytes([0x80, 201, 0x00, 0x01]) + SSRC.to_bytes(4, "big")
    link.send(receiver_report, pcmu(0))
    await link.until(lambda: len(link.frames) == 1)
    assert (link.receiver.stats.rtcp, link.receiver.stats.malformed) == (1, 0)


async def test_sequence_and_timestamp_wrap_around(link: Link) -> None:
    first = 65530
    ts0 = 2**32 - 3 * SAMPLES
    seqs = [(first + i) % 65536 for i in range(12)]
    order = [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 10, 11]  # 65535 and 0 swapped across the wrap
    link.send(*(pcmu(seqs[i], ts=(ts0 + i * SAMPLES) % 2**32) for i in order))
    await link.until(lambda: len(link.frames) == 12)
    assert labels(link.frames) == [s % 127 for s in seqs]
    s = link.receiver.stats
    assert (s.lost, s.reordered, s.resyncs, s.filled_samples) == (0, 1, 0, 0)
    assert link.frames[-1].time == pytest.approx(11 * 0.02)


async def test_foreign_ssrc_is_dropped_then_followed_if_it_persists() -> None:
    frames: list[Frame] = []
    params = JitterParams(stall_fill_after=None, relock_after=5)
    async with await RtpReceiver.open(PCMU, params=params, on_frame=frames.append) as receiver:
        lk = Link(receiver, frames)
        lk.send(pcmu(0), pcmu(1), pcmu(50, ssrc=7), pcmu(2), pcmu(51, ssrc=7), pcmu(3))
        await lk.wait_packets(6)
        await lk.until(lambda: len(frames) == 4)
        assert labels(frames) == [0, 1, 2, 3]
        assert receiver.stats.wrong_ssrc == 2
        # the old source goes quiet and the new one keeps sending: after 5 in a row, follow it
        lk.send(*(pcmu(60 + i, ssrc=7, ts=999_000 + i * SAMPLES) for i in range(8)))
        await lk.until(lambda: len(frames) == 8)
        assert labels(frames) == [0, 1, 2, 3, 64, 65, 66, 67]
        assert (receiver.stats.ssrc_changes, receiver.stats.wrong_ssrc) == (1, 6)
        assert receiver.stream.ssrc == 7
        assert [f.time for f in frames] == pytest.approx([i * 0.02 for i in range(8)])
        lk.sock.close()


async def test_port_is_released_after_close() -> None:
    receiver = await RtpReceiver.open(PCMU)
    port = receiver.port
    with socket.socket(type=socket.SOCK_DGRAM) as probe, pytest.raises(OSError):
        probe.bind(("127.0.0.1", port))
    await receiver.aclose()
    with socket.socket(type=socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", port))  # free again
    receiver.close()  # closing twice is harmless


async def test_a_given_port_and_queue_delivery() -> None:
    with socket.socket(type=socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with await RtpReceiver.open(PCMA, port=port) as receiver:
        assert receiver.address == ("127.0.0.1", port)
        pcm = g711.array_to_pcm([1000] * SAMPLES)
        with socket.socket(type=socket.SOCK_DGRAM) as tx:
            for i in range(3):
                packet = build_rtp(
                    PCMA.encode(pcm), sequence=i, timestamp=i * SAMPLES, ssrc=1, payload_type=8
                )
                tx.sendto(packet, ("127.0.0.1", port))
            got = [await asyncio.wait_for(receiver.frames.get(), 2) for _ in range(3)]
    assert [f.time for f in got] == pytest.approx([0, 0.02, 0.04])
    assert set(g711.pcm_to_array(got[0].pcm)) == {g711.ALAW_TO_LINEAR[g711.linear_to_alaw(1000)]}


async def test_slin16_big_endian_in_10_ms_frames() -> None:
    frames: list[Frame] = []
    async with await RtpReceiver.open(SLIN16, frame_ms=10, on_frame=frames.append) as receiver:
        samples = list(range(-160, 160))  # one 20 ms packet at 16 kHz
        payload = g711.encode_slin(g711.array_to_pcm(samples), "big")
        with socket.socket(type=socket.SOCK_DGRAM) as tx:
            tx.sendto(
                build_rtp(payload, sequence=9, timestamp=0, ssrc=1, payload_type=118),
                ("127.0.0.1", receiver.port),
            )
            tx.sendto(
                build_rtp(payload[:-1], sequence=10, timestamp=320, ssrc=1, payload_type=118),
                ("127.0.0.1", receiver.port),
            )  # odd length: not 16-bit samples
            await until(lambda: receiver.stats.malformed == 1)
    assert len(frames) == 2 and all(len(f.pcm) == 320 for f in frames)
    assert [f.time for f in frames] == pytest.approx([0, 0.01])
    assert list(g711.pcm_to_array(frames[0].pcm + frames[1].pcm)) == samples


async def test_stalled_stream_keeps_time_moving_with_silence() -> None:
    frames: list[Frame] = []
    params = JitterParams(stall_fill_after=0.1)
    async with await RtpReceiver.open(PCMU, params=params, on_frame=frames.append) as receiver:
        lk = Link(receiver, frames)
        lk.send(*(pcmu(i) for i in range(3)))
        await lk.until(lambda: len(frames) == 3)
        await asyncio.sleep(0.5)  # the far end stops sending (silence suppression, say)
        stalled = len(frames) - 3
        assert 15 <= stalled <= 35, stalled  # ~0.5 s of 20 ms silence frames, at wall-clock pace
        assert labels(frames[3:]) == [None] * stalled
        # it resumes (its timestamps say 2 s passed): the audio follows the silence, in order
        lk.send(*(pcmu(i, ts=100 * SAMPLES + i * SAMPLES) for i in range(3, 6)))
        await lk.until(lambda: labels(frames)[-3:] == [3, 4, 5])
        lk.sock.close()
    times = [f.time for f in frames]
    assert times == pytest.approx([i * 0.02 for i in range(len(frames))])


# -- the pure stream, with a made-up clock --------------------------------------------------


def feed_all(stream: RtpStream, packets: Iterable[bytes], now: float = 0.0) -> list[Frame]:
    out: list[Frame] = []
    for p in packets:
        out += stream.feed(p, now)
    return out


def test_timestamp_gap_without_loss_is_filled_with_silence() -> None:
    stream = RtpStream(PCMU, params=JitterParams(stall_fill_after=None))
    # consecutive sequence numbers, but 1 s of timestamps between 1 and 2 (DTX)
    frames = feed_all(stream, [pcmu(0), pcmu(1), pcmu(2, ts=52 * SAMPLES)])
    assert labels(frames) == [0, 1] + [None] * 50 + [2]
    assert (stream.stats.lost, stream.stats.resyncs) == (0, 0)


def test_a_huge_timestamp_jump_re_anchors_instead_of_filling() -> None:
    stream = RtpStream(PCMU, params=JitterParams(stall_fill_after=None, max_gap_fill=1.0))
    frames = feed_all(stream, [pcmu(0), pcmu(1, ts=10**9), pcmu(2, ts=10**9 + SAMPLES)])
    assert labels(frames) == [0, 1, 2]
    assert stream.stats.resyncs == 1
    # and timestamps going backwards never move frames back in time
    frames += feed_all(stream, [pcmu(3, ts=5), pcmu(4, ts=5 + SAMPLES)])
    assert [f.time for f in frames] == pytest.approx([i * 0.02 for i in range(5)])
    assert stream.stats.resyncs == 2


def test_sequence_restart_is_followed_after_two_packets() -> None:
    stream = RtpStream(PCMU, params=JitterParams(stall_fill_after=None))
    frames = feed_all(stream, [pcmu(i) for i in range(30_000, 30_003)])
    # the sender restarts its numbering at 0: the first is treated as a stray (its 20 ms
    # become silence), the second confirms the restart
    frames += feed_all(stream, [pcmu(i, ts=(30_003 + i) * SAMPLES) for i in range(4)])
    assert labels(frames) == [s % 127 for s in (30_000, 30_001, 30_002)] + [None, 1, 2, 3]
    assert stream.stats.late == 1


def test_time_based_release_and_flush() -> None:
    stream = RtpStream(PCMU, params=JitterParams(depth=10, max_delay=0.06))
    assert labels(feed_all(stream, [pcmu(0), pcmu(2)], now=1.0)) == [0]
    assert stream.tick(1.05) == []  # still waiting for 1
    assert labels(stream.tick(1.07)) == [None, 2]
    # a partial frame is padded when the stream is flushed
    stream = RtpStream(PCMU, frame_ms=30)
    assert feed_all(stream, [pcmu(0)]) == []  # 20 ms of a 30 ms frame
    (last,) = stream.flush()
    assert labels([last]) == [0] and g711.pcm_to_array(last.pcm)[-1] == 0


def test_parse_and_build_round_trip() -> None:
    raw = build_rtp(b"abc", sequence=70000, timestamp=2**32 + 5, ssrc=9, payload_type=96,
                    marker=True, csrcs=(3,), extension=b"x", padding=4)  # fmt: skip
    p = parse_rtp(raw)
    assert (p.payload, p.sequence, p.timestamp, p.ssrc, p.payload_type, p.marker) == (
        b"abc", 70000 - 65536, 5, 9, 96, True
    )  # fmt: skip
    with pytest.raises(MalformedPacket):
        parse_rtp(raw[:11])


def test_configuration_is_validated() -> None:
    with pytest.raises(ValueError):
        AudioFormat("pcmu", 0, 16000)
    with pytest.raises(ValueError):
        AudioFormat("slin", 200, 16000)
    with pytest.raises(ValueError):
        AudioFormat("slin", 96, 11025)
    with pytest.raises(ValueError):
        RtpStream(PCMU, frame_ms=25)
    with pytest.raises(ValueError):
        JitterParams(stall_fill_after=0)


def test_benchmark_command_runs() -> None:
    # in a child process: the benchmark runs its own event loops and a sender process
    result = subprocess.run(
        [sys.executable, "-m", "speech.bench", "--quick", "--skip-vosk", "--streams", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "cores" in result.stdout and "Python" in result.stdout
    assert "rtp+vad measured: 20 streams" in result.stdout
    assert "streams per core at real time" in result.stdout
