"""End to end against a real Asterisk: follow-up calls (issue 10, tests 1 to 6).

A staff member's pjsua2 phone rings with the task; when they answer, the controller dials the
citizen on the outbound trunk, where the `citizen` phone answers (whatever number is dialled).
Tests 1 and 3 start from a waiting caller's key 1 and a counselor's `*8`, test 4 from a referral
recorded on a live call, test 5 from a companion enrolment with `ivr-admin`; the others put
their task in the database through the records API (as a request made during a call does); the
follow-up settings of each test (calling hours round the clock, a short back-off, monitoring
0 days after a referral) are the settings the dialler reads at run time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shlex
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.configs import followup_config
from ivr.flow import call as flow
from ivr.followup import model
from ivr.followup.journey import State as FState
from ivr.followup.records import FollowupRecords
from ivr.followup.referrals import refer
from ivr.keys import AGENCIES
from ivr.phone.audio import is_silent, read_wav, tone_present
from ivr.privacy import caller_hash
from tests.conftest import (
    CALLER_TONE,
    CITIZEN_NUMBER,
    COMPANIONS,
    COUNSELOR_TONE,
    SOCIAL_WORKERS,
    Hotline,
    PhoneFactory,
)
from tests.e2e_ringgroup_support import (
    api,
    choose_line,
    counselor,
    dial,
    feature_code,
    ivr_admin,
    member,
    record_for,
    rows_where,
    until,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def followup(clean_hotline: Hotline) -> AsyncIterator[Hotline]:
    """The hotline dialling follow-ups at any hour with a short back-off (restored after),
    the open tasks other tests of the session left cancelled first."""
    ctrl = clean_hotline.controller
    records = FollowupRecords(ctrl.ctx.store)
    for ep in (*SOCIAL_WORKERS, *COMPANIONS):  # no team phone of an earlier test still there
        await clean_hotline.wait_endpoint(ep, "offline", timeout=15)

    async def cancel_left_over() -> None:
        for task in await records.tasks(status=model.Status.OPEN):
            now = ctrl.clock()
            await records.close(task.id, model.Status.CANCELLED, "cancelled", now, "test")

    await ctrl.submit(cancel_left_over)
    before = ctrl.ctx.settings
    ctrl.ctx.settings = dataclasses.replace(
        before,
        followup_calling_start="00:00",
        followup_calling_end="23:59",
        followup_backoff=("1",),
        followup_max_attempts=2,
        # The summary question (on by default) is tests/test_e2e_followup_summary.py's: here
        # the citizen talks with the staff member as soon as the opt-out notice is over.
        followup_summary_consent=False,
    )
    await dialling(clean_hotline, "resume")  # the session's hotline starts paused
    try:
        yield clean_hotline
    finally:
        await dialling(clean_hotline, "pause", "--reason", "end of a follow-up test")
        ctrl.ctx.settings = before


async def dialling(hotline: Hotline, action: str, *args: str) -> None:
    """Pause or resume the follow-up dialling as an operator does (`ivr-admin followup`)."""
    rc, out, err = await ivr_admin(hotline, "followup", action, *args)
    assert rc == 0, (out, err)
    assert ("모두 멈춤 all paused" if action == "pause" else "전화 거는 중 dialling") in out, out


@pytest.fixture
def spy(hotline: Hotline) -> Iterator[list[Any]]:
    seen: list[Any] = []
    with hotline.watch(seen.append):
        yield seen


#: A made-up number (never a real one) for the citizen who opts out: an opt-out is for good, so
#: it must not be the session's CITIZEN_NUMBER other tests call (the citizen phone answers any).
OPTING_OUT_NUMBER = "0299990009"
#: The waiting caller who asks for a callback (the citizen phone answers it on the trunk).
CALLBACK_NUMBER = "0299995601"
#: The caller whose counselor asks for an in-depth call (`*8`).
IN_DEPTH_NUMBER = "0299995602"
#: The callers referred to an agency (one per monitoring outcome), and the companion's citizen.
MONITORING_NUMBERS = {"1": "0299995603", "4": "0299995604"}
COMPANION_NUMBER = "0299995605"


async def add_task(
    hotline: Hotline, type_: model.TaskType, number: str = CITIZEN_NUMBER
) -> tuple[int, str]:
    """A task for the citizen's number, sealed as a request during a call seals it."""
    ctx = hotline.controller.ctx
    hashed = caller_hash(number, ctx.hash_key)
    purpose = model.seal_purpose(hashed)
    sealed = ctx.sealer.seal(number, purpose)
    records = FollowupRecords(ctx.store)
    now = ctx.clock()

    async def add() -> int:
        task_id, _ = await records.add_or_merge(
            type_, hashed, sealed, purpose, now, now, call_id="test", requested_by="caller"
        )
        return task_id

    return await hotline.controller.submit(add), hashed


