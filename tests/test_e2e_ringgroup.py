"""End to end: the ring group, counselor state, the counselor keys and the admin tools, against
a real Asterisk, the controller and pjsua2 phones.

Each test asserts what really happened: ring attempts, counselor events, flags and callback
requests in the database, what the phones saw (INVITEs with their headers, disconnects), what
the phones heard (recordings measured), and what the controller reports. The flow spy
(the observer seam, `Hotline.watch`) shows which prompts a call got.

Counselors' state lasts for the whole session (a 300 s abuse wrap-up, a pause), so each test
has its own counselors or leaves them as it found them:
    counselor01-03  ring order, shift change        counselor04  no-answer pause, feature codes
    counselor05     no-answer partner, warm transfer counselor06  console softphone (abuse)
    counselor07     abuse end (wrap-up)              counselor08  admin CLI, flagged re-call
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.app import SECRETS
from ivr.ari.client import AriNotFound
from ivr.flow import call as flow
from ivr.paths import PROJECT_ROOT
from ivr.phone.audio import is_silent, read_wav, rms_dbfs, tone_present, write_tone_wav
from ivr.phone.remote import RemotePhone
from tests.conftest import COUNSELORS, TEST_CALLER_NUMBER, Hotline, PhoneFactory, write_roster

CALLER_TONE = 600.0
COUNSELOR_TONE = 1000.0
CRISIS_TONE = 1400.0
CONNECTED = flow.State.CONNECTED
WAITING = flow.State.WAITING


# --------------------------------------------------------------------------- helpers
@pytest.fixture
def tones(tmp_path: Path) -> dict[str, Path]:
    return {
        "caller": write_tone_wav(tmp_path / "caller.wav", CALLER_TONE, seconds=2.0),
        "counselor": write_tone_wav(tmp_path / "counselor.wav", COUNSELOR_TONE, seconds=2.0),
        "crisis": write_tone_wav(tmp_path / "crisis.wav", CRISIS_TONE, seconds=2.0),
    }


class Spy:
    """A spy (see `Hotline.watch`): it records every command the controller carries out,
    with the wall-clock time (the controller's clock)."""

    def __init__(self) -> None:
        self.commands: list[tuple[float, flow.Command]] = []

    def __call__(self, cmd: flow.Command) -> None:
        self.commands.append((time.time(), cmd))

    def plays(self, call_id: str, target: flow.Target | None = None) -> list[flow.Play]:
        return [
            c
            for _, c in self.commands
            if isinstance(c, flow.Play)
            and c.playback_id.startswith(f"{call_id}-pb")
            and (target is None or c.target is target)
        ]


def announcements(spy: Spy, call_id: str) -> list[flow.Play]:
    """The waiting caller's announcements (not the line's intro / consent question)."""
    return [
        p for p in spy.plays(call_id, flow.Target.HOLDING) if "loneliness_intro" not in p.prompts
    ]


@contextlib.contextmanager
def spying(hotline: Hotline) -> Iterator[Spy]:
    spy = Spy()
    with hotline.watch(spy):
        yield spy


async def until(
    check: Callable[[], Any], timeout: float = 10, what: str = "condition", step: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


async def record_for(phone: RemotePhone, path: Path, seconds: float) -> Path:
    await phone.record(path)
    await asyncio.sleep(seconds)
    return Path(await phone.stop_record())


async def dial(
    hotline: Hotline, phones: PhoneFactory, name: str, number: str = TEST_CALLER_NUMBER
) -> tuple[RemotePhone, str]:
    """A caller dials 120 and is answered; returns the phone and the controller's call id."""
    before = set(hotline.controller.calls)
    caller = await phones(name)
    await caller.identity(number)
    await caller.call(hotline.uri_120)
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    new = await until(
        lambda: [c for c in hotline.controller.calls if c not in before],
        what=f"the controller to see {name}'s call",
    )
    return caller, new[0]


async def choose_line(hotline: Hotline, caller: RemotePhone, call_id: str) -> None:
    """The caller presses 5 (the loneliness line). If the line then asks for consent to keep a
    summary of the counseling, the caller answers 2 (no) as soon as it is asked."""
    await caller.dtmf("5")
    task = asyncio.create_task(_decline_summary(hotline, caller, call_id))
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


async def _decline_summary(hotline: Hotline, caller: RemotePhone, call_id: str) -> None:
    consent = getattr(flow.State, "CONSENT", None)
    before = (flow.State.MENU_PLAYING, flow.State.MENU_WAITING, flow.State.INTRO)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(60):
            while consent is not None:
                call = hotline.controller.calls.get(call_id)
                if call is None:
                    return
                if call.flow.state is consent:
                    await caller.dtmf("2")
                    return
                if call.flow.state not in before:
                    return
                await asyncio.sleep(0.05)


async def counselor(
    hotline: Hotline,
    phones: PhoneFactory,
    endpoint: str,
    *,
    auto_answer: bool = False,
    delay_ms: int = 0,
) -> RemotePhone:
    phone = await phones(endpoint)
    if auto_answer:
        await phone.auto_answer(delay_ms=delay_ms)
    reg = await phone.register(endpoint, hotline.password(endpoint), hotline.domain)
    assert reg["code"] == 200 and reg["active"], reg
    await hotline.wait_endpoint(endpoint, "online")
    return phone


def member(hotline: Hotline, name: str) -> dict[str, Any]:
    return next(m for m in hotline.controller.members() if m["member"] == name)


def ring_attempts(hotline: Hotline, call_ids: list[str]) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(call_ids))
    sql = f"SELECT * FROM ring_attempts WHERE call_id IN ({marks}) ORDER BY started_at, rowid"
    return rows_where(hotline, sql, *call_ids)


def rows_where(hotline: Hotline, sql: str, *args: Any) -> list[dict[str, Any]]:
    import sqlite3

    db = sqlite3.connect(hotline.settings.state_path(hotline.settings.database))
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql, args)]
    finally:
        db.close()


