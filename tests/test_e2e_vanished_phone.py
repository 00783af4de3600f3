"""End to end: a phone that goes away without a BYE (its process killed: a power cut, a
carrier that lost the call, a BYE lost on the way) is hung up by Asterisk once no media came
from it for `rtp_timeout` seconds (the session's hotline: 15), and the controller closes its
record: a vanished caller does not hold a place in the queue, nor a vanished counselor a
caller in dead air, forever."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from ivr.flow.states import STAFF_LOST_PROMPT
from ivr.phone.audio import is_silent, read_wav
from ivr.phone.remote import RemotePhone
from tests.conftest import CALLER_TONE, COUNSELOR_TONE, Hotline, PhoneFactory
from tests.e2e_ringgroup_support import (
    CONNECTED,
    WAITING,
    counselor,
    dial,
    hears,
    playback_state,
    record_for,
    spying,
    until,
)


async def vanish(phone: RemotePhone) -> None:
    """The phone is gone at once: no BYE, no more RTP, no unregistration."""
    phone.proc.send_signal(signal.SIGKILL)
    await phone.proc.wait()


async def test_a_caller_whose_phone_vanished_is_hung_up_and_recorded(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    timeout = hotline.settings.rtp_timeout
    caller, call_id = await dial(hotline, phones, "caller")
    await vanish(caller)
    row = await hotline.wait_row(call_id, timeout=timeout + 30)
    assert (row["outcome"], row["ended_in"]) == ("abandoned_menu", "menu"), row
    assert row["menu_seconds"] >= timeout - 1, row  # ended by the timeout, not before


async def test_a_counselor_whose_phone_vanished_is_replaced_and_the_caller_kept(
    clean_hotline: Hotline, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    """The counselor's phone dies mid-conversation: once Asterisk has hung it up for lack of
    media, the caller hears an apology over music, is first in line again, and the next
    counselor takes the call on (both hear each other). The consented recording goes on in
    new segments; the record is one call, completed, with the first answer and one loss."""
    hotline = clean_hotline
    first, second = "counselor01", "counselor03"
    k1 = await counselor(hotline, phones, first)
    caller, call_id = await dial(hotline, phones, "caller")
    await hotline.press_5(caller, call_id, consent="1")  # recorded: answered after the yes
    await k1.wait_for("incoming", timeout=10)
    await k1.answer()
    await hotline.wait_state(call_id, CONNECTED, timeout=30)
    answered_at = hotline.controller.calls[call_id].flow.record.answered_at
    k2 = await counselor(hotline, phones, second)  # registered once the first has the call
    timeout = hotline.settings.rtp_timeout
    with spying(hotline) as spy:
        await vanish(k1)
        gone = time.monotonic()
        [sorry] = await until(
            lambda: [p for p in spy.plays(call_id) if STAFF_LOST_PROMPT in p.prompts],
            timeout=timeout + 30,
            what="the apology to the caller",
        )
        assert time.monotonic() - gone >= timeout - 1  # the loss was Asterisk's timeout
        assert hotline.controller.calls[call_id].flow.state is WAITING
        await k2.wait_for("incoming", timeout=10)  # the next counselor is rung at once
        # The apology is playing to the caller, who hears it (over the holding music).
        assert await playback_state(hotline, sorry.playback_id) == "playing"
        heard = read_wav(await record_for(caller, tmp_path / "sorry.wav", 1.5))
        assert not is_silent(heard.samples)
        # Answering stops an announcement (as any other): the counselor answers after it.
        async with asyncio.timeout(15):
            while await playback_state(hotline, sorry.playback_id) != "gone":
                await asyncio.sleep(0.1)
    await k2.answer()
    await k2.wait_for("call_state", state="CONFIRMED", timeout=10)
    await hotline.wait_state(call_id, CONNECTED, timeout=20)
    await caller.play(tones["caller"])
    await k2.play(tones["counselor"])
    await hears(caller, tmp_path, "caller", (COUNSELOR_TONE,))
    await hears(k2, tmp_path, "counselor", (CALLER_TONE,))
    await caller.hangup()
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["member"], row["staff_lost"]) == ("completed", second, 1), row
    assert row["answered_at"] == answered_at and row["end_reason"] is None, row
    segments = {
        r["name"]: r["party"]
        for r in hotline.rows(f"SELECT name, party FROM recordings WHERE call_id='{call_id}'")
    }
    base = f"ivr120-{call_id}"
    assert segments == {
        f"{base}-caller": "caller",
        f"{base}-staff": "staff",
        f"{base}-caller-2": "caller",
        f"{base}-staff-2": "staff",
    }, segments
    await k2.unregister()
    # The dead phone's registration is replaced (max_contacts = 1) and ended, as a counselor
    # who plugs their phone back in does: the next test finds the endpoint offline.
    again = await counselor(hotline, phones, first)
    await again.unregister()
    await hotline.wait_endpoint(first, "offline")
    await hotline.wait_endpoint(second, "offline")
