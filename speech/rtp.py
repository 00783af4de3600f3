"""Receiving a call's audio as RTP (what Asterisk's ARI ``externalMedia`` sends) into PCM frames.

Two layers (over the packet layer in `speech.rtp_packet`):

- `RtpStream` is pure logic, no I/O and no clock (arrival times are passed in): header parsing,
  payload-type and SSRC filtering, a small jitter buffer (duplicates, reordering, 16-bit
  sequence wrap-around, 32-bit timestamp wrap-around), loss handling and re-framing into
  fixed-size frames of s16le PCM.
- `RtpReceiver` is the asyncio ``DatagramProtocol`` around it: binds a UDP port (127.0.0.1,
  ephemeral by default), runs a timer for the time-based parts, and delivers frames to a callback
  or an ``asyncio.Queue``.

Timing. Every packet is placed on the output timeline by its RTP **timestamp**, not by counting
packets, so the frames' ``time`` advances with the media clock:

- a lost packet (given up after ``depth`` newer packets are held or ``max_delay`` has passed)
  leaves a timestamp gap, which is filled with digital silence. The VAD and the silence tracker
  therefore see time advance consistently, and the recogniser sees the pause.
- gaps longer than ``max_gap_fill`` (a sender restarting its timestamps, say) are not filled:
  the timeline is re-anchored instead (counted in ``resyncs``).
- if packets stop arriving altogether (a phone with silence suppression, a stalled bridge),
  after ``stall_fill_after`` seconds silence frames are emitted at the wall-clock rate, so a
  "caller has been silent for 15 s" decision does not depend on the far end sending packets.
  When packets resume, the timeline is re-anchored on them; audio is never dropped to make room.
- frames never overlap and never go back in time.

Frames are 10, 20 or 30 ms (webrtcvad's sizes) at the payload's own rate: 8 kHz for PCMU/PCMA,
the configured rate (normally 16 kHz) for slin. Nothing is resampled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from speech.rtp_packet import (
    ASTERISK_SLIN16_PT,
    PCMA,
    PCMU,
    SLIN16,
    AudioFormat,
    Codec,
    MalformedPacket,
    RtpPacket,
    build_rtp,
    is_rtcp,
    parse_rtp,
)

# The wire layer (packets, payload formats) lives in speech.rtp_packet; its names are
# re-exported here so callers import one module.
__all__ = [
    "ASTERISK_SLIN16_PT",
    "PCMA",
    "PCMU",
    "SLIN16",
    "AudioFormat",
    "Codec",
    "Frame",
    "JitterParams",
    "MalformedPacket",
    "RtpPacket",
    "RtpReceiver",
    "RtpStats",
    "RtpStream",
    "build_rtp",
    "is_rtcp",
    "parse_rtp",
]

log = logging.getLogger(__name__)

#: Frame lengths the package works with (webrtcvad accepts exactly these).
FRAME_MS_CHOICES = (10, 20, 30)

INF = float("inf")

#: Jitter-buffer defaults: hold at most 3 newer packets (60 ms of 20 ms packets) or 60 ms of
#: waiting for a missing one, then count it lost.
DEFAULT_DEPTH = 3
DEFAULT_MAX_DELAY = 0.060
#: Timestamp gaps up to this are filled with silence; longer ones re-anchor the timeline.
DEFAULT_MAX_GAP_FILL = 2.0
#: After this long without any packet, silence is emitted at the wall-clock rate.
DEFAULT_STALL_FILL_AFTER = 0.25
#: Consecutive packets from one new SSRC before the stream follows it (0: never).
DEFAULT_RELOCK_AFTER = 25
#: Sequence jumps beyond these (forward, backward) are a sender restart or a stray packet
#: (RFC 3550 A.1's MAX_DROPOUT / MAX_MISORDER): one alone is dropped, two in sequence restart.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
#: How many given-up sequence numbers are remembered to tell "late" from "duplicate".
LOST_MEMORY = 256
#: Frames held for a slow consumer in queue mode (10 s of 20 ms frames); the oldest go first.
DEFAULT_QUEUE_FRAMES = 500
#: Period of the receiver's timer while packets are held back (time-based loss release).
DEFAULT_TICK = 0.020
#: Otherwise the timer only looks for stalls, every half stall_fill_after (or this often).
IDLE_TICK = 0.25


@dataclass(frozen=True, slots=True)
class Frame:
    """A fixed-length block of s16le mono PCM."""

    pcm: bytes
    #: Start of the frame in seconds on the stream's timeline (0 at the first sample).
    time: float
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * self.sample_rate)


@dataclass
class RtpStats:
    """Counters of one stream. Packets are counted once, in the first category that applies."""

    received: int = 0  # accepted packets (well formed, right payload type and SSRC)
    duplicates: int = 0  # a sequence number already held or played
    reordered: int = 0  # arrived after a higher sequence number, still in time to be played
    late: int = 0  # arrived after its slot was given up as lost, or far out of range (dropped)
    lost: int = 0  # sequence numbers given up (never played, even if they arrive later)
    wrong_pt: int = 0
    wrong_ssrc: int = 0
    malformed: int = 0
    rtcp: int = 0
    ssrc_changes: int = 0  # times the stream followed a new SSRC
    resyncs: int = 0  # timestamp discontinuities (timeline re-anchored)
    frames: int = 0  # frames delivered
    filled_samples: int = 0  # silence inserted for loss, gaps and stalls
    dropped_frames: int = 0  # frames dropped because the consumer's queue was full
    callback_errors: int = 0


@dataclass(frozen=True)
class JitterParams:
    depth: int = DEFAULT_DEPTH
    max_delay: float = DEFAULT_MAX_DELAY
    max_gap_fill: float = DEFAULT_MAX_GAP_FILL
    stall_fill_after: float | None = DEFAULT_STALL_FILL_AFTER
    relock_after: int = DEFAULT_RELOCK_AFTER

    def __post_init__(self) -> None:
        if self.depth < 0 or self.max_delay < 0 or self.max_gap_fill < 0:
            raise ValueError("depth, max_delay and max_gap_fill must not be negative")
        if self.stall_fill_after is not None and self.stall_fill_after <= 0:
            raise ValueError("stall_fill_after must be positive (or None)")
        if self.relock_after < 0:
            raise ValueError("relock_after must not be negative")


@dataclass
class _Held:
    timestamp: int
    payload: bytes
    arrival: float


class RtpStream:
    """One incoming RTP stream: packets (with their arrival time) in, fixed frames out."""

    def __init__(
        self,
        fmt: AudioFormat,
        frame_ms: int = 20,
        params: JitterParams | None = None,
    ) -> None:
        if frame_ms not in FRAME_MS_CHOICES:
            raise ValueError(f"frame length must be one of {FRAME_MS_CHOICES} ms, got {frame_ms}")
        self.fmt = fmt
        self.frame_ms = frame_ms
        self.params = params or JitterParams()
        self.stats = RtpStats()
        self.rate = fmt.sample_rate
        self.frame_samples = fmt.sample_rate * frame_ms // 1000
        self.frame_bytes = 2 * self.frame_samples
        self.ssrc: int | None = None
        self._candidate: int | None = None
        self._candidate_count = 0
        self._held: dict[int, _Held] = {}
        self._next_seq: int | None = None
        self._highest_seq = 0
        self._given_up: OrderedDict[int, None] = OrderedDict()
        self._restart_seq: int | None = None
        self._last_ts: int | None = None  # extended timestamp of the last played packet
        self._ts_offset = 0  # timeline position = extended timestamp + offset
        self._cursor = 0  # samples placed on the timeline (emitted + pending)
        self._emitted = 0  # samples emitted in frames
        self._pending = bytearray()
        self._last_arrival: float | None = None
        self._anchor: tuple[float, int] | None = None  # (wall time, cursor) of the last packet
        self._stall_filled = False

    @property
    def holding(self) -> bool:
        """Packets are held back waiting for a missing one."""
        return bool(self._held)

    # -- input ---------------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> list[Frame]:
        """One datagram that arrived at ``now`` (seconds, any monotonic clock)."""
        out: list[Frame] = []
        if is_rtcp(data):
            self.stats.rtcp += 1
            return out
        try:
            pkt = parse_rtp(data)
        except MalformedPacket:
            self.stats.malformed += 1
            return out
        if pkt.payload_type != self.fmt.payload_type:
            self.stats.wrong_pt += 1
            return out
        if not pkt.payload or len(pkt.payload) % self.fmt.bytes_per_sample:
            self.stats.malformed += 1
            return out
        if self.ssrc is None:
            self.ssrc = pkt.ssrc
        elif pkt.ssrc != self.ssrc:
            if not self._follow(pkt.ssrc, now, out):
                self.stats.wrong_ssrc += 1
                return out
        else:
            self._candidate, self._candidate_count = None, 0
        self.stats.received += 1
        self._last_arrival = now
        seq = self._extend_seq(pkt.sequence)
        if self._next_seq is None:
            self._next_seq = self._highest_seq = seq
        jump = seq - self._highest_seq
        if jump > MAX_DROPOUT or jump < -MAX_MISORDER:
            # Far from where the stream is. Two such packets in sequence: the sender restarted
            # its sequence numbers (same SSRC); one alone is a stray, dropped.
            if pkt.sequence != self._restart_seq:
                self._restart_seq = (pkt.sequence + 1) & 0xFFFF
                self.stats.late += 1
                return out
            self._release(INF, out)
            self._next_seq = self._highest_seq = seq = pkt.sequence
            self._given_up.clear()
        self._restart_seq = None
        if seq < self._next_seq:
            if seq in self._given_up:
                del self._given_up[seq]
                self.stats.late += 1
            else:
                self.stats.duplicates += 1
            return out
        if seq == self._next_seq and not self._held:  # the common case: next in line, play it
            self._highest_seq = max(seq, self._highest_seq)
            self._play(pkt.timestamp, pkt.payload, now)
            self._next_seq = seq + 1
            self._emit(out)
            return out
        if seq in self._held:
            self.stats.duplicates += 1
            return out
        if seq < self._highest_seq:
            self.stats.reordered += 1
        else:
            self._highest_seq = seq
        self._held[seq] = _Held(pkt.timestamp, pkt.payload, now)
        self._release(now, out)
        return out

    def tick(self, now: float) -> list[Frame]:
        """Time passes without a packet: release held packets whose wait is over, fill stalls."""
        out: list[Frame] = []
        self._release(now, out)
        after = self.params.stall_fill_after
        if (
            after is not None
            and self._anchor is not None
            and self._last_arrival is not None
            and not self._held
            and now - self._last_arrival >= after
        ):
            wall, cursor = self._anchor
            target = cursor + int((now - wall) * self.rate)
            # whole frames only: the partial frame pending stays until real audio completes it
            fill = target - self._cursor
            fill -= (len(self._pending) // 2 + fill) % self.frame_samples
            if fill > 0:
                self._fill(fill)
                self._stall_filled = True
                self._emit(out)
        return out

    def flush(self) -> list[Frame]:
        """Release everything held (gaps count as lost) and pad the last partial frame."""
        out: list[Frame] = []
        self._release(INF, out)
        if self._pending:
            self._fill(self.frame_samples - len(self._pending) // 2)
            self._emit(out)
        return out

    # -- internals -----------------------------------------------------------------------------

    def _follow(self, ssrc: int, now: float, out: list[Frame]) -> bool:
        """Count packets of a foreign SSRC; after enough in a row, make it the stream's."""
        if not self.params.relock_after:
            return False
        if ssrc == self._candidate:
            self._candidate_count += 1
        else:
            self._candidate, self._candidate_count = ssrc, 1
        if self._candidate_count < self.params.relock_after:
            return False
        self._release(INF, out)  # what is left of the old stream
        self.ssrc = ssrc
        self._candidate, self._candidate_count = None, 0
        self._next_seq = None
        self._given_up.clear()
        self._last_ts = None  # re-anchor the timeline on the new stream's first packet
        self.stats.ssrc_changes += 1
        return True

    def _extend_seq(self, seq: int) -> int:
        """A 16-bit sequence number as an unbounded one, nearest to the highest seen."""
        if self._next_seq is None:
            return seq
        delta = (seq - self._highest_seq) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        return self._highest_seq + delta

    def _release(self, now: float, out: list[Frame]) -> None:
        held = self._held
        while held:
            seq = self._next_seq
            assert seq is not None
            if seq in held:
                packet = held.pop(seq)
                self._play(packet.timestamp, packet.payload, packet.arrival if now == INF else now)
                self._next_seq = seq + 1
                continue
            oldest = min(h.arrival for h in held.values())
            if len(held) <= self.params.depth and now - oldest < self.params.max_delay:
                break  # keep waiting for the missing packet
            first = min(held)
            self.stats.lost += first - seq
            for missing in range(max(seq, first - LOST_MEMORY), first):
                self._given_up[missing] = None
            while len(self._given_up) > LOST_MEMORY:
                self._given_up.popitem(last=False)
            self._next_seq = first
        self._emit(out)

    def _play(self, timestamp: int, payload: bytes, now: float) -> None:
        pcm = self.fmt.decode(payload)
        if self._last_ts is None:
            ts = timestamp
            self._ts_offset = self._cursor - ts
        else:
            delta = (timestamp - self._last_ts) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            ts = self._last_ts + delta
        self._last_ts = ts
        position = ts + self._ts_offset
        if position < self._cursor:  # overlaps what is already out: move the timeline on
            if not self._stall_filled:
                self.stats.resyncs += 1
            self._ts_offset += self._cursor - position
        elif position > self._cursor:
            gap = position - self._cursor
            if gap <= self.params.max_gap_fill * self.rate:
                self._fill(gap)
            else:
                self.stats.resyncs += 1
                self._ts_offset -= gap
        self._stall_filled = False
        self._pending += pcm
        self._cursor += len(pcm) // 2
        self._anchor = (now, self._cursor)

    def _fill(self, samples: int) -> None:
        self._pending += bytes(2 * samples)
        self._cursor += samples
        self.stats.filled_samples += samples

    def _emit(self, out: list[Frame]) -> None:
        size = self.frame_bytes
        pending = self._pending
        if len(pending) < size:
            return
        n = len(pending) // size
        rate = self.rate
        for i in range(n):
            out.append(Frame(bytes(pending[i * size : (i + 1) * size]), self._emitted / rate, rate))
            self._emitted += self.frame_samples
        del pending[: n * size]
        self.stats.frames += n


