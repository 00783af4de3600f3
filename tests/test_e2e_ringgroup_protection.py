"""End to end against a real Asterisk, the controller and pjsua2 phones, callers and
counselors protected: the callback offer, ending a call for abuse, the warm transfer to the
crisis line.

Each test asserts what really happened (ring attempts, counselor events, database rows, what
the phones saw and heard, what the controller reports). Counselors' state lasts for the
whole session; which test uses which counselors is listed in tests/e2e_ringgroup_support.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ivr.flow import call as flow
from ivr.phone.audio import is_silent, read_wav, rms_dbfs, tone_present
from tests.conftest import COUNSELOR_TONE, CRISIS_TONE, Hotline, PhoneFactory
from tests.e2e_ringgroup_support import (
    CONNECTED,
    WAITING,
    api,
    choose_line,
    counselor,
    dial,
    header,
    member,
    record_for,
    ring_attempts,
    rows_where,
    spying,
    until,
    wait_channel_gone,
)


# --------------------------------------------------------------------------- 5. callback
async def test_callback_offer_after_max_wait_caller_presses_1(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    number = "0299995501"
    # Registered, does not answer: somebody could answer, so the offer waits for
    # callback_offer_after (with nobody reachable it comes at once, see test_e2e_calls).
    await counselor(hotline, phones, "counselor05")
    with spying(hotline) as spy:
        c1, id1 = await dial(hotline, phones, "caller1", number=number)
        await choose_line(hotline, c1, id1)
        await hotline.wait_state(id1, WAITING, timeout=20)
        offer = await until(
            lambda: [
                p for p in spy.plays(id1, flow.Target.HOLDING) if "callback_offer" in p.prompts
            ],
            timeout=45,
            what="the callback offer",
        )
        queued_at = hotline.controller.calls[id1].flow.record.queued_at
        assert queued_at is not None
        offered_at = next(t for t, c in spy.commands if c is offer[0])
        assert offered_at - queued_at >= hotline.settings.callback_offer_after
        assert offer[0].prompts[-1] == "callback_offer"
        # No offer before the maximum wait.
        for t, c in spy.commands:
            if isinstance(c, flow.Play) and c.playback_id.startswith(f"{id1}-pb"):
                if "callback_offer" in c.prompts:
                    assert t - queued_at >= hotline.settings.callback_offer_after

        await asyncio.sleep(1.0)
        await c1.record(tmp_path / "confirm.wav")
        pressed = time.monotonic()
        await c1.dtmf("1")
        # The PBX hangs up (the caller does not).
        await c1.wait_for("call_state", state="DISCONNECTED", timeout=20)
        hung_up_after = time.monotonic() - pressed
        await c1.wait_for("recorded", timeout=10)
    row = await hotline.wait_row(id1)
    assert row["outcome"] == "callback_requested", row
    cbs = rows_where(hotline, "SELECT * FROM callbacks WHERE call_id=?", id1)
    assert len(cbs) == 1, cbs
    cb = cbs[0]
    assert (cb["reason"], cb["consent"], cb["requested_by"]) == (
        "max_wait",
        "caller_keypress",
        None,
    )
    assert cb["caller_hash"] == row["caller_hash"] and number not in cb["caller_hash"]
    sealed = cb["number_sealed"]
    assert sealed, "no sealed number: nobody can call back"
    raw = sealed if isinstance(sealed, bytes) else str(sealed).encode()
    assert number.encode() not in raw and number.encode("utf-16-le") not in raw
    status, listed = await api(hotline, "GET", "/api/callbacks")
    assert status == 200
    assert any(c["call_id"] == id1 and "number_sealed" not in c for c in listed)
    assert number not in json.dumps(listed)
    # The request is a follow-up task of the counselors, with the number sealed for the
    # citizen, and the number is nowhere in the clear in the database's files.
    (task,) = rows_where(hotline, "SELECT * FROM followup_tasks WHERE call_id=?", id1)
    assert (task["type"], task["team"], task["status"]) == ("callback", "counselors", "open")
    assert task["caller_hash"] == row["caller_hash"] and cb["task_id"] == task["id"]
    assert task["sealed_for"] == f"citizen:{row['caller_hash']}" and task["number_sealed"]
    assert hotline.controller.ctx.sealer.open(task["number_sealed"], task["sealed_for"]) == number
    db = hotline.settings.state_path(hotline.settings.database)
    for file in db.parent.glob(db.name + "*"):
        data = file.read_bytes()
        assert number.encode() not in data and number.encode("utf-16-le") not in data, file

    # The caller heard the whole confirmation (about 9 s) before the PBX hung up.
    assert [p for p in spy.plays(id1) if p.prompts == ("callback_confirm",)], spy.plays(id1)
    heard = read_wav(tmp_path / "confirm.wav")
    assert hung_up_after > 7, f"hung up {hung_up_after:.1f} s after the key: confirmation cut"
    assert heard.seconds > 6 and not is_silent(heard.span(heard.seconds - 4, heard.seconds - 0.5))


# --------------------------------------------------------------------------- 6. abuse end
async def test_counselor_ends_call_for_abuse_flag_wrapup_and_notice_on_next_call(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    number = "0299996601"
    k7 = await counselor(hotline, phones, "counselor07", auto_answer=True)
    c1, id1 = await dial(hotline, phones, "abusive", number=number)
    await choose_line(hotline, c1, id1)
    await k7.wait_for("incoming", timeout=30)
    await hotline.wait_state(id1, CONNECTED, timeout=15)
    legs = [leg for leg, x in hotline.controller.legs.items() if x.call_id == id1]
    assert len(legs) == 1

    await c1.record(tmp_path / "policy.wav")
    pressed = time.monotonic()
    await k7.dtmf("*9")
    await k7.wait_for("call_state", state="DISCONNECTED", timeout=5)  # the counselor is let go
    await until(
        lambda: rows_where(hotline, "SELECT * FROM caller_flags WHERE call_id=?", id1),
        what="the caller flag",
    )
    await wait_channel_gone(hotline, legs[0], what="the counselor leg")

    # The same number calls again while the first caller still hears the policy.
    with spying(hotline) as spy:
        c2, id2 = await dial(hotline, phones, "again", number=number)
        await choose_line(hotline, c2, id2)

        await c1.wait_for("call_state", state="DISCONNECTED", timeout=20)
        heard_for = time.monotonic() - pressed
        await c1.wait_for("recorded", timeout=10)
        policy = read_wav(tmp_path / "policy.wav")
        assert heard_for > 8, heard_for  # the policy prompt (about 11 s) was played out
        assert not is_silent(policy.span(1, policy.seconds - 0.5)), "the policy was not heard"
        row1 = await hotline.wait_row(id1)
        assert row1["outcome"] == "abuse_ended" and row1["end_reason"] == "abuse", row1
        flags = rows_where(hotline, "SELECT * FROM caller_flags WHERE call_id=?", id1)
        assert len(flags) == 1 and flags[0]["caller_hash"] == row1["caller_hash"]
        assert flags[0]["member"] == "counselor07" and flags[0]["lifted_at"] is None
        assert number not in flags[0]["caller_hash"]
        m7 = member(hotline, "counselor07")
        assert m7["state"] == "wrapup" and m7["blocked_for"] > 200, m7

        # The next call: policy notice before the intro, and the counselor sees the flag.
        await until(  # queued (being asked for consent, or already answered)
            lambda: hotline.controller.calls[id2].flow.state in (flow.State.CONSENT, WAITING),
            what="the second caller queued",
        )
        k8 = await counselor(hotline, phones, "counselor08")
        inc = await k8.wait_for("incoming", timeout=30)
    intro = [p.prompts for p in spy.plays(id2) if "loneliness_intro" in p.prompts]
    assert [p[:2] for p in intro] == [("abuse_policy_notice", "loneliness_intro")], spy.plays(id2)
    assert not [e for e in k7.events if e.get("event") == "incoming"][1:], "counselor07 rung"
    assert [r["member"] for r in ring_attempts(hotline, [id2])] == ["counselor08"]
    await c2.hangup()
    await k8.wait_for("call_state", state="DISCONNECTED", timeout=10)
    assert (await hotline.wait_row(id2))["outcome"] == "abandoned_queue"
    assert [r["outcome"] for r in ring_attempts(hotline, [id2])] == ["cancelled"]

    # An administrator lifts the flag.
    status, active = await api(hotline, "GET", "/api/flags")
    assert status == 200 and row1["caller_hash"] in {f["caller_hash"] for f in active}
    status, body = await api(hotline, "DELETE", f"/api/flags/{row1['caller_hash']}")
    assert status == 200 and body["lifted"] >= 1, body
    status, active = await api(hotline, "GET", "/api/flags")
    assert row1["caller_hash"] not in {f["caller_hash"] for f in active}
    lifted = rows_where(hotline, "SELECT * FROM caller_flags WHERE call_id=?", id1)[0]
    assert lifted["lifted_at"] is not None and lifted["lifted_by"] == "admin"
    status, body = await api(hotline, "DELETE", f"/api/flags/{row1['caller_hash']}")
    assert status == 404 and body["error_id"] == "no_active_flag"

    # The counselor's phone was told about the flag (and the repeat call) in the INVITE.
    flag = header(inc["headers"], "X-IVR120-Flag")
    assert flag and flag.startswith("abuse"), f"INVITE header names: {sorted(inc['headers'])}"
    assert header(inc["headers"], "X-IVR120-Repeat") == "yes"
    assert number not in json.dumps(inc)


# --------------------------------------------------------------------------- 7. warm transfer
async def test_warm_transfer_to_crisis_line(
    clean_hotline: Hotline, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    hotline = clean_hotline
    crisis = await counselor(hotline, phones, "crisis", auto_answer=True, delay_ms=3500)
    await crisis.play(tones["crisis"])
    k5 = await counselor(hotline, phones, "counselor05", auto_answer=True)
    c1, id1 = await dial(hotline, phones, "caller", number="0299997701")
    await choose_line(hotline, c1, id1)
    await k5.wait_for("incoming", timeout=30)
    await k5.wait_for("call_state", state="CONFIRMED", timeout=10)
    await k5.play(tones["counselor"])
    await hotline.wait_state(id1, CONNECTED, timeout=15)

    await k5.dtmf("*7")
    inc = await crisis.wait_for("incoming", timeout=10)
    assert "0299997701" not in json.dumps(inc)
    # While the crisis line rings, the caller still talks with the counselor.
    ringing = read_wav(await record_for(c1, tmp_path / "ringing.wav", 2.0))
    assert tone_present(ringing.samples, ringing.rate, COUNSELOR_TONE)
    assert not [e for e in crisis.events if e.get("state") == "CONFIRMED"], "answered too early"

    await crisis.wait_for("call_state", state="CONFIRMED", timeout=10)
    await asyncio.sleep(1.0)  # the crisis leg joins the talk bridge
    await k5.hangup()  # the counselor hands over and drops
    await k5.wait_for("call_state", state="DISCONNECTED", timeout=5)
    await asyncio.sleep(1.0)
    assert id1 in hotline.controller.calls, "the caller was dropped with the counselor"
    assert not [e for e in c1.events if e.get("state") == "DISCONNECTED"]
    after = read_wav(await record_for(c1, tmp_path / "crisis-heard.wav", 2.0))
    assert tone_present(after.samples, after.rate, CRISIS_TONE), rms_dbfs(after.samples)
    assert not tone_present(after.samples, after.rate, COUNSELOR_TONE)

    await c1.hangup()
    await crisis.wait_for("call_state", state="DISCONNECTED", timeout=10)
    row = await hotline.wait_row(id1)
    assert row["outcome"] == "transferred" and row["end_reason"] == "crisis_transfer", row
    assert row["member"] == "counselor05"
