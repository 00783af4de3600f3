"""End to end: real Asterisk, the project's dialplan, the controller, pjsua2 phones, real audio.

Each test asserts what really happened: audio arrived (measured in what a phone recorded),
a record exists in the database, no channel or bridge is left in Asterisk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.ari.client import AriServerError
from ivr.flow import call as flow
from ivr.phone.audio import is_silent, read_wav, rms_dbfs, tone_present
from ivr.phone.remote import RemotePhone
from tests.conftest import CALLER_TONE, COUNSELOR_TONE, TEST_CALLER_NUMBER, Hotline, PhoneFactory


async def record_for(phone: RemotePhone, path: Path, seconds: float) -> Path:
    """Record what the phone hears for a while and return the file."""
    await phone.record(path)
    await asyncio.sleep(seconds)
    return Path(await phone.stop_record())


async def dial_120(hotline: Hotline, phones: PhoneFactory, name: str = "caller") -> RemotePhone:
    caller = await phones(name)
    await caller.identity(TEST_CALLER_NUMBER)
    await caller.call(hotline.uri_120)
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    return caller


async def counselor(
    hotline: Hotline, phones: PhoneFactory, endpoint: str, *, auto_answer: bool = False
) -> RemotePhone:
    phone = await phones(endpoint)
    if auto_answer:
        await phone.auto_answer()
    reg = await phone.register(endpoint, hotline.password(endpoint), hotline.domain)
    assert reg["code"] == 200 and reg["active"], reg
    await hotline.wait_endpoint(endpoint, "online")
    return phone


async def test_press_5_counselor_answers_audio_both_ways_then_hangup(
    clean_hotline: Hotline, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    hotline = clean_hotline
    c1 = await counselor(hotline, phones, "counselor01", auto_answer=True)

    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    menu = read_wav(await record_for(caller, tmp_path / "menu.wav", 2.5))
    assert not is_silent(menu.samples), "the caller heard no menu"

    await hotline.press_5(caller, call_id)
    await c1.wait_for("incoming", timeout=30)
    await c1.wait_for("call_state", state="CONFIRMED", timeout=10)
    await caller.play(tones["caller"])
    await c1.play(tones["counselor"])
    await hotline.wait_state(call_id, flow.State.CONNECTED)  # after the whisper
    await asyncio.sleep(0.3)  # media settles
    heard_by_caller = read_wav(await record_for(caller, tmp_path / "c-heard.wav", 2.0))
    heard_by_counselor = read_wav(await record_for(c1, tmp_path / "k-heard.wav", 2.0))
    assert tone_present(heard_by_caller.samples, heard_by_caller.rate, COUNSELOR_TONE)
    assert tone_present(heard_by_counselor.samples, heard_by_counselor.rate, CALLER_TONE)

    await caller.hangup()
    await c1.wait_for("call_state", state="DISCONNECTED", timeout=10)
    row = await hotline.wait_row(call_id)
    assert row["outcome"] == "completed"
    assert row["menu_path"] == "5"
    assert row["queue"] == "loneliness"
    assert row["member"] == "counselor01"
    assert row["talk_seconds"] > 3
    assert TEST_CALLER_NUMBER not in row["caller_hash"]
    assert row["caller_hash"] != "anonymous"


async def test_no_counselor_at_first_caller_waits_with_music_then_connected(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    await hotline.press_5(caller, call_id)
    await hotline.wait_state(call_id, flow.State.WAITING)
    # Waiting with nobody registered: music and reassurance, never silence.
    waiting = read_wav(await record_for(caller, tmp_path / "waiting.wav", 6.0))
    for second in range(5):
        window = waiting.span(second, second + 1)
        assert rms_dbfs(window) > -45, f"dead air in second {second} of the wait"

    c2 = await counselor(hotline, phones, "counselor02", auto_answer=True)
    await c2.wait_for("incoming", timeout=15)
    await c2.wait_for("call_state", state="CONFIRMED", timeout=10)
    await hotline.wait_state(call_id, flow.State.CONNECTED)

    await c2.hangup()  # the counselor ends the call: the caller is hung up too
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=10)
    row = await hotline.wait_row(call_id)
    assert row["outcome"] == "completed"
    assert row["member"] == "counselor02"
    assert row["wait_seconds"] >= 6


@pytest.fixture
def spy(hotline: Hotline) -> Iterator[list[flow.Command]]:
    """Every command the controller carries out during the test (the hook never raises)."""
    seen: list[flow.Command] = []
    with hotline.watch(seen.append):
        yield seen


def plays(spy: list[flow.Command], call_id: str) -> list[tuple[str, ...]]:
    return [
        c.prompts for c in spy if isinstance(c, flow.Play) and c.playback_id.startswith(call_id)
    ]


async def test_three_invalid_choices_polite_goodbye(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command], tmp_path: Path
) -> None:
    """Each wrong key counts once (Asterisk delivers every key press twice to the app: channel
    and endpoint subscriptions): the wrong-key prompt three times, then the goodbye."""
    hotline = clean_hotline
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    await caller.record(tmp_path / "all.wav")
    for n, digit in enumerate("978", start=1):
        async with asyncio.timeout(20):  # press during the n-th menu prompt (barge-in)
            while len(plays(spy, call_id)) < n:
                await asyncio.sleep(0.05)
        await caller.dtmf(digit)
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=30)
    await caller.wait_for("recorded", timeout=10)
    options = (*(o.prompt for o in hotline.controller.menu.options), "menu_repeat")
    assert plays(spy, call_id) == [
        ("welcome", *options),
        ("invalid_choice", *options),
        ("invalid_choice", *options),
        ("invalid_choice", "goodbye"),
    ]
    heard = read_wav(tmp_path / "all.wav")
    # The goodbye prompt was heard before the PBX hung up: the last seconds are not silent.
    assert heard.seconds > 4
    assert not is_silent(heard.span(heard.seconds - 3, heard.seconds - 0.5))
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["menu_path"], row["menu_failures"]) == ("no_choice", "", 3)


async def test_press_5_at_once_rings_a_counselor_within_10_seconds(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command]
) -> None:
    """Barge-in during the greeting; the caller is queued at once, the consent question is
    asked while the counselor's phone rings (which is told consent is pending)."""
    hotline = clean_hotline
    k1 = await counselor(hotline, phones, "counselor01")
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    greeting = await hotline.wait_play(spy, call_id, "welcome", timeout=10)
    await caller.dtmf("5")  # within the first second of the greeting
    pressed = time.monotonic()
    incoming = await k1.wait_for("incoming", timeout=20)
    seconds = time.monotonic() - pressed
    print(f"\npress 5 -> first counselor's phone ringing: {seconds:.2f} s")
    assert seconds <= 10, seconds
    assert flow.StopPlayback(greeting.playback_id) in spy  # the greeting stopped at the key
    assert incoming["headers"].get("X-IVR120-Consent") == "pending"
    assert hotline.controller.calls[call_id].flow.state is flow.State.CONSENT
    await caller.hangup()
    await hotline.wait_clean()


