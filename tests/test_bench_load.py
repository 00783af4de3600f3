"""`ivr-bench load`: a smoke run of the real command (product and native baseline on the
project's Asterisk, SIPp callers from the PBX root), so the benchmark cannot rot; and its pure
parts (RTP range sizing, the caller's pcap and scenario, the table).

The smoke run shortens the caller's waits (keys pressed 3 s after the answer and 3 s after 5,
while the prompts play: both journeys take keys during every prompt) so that it takes about a
minute; the full run waits for the prompts to end."""

from __future__ import annotations

import argparse
import math
import re
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from ivr.bench.capture import (
    ALAW_LEVEL,
    ANSWER,
    AUDIO,
    DIGIT,
    RECORD,
    Signature,
    bpf_program,
    latencies,
    prompt_envelope,
)
from ivr.bench.load import (
    MAX_CALLERS,
    PORTS_PER_CALL,
    SIPP_MEDIA_BASE,
    SIPP_MEDIA_END,
    parse_steps,
    rtp_range,
)
from ivr.bench.report import StepResult, percentile, step_table
from ivr.bench.sipp import Journey, pcap_duration_ms, scenario, write_line_pcap
from ivr.config import Settings
from ivr.paths import PROJECT_ROOT


def _row(output: str, label: str) -> list[str]:
    """The product and native cells of a table row (cells are separated by 2+ spaces)."""
    line = next(ln for ln in output.splitlines() if ln.startswith(label))
    return re.split(r"\s{2,}", line[len(label) :].strip())


