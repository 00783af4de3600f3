"""End to end against a real Asterisk, the controller and pjsua2 phones, the ring group's
distribution: ring order, no answer, a shift change, the waiting callers' positions.

Each test asserts what really happened (ring attempts, counselor events, database rows, what
the phones saw and heard, what the controller reports). Counselors' state lasts for the
whole session; which test uses which counselors is listed in tests/e2e_ringgroup_support.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ivr.phone.audio import read_wav, rms_dbfs, tone_present
from ivr.phone.remote import RemotePhone
from tests.conftest import (
    CALLER_TONE,
    COUNSELOR_TONE,
    COUNSELORS,
    Hotline,
    PhoneFactory,
    write_roster,
)
from tests.e2e_ringgroup_support import (
    CONNECTED,
    WAITING,
    announcements,
    api,
    choose_line,
    counselor,
    dial,
    member,
    no_busy_member_rung,
    playback_state,
    record_for,
    ring_attempts,
    rows_where,
    spying,
    until,
)


# --------------------------------------------------------------------------- 1. ring order
async def test_longest_idle_one_counselor_per_caller_busy_not_rung_then_longest_idle_first(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    t0 = time.time()
    names = ("counselor01", "counselor02", "counselor03")
    ks = dict(
        zip(
            names,
            await asyncio.gather(*(counselor(hotline, phones, n, auto_answer=True) for n in names)),
            strict=True,
        )
    )
    callers: list[RemotePhone] = []
    ids: list[str] = []
    for i in range(5):
        c, cid = await dial(hotline, phones, f"caller{i + 1}", number=f"02999911{i:02d}")
        callers.append(c)
        ids.append(cid)

    # Callers 1-4 choose the loneliness line one after another (so they queue in this order).
    for c, cid in zip(callers[:4], ids[:4], strict=True):
        await choose_line(hotline, c, cid)
        await asyncio.sleep(1.0)
    for cid in ids[:3]:
        await hotline.wait_state(cid, CONNECTED, timeout=30)
    await hotline.wait_state(ids[3], WAITING, timeout=15)

    first = ring_attempts(hotline, ids[:3])
    assert [a["outcome"] for a in first] == ["answered"] * 3, first
    assigned = {a["call_id"]: a["member"] for a in first}
    assert len(first) == 3 and set(assigned.values()) == set(names), first  # one each
    for n in names:
        assert sum(1 for e in ks[n].events if e.get("event") == "incoming") == 1, n

    # Caller 4 waits while all three talk: nobody busy is rung.
    await asyncio.sleep(2.5)
    assert ring_attempts(hotline, [ids[3]]) == []
    assert hotline.controller.calls[ids[3]].flow.state is WAITING
    status = hotline.controller.status()["queues"]["loneliness"]
    assert set(status["busy"]) >= set(names) and status["waiting"] == 1

    # Caller 5 chooses now; it will queue about 11 s later (after the intro).
    await choose_line(hotline, callers[4], ids[4])
    by_member = {m: cid for cid, m in assigned.items()}
    a = assigned[ids[0]]
    # The other two are freed in reverse member order, so "first freed" is not "first listed".
    b, c_ = sorted((m for m in names if m != a), reverse=True)

    await ks[a].hangup()  # a is free: caller 4 goes to a, the only idle one
    await ks[a].wait_for("incoming", timeout=10)
    await hotline.wait_state(ids[3], CONNECTED, timeout=10)
    attempts4 = ring_attempts(hotline, [ids[3]])
    assert [(r["member"], r["outcome"]) for r in attempts4] == [(a, "answered")]

    await ks[b].hangup()
    await asyncio.sleep(1.5)
    await ks[c_].hangup()
    for m in (a, b, c_):
        row = await hotline.wait_row(by_member[m])
        assert row["outcome"] == "completed" and row["member"] == m
    # Caller 5 queues with b and c idle (b idle longest) and a busy with caller 4.
    await hotline.wait_state(ids[4], CONNECTED, timeout=20)
    attempts5 = ring_attempts(hotline, [ids[4]])
    assert [(r["member"], r["outcome"]) for r in attempts5] == [(b, "answered")], (
        f"{b} was freed {1.5} s before {c_} and should be rung first: {attempts5}"
    )
    for n in names:
        assert not [e for e in ks[n].events if e.get("event") == "busy_rejected"], n

    await callers[3].hangup()
    await callers[4].hangup()
    for cid in ids[3:]:
        assert (await hotline.wait_row(cid))["outcome"] == "completed"
    no_busy_member_rung(hotline, t0)


# --------------------------------------------------------------------------- 2. no answer
async def test_unanswering_counselor_is_skipped_then_paused_after_three(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    a, b = "counselor04", "counselor05"
    t0 = time.time()
    try:
        ka = await counselor(hotline, phones, a)  # rings, is always turned down (486 busy)
        c1, id1 = await dial(hotline, phones, "caller1", number="0299992201")
        c2, id2 = await dial(hotline, phones, "caller2", number="0299992202")
        await choose_line(hotline, c1, id1)
        await asyncio.sleep(1.0)
        await choose_line(hotline, c2, id2)

        await ka.wait_for("incoming", timeout=30)
        await ka.reject(486)
        await ka.wait_for("call_state", state="DISCONNECTED", timeout=5)
        # b comes online while a is in its no-answer cooldown: caller 1 is rung there.
        kb = await counselor(hotline, phones, b, auto_answer=True)
        await kb.wait_for("incoming", timeout=10)
        await hotline.wait_state(id1, CONNECTED, timeout=10)
        att1 = ring_attempts(hotline, [id1])
        assert [(r["member"], r["outcome"]) for r in att1] == [(a, "busy"), (b, "answered")]

        # Caller 2 waits; a is rung again after each cooldown and turns it down twice more.
        for _ in range(2):
            await ka.wait_for("incoming", timeout=15)
            await ka.reject(486)
            await ka.wait_for("call_state", state="DISCONNECTED", timeout=5)
        m = await until(
            lambda: member(hotline, a)["paused"] and member(hotline, a),
            what=f"{a} paused after three unanswered rings",
        )
        assert m["state"] == "paused" and m["pause_reason"] == "no_answer", m
        events = await until(  # the record is written just after the state changes
            lambda: rows_where(
                hotline, "SELECT * FROM counselor_events WHERE member=? AND at>=?", a, t0
            ),
            what="the automatic pause recorded",
        )
        assert [(e["field"], e["old"], e["new"], e["reason"]) for e in events] == [
            ("paused", "false", "true", "no_answer")
        ], events
        att2 = ring_attempts(hotline, [id2])
        assert [(r["member"], r["outcome"]) for r in att2] == [(a, "busy"), (a, "busy")], att2

        # Paused: not rung again while caller 2 goes on waiting.
        await asyncio.sleep(2.0)
        assert len(ring_attempts(hotline, [id2])) == 2
        assert hotline.controller.calls[id2].flow.state is WAITING
        assert not [e for e in ka.events[-3:] if e.get("event") == "incoming"]

        await c2.hangup()
        assert (await hotline.wait_row(id2))["outcome"] == "abandoned_queue"
        await kb.hangup()
        row1 = await hotline.wait_row(id1)
        assert row1["outcome"] == "completed" and row1["member"] == b
    finally:
        status, body = await api(hotline, "POST", f"/api/counselors/{a}/unpause")
    assert status == 200, body
    m = member(hotline, a)
    assert not m["paused"] and m["state"] == "idle", m


# --------------------------------------------------------------------------- 3. shift change
async def test_shift_ends_mid_call_call_goes_on_next_call_to_new_shift(
    clean_hotline: Hotline, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    hotline = clean_hotline
    x, y, z = "counselor01", "counselor02", "counselor03"  # x, z go off shift; y stays on
    roster = hotline.settings.roster_file
    kx = await counselor(hotline, phones, x, auto_answer=True)
    c1, id1 = await dial(hotline, phones, "caller1", number="0299993301")
    c2, id2 = await dial(hotline, phones, "caller2", number="0299993302")
    await choose_line(hotline, c1, id1)
    await asyncio.sleep(1.0)
    await choose_line(hotline, c2, id2)
    try:
        await kx.wait_for("incoming", timeout=30)
        await kx.wait_for("call_state", state="CONFIRMED", timeout=10)
        await c1.play(tones["caller"])
        await kx.play(tones["counselor"])
        await hotline.wait_state(id1, CONNECTED, timeout=10)

        on = tuple(c for c in COUNSELORS if c not in (x, z))
        write_roster(roster, on_shift=on, off_shift=(x, z))
        status, body = await api(hotline, "POST", "/api/roster/reload")
        assert status == 200, body
        assert not member(hotline, x)["on_shift"] and not member(hotline, z)["on_shift"]
        assert member(hotline, y)["on_shift"]

        # x's call goes on, with audio both ways.
        await asyncio.sleep(0.3)
        heard_c = read_wav(await record_for(c1, tmp_path / "c1.wav", 2.0))
        heard_k = read_wav(await record_for(kx, tmp_path / "kx.wav", 2.0))
        assert tone_present(heard_c.samples, heard_c.rate, COUNSELOR_TONE)
        assert tone_present(heard_k.samples, heard_k.rate, CALLER_TONE)
        assert hotline.controller.calls[id1].flow.state is CONNECTED

        # z is registered and idle but off shift: never rung for caller 2.
        kz = await counselor(hotline, phones, z, auto_answer=True)
        await hotline.wait_state(id2, WAITING, timeout=20)
        await asyncio.sleep(3.0)
        assert ring_attempts(hotline, [id2]) == []
        assert not [e for e in kz.events if e.get("event") == "incoming"]

        ky = await counselor(hotline, phones, y, auto_answer=True)
        await ky.wait_for("incoming", timeout=10)
        await hotline.wait_state(id2, CONNECTED, timeout=10)
        att = ring_attempts(hotline, [id2])
        assert [(r["member"], r["outcome"]) for r in att] == [(y, "answered")], att
        assert not [e for e in kz.events if e.get("event") == "incoming"]

        await c1.hangup()
        await c2.hangup()
        row1, row2 = await hotline.wait_row(id1), await hotline.wait_row(id2)
        assert (row1["outcome"], row1["member"]) == ("completed", x)
        assert (row2["outcome"], row2["member"]) == ("completed", y)
        assert row1["talk_seconds"] > 4
    finally:
        write_roster(roster, COUNSELORS)
        status, body = await api(hotline, "POST", "/api/roster/reload")
    assert status == 200, body
    assert all(member(hotline, c)["on_shift"] for c in COUNSELORS)


# --------------------------------------------------------------------------- 4. positions
async def test_two_waiting_callers_hear_their_positions_never_silence(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    # A counselor who is registered but does not answer: somebody could answer, so the
    # callers hear positions (with nobody reachable they hear that instead, see test_e2e_calls).
    await counselor(hotline, phones, "counselor05")
    with spying(hotline) as spy:
        c1, id1 = await dial(hotline, phones, "caller1", number="0299994401")
        c2, id2 = await dial(hotline, phones, "caller2", number="0299994402")
        await choose_line(hotline, c1, id1)
        await asyncio.sleep(1.0)
        await choose_line(hotline, c2, id2)
        await hotline.wait_state(id1, WAITING, timeout=20)
        await c1.record(tmp_path / "w1.wav")
        await hotline.wait_state(id2, WAITING, timeout=20)
        await c2.record(tmp_path / "w2.wav")
        await until(
            lambda: announcements(spy, id1) and announcements(spy, id2),
            timeout=15,
            what="both callers' announcements",
        )
        # The announcements are long (over 15 s): each is still playing a moment later.
        await asyncio.sleep(0.5)
        playing = {
            cid: await playback_state(hotline, announcements(spy, cid)[0].playback_id)
            for cid in (id1, id2)
        }
        await asyncio.sleep(2.5)  # the announcement is heard for a while
        w1 = read_wav(await c1.stop_record())
        w2 = read_wav(await c2.stop_record())
        assert hotline.controller.calls[id1].flow.state is WAITING
        assert hotline.controller.calls[id2].flow.state is WAITING
        await c1.hangup()
        await c2.hangup()

    first = announcements(spy, id1)[0].prompts
    second = announcements(spy, id2)[0].prompts
    assert first[0] == "queue_next" and "queue_ahead_lead" not in first, first
    assert second[:3] == ("queue_ahead_lead", "people_native_1", "queue_ahead_tail"), second
    assert first[-1] == second[-1] == "hold_reassurance"
    assert playing == {id1: "playing", id2: "playing"}, (
        f"the announcements did not play into the holding bridges: {playing}"
    )
    for name, heard in (("caller 1", w1), ("caller 2", w2)):
        assert heard.seconds > 6, (name, heard.seconds)
        for s in range(int(heard.seconds)):
            level = rms_dbfs(heard.span(s, s + 1))
            assert level > -45, f"{name}: dead air in second {s} of the wait ({level:.0f} dBFS)"
    for cid in (id1, id2):
        assert (await hotline.wait_row(cid))["outcome"] == "abandoned_queue"
