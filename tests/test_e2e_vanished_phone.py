"""End to end: a phone that goes away without a BYE (its process killed: a power cut, a
carrier that lost the call, a BYE lost on the way) is hung up by Asterisk once no media came
from it for `rtp_timeout` seconds (the session's hotline: 15), and the controller closes its
record: a vanished caller does not hold a place in the queue, nor a vanished counselor a
caller in dead air, forever."""

from __future__ import annotations

import signal
import time

from ivr.flow import call as flow
from ivr.phone.remote import RemotePhone
from tests.conftest import Hotline, PhoneFactory
from tests.e2e_ringgroup_support import counselor, dial


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


async def test_a_counselor_whose_phone_vanished_frees_the_caller(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    name = "counselor01"
    k = await counselor(hotline, phones, name, auto_answer=True)
    caller, call_id = await dial(hotline, phones, "caller")
    await hotline.press_5(caller, call_id)
    await hotline.wait_state(call_id, flow.State.CONNECTED, timeout=30)
    await vanish(k)
    gone = time.monotonic()
    timeout = hotline.settings.rtp_timeout
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=timeout + 30)
    assert time.monotonic() - gone >= timeout - 1  # ended by the timeout, not before
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["member"]) == ("completed", name), row
    # The dead phone's registration is replaced (max_contacts = 1) and ended, as a counselor
    # who plugs their phone back in does: the next test finds the endpoint offline.
    again = await counselor(hotline, phones, name)
    await again.unregister()
    await hotline.wait_endpoint(name, "offline")