async def wait_channel_gone(
    hotline: Hotline, channel_id: str, what: str, timeout: float = 5
) -> None:
    deadline = time.monotonic() + timeout
    while channel_id in {c["id"] for c in await hotline.ari.get("channels")}:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} ({channel_id}) is still up in Asterisk after {timeout} s")
        await asyncio.sleep(0.1)


async def playback_state(hotline: Hotline, playback_id: str) -> str:
    """An ARI playback's state, or "gone" once Asterisk has finished (or failed) it."""
    try:
        return str((await hotline.ari.get(f"playbacks/{playback_id}"))["state"])
    except AriNotFound:
        return "gone"


def header(headers: dict[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


async def api(
    hotline: Hotline, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    token = hotline.app[SECRETS].admin_token
    url = f"http://127.0.0.1:{hotline.settings.status_port}{path}"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.request(method, url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r,
    ):
        return r.status, await r.json(content_type=None)


def no_busy_member_rung(hotline: Hotline, since: float) -> None:
    """No ring attempt started for a member while that member was on a call (talking)."""
    attempts = rows_where(hotline, "SELECT * FROM ring_attempts WHERE started_at >= ?", since)
    calls = rows_where(
        hotline,
        "SELECT * FROM calls WHERE answered_at IS NOT NULL AND started_at >= ?",
        since - 120,
    )
    for a in attempts:
        for c in calls:
            if c["member"] != a["member"] or c["call_id"] == a["call_id"]:
                continue
            end = c["ended_at"] if c["ended_at"] is not None else float("inf")
            assert not (c["answered_at"] < a["started_at"] < end), (
                f"{a['member']} was rung for {a['call_id']} while talking on {c['call_id']}"
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


# --------------------------------------------------------------------------- 8. feature codes
async def feature_code(hotline: Hotline, phone: RemotePhone, code: str, wav: Path) -> float:
    """Dial a feature code from a registered phone; returns the seconds until the PBX hung up."""
    await phone.call(f"sip:{code}@{hotline.domain}")
    await phone.record(wav)
    await phone.wait_for("call_state", state="CONFIRMED", timeout=10)
    start = time.monotonic()
    await phone.wait_for("call_state", state="DISCONNECTED", timeout=15)
    await phone.wait_for("recorded", timeout=10)
    return time.monotonic() - start


async def test_feature_codes_pause_and_unpause_from_the_phone(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    name = "counselor04"
    t0 = time.time()
    k = await counselor(hotline, phones, name)
    try:
        took = await feature_code(hotline, k, "*53", tmp_path / "pause.wav")
        heard = read_wav(tmp_path / "pause.wav")
        assert took > 1.5 and heard.seconds > 1.5 and not is_silent(heard.samples), took
        m = member(hotline, name)
        assert m["paused"] and m["pause_reason"] == "phone" and m["state"] == "paused", m

        took = await feature_code(hotline, k, "*54", tmp_path / "unpause.wav")
        heard = read_wav(tmp_path / "unpause.wav")
        assert took > 1.5 and heard.seconds > 1.5 and not is_silent(heard.samples), took
        m = member(hotline, name)
        assert not m["paused"] and m["state"] == "idle", m
    finally:
        if member(hotline, name)["paused"]:
            await api(hotline, "POST", f"/api/counselors/{name}/unpause")
    events = rows_where(
        hotline, "SELECT * FROM counselor_events WHERE member=? AND at>=?", name, t0
    )
    assert [(e["field"], e["old"], e["new"], e["reason"]) for e in events] == [
        ("paused", "false", "true", "phone"),
        ("paused", "true", "false", "phone"),
    ], events
    assert not (await hotline.ari.get("channels"))


# --------------------------------------------------------------------------- 9. admin CLI
async def ivr_admin(hotline: Hotline, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ)
    env["IVR120_STATE_DIR"] = str(hotline.settings.state_dir)
    env["IVR120_STATUS_PORT"] = str(hotline.settings.status_port)
    env["PYTHONPATH"] = str(PROJECT_ROOT)  # this checkout's code, not the installed script's
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivr.admin",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=PROJECT_ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_admin_cli_lists_pauses_and_unpauses(clean_hotline: Hotline) -> None:
    hotline = clean_hotline
    secrets_file = hotline.settings.state_dir / "secrets.json"
    secrets_before = secrets_file.read_bytes()
    t0 = time.time()

    rc, out, err = await ivr_admin(hotline, "counselors")
    assert rc == 0, err
    assert "상담사 member" in out and "휴식 paused" in out and "상태 state" in out, out
    for c in (*COUNSELORS, "agent01"):
        assert c in out, out

    try:
        rc, out, err = await ivr_admin(hotline, "pause", "counselor08", "--reason", "training")
        assert rc == 0, err
        m = member(hotline, "counselor08")
        assert m["paused"] and m["pause_reason"] == "training" and m["state"] == "paused", m
        rc, out, err = await ivr_admin(hotline, "counselors")
        line = next(x for x in out.splitlines() if x.startswith("counselor08"))
        assert "training" in line and "paused" in line, line
    finally:
        rc, out, err = await ivr_admin(hotline, "unpause", "counselor08")
    assert rc == 0, err
    m = member(hotline, "counselor08")
    assert not m["paused"] and m["state"] == "idle", m
    events = rows_where(
        hotline, "SELECT * FROM counselor_events WHERE member=? AND at>=?", "counselor08", t0
    )
    assert [(e["new"], e["reason"]) for e in events] == [("true", "training"), ("false", "admin")]

    rc, out, err = await ivr_admin(hotline, "pause", "counselor99")
    assert rc == 1, (rc, out, err)
    assert "counselor99" in err and "없는 상담사" in err, err

    # A tool that reads the admin token must not rewrite the service's secrets file.
    assert secrets_file.read_bytes() == secrets_before, "ivr-admin rewrote secrets.json"


# --------------------------------------------------------------------------- 10. softphone
class Console:
    """The console softphone as a subprocess, read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    async def expect(self, text: str, timeout: float = 15) -> str:
        def found() -> str | None:
            return next((x for x in self.lines if text in x), None)

        try:
            return await until(found, timeout=timeout, what=f"softphone line {text!r}")  # type: ignore[no-any-return]
        except BaseException:
            print("\n".join(self.lines))
            raise

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader
        if self.proc.stdin is not None:
            self.proc.stdin.close()


async def test_console_softphone_headless_answer_and_abuse_end(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    number = "0299991010"
    name = "counselor06"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("IVR120_SIP_PASSWORD", None)
    password_file = tmp_path / "sip-password"
    password_file.write_text(hotline.password(name) + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivr.phone.softphone",
        "--user",
        name,
        "--password-file",
        str(password_file),
        "--server",
        hotline.domain,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=PROJECT_ROOT,
    )
    console = Console(proc)
    hashed = None
    try:
        await console.expect("등록되었습니다", timeout=20)
        await hotline.wait_endpoint(name, "online")
        c1, id1 = await dial(hotline, phones, "caller", number=number)
        await choose_line(hotline, c1, id1)
        incoming = await console.expect("전화가 왔습니다", timeout=30)
        details = await console.expect("메뉴 ")

        await console.send("a")
        await console.expect("통화 중입니다.")
        await hotline.wait_state(id1, CONNECTED, timeout=10)
        assert member(hotline, name)["state"] == "busy"

        await console.send("x")
        await console.expect("폭언 종료")
        await c1.wait_for("call_state", state="DISCONNECTED", timeout=20)
        await console.expect("통화가 끝났습니다.")
        row = await hotline.wait_row(id1)
        hashed = row["caller_hash"]
        assert row["outcome"] == "abuse_ended" and row["member"] == name, row
        assert rows_where(hotline, "SELECT * FROM caller_flags WHERE call_id=?", id1)

        await console.send("q")
        rc = await asyncio.wait_for(proc.wait(), 15)
        assert rc == 0
        await console.expect("종료합니다.")
        output = "\n".join(console.lines)
        assert number not in output and number[1:] not in output, output
        # What the hotline knows about the call, from the INVITE's X-IVR120-* headers.
        assert "외로움안녕 상담" in incoming and "loneliness" not in incoming, incoming
        assert "메뉴 5" in details and "대기 " in details and "초" in details, details
        assert "처음 전화한 번호" in details and "주의 표시 없음" in details, details
    finally:
        await console.stop()
        if hashed:
            await api(hotline, "DELETE", f"/api/flags/{hashed}")
