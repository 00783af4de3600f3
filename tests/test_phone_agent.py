"""The pjsua2 phone agent (ivr.phone.agent) driven through RemotePhone, plus audio helpers.

The phones call each other directly on 127.0.0.1; no PBX is involved.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast

import pytest

from ivr.phone import audio
from ivr.phone.remote import PhoneError, RemotePhone

PhoneFactory = Callable[[str], Awaitable[RemotePhone]]


@pytest.fixture
async def phones() -> AsyncIterator[PhoneFactory]:
    """Start agents on demand; all are closed (and their stderr shown on failure) after."""
    started: list[RemotePhone] = []

    async def start(name: str) -> RemotePhone:
        phone = await RemotePhone.start(name=name, log_level=3)
        started.append(phone)
        return phone

    try:
        yield start
    finally:
        for phone in started:
            await phone.close()
        for phone in started:
            print(phone.diagnostics(last_events=200, last_stderr=200))


async def connect(a: RemotePhone, b: RemotePhone) -> None:
    """A calls B (auto-answer) and both sides reach CONFIRMED with audio flowing."""
    await b.auto_answer()
    await a.call(f"sip:b@127.0.0.1:{b.port}")
    incoming = await b.wait_for("incoming")
    assert "citizen@127.0.0.1" in incoming["from"]
    assert "Call-ID" in incoming["headers"]
    await a.wait_for("call_state", state="CONFIRMED")
    await b.wait_for("call_state", state="CONFIRMED")
    await a.wait_for("media", active=True)
    await b.wait_for("media", active=True)


# ---------------------------------------------------------------- two phones
async def test_call_audio_dtmf_hangup(phones: PhoneFactory, tmp_path: Path) -> None:
    a = await phones("A")
    b = await phones("B")
    tone_a = audio.write_tone_wav(tmp_path / "a_1000.wav", 1000, seconds=1.0)
    tone_b = audio.write_tone_wav(tmp_path / "b_600.wav", 600, seconds=1.0)
    rec_a = tmp_path / "a_heard.wav"
    rec_b = tmp_path / "b_heard.wav"

    await connect(a, b)
    await a.play(tone_a, loop=True)
    await b.play(tone_b, loop=True)
    await a.record(rec_a)
    await b.record(rec_b)
    await asyncio.sleep(2.0)
    assert await a.stop_record() == str(rec_a)
    assert await b.stop_record() == str(rec_b)

    heard_b = audio.read_wav(rec_b)
    heard_a = audio.read_wav(rec_a)
    assert heard_b.seconds > 1.5, heard_b.seconds
    assert heard_a.seconds > 1.5, heard_a.seconds
    # skip the first half second (jitter buffer start-up), look at the rest
    b_span = heard_b.span(0.5)
    a_span = heard_a.span(0.5)
    ratios = {
        "b@1000": audio.tone_ratio(b_span, heard_b.rate, 1000),
        "b@600": audio.tone_ratio(b_span, heard_b.rate, 600),
        "a@600": audio.tone_ratio(a_span, heard_a.rate, 600),
        "a@1000": audio.tone_ratio(a_span, heard_a.rate, 1000),
        "b_dbfs": audio.rms_dbfs(b_span),
        "a_dbfs": audio.rms_dbfs(a_span),
    }
    assert audio.tone_present(b_span, heard_b.rate, 1000), ratios
    assert not audio.tone_present(b_span, heard_b.rate, 600), ratios
    assert audio.tone_present(a_span, heard_a.rate, 600), ratios
    assert not audio.tone_present(a_span, heard_a.rate, 1000), ratios

    await a.dtmf("5")
    await b.wait_for("dtmf", digit="5")

    await a.hangup()
    await b.wait_for("call_state", state="DISCONNECTED")
    await a.wait_for("call_state", state="DISCONNECTED")

    # the phones are reusable after a call
    await a.send("ping")
    await b.send("ping")


async def test_second_call_is_rejected_busy(phones: PhoneFactory) -> None:
    a = await phones("A")
    b = await phones("B")
    c = await phones("C")
    await connect(a, b)
    await c.identity("intruder")
    await c.call(f"sip:b@127.0.0.1:{b.port}")
    ended = await c.wait_for("call_state", state="DISCONNECTED")
    assert ended["code"] == 486, ended
    busy = await b.wait_for("busy_rejected")
    assert "intruder@" in busy["from"]
    # the first call is untouched
    await a.send("dtmf", digits="1#")
    await b.wait_for("dtmf", digit="1")
    await b.wait_for("dtmf", digit="#")
    await b.hangup()
    await a.wait_for("call_state", state="DISCONNECTED")


#: Longer than pjsua's default `sndAutoCloseTime` (1 s): how long a phone sits idle below.
IDLE_SECONDS = 2.5


async def test_key_goes_out_on_a_call_answered_after_a_busy_reject_and_idle_time(
    phones: PhoneFactory,
) -> None:
    """A companion's second follow-up call (issue 10): their phone turned an offer away (486)
    while on a call, sat idle, then answered the next call; its key must reach the other end.
    It did not: pjsua closed the idle null sound device (the conference bridge's clock) and a
    new call does not reopen it, so the phone sent no RTP at all."""
    a = await phones("A")
    b = await phones("B")
    c = await phones("C")
    await connect(a, b)
    await c.call(f"sip:b@127.0.0.1:{b.port}")
    ended = await c.wait_for("call_state", state="DISCONNECTED")
    assert ended["code"] == 486, ended
    await b.wait_for("busy_rejected")
    await a.hangup()
    await b.wait_for("call_state", state="DISCONNECTED")
    await asyncio.sleep(IDLE_SECONDS)  # the situation under test: no call, no media, idle
    await c.call(f"sip:b@127.0.0.1:{b.port}")  # B still auto-answers
    await b.wait_for("incoming")
    await c.wait_for("call_state", state="CONFIRMED")
    await b.wait_for("media", active=True)
    await b.dtmf("1")
    await c.wait_for("dtmf", digit="1", timeout=5)
    await c.hangup()
    await b.wait_for("call_state", state="DISCONNECTED")


# ------------------------------------------------------ robustness and exit
async def test_bad_input_then_quit_during_call(phones: PhoneFactory, tmp_path: Path) -> None:
    a = await phones("A")
    b = await phones("B")

    await a.send_raw("this is not json")
    err = await a.wait_for("error")
    assert err["id"] is None and "JSON" in err["message"]
    await a.send_raw("[1, 2, 3]")
    await a.wait_for("error", id=None)
    with pytest.raises(PhoneError, match="unknown command"):
        await a.send("no_such_command")
    with pytest.raises(PhoneError, match="no active call"):
        await a.hangup()
    with pytest.raises(PhoneError, match="existing 'wav'"):
        await a.play(tmp_path / "missing.wav")
    await a.send("ping")  # still alive

    await connect(a, b)
    # a one-shot (non-looping) play reports its end
    once = audio.write_tone_wav(tmp_path / "once.wav", 500, seconds=0.3)
    await a.play(once, loop=False)
    assert (await a.wait_for("play_done", timeout=5))["wav"] == str(once)

    rec_b = tmp_path / "b.wav"
    await b.record(rec_b)
    await a.play(audio.write_tone_wav(tmp_path / "t.wav", 800, seconds=0.5))
    await asyncio.sleep(0.5)

    t0 = time.monotonic()
    await a.send_raw('{"cmd": "quit", "id": "q"}')
    await a.wait_for("bye", timeout=5)
    assert await asyncio.wait_for(a.proc.wait(), 5) == 0
    assert time.monotonic() - t0 < 5
    assert any(e.get("event") == "ok" and e.get("id") == "q" for e in a.events)

    # B saw the BYE, and its recording was stopped and closed automatically
    await b.wait_for("call_state", state="DISCONNECTED")
    recorded = await b.wait_for("recorded")
    assert recorded["wav"] == str(rec_b)
    heard = audio.read_wav(rec_b)
    assert heard.seconds > 0.2
    assert audio.tone_present(heard.samples, heard.rate, 800)


async def test_stdin_eof_and_sigterm_exit_cleanly(phones: PhoneFactory) -> None:
    a = await phones("A")
    b = await phones("B")
    await connect(a, b)
    assert a.proc.stdin is not None
    a.proc.stdin.close()  # EOF behaves like quit, even during a call
    assert await asyncio.wait_for(a.proc.wait(), 5) == 0
    await a.wait_for("bye", timeout=1)
    await b.wait_for("call_state", state="DISCONNECTED")

    b.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(b.proc.wait(), 5) == 0
    await b.wait_for("bye", timeout=1)


# ------------------------------------------------------ registration (digest)
def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class FakeRegistrar(asyncio.DatagramProtocol):
    """Minimal UDP registrar: 401 challenge, then 200 (or 403 on a wrong password)."""

    realm = "ivr-test"

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.nonce = secrets.token_hex(8)
        self.transport: asyncio.DatagramTransport | None = None
        self.log: list[tuple[str, int]] = []  # (user, status) per REGISTER answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        text = data.decode("utf-8", "replace")
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")
        if not head[0].startswith("REGISTER "):
            return
        uri = head[0].split()[1]
        hdrs: list[tuple[str, str]] = []
        for line in head[1:]:
            name, _, value = line.partition(":")
            hdrs.append((name.strip(), value.strip()))

        def get(name: str) -> str:
            return next((v for n, v in hdrs if n.lower() == name.lower()), "")

        user = re.search(r"sip:([^@]+)@", get("To"))
        username = user.group(1) if user else ""
        auth = get("Authorization")
        extra: list[str] = []
        if not auth:
            status, reason = 401, "Unauthorized"
            extra.append(
                f'WWW-Authenticate: Digest realm="{self.realm}", nonce="{self.nonce}", '
                'algorithm=MD5, qop="auth"'
            )
        else:
            p = dict(re.findall(r'(\w+)="?([^",]*)"?', auth))
            ha1 = _md5(f"{p.get('username')}:{self.realm}:{self.users.get(username, '')}")
            ha2 = _md5(f"REGISTER:{p.get('uri', uri)}")
            want = _md5(f"{ha1}:{p.get('nonce')}:{p.get('nc')}:{p.get('cnonce')}:auth:{ha2}")
            if p.get("response") == want and username in self.users:
                status, reason = 200, "OK"
                expires = get("Expires") or "120"
                if get("Contact"):
                    extra.append(f"Contact: {get('Contact')};expires={expires}")
                extra.append(f"Expires: {expires}")
            else:
                status, reason = 403, "Forbidden"
        self.log.append((username, status))
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for n, v in hdrs if n.lower() in ("via", "v")]
        to = get("To")
        lines += [
            f"From: {get('From')}",
            f"To: {to}" + ("" if "tag=" in to else ";tag=reg1"),
            f"Call-ID: {get('Call-ID')}",
            f"CSeq: {get('CSeq')}",
            *extra,
            "Content-Length: 0",
        ]
        assert self.transport is not None
        self.transport.sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), addr)


async def test_register_digest_and_unregister(phones: PhoneFactory) -> None:
    loop = asyncio.get_running_loop()
    transport, registrar = await loop.create_datagram_endpoint(
        lambda: FakeRegistrar({"counselor01": "s3cret"}), local_addr=("127.0.0.1", 0)
    )
    try:
        port = transport.get_extra_info("sockname")[1]
        a = await phones("A")
        reg = await a.register("counselor01", "s3cret", f"127.0.0.1:{port}", expires=60)
        assert reg["code"] == 200 and reg["active"] is True, reg
        assert registrar.log[:2] == [("counselor01", 401), ("counselor01", 200)]
        await a.unregister()
        unreg = await a.wait_for("reg_state")
        assert unreg["active"] is False and unreg["code"] == 200, unreg

        bad = await a.register("counselor01", "wrong", f"127.0.0.1:{port}", expires=60)
        assert bad["active"] is False and bad["code"] == 403, bad
    finally:
        transport.close()


# ------------------------------------------------------------- audio helpers
def test_tone_detection_on_generated_tones(tmp_path: Path) -> None:
    path = audio.write_tone_wav(tmp_path / "t.wav", 1000, seconds=0.5, rate=8000, amplitude=0.5)
    wav = audio.read_wav(path)
    assert wav.rate == 8000 and len(wav.samples) == 4000
    assert audio.tone_present(wav.samples, wav.rate, 1000)
    assert not audio.tone_present(wav.samples, wav.rate, 600)
    assert audio.tone_ratio(wav.samples, wav.rate, 1000) == pytest.approx(1.0, abs=0.05)
    assert audio.tone_ratio(wav.samples, wav.rate, 600) < 0.01
    # a full-scale-ish sine at amplitude 0.5 is about -9 dBFS
    assert audio.rms_dbfs(wav.samples) == pytest.approx(-9.03, abs=0.2)

    # two tones mixed: both present, neither absent
    mix = [
        x + y
        for x, y in zip(
            audio.sine_samples(1000, 0.5, 16000, 0.3),
            audio.sine_samples(600, 0.5, 16000, 0.3),
            strict=True,
        )
    ]
    assert audio.tone_present(mix, 16000, 1000)
    assert audio.tone_present(mix, 16000, 600)
    assert not audio.tone_present(mix, 16000, 1400)


def test_silence_detection(tmp_path: Path) -> None:
    silent = audio.write_wav(tmp_path / "s.wav", [0] * 8000)
    wav = audio.read_wav(silent)
    assert audio.is_silent(wav.samples)
    assert audio.rms_dbfs(wav.samples) == audio.SILENCE_DBFS
    assert audio.is_silent([])
    assert audio.tone_ratio([], 8000, 1000) == 0.0
    assert not audio.tone_present(wav.samples, 8000, 1000)
    quiet = audio.sine_samples(1000, 0.5, 8000, amplitude=0.001)  # about -63 dBFS
    assert audio.is_silent(quiet)
    assert not audio.tone_present(quiet, 8000, 1000)  # too quiet to count
    loud = audio.sine_samples(1000, 0.5, 8000, amplitude=0.1)
    assert not audio.is_silent(loud)
    # silence then tone: spans tell them apart
    both = audio.Wav(8000, audio.span([0] * 4000 + list(loud), 8000))
    assert audio.is_silent(both.span(0, 0.5))
    assert audio.tone_present(both.span(0.5), 8000, 1000)


def test_longest_silence_is_the_longest_run_of_silent_frames() -> None:
    tone = list(audio.sine_samples(1000, 0.5, 8000, amplitude=0.1))
    heard = [0] * 8000 + tone + [0] * 24000 + tone + [0] * 4000
    assert audio.longest_silence(heard, 8000) == pytest.approx(3.0)
    assert audio.longest_silence(tone, 8000) == 0.0
    assert audio.longest_silence([0] * 16000, 8000) == pytest.approx(2.0)


def test_read_wav_rejects_stereo(tmp_path: Path) -> None:
    import wave

    p = tmp_path / "st.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0\0\0" * 10)
    with pytest.raises(ValueError, match="mono"):
        audio.read_wav(p)