class RtpReceiver(asyncio.DatagramProtocol):
    """An RTP stream on a UDP port, delivering frames to ``on_frame`` or to ``frames`` (a queue).

    Use ``await RtpReceiver.open(fmt)``; ``port`` is what to give Asterisk's externalMedia as
    ``external_host``. ``close()`` (or ``await aclose()``, which also waits for the socket to be
    released) stops it; it is an async context manager too.
    """

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        frame_ms: int = 20,
        params: JitterParams | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        tick: float = DEFAULT_TICK,
    ) -> None:
        self.stream = RtpStream(fmt, frame_ms, params)
        self.on_frame = on_frame
        self.frames: asyncio.Queue[Frame] = asyncio.Queue(maxsize=queue_frames)
        self.remote: tuple[str, int] | None = None
        self._tick = tick
        stall = self.stream.params.stall_fill_after
        self._idle_tick = max(tick, stall / 2 if stall is not None else IDLE_TICK)
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed: asyncio.Future[None] | None = None

    @classmethod
    async def open(
        cls,
        fmt: AudioFormat,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        frame_ms: int = 20,
        params: JitterParams | None = None,
        on_frame: Callable[[Frame], None] | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        tick: float = DEFAULT_TICK,
    ) -> RtpReceiver:
        loop = asyncio.get_running_loop()
        receiver = cls(
            fmt,
            frame_ms=frame_ms,
            params=params,
            on_frame=on_frame,
            queue_frames=queue_frames,
            tick=tick,
        )
        await loop.create_datagram_endpoint(lambda: receiver, local_addr=(host, port))
        return receiver

    # -- properties ----------------------------------------------------------------------------

    @property
    def stats(self) -> RtpStats:
        return self.stream.stats

    @property
    def address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("the receiver is not open")
        host, port = self._transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    # -- protocol ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (CPython's selector datagram transport does not subclass DatagramTransport)
        self._transport = cast(asyncio.DatagramTransport, transport)
        self._loop = asyncio.get_running_loop()
        self._closed = self._loop.create_future()
        self._schedule(self._idle_tick)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        frames = self.stream.feed(data, now)
        if self.remote is None and self.stream.ssrc is not None:
            self.remote = (str(addr[0]), int(addr[1]))
        if frames:
            self._deliver(frames)
        if self.stream.holding and (self._timer is None or self._timer.when() > now + self._tick):
            self._schedule(self._tick)  # a gap: check back soon, to give up on it in time

    def error_received(self, exc: Exception) -> None:
        log.debug("RTP socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop receiving; the socket is released on the next loop iteration."""
        self._cancel_timer()
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        if self._closed is not None:
            await asyncio.shield(self._closed)

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    async def __aenter__(self) -> RtpReceiver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def flush(self) -> None:
        """Deliver what is held and the last partial frame (padded), e.g. when the call ends."""
        self._deliver(self.stream.flush())

    # -- internals -----------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self, delay: float) -> None:
        assert self._loop is not None
        self._cancel_timer()
        if self._transport is not None and not self._transport.is_closing():
            self._timer = self._loop.call_later(delay, self._on_tick)

    def _on_tick(self) -> None:
        assert self._loop is not None
        self._timer = None
        frames = self.stream.tick(self._loop.time())
        if frames:
            self._deliver(frames)
        # often while packets are held back, rarely otherwise (stall detection only)
        self._schedule(self._tick if self.stream.holding else self._idle_tick)

    def _deliver(self, frames: list[Frame]) -> None:
        if self.on_frame is not None:
            for frame in frames:
                try:
                    self.on_frame(frame)
                except Exception:
                    self.stats.callback_errors += 1
                    log.exception("RTP frame callback failed")
            return
        for frame in frames:
            if self.frames.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.frames.get_nowait()
                self.stats.dropped_frames += 1
            self.frames.put_nowait(frame)