def task_row(hotline: Hotline, task_id: int) -> dict[str, Any]:
    return rows_where(hotline, "SELECT * FROM followup_tasks WHERE id=?", task_id)[0]


def attempts(hotline: Hotline, task_id: int) -> list[dict[str, Any]]:
    return rows_where(
        hotline, "SELECT * FROM followup_attempts WHERE task_id=? ORDER BY id", task_id
    )


async def followup_call(hotline: Hotline, timeout: float = 30, task_id: int | None = None) -> Any:
    """The controller's outbound follow-up call (of `task_id` if given)."""

    async def find() -> Any:
        while True:
            for call in hotline.controller.calls.values():
                if call.flow.__class__.__name__ == "FollowupCall" and (
                    task_id is None or call.flow.task.id == task_id
                ):
                    return call
            await asyncio.sleep(0.05)

    async with asyncio.timeout(timeout):
        return await find()


async def test_waiting_caller_presses_1_counselor_calls_back_audio_both_ways_reached(
    followup: Hotline,
    phones: PhoneFactory,
    citizen: Any,
    tones: dict[str, Path],
    spy: list[Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    hotline = followup
    await citizen.auto_answer()
    # A caller waits with nobody to answer: the callback is offered at once; they press 1.
    caller, waiting_id = await dial(hotline, phones, "caller", number=CALLBACK_NUMBER)
    await choose_line(hotline, caller, waiting_id)
    await hotline.wait_play(spy, waiting_id, "callback_offer", timeout=45)
    await caller.dtmf("1")
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=30)
    (task,) = await until(
        lambda: rows_where(hotline, "SELECT * FROM followup_tasks WHERE call_id=?", waiting_id),
        what="the callback task",
    )
    task_id, hashed = task["id"], task["caller_hash"]
    assert (task["type"], task["status"]) == ("callback", "open")
    # A counselor becomes free: their phone rings with the task.
    c1 = await counselor(hotline, phones, "counselor01", auto_answer=True)
    incoming = await c1.wait_for("incoming", timeout=30)
    headers = incoming["headers"]
    assert headers.get("X-IVR120-Task") == str(task_id)
    assert headers.get("X-IVR120-Type") == "callback"
    assert headers.get("X-IVR120-Attempt") == "1"
    assert CALLBACK_NUMBER not in str(incoming)  # never the number on the staff phone
    call = await followup_call(hotline)
    rang = await citizen.wait_for("incoming", timeout=30)
    assert hotline.settings.service_caller_id in rang["from"]
    await citizen.wait_for("call_state", state="CONFIRMED", timeout=10)
    await citizen.play(tones["caller"])
    await c1.play(tones["counselor"])
    notice = await hotline.wait_play(spy, call.call_id, "followup_optout_notice")
    await until(
        lambda: notice.playback_id not in hotline.controller.journey.playbacks,
        timeout=30,
        what="the opt-out notice to end",
    )
    assert call.flow.state is FState.CONNECTED
    heard_by_citizen = read_wav(await record_for(citizen, tmp_path / "z.wav", 2.0))
    heard_by_staff = read_wav(await record_for(c1, tmp_path / "k.wav", 2.0))
    assert tone_present(heard_by_citizen.samples, heard_by_citizen.rate, COUNSELOR_TONE)
    assert tone_present(heard_by_staff.samples, heard_by_staff.rate, CALLER_TONE)

    await citizen.hangup()
    await until(lambda: call.flow.state is FState.OUTCOME, timeout=10, what="outcome question")
    await c1.dtmf("1")
    await c1.wait_for("call_state", state="DISCONNECTED", timeout=30)
    row = await until(
        lambda: task_row(hotline, task_id)["status"] != "open" and task_row(hotline, task_id),
        what="the task closed",
    )
    assert (row["status"], row["outcome"]) == ("done", "reached")
    (attempt,) = attempts(hotline, task_id)
    assert attempt["result"] == "reached" and attempt["member"] == "counselor01"
    calls = await hotline.wait_row(call.call_id)
    assert calls["direction"] == "outbound" and calls["task_id"] == task_id
    assert calls["caller_hash"] == hashed and CALLBACK_NUMBER not in calls["caller_hash"]
    # Where the follow-up call ended and the seconds in each stage (the report's
    # followup_endings): they add up to the call; the staff member's wrap-up follows.
    assert calls["ended_in"] == "outcome"
    stages = [calls[f"{s}_seconds"] for s in ("whisper", "dialling", "staff", "outcome")]
    assert all(v is not None and v > 0 for v in stages), stages
    total = sum(stages) + (calls["goodbye_seconds"] or 0)
    assert abs(total - (calls["ended_at"] - calls["started_at"])) < 0.01
    (wrapup,) = await until(
        lambda: [
            r["wrapup_seconds"]
            for r in rows_where(hotline, "SELECT * FROM calls WHERE call_id=?", call.call_id)
            if r["wrapup_seconds"] is not None
        ],
        what="the wrap-up stored",
    )
    assert wrapup == hotline.settings.wrapup_seconds
    assert "dialling the citizen" in caplog.text
    assert CALLBACK_NUMBER not in caplog.text  # never logged


async def test_citizen_not_answering_is_rescheduled_then_unreachable(
    followup: Hotline, phones: PhoneFactory, citizen: Any, tmp_path: Path
) -> None:
    hotline = followup
    task_id, _ = await add_task(hotline, model.TaskType.CALLBACK)
    c1 = await counselor(hotline, phones, "counselor02", auto_answer=True)
    for n in (1, 2):
        await c1.wait_for("incoming", timeout=30)
        await citizen.wait_for("incoming", timeout=30)
        if n == 1:  # while the citizen's phone rings, the staff member hears ringback
            ringback = read_wav(await record_for(c1, tmp_path / "ringback.wav", 1.5))
            assert not is_silent(ringback.samples), "dead air while the citizen's phone rang"
        await citizen.reject(480)  # temporarily unavailable: nobody answers
        await c1.wait_for("call_state", state="DISCONNECTED", timeout=30)
        await until(lambda n=n: len(attempts(hotline, task_id)) >= n, what=f"attempt {n}")
        if n == 1:
            row = task_row(hotline, task_id)
            assert row["status"] == "open" and row["attempts"] == 1
    row = await until(
        lambda: task_row(hotline, task_id)["status"] != "open" and task_row(hotline, task_id),
        what="the task closed",
    )
    assert (row["status"], row["outcome"]) == ("unreachable", "unreachable")
    assert [a["result"] for a in attempts(hotline, task_id)] == ["no_answer", "no_answer"]
    assert all(a["sip_cause"] for a in attempts(hotline, task_id))


async def test_opt_out_key_stops_every_follow_up_call(
    followup: Hotline, phones: PhoneFactory, citizen: Any, spy: list[Any]
) -> None:
    hotline = followup
    await citizen.auto_answer()
    task_id, hashed = await add_task(hotline, model.TaskType.WELFARE, OPTING_OUT_NUMBER)
    c1 = await counselor(hotline, phones, "counselor03", auto_answer=True)
    await citizen.wait_for("call_state", state="CONFIRMED", timeout=60)
    call = await followup_call(hotline)
    await until(lambda: call.flow.state is FState.CONNECTED, what="connected")
    await citizen.dtmf("9")
    await hotline.wait_play(spy, call.call_id, "followup_optout_confirm")
    await until(
        lambda: rows_where(hotline, "SELECT * FROM followup_optouts WHERE caller_hash=?", hashed),
        what="the opt-out row",
    )
    assert task_row(hotline, task_id)["status"] == "opted_out"
    await citizen.hangup()
    await c1.wait_for("call_state", state="DISCONNECTED", timeout=30)
    # A new request for the same citizen is never offered.
    again, _ = await add_task(hotline, model.TaskType.CALLBACK, OPTING_OUT_NUMBER)
    ctrl = hotline.controller
    await ctrl.submit(ctrl.followup.cycle)
    assert not ctrl.followup.offers
    assert task_row(hotline, again)["attempts"] == 0
    assert not attempts(hotline, again)


async def test_star_8_in_depth_task_is_served_by_a_social_worker_not_a_counselor(
    followup: Hotline, phones: PhoneFactory, citizen: Any, spy: list[Any]
) -> None:
    hotline = followup
    await citizen.auto_answer()
    # The counselor asks the caller, who agrees; `*8` stores the request.
    k4 = await counselor(hotline, phones, "counselor04", auto_answer=True)
    caller, call_id = await dial(hotline, phones, "caller", number=IN_DEPTH_NUMBER)
    await choose_line(hotline, caller, call_id)
    await hotline.wait_state(call_id, flow.State.CONNECTED, timeout=60)
    await k4.dtmf("*8")
    await hotline.wait_play(spy, call_id, "staff_callback_ack")
    await caller.hangup()
    await k4.wait_for("call_state", state="DISCONNECTED", timeout=30)
    (task,) = await until(
        lambda: rows_where(hotline, "SELECT * FROM followup_tasks WHERE call_id=?", call_id),
        what="the in-depth task",
    )
    assert (task["type"], task["team"]) == ("in_depth", "social_workers")
    task_id = task["id"]
    rung_before = len([e for e in k4.events if e.get("event") == "incoming"])
    # A social worker is free: the task is theirs (the free counselor is never rung for it).
    s1 = await counselor(hotline, phones, "social01", auto_answer=True)
    incoming = await s1.wait_for("incoming", timeout=30)
    assert incoming["headers"].get("X-IVR120-Type") == "in_depth"
    call = await followup_call(hotline)
    await citizen.wait_for("call_state", state="CONFIRMED", timeout=30)
    assert call.flow.member == "social01"
    await hotline.wait_play(spy, call.call_id, "followup_optout_notice")  # bridged by now
    await citizen.hangup()
    await until(lambda: call.flow.state is FState.OUTCOME, timeout=10, what="outcome question")
    await s1.dtmf("1")
    await s1.wait_for("call_state", state="DISCONNECTED", timeout=30)
    row = await until(
        lambda: task_row(hotline, task_id)["status"] != "open" and task_row(hotline, task_id),
        what="the task closed",
    )
    assert (row["status"], row["outcome"]) == ("done", "reached")
    assert [a["member"] for a in attempts(hotline, task_id)] == ["social01"]
    assert len([e for e in k4.events if e.get("event") == "incoming"]) == rung_before


async def admin(hotline: Hotline, line: str, number: str) -> str:
    """`ivr-admin LINE` (this checkout's) succeeds and never shows the citizen's `number`."""
    rc, out, err = await ivr_admin(hotline, *shlex.split(line))
    assert rc == 0, (line, out, err)
    assert number not in out + err, (line, out, err)
    return out


async def answered_talked_and_outcome(
    hotline: Hotline,
    spy: list[Any],
    citizen: Any,
    staff: Any,
    task_id: int,
    key: str | None,
    menu: str = "followup_outcome_menu",
) -> Any:
    """The ringing staff member answered: the citizen answers, is bridged (the opt-out notice
    plays), hangs up; the staff member hears the outcome `menu` and sets the outcome with
    `key` (None: hangs up without one, the default outcome applies). Returns the call."""
    await staff.wait_for("call_state", state="CONFIRMED", timeout=30)
    call = await followup_call(hotline, task_id=task_id)
    await citizen.wait_for("incoming", timeout=30)
    await citizen.wait_for("call_state", state="CONFIRMED", timeout=30)
    await hotline.wait_play(spy, call.call_id, "followup_optout_notice")  # bridged by now
    await citizen.hangup()
    await citizen.wait_for("call_state", state="DISCONNECTED", timeout=10)
    await until(lambda: call.flow.state is FState.OUTCOME, timeout=10, what="outcome question")
    await hotline.wait_play(spy, call.call_id, menu, timeout=10)
    if key is None:
        await staff.hangup()
    else:
        await staff.dtmf(key)
    await staff.wait_for("call_state", state="DISCONNECTED", timeout=30)
    return call


def closed_row(hotline: Hotline, task_id: int) -> Any:
    row = task_row(hotline, task_id)
    return row["status"] != "open" and row


@pytest.mark.parametrize(
    ("key", "referral", "outcome"), [("1", "confirmed", "reached"), ("4", "failed", "not_linked")]
)
async def test_referral_monitoring_call_outcome_key_updates_the_referral(
    followup: Hotline,
    phones: PhoneFactory,
    citizen: Any,
    spy: list[Any],
    key: str,
    referral: str,
    outcome: str,
) -> None:
    hotline = followup
    ctrl = hotline.controller
    ctrl.ctx.settings = dataclasses.replace(ctrl.ctx.settings, monitoring_after_days=0)
    number = MONITORING_NUMBERS[key]
    await citizen.auto_answer()
    # During a call the counselor records a referral (what POST /api/referrals does, with the
    # settings of this test: the monitoring call is due 0 days later).
    caller, call_id = await dial(hotline, phones, "caller", number=number)
    await until(
        lambda: rows_where(hotline, "SELECT 1 FROM calls WHERE call_id=?", call_id),
        what="the call's row",
    )

    async def add_referral() -> Any:
        return await refer(
            ctrl.ctx.store,
            FollowupRecords(ctrl.ctx.store),
            hotline.app[AGENCIES].current,
            call_id=call_id,
            agency="mapo-meals",
            now=ctrl.clock(),
            config=followup_config(ctrl.ctx.settings),
            by="counselor04",
            live_number=ctrl.calls[call_id].number,
            sealer=ctrl.ctx.sealer,
        )

    referred = await ctrl.submit(add_referral)
    ref_id, task_id = referred.referral.id, referred.task_id
    assert referred.dialable and not referred.merged, referred
    task = task_row(hotline, task_id)
    assert (task["type"], task["team"], task["referral_id"]) == (
        "monitoring",
        "social_workers",
        ref_id,
    )
    assert task["due_at"] == pytest.approx(task["created_at"])  # 0 days after the referral
    await caller.hangup()
    await hotline.wait_row(call_id)
    # A social worker is free: the monitoring call is theirs; they set the outcome by key.
    s2 = await counselor(hotline, phones, SOCIAL_WORKERS[1], auto_answer=True)
    incoming = await s2.wait_for("incoming", timeout=30)
    assert incoming["headers"].get("X-IVR120-Task") == str(task_id)
    assert incoming["headers"].get("X-IVR120-Type") == "monitoring"
    assert number not in str(incoming)
    # They hear the monitoring call's outcome menu (4 = the referral did not work).
    menu = "followup_outcome_menu_monitoring"
    await answered_talked_and_outcome(hotline, spy, citizen, s2, task_id, key, menu)
    row = await until(lambda: closed_row(hotline, task_id), what="the task closed")
    assert (row["status"], row["outcome"]) == ("done", outcome)
    (attempt,) = attempts(hotline, task_id)
    assert (attempt["result"], attempt["member"]) == ("reached", SOCIAL_WORKERS[1])
    (ref,) = await until(
        lambda: rows_where(
            hotline, "SELECT * FROM referrals WHERE id=? AND status=?", ref_id, referral
        ),
        what=f"the referral {referral}",
    )
    assert ref["call_id"] == call_id


class Cycles:
    """Counts the dialler's cycles (one per controller tick) and notes, after each, the
    tasks that were offered (ringing or answered) and to whom."""

    def __init__(self, hotline: Hotline, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.offered: set[tuple[int, str]] = set()
        dialler = hotline.controller.followup
        cycle = dialler.cycle

        async def counted() -> None:
            await cycle()
            self.offered |= {(o.task.id, o.member) for o in dialler.offers.values()}
            self.count += 1

        monkeypatch.setattr(dialler, "cycle", counted)


async def test_companion_series_calls_the_same_companion_and_waits_while_they_are_away(
    followup: Hotline,
    phones: PhoneFactory,
    citizen: Any,
    spy: list[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hotline = followup
    mine, other = COMPANIONS[1], COMPANIONS[0]  # the other one comes first in ring order
    await citizen.auto_answer()
    caller, call_id = await dial(hotline, phones, "caller", number=COMPANION_NUMBER)
    await until(
        lambda: rows_where(hotline, "SELECT 1 FROM calls WHERE call_id=?", call_id),
        what="the call's row",
    )
    out = await admin(
        hotline,
        f"companion enrol {call_id} --companion {mine} --every 7d --at '화 15:00'",
        COMPANION_NUMBER,
    )
    assert out.startswith("동행을 시작했습니다 enrolled"), out
    await caller.hangup()
    await hotline.wait_row(call_id)
    [series] = rows_where(hotline, "SELECT * FROM companion_series WHERE call_id=?", call_id)
    [first] = rows_where(hotline, "SELECT * FROM followup_tasks WHERE series_id=?", series["id"])
    assert (first["member"], first["status"]) == (mine, "open") and first["due_at"] > time.time()
    # Both companions are free; the first call of the series is made due now.
    c_other = await counselor(hotline, phones, other)  # an offer to them would stay ringing
    c_mine = await counselor(hotline, phones, mine, auto_answer=True)
    await admin(hotline, f"followup reschedule {first['id']} --due now", COMPANION_NUMBER)
    incoming = await c_mine.wait_for("incoming", timeout=30)
    assert incoming["headers"].get("X-IVR120-Task") == str(first["id"])
    assert incoming["headers"].get("X-IVR120-Type") == "companion"
    await answered_talked_and_outcome(hotline, spy, citizen, c_mine, first["id"], "1")
    row = await until(lambda: closed_row(hotline, first["id"]), what="the first task closed")
    assert (row["status"], row["outcome"]) == ("done", "reached")
    # The series' next task: the same companion, a week on; made due now below.
    (second,) = await until(
        lambda: rows_where(
            hotline,
            "SELECT * FROM followup_tasks WHERE series_id=? AND status='open'",
            series["id"],
        ),
        what="the series' next task",
    )
    assert second["member"] == mine and second["due_at"] > time.time()

    # The companion logs out (*52): the due call waits for them, it is not handed to the other.
    try:
        await feature_code(hotline, c_mine, "*52", tmp_path / "out.wav")
        assert not member(hotline, mine)["logged_in"]
        assert member(hotline, other)["logged_in"] and not member(hotline, other)["paused"]
        cycles = Cycles(hotline, monkeypatch)
        await admin(hotline, f"followup reschedule {second['id']} --due now", COMPANION_NUMBER)
        records = FollowupRecords(hotline.controller.ctx.store)
        due = await hotline.controller.submit(
            lambda: records.due(model.Team.COMPANIONS, time.time(), limit=10)
        )
        assert second["id"] in [t.id for t in due]  # due, dialable, not locked
        start = cycles.count
        await until(lambda: cycles.count >= start + 4, timeout=30, what="four dialler cycles")
        assert not cycles.offered, cycles.offered
        assert not [e for e in c_other.events if e.get("event") in ("incoming", "busy_rejected")]
        assert task_row(hotline, second["id"])["status"] == "open"
        # Logged in again (*51): their phone rings with the task.
        await feature_code(hotline, c_mine, "*51", tmp_path / "in.wav")
    finally:
        if not member(hotline, mine)["logged_in"]:  # the session's companion as it was
            await api(hotline, "POST", f"/api/counselors/{mine}/login")
    incoming = await c_mine.wait_for("incoming", timeout=30)
    assert incoming["headers"].get("X-IVR120-Task") == str(second["id"])
    # Not offered while the phone was still on the *51 call (it would have turned it away).
    assert not [e for e in c_mine.events if e.get("event") == "busy_rejected"]
    # Their outcome key is heard on this second call too (key 1: reached; the talk was far
    # shorter than `followup_reached_min_talk`, so the default would not say so). It once was
    # not: the phone's idle sound device had closed, see docs/pjsua2.md.
    await answered_talked_and_outcome(hotline, spy, citizen, c_mine, second["id"], "1")
    row = await until(lambda: closed_row(hotline, second["id"]), what="the second task closed")
    assert (row["status"], row["outcome"]) == ("done", "reached")
    assert {o[1] for o in cycles.offered} == {mine}
    # Every attempt of both calls was the same companion's; the other's phone never rang.
    for task_id in (first["id"], second["id"]):
        tried = attempts(hotline, task_id)
        assert {a["member"] for a in tried} == {mine}, tried
        assert [a["result"] for a in tried if a["result"] != "staff_no_answer"] == ["reached"]
    assert not [e for e in c_other.events if e.get("event") in ("incoming", "busy_rejected")]
    (third,) = rows_where(
        hotline, "SELECT * FROM followup_tasks WHERE series_id=? AND status='open'", series["id"]
    )
    assert third["member"] == mine  # the series goes on with the same companion
    await hotline.controller.submit(
        lambda: FollowupRecords(hotline.controller.ctx.store).close(
            third["id"], model.Status.CANCELLED, "cancelled", time.time(), "test"
        )
    )
