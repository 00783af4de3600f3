"""End to end against a real Asterisk: follow-up calls (issue 10, tests 1, 2, 3 and 6).

A staff member's pjsua2 phone rings with the task; when they answer, the controller dials the
citizen on the outbound trunk, where the `citizen` phone answers (whatever number is dialled).
Tests 1 and 3 start from a waiting caller's key 1 and a counselor's `*8`; the others put
their task in the database through the records API (as a request made during a call does); the
follow-up
settings of each test (calling hours round the clock, a short back-off) are the settings the
dialler reads at run time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.flow import call as flow
from ivr.followup import model
from ivr.followup.journey import State as FState
from ivr.followup.records import FollowupRecords
from ivr.phone.audio import is_silent, read_wav, tone_present
from ivr.privacy import caller_hash
from tests.conftest import CALLER_TONE, CITIZEN_NUMBER, COUNSELOR_TONE, Hotline, PhoneFactory
from tests.e2e_ringgroup_support import (
    choose_line,
    counselor,
    dial,
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

    async def cancel_left_over() -> None:
        for task in await records.tasks(status=model.Status.OPEN):
            now = ctrl.clock()
            await records.close(task.id, model.Status.CANCELLED, "cancelled", now, "test")

    await ctrl.submit(cancel_left_over)
    before = ctrl.ctx.settings
    ctrl.ctx.settings = dataclasses.replace(
        before,
        followup_dialling=True,
        followup_calling_start="00:00",
        followup_calling_end="23:59",
        followup_backoff=("1",),
        followup_max_attempts=2,
    )
    try:
        yield clean_hotline
    finally:
        ctrl.ctx.settings = before


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


async def followup_call(hotline: Hotline, timeout: float = 30) -> Any:
    async def find() -> Any:
        while True:
            for call in hotline.controller.calls.values():
                if call.flow.__class__.__name__ == "FollowupCall":
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