async def test_nobody_reachable_the_caller_is_told_and_offered_a_callback(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command]
) -> None:
    hotline = clean_hotline  # no counselor registered
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    await hotline.press_5(caller, call_id)
    told = await hotline.wait_play(spy, call_id, "nobody_available", timeout=30)
    assert told.prompts == ("nobody_available", "callback_offer")
    await caller.dtmf("1")
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=30)
    row = await hotline.wait_row(call_id)
    assert row["outcome"] == "callback_requested"
    callbacks = hotline.rows(f"SELECT reason, consent FROM callbacks WHERE call_id = '{call_id}'")
    assert callbacks == [{"reason": "max_wait", "consent": "caller_keypress"}]
    await hotline.wait_clean()


async def test_silence_in_the_menu_counts_as_a_failure_then_goodbye(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    """A caller who presses nothing hears the menu again after the input timeout (with the
    no-input prompt); with two wrong keys after that, the third failure ends politely."""
    hotline = clean_hotline
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    call = hotline.controller.calls[call_id]
    async with asyncio.timeout(90):  # the whole menu plays, then the input timeout
        while call.flow.failures < 1:
            await asyncio.sleep(0.2)
    assert call.flow.state is flow.State.MENU_PLAYING  # set in the same step as the count
    for failures, digit in ((2, "9"), (3, "8")):
        await caller.dtmf(digit)
        async with asyncio.timeout(10):  # each key counted (once) before the next one
            while call.flow.failures < failures:
                await asyncio.sleep(0.05)
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=30)
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["menu_failures"]) == ("no_choice", 3)


