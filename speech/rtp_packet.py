"""RTP packets and payload formats: parsing and building RTP (RFC 3550), what a payload carries.

The pure wire layer under `speech.rtp` (the jitter buffer and the asyncio receiver), kept apart
so each file does one job. `speech.rtp` re-exports these names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from speech import g711

Codec = Literal["pcmu", "pcma", "slin"]

#: Sample rates webrtcvad accepts.
SAMPLE_RATES = (8000, 16000, 32000, 48000)
#: Asterisk's payload type for slin16 (res_rtp_asterisk's static mapping; dynamic range).
ASTERISK_SLIN16_PT = 118

RTP_VERSION = 2
RTP_HEADER_LEN = 12


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """What the RTP payload carries, and under which payload type."""

    codec: Codec
    payload_type: int
    sample_rate: int = 8000
    #: Byte order of slin payloads (RTP L16 and Asterisk's RTP: big-endian).
    byteorder: g711.ByteOrder = "big"

    def __post_init__(self) -> None:
        if self.codec not in ("pcmu", "pcma", "slin"):
            raise ValueError(f"unknown codec {self.codec!r}")
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type must be 0..127, got {self.payload_type}")
        if self.codec != "slin" and self.sample_rate != 8000:
            raise ValueError(f"{self.codec} is 8000 Hz, not {self.sample_rate}")
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample rate must be one of {SAMPLE_RATES}, got {self.sample_rate}")
        if self.byteorder not in ("big", "little"):
            raise ValueError(f"byteorder must be 'big' or 'little', not {self.byteorder!r}")

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.codec == "slin" else 1

    def decode(self, payload: bytes) -> bytes:
        """The payload as s16le PCM."""
        if self.codec == "pcmu":
            return g711.decode_ulaw(payload)
        if self.codec == "pcma":
            return g711.decode_alaw(payload)
        return g711.decode_slin(payload, self.byteorder)

    def encode(self, pcm: bytes) -> bytes:
        """s16le PCM as this payload (tests and the benchmark)."""
        if self.codec == "pcmu":
            return g711.encode_ulaw(pcm)
        if self.codec == "pcma":
            return g711.encode_alaw(pcm)
        return g711.encode_slin(pcm, self.byteorder)


PCMU = AudioFormat("pcmu", 0)
PCMA = AudioFormat("pcma", 8)
#: Asterisk externalMedia ``format=slin16`` over RTP: 16 kHz, big-endian, PT 118.
SLIN16 = AudioFormat("slin", ASTERISK_SLIN16_PT, 16000, "big")


class MalformedPacket(ValueError):
    """The datagram is not a usable RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet (RFC 3550): CSRCs, header extension and padding are skipped."""
    if len(data) < RTP_HEADER_LEN:
        raise MalformedPacket(f"{len(data)} bytes is shorter than an RTP header")
    b0, b1, sequence, timestamp, ssrc = struct.unpack_from("!BBHII", data)
    if b0 >> 6 != RTP_VERSION:
        raise MalformedPacket(f"RTP version {b0 >> 6}")
    offset = RTP_HEADER_LEN + 4 * (b0 & 0x0F)
    if b0 & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if offset + 4 > len(data):
            raise MalformedPacket("truncated header extension")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if b0 & 0x20:  # padding: the last byte counts the padding bytes, itself included
        pad = data[-1]
        if pad == 0 or offset + pad > end:
            raise MalformedPacket(f"bad padding length {pad}")
        end -= pad
    if offset > end:
        raise MalformedPacket("header longer than the packet")
    return RtpPacket(b1 & 0x7F, bool(b1 & 0x80), sequence, timestamp, ssrc, bytes(data[offset:end]))


def build_rtp(
    payload: bytes,
    *,
    sequence: int,
    timestamp: int,
    ssrc: int,
    payload_type: int,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: bytes | None = None,
    padding: int = 0,
) -> bytes:
    """One RTP packet (for tests and the benchmark). ``extension`` is padded to 32-bit words."""
    b0 = (RTP_VERSION << 6) | len(csrcs)
    ext = b""
    if extension is not None:
        b0 |= 0x10
        body = extension + b"\0" * (-len(extension) % 4)
        ext = struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    pad = b""
    if padding:
        b0 |= 0x20
        pad = b"\0" * (padding - 1) + bytes([padding])
    header = struct.pack(
        "!BBHII",
        b0,
        (0x80 if marker else 0) | payload_type,
        sequence & 0xFFFF,
        timestamp & 0xFFFFFFFF,
        ssrc,
    )
    return header + b"".join(struct.pack("!I", c) for c in csrcs) + ext + payload + pad


def is_rtcp(data: bytes) -> bool:
    """RTCP multiplexed on the RTP port (RFC 5761): packet types 200..206."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 200 <= data[1] <= 206
