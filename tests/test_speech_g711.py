"""G.711 and slin codecs: tables against the standard's values, bulk paths against per-sample
ones, round trips, and a sine's signal-to-noise ratio through each law."""

from __future__ import annotations

import hashlib
import math
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speech import g711, synth

ALL_SAMPLES = array("h", range(-32768, 32768)).tobytes()


def snr_db(reference: bytes, decoded: bytes) -> float:
    a, b = g711.pcm_to_array(reference), g711.pcm_to_array(decoded)
    signal = sum(x * x for x in a)
    noise = sum((x - y) ** 2 for x, y in zip(a, b, strict=True))
    return 10 * math.log10(signal / noise)


def test_ulaw_table_values() -> None:
    t = g711.ULAW_TO_LINEAR
    assert (t[0x00], t[0x7F], t[0x80], t[0xFF]) == (-32124, 0, 32124, 0)
    assert (t[0x0F], t[0x8F]) == (-16764, 16764)  # end of the top segment
    # 0x00..0x7F rise from the most negative to zero, 0x80..0xFF fall from the most positive
    assert all(t[i] < t[i + 1] for i in range(0x7F))
    assert all(t[i] > t[i + 1] for i in range(0x80, 0xFF))


def test_alaw_table_values() -> None:
    t = g711.ALAW_TO_LINEAR
    assert (t[0xD5], t[0x55], t[0xAA], t[0x2A]) == (8, -8, 32256, -32256)
    assert 0 not in t  # A-law has no zero code
    assert sorted(t) == sorted(set(t))  # 256 distinct levels


def test_encoders_match_the_reference_coder() -> None:
    # Digests of the encoders over every 16-bit sample, identical to CPython's audioop
    # (lin2ulaw / lin2alaw, the Sun reference G.711 coder), checked when this was written.
    ulaw = g711.encode_ulaw(ALL_SAMPLES)
    alaw = g711.encode_alaw(ALL_SAMPLES)
    assert hashlib.sha256(ulaw).hexdigest() == (
        "81d633c9e6972a18c74a58720b96cb8ca0bdd096d4060b646dd708c3b846019a"
    )
    assert hashlib.sha256(alaw).hexdigest() == (
        "38488f6fd710f4686360edc4d38639f96c491595ef93f8eb8d62d5e07ca6ce7b"
    )


def test_every_code_survives_decode_then_encode() -> None:
    for code in range(256):
        expected_u = 0xFF if code == 0x7F else code  # µ-law's two zeros encode as +0
        assert g711.linear_to_ulaw(g711.ULAW_TO_LINEAR[code]) == expected_u
        assert g711.linear_to_alaw(g711.ALAW_TO_LINEAR[code]) == code


def test_clipping_at_full_scale() -> None:
    assert g711.ULAW_TO_LINEAR[g711.linear_to_ulaw(32767)] == 32124
    assert g711.ULAW_TO_LINEAR[g711.linear_to_ulaw(-32768)] == -32124
    assert g711.ALAW_TO_LINEAR[g711.linear_to_alaw(32767)] == 32256
    assert g711.ALAW_TO_LINEAR[g711.linear_to_alaw(-32768)] == -32256


@given(st.binary(max_size=400))
def test_bulk_decode_equals_per_sample_decode(payload: bytes) -> None:
    assert g711.decode_ulaw(payload) == g711.array_to_pcm([g711.ULAW_TO_LINEAR[b] for b in payload])
    assert g711.decode_alaw(payload) == g711.array_to_pcm([g711.ALAW_TO_LINEAR[b] for b in payload])
    assert list(g711.decode_ulaw_array(payload)) == [g711.ULAW_TO_LINEAR[b] for b in payload]
    assert list(g711.decode_alaw_array(memoryview(payload))) == [
        g711.ALAW_TO_LINEAR[b] for b in payload
    ]


@given(st.binary(max_size=400))
def test_decode_then_encode_is_identity_on_payloads(payload: bytes) -> None:
    assert g711.encode_alaw(g711.decode_alaw(payload)) == payload
    assert g711.encode_ulaw(g711.decode_ulaw(payload)) == payload.replace(b"\x7f", b"\xff")


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_quantisation_error_is_bounded(samples: list[int]) -> None:
    pcm = g711.array_to_pcm(samples)
    for decoded in (
        g711.decode_ulaw_array(g711.encode_ulaw(pcm)),
        g711.decode_alaw_array(g711.encode_alaw(pcm)),
    ):
        for x, y in zip(samples, decoded, strict=True):
            # logarithmic steps: at most one step (1/16 of the segment) plus the clipping margin
            assert abs(x - y) <= max(64, abs(x) // 16) + 700 * (abs(x) > 32000)


@pytest.mark.parametrize("amplitude, floor_db", [(0.5, 35.0), (0.01, 32.0)])
def test_sine_snr_through_each_law(amplitude: float, floor_db: float) -> None:
    pcm = synth.tone(440, 1.0, 8000, amplitude)
    assert snr_db(pcm, g711.decode_ulaw(g711.encode_ulaw(pcm))) > floor_db
    assert snr_db(pcm, g711.decode_alaw(g711.encode_alaw(pcm))) > floor_db


def test_slin_byte_orders() -> None:
    big = b"\x12\x34\xff\xfe"  # 0x1234, -2 in big-endian
    assert list(g711.pcm_to_array(g711.decode_slin(big, "big"))) == [0x1234, -2]
    assert g711.decode_slin(b"\x34\x12", "little") == b"\x34\x12"
    assert g711.encode_slin(g711.decode_slin(big, "big"), "big") == big
    with pytest.raises(ValueError, match="even"):
        g711.decode_slin(b"\x00\x01\x02", "big")
    with pytest.raises(ValueError, match="byteorder"):
        g711.decode_slin(b"\x00\x01", "middle")  # type: ignore[arg-type]


def test_encoders_reject_odd_lengths() -> None:
    with pytest.raises(ValueError, match="even"):
        g711.encode_ulaw(b"\x00")