async def test_caller_hangs_up_while_waiting_nothing_left_behind(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    c3 = await counselor(hotline, phones, "counselor03")  # registered, does not answer
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    await hotline.press_5(caller, call_id)
    await c3.wait_for("incoming", timeout=30)  # the ring group rings the counselor
    # Waiting with no question open: the caller's audio tap is closed (issue 13), the caller
    # hears music in their holding bridge, alone.
    async with asyncio.timeout(10):
        while any(b["id"].startswith("tap-") for b in await hotline.ari.get("bridges")):
            await asyncio.sleep(0.1)
    bridges = await hotline.ari.get("bridges")
    assert [b["bridge_type"] for b in bridges] == ["holding"]
    channels = {c["id"] for c in await hotline.ari.get("channels")}
    assert not [c for c in channels if c.startswith("tap-")], channels

    await caller.hangup()
    await c3.wait_for("call_state", state="DISCONNECTED", timeout=10)  # ringing cancelled
    await hotline.wait_clean()
    row = await hotline.wait_row(call_id)
    assert row["outcome"] == "abandoned_queue"


async def test_unexpected_error_apology_then_hangup(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler failing mid-call (injected: the ARI client answers the holding bridge's
    creation with a 500, which a real Asterisk won't do on demand) still ends with an apology
    the caller hears, and a record."""
    hotline = clean_hotline
    ari = hotline.ari
    real_post = ari.post

    async def post(path: str, body: Any = None, **params: Any) -> Any:
        if path == "bridges" and params.get("type") == "holding":
            raise AriServerError("POST", path, 500, "injected fault")
        return await real_post(path, body, **params)

    carried_out: list[flow.Command] = []
    monkeypatch.setattr(ari, "post", post)
    with hotline.watch(carried_out.append):
        caller = await dial_120(hotline, phones)
        call_id = await hotline.last_call_id()
        await caller.dtmf("5")  # queueing (Hold) fails at once
        async with asyncio.timeout(20):  # the caller is handed to the apology
            while flow.Recover() not in carried_out:
                await asyncio.sleep(0.05)
        await caller.record(tmp_path / "apology.wav")
        await caller.wait_for("call_state", state="DISCONNECTED", timeout=30)
        await caller.wait_for("recorded", timeout=10)
    monkeypatch.undo()
    heard = read_wav(tmp_path / "apology.wav")
    assert heard.seconds > 2 and not is_silent(heard.samples), "no apology was heard"
    row = await hotline.wait_row(call_id)
    assert row["outcome"] == "error"


async def test_wrong_password_registration_is_refused(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    phone = await phones("scanner")
    reg = await phone.register("counselor04", "not-the-password", clean_hotline.domain)
    assert not reg["active"]
    assert reg["code"] in (401, 403, 408), reg
    ep = await clean_hotline.ari.get("endpoints/PJSIP/counselor04")
    assert ep["state"] == "offline"


async def test_only_120_is_reachable_from_the_carrier(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    phone = await phones("scanner")
    await phone.call(f"sip:9999@{clean_hotline.domain}")
    state = await phone.wait_for("call_state", state="DISCONNECTED", timeout=10)
    assert state["code"] in (404, 403, 484), state