@pytest.mark.timeout(900)
def test_smoke_run_every_call_reaches_the_queue_in_product_and_native() -> None:
    cmd = [
        sys.executable, "-m", "ivr.bench.load", "load",
        "--steps", "2", "--hold", "3", "--menu-wait", "3", "--consent-wait", "3",
        "--wallboards", "2",
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=840, check=False
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^machine: .+ cores, .+ RAM, Linux ", out, re.M), out
    assert "step 1: 2 callers" in out, out
    assert re.search(r"^load average .+ at the start [\d.]+ [\d.]+ [\d.]+, at the end ", out, re.M)
    for system in ("product", "native"):
        line = rf"^idle before the steps \({system}\), CPU ms/s: Asterisk \d+"
        assert re.search(line, out, re.M), out
    for label in (
        "most calls up at once",
        "set-up rate (calls/s)",
        "CPU ms/call Asterisk",
        "CPU ms/call controller",
        "CPU ms/call total",
        "peak RSS Asterisk (MB)",
        "peak RSS controller (MB)",
        "peak open files Asterisk",
        "peak open files controller",
        "/health p50 / p95 (ms)",
    ):
        assert label in out, f"{label!r} missing:\n{out}"
    assert _row(out, "calls ok / failed") == ["2 / 0", "2 / 0"], out
    assert _row(out, "reached the queue") == ["2 / 2", "2 / 2"], out
    assert _row(out, "call records not complete") == ["0", "—"], out
    assert _row(out, "answered (200 OK in 30 s)") == ["2 / 2", "2 / 2"], out
    product, native, ratio = _row(out, "CPU ms/call total")
    assert int(product) > 0 and int(native) > 0 and ratio.endswith("×"), out
    p50, p95 = _row(out, "/health p50 / p95 (ms)")[0].split(" / ")
    assert float(p50) <= float(p95), out
    # Both callers were seen arriving on both signed-in wallboard screens (the product's desk).
    board, none = _row(out, "queued to wallboard p50 / p95 (ms)")
    assert re.fullmatch(r"\d+ / \d+ \(2 × 2\)", board) and none == "—", out
    # Every caller's greeting and intro were found in what they received, in both systems.
    for label in ("greeting after 200 OK p50 / p95 (ms)", "key 5 (end) to intro p50 / p95 (ms)"):
        cells = _row(out, label)
        assert len(cells) == 2 and all(re.fullmatch(r"\d+ / \d+", c) for c in cells), out


def test_steps_are_positive_numbers() -> None:
    assert parse_steps("10,25, 50") == (10, 25, 50)
    assert parse_steps("1000") == (1000,)
    for bad in ("", "0", "ten", "5,-1", "1001"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_steps(bad)


def test_the_rtp_range_holds_two_sessions_per_call_with_room_to_spare() -> None:
    for callers in (1, 250, 1000):
        start, end = rtp_range(callers)
        assert end - start + 1 >= max(1000, PORTS_PER_CALL * callers)
        Settings(rtp_port_start=start, rtp_port_end=end)  # valid settings
    assert rtp_range(MAX_CALLERS)[1] < SIPP_MEDIA_BASE  # below SIPp's media ports
    assert SIPP_MEDIA_END <= 31000  # below the tests' RTP ranges and the ephemeral ports


def test_the_line_pcap_is_real_rtp_of_the_length_asked(tmp_path: Path) -> None:
    path = tmp_path / "line.pcap"
    write_line_pcap(path, 2.0)
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1"
    assert pcap_duration_ms(path) == 2000 - 20  # 100 packets, 20 ms apart
    first_rtp = data[24 + 16 + 14 + 20 + 8 :][:12]
    assert first_rtp[0] == 0x80 and first_rtp[1] == 0x88  # RTP v2, marker, PCMA


def test_the_caller_presses_5_then_2_then_waits_and_hangs_up() -> None:
    text = scenario(Journey(3000, 4000, 5000), "/tmp/x/line.pcap", 200)
    assert text.index("dtmf_2833_5.pcap") < text.index("dtmf_2833_2.pcap") < text.index("BYE")
    assert 'pause milliseconds="3000"' in text and 'pause milliseconds="4700"' in text
    assert "telephone-event/8000" in text and "[auto_media_port]" in text


def test_percentile_and_table() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    r = StepResult("product", 10, 10, 0, 9, 10, 19.5, 7.0, 8.0, 51200, 614400, (0.001,), 0, 60.0)
    n = StepResult("native", 10, 10, 0, 10, 10, 19.9, 1.5, None, 40960, None, (), 0, 58.0)
    table = step_table(1, 10, 20, 10, r, n)
    assert _row(table, "reached the queue") == ["9 / 10", "10 / 10"]
    assert _row(table, "CPU ms/call total") == ["1500", "150", "10.0×"]
    assert _row(table, "CPU ms/call controller") == ["800", "—"]


def test_the_default_rtp_range_holds_1000_callers_with_their_taps() -> None:
    s = Settings()
    assert s.rtp_port_end - s.rtp_port_start + 1 >= PORTS_PER_CALL * 1000
    assert rtp_range(1000)[0] > s.rtp_port_end  # the benchmark never shares a `make run`'s ports


def _tone_wav(path: Path, lead_s: float, seconds: float) -> list[int]:
    """A WAV with `lead_s` of silence, then a tone that swells and fades (an envelope)."""
    rate = 8000
    samples = [0] * int(lead_s * rate)
    for i in range(int(seconds * rate)):
        amp = 2000 + 6000 * abs(math.sin(math.pi * i / rate * 3))
        samples.append(int(amp * math.sin(2 * math.pi * 440 * i / rate)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return samples


def test_a_prompt_is_found_where_it_began_in_the_frames_the_caller_received(
    tmp_path: Path,
) -> None:
    wav = tmp_path / "greeting.wav"
    _tone_wav(wav, lead_s=0.1, seconds=1.0)
    sig = Signature.of(wav)
    assert sig.lead_frames == 5
    envelope = prompt_envelope(wav)
    # The caller hears line noise, then other speech, then the prompt from t = 2.0 s.
    records = tmp_path / "capture.bin"
    with records.open("wb") as f:
        f.write(RECORD.pack(0.5, ANSWER, 20000, 0.0))
        f.write(RECORD.pack(1.0, DIGIT, 20000, 5.0))  # key down: not the release
        f.write(RECORD.pack(1.1, DIGIT, 20000, 105.0))
        t = 0.5
        for level in [0.1] * 10 + [30.0, 5.0] * 20 + envelope:
            f.write(RECORD.pack(t, AUDIO, 20000, level))
            t += 0.02
    found = latencies(records, sig, sig)
    assert found.calls == 1
    start = 0.5 + 50 * 0.02  # after 10 noise frames and 40 other frames
    assert found.greeting == pytest.approx((start - 0.5,))
    assert found.dtmf == pytest.approx((start - 1.1,))


def test_the_capture_filter_and_the_level_table() -> None:
    assert len(bpf_program(5060, 40000, 50000)) == 17 * 8
    assert ALAW_LEVEL[0xD5] == 0  # A-law's smallest positive value
    assert ALAW_LEVEL[0xAA] == 252 and ALAW_LEVEL[0x2A] == 252  # full scale, both signs
