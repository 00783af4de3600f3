"""The dialler (ivr.followup.dialler) against the in-process fake ARI of
tests/test_adapter_effects.py, for the error paths a real Asterisk won't produce on demand: the
staff phone cannot be rung, the trunk refuses the citizen's call, the lock is held elsewhere.
Real SQLite, real AriClient, real rooms."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from ivr.ari.events import parse_event
from ivr.flow import call as flow
from ivr.followup import model
from ivr.followup.commands import CloseTask, RecordOptOut
from ivr.followup.events import CitizenAnswered, CitizenGone
from ivr.followup.records import FollowupRecords
from ivr.privacy import caller_hash
from tests.conftest import CITIZEN_NUMBER
from tests.test_adapter_effects import MEMBER, Rig, rig  # noqa: F401 - the fixture


@pytest.fixture
def fu(rig: Rig) -> Rig:  # noqa: F811 - the fixture imported above
    """The rig of tests/test_adapter_effects.py, calling at any hour."""
    ctx = rig.controller.ctx
    ctx.settings = dataclasses.replace(
        ctx.settings, followup_calling_start="00:00", followup_calling_end="23:59"
    )
    return rig


async def add_task(fu: Rig, type_: model.TaskType = model.TaskType.CALLBACK) -> int:
    ctx = fu.controller.ctx
    hashed = caller_hash(CITIZEN_NUMBER, ctx.hash_key)
    purpose = model.seal_purpose(hashed)
    now = ctx.clock()
    task_id, _ = await FollowupRecords(fu.store).add_or_merge(
        type_,
        hashed,
        ctx.sealer.seal(CITIZEN_NUMBER, purpose),
        purpose,
        now,
        now - 1,
        call_id="c0",
        requested_by="caller",
    )
    return task_id


async def task(fu: Rig, task_id: int) -> model.Task:
    found = await FollowupRecords(fu.store).task(task_id)
    assert found is not None
    return found


def staff_rings(fu: Rig) -> list[dict[str, str]]:
    return [q for q in fu.fake.sent("POST", "channels") if q["endpoint"] == f"PJSIP/{MEMBER}"]


async def test_a_staff_phone_that_cannot_be_rung_frees_the_task_and_the_member(
    fu: Rig,
) -> None:
    task_id = await add_task(fu)
    fu.fake.script[("POST", "channels")] = 500
    dialler = fu.controller.followup
    await dialler.cycle()
    (ring,) = staff_rings(fu)
    assert ring["appArgs"] == f"followup,{task_id}"
    assert not dialler.offers
    assert (await task(fu, task_id)).locked_by is None
    assert fu.controller.staff.team_group("counselors").external_legs() == {}


async def test_a_task_locked_elsewhere_is_not_offered(fu: Rig) -> None:
    task_id = await add_task(fu)
    records = FollowupRecords(fu.store)
    assert await records.lock(task_id, "another-controller", fu.controller.clock(), 300)
    await fu.controller.followup.cycle()
    assert staff_rings(fu) == []


async def test_callbacks_wait_while_a_caller_waits_inbound(fu: Rig) -> None:
    await add_task(fu)
    fu.controller.staff.groups["loneliness"].enqueue("someone-waiting", 0.0)
    await fu.controller.followup.cycle()
    assert staff_rings(fu) == []


async def test_the_trunk_refusing_the_call_is_the_services_failure_rescheduled_uncounted(
    fu: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr")
    task_id = await add_task(fu)
    leg, call_id = await answered_call(fu)
    whisper = next(c for c, _ in fu.seen if isinstance(c, flow.Play))
    assert whisper.leg_id == leg
    fu.fake.script[("POST", "channels")] = 500  # the citizen's call is refused
    await fu.controller._feed(call_id, flow.PlaybackDone(whisper.playback_id))
    dialled = [q for q in fu.fake.sent("POST", "channels") if "@trunk" in q["endpoint"]]
    assert dialled and dialled[0]["channelId"] == call_id
    assert dialled[0]["callerId"].endswith(f"<{fu.controller.settings.service_caller_id}>")
    await fu.next_input()  # the CitizenGone the failed dial posted
    told = [c for c, _ in fu.seen if isinstance(c, flow.Play) and c.leg_id == leg]
    assert ("followup_not_connected", "followup_rescheduled") in [c.prompts for c in told]
    t = await task(fu, task_id)
    # Not the citizen's attempt: a trunk outage never closes a welfare check unreachable.
    assert (t.status, t.attempts) == (model.Status.OPEN, 0)
    assert t.due_at > fu.controller.clock() and t.locked_by is None
    (attempt,) = await FollowupRecords(fu.store).attempts(task_id)
    assert attempt["result"] == "service_failed" and attempt["member"] == MEMBER
    assert CITIZEN_NUMBER not in caplog.text


async def test_a_welfare_task_ending_unreachable_is_told_to_a_supervisor(fu: Rig) -> None:
    ctx = fu.controller.ctx
    ctx.settings = dataclasses.replace(ctx.settings, followup_max_attempts=1)
    task_id = await add_task(fu, model.TaskType.WELFARE)
    call_id = await whispered_call(fu)
    await fu.controller.followup.channel_gone(call_id, 17)  # the citizen's line is busy
    t = await task(fu, task_id)
    assert (t.status, t.outcome) == (model.Status.UNREACHABLE, "unreachable")
    assert t.alerted_at is not None
    told = fu.fake.sent("PUT", "endpoints/sendMessage")
    assert [m["to"] for m in told] == [f"pjsip:{s}" for s in ctx.settings.supervisors]
    assert f"welfare_unreachable:{task_id}" in told[0]["body"]


async def test_more_help_closes_the_task_and_makes_an_in_depth_task(fu: Rig) -> None:
    task_id = await add_task(fu)
    call_id = await whispered_call(fu)
    await fu.controller._feed(call_id, CitizenAnswered())
    await fu.controller._feed(call_id, CitizenGone(16))  # the citizen hung up
    await fu.controller._feed(call_id, flow.StaffDigit("3"))  # more help needed
    t = await task(fu, task_id)
    assert (t.status, t.outcome) == (model.Status.DONE, "more_help")
    (deep,) = await FollowupRecords(fu.store).tasks(type_=model.TaskType.IN_DEPTH)
    assert deep.status is model.Status.OPEN and deep.caller_hash == t.caller_hash
    assert await FollowupRecords(fu.store).sealed_number(deep.id) is not None
    saved = [c for c, _ in fu.seen if isinstance(c, flow.Play)][-1]
    assert saved.prompts == ("followup_outcome_saved",)
    await fu.controller._feed(call_id, flow.PlaybackDone(saved.playback_id))
    assert call_id not in fu.controller.calls  # finished: taps closed, record written


async def test_a_lost_staff_phone_mid_call_is_not_a_hang_up(fu: Rig) -> None:
    """Asterisk ends the staff leg for lack of media (the ChannelHangupRequest it sends first
    is a soft one by the channel driver; the StasisEnd after it carries no cause): the citizen
    hears they will be called again, and the task is due again soon, not counted."""
    task_id = await add_task(fu)
    leg, call_id = await answered_call(fu)
    whisper = next(c for c, _ in fu.seen if isinstance(c, flow.Play))
    await fu.controller._feed(call_id, flow.PlaybackDone(whisper.playback_id))
    await fu.controller._feed(call_id, CitizenAnswered())
    request = {"type": "ChannelHangupRequest", "cause": 1, "soft": True, "channel": {"id": leg}}
    await fu.controller._on_ari(parse_event(request))
    await fu.controller.followup.channel_gone(leg, 0)  # the StasisEnd
    told = [c for c, _ in fu.seen if isinstance(c, flow.Play)][-1]
    assert told.prompts == ("followup_staff_lost",)
    t = await task(fu, task_id)
    assert t.status is model.Status.OPEN and t.attempts == 0
    [result] = [r[0] for r in fu.rows("SELECT result FROM followup_attempts")]
    assert result == model.AttemptResult.STAFF_LOST
    await fu.controller._feed(call_id, flow.PlaybackDone(told.playback_id))
    assert call_id not in fu.controller.calls  # the citizen let go after the words


async def test_dialling_paused_keeps_the_tasks_and_rings_nobody(fu: Rig) -> None:
    ctx = fu.controller.ctx
    await fu.controller.followup.control.change(list(model.Team), True, "test", None, ctx.clock())
    task_id = await add_task(fu)
    await fu.controller.followup.cycle()
    assert staff_rings(fu) == []
    assert (await task(fu, task_id)).status is model.Status.OPEN


async def answered_call(fu: Rig) -> tuple[str, str]:
    """A task offered and answered by the staff member: (their leg, the call id)."""
    dialler = fu.controller.followup
    await dialler.cycle()
    (leg,) = dialler.offers
    await dialler.staff_answered(leg)
    (call_id,) = fu.controller.calls
    return leg, call_id


async def whispered_call(fu: Rig) -> str:
    """An answered offer whose whisper the staff member has heard (the citizen is dialled
    next): the call id."""
    _, call_id = await answered_call(fu)
    whisper = next(c for c, _ in fu.seen if isinstance(c, flow.Play))
    await fu.controller._feed(call_id, flow.PlaybackDone(whisper.playback_id))
    return call_id


async def test_a_failing_follow_up_record_never_ends_the_call(
    fu: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await add_task(fu)
    _, call_id = await answered_call(fu)
    call = fu.controller.calls[call_id]
    dialler = fu.controller.followup

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(dialler.records, "task", broken)
    fu.controller.effects.retry_delays = ()
    await fu.run(call, RecordOptOut())  # the read after the close fails: logged only
    monkeypatch.setattr(dialler.records, "opt_out", broken)
    await fu.run(call, RecordOptOut())  # the record itself fails: bookkeeping
    await fu.run(call, CloseTask(model.Status.DONE, model.Outcome.REACHED))
    assert not call.flow.ended
    assert call_id in fu.controller.calls
    assert "failure in state" not in caplog.text


async def test_unreadable_contacts_still_ring_the_member_with_none_shown(
    fu: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = await add_task(fu)
    dialler = fu.controller.followup

    async def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(dialler.records, "contacts", broken)
    await dialler.cycle()
    (ring,) = staff_rings(fu)
    assert ring["appArgs"] == f"followup,{task_id}"
    (leg,) = dialler.offers
    await dialler.staff_answered(leg)  # and the call starts
    assert list(fu.controller.calls) == [dialler.offers[leg].call_id]


async def test_a_call_that_cannot_start_hangs_up_the_staff_member(
    fu: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = await add_task(fu)
    dialler = fu.controller.followup
    await dialler.cycle()
    (leg,) = dialler.offers

    def broken() -> None:
        raise ValueError("bad settings")

    monkeypatch.setattr(dialler, "journey_config", broken)
    await dialler.staff_answered(leg)  # no exception escapes
    assert ("DELETE", f"channels/{leg}") in [(m, p) for m, p, _ in fu.fake.requests]
    assert fu.controller.calls == {}
    await dialler.channel_gone(leg, 16)
    assert (await task(fu, task_id)).locked_by is None
    assert fu.controller.staff.team_group("counselors").external_legs() == {}


async def test_a_task_without_a_sealed_number_is_not_the_citizens_attempt(fu: Rig) -> None:
    ctx = fu.controller.ctx
    ctx.settings = dataclasses.replace(ctx.settings, followup_max_attempts=1)
    task_id = await add_task(fu, model.TaskType.WELFARE)
    await fu.store.write(
        "test", "UPDATE followup_tasks SET number_sealed=NULL WHERE id=?", (task_id,)
    )
    await whispered_call(fu)
    await fu.next_input()  # the CitizenGone the dialler posted
    t = await task(fu, task_id)
    assert (t.status, t.attempts) == (model.Status.OPEN, 0)  # not closed unreachable
    (attempt,) = await FollowupRecords(fu.store).attempts(task_id)
    assert attempt["result"] == "service_failed"


async def test_a_task_closed_by_hand_during_the_call_is_not_closed_again(fu: Rig) -> None:
    task_id = await add_task(fu, model.TaskType.WELFARE)
    _, call_id = await answered_call(fu)
    records = FollowupRecords(fu.store)
    now = fu.controller.clock()
    assert await records.close(task_id, model.Status.CANCELLED, "cancelled", now, "admin") == 1
    call = fu.controller.calls[call_id]
    await fu.run(call, CloseTask(model.Status.UNREACHABLE, model.Outcome.UNREACHABLE))
    t = await task(fu, task_id)
    assert (t.status, t.outcome, t.alerted_at) == (model.Status.CANCELLED, "cancelled", None)
    assert fu.fake.sent("PUT", "endpoints/sendMessage") == []


async def test_an_alert_no_supervisor_got_is_sent_again_later(
    fu: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = fu.controller.ctx
    t0 = ctx.clock()
    now = [t0]
    monkeypatch.setattr(ctx, "clock", lambda: now[0])
    task_id = await add_task(fu, model.TaskType.WELFARE)
    records = FollowupRecords(fu.store)
    # Closed unreachable by hand (or at once, anonymous): no supervisor was told.
    await records.close(task_id, model.Status.UNREACHABLE, "unreachable", t0, "admin")
    fu.fake.script[("PUT", "endpoints/sendMessage")] = 500
    dialler = fu.controller.followup
    await dialler.cycle()
    tried = len(fu.fake.sent("PUT", "endpoints/sendMessage"))
    assert tried == len(ctx.settings.supervisors) > 0
    assert (await task(fu, task_id)).alerted_at is None  # not marked told
    now[0] += 1
    await dialler.cycle()  # not retried on every tick
    assert len(fu.fake.sent("PUT", "endpoints/sendMessage")) == tried
    del fu.fake.script[("PUT", "endpoints/sendMessage")]
    now[0] = t0 + 61
    await dialler.cycle()
    assert (await task(fu, task_id)).alerted_at == t0 + 61
    told = fu.fake.sent("PUT", "endpoints/sendMessage")[tried:]
    assert f"welfare_unreachable:{task_id}" in told[0]["body"]
    now[0] = t0 + 200
    await dialler.cycle()  # told once
    assert len(fu.fake.sent("PUT", "endpoints/sendMessage")) == tried + len(told)


async def test_a_call_keeps_its_lock_while_dialling_is_paused(
    fu: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = fu.controller.ctx
    now = [ctx.clock()]
    monkeypatch.setattr(ctx, "clock", lambda: now[0])
    task_id = await add_task(fu)
    await answered_call(fu)
    first = (await task(fu, task_id)).locked_until
    assert first is not None
    await fu.controller.followup.control.change(list(model.Team), True, "test", None, now[0])
    now[0] = first - 5  # the lease nearly over: a long call
    await fu.controller.followup.cycle()
    renewed = await task(fu, task_id)
    assert renewed.locked_by == fu.controller.followup.owner
    assert renewed.locked_until is not None and renewed.locked_until > first
