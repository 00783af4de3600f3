"""A request stored during a call becomes a follow-up task, through the real SQLite store and the
real callbacks room: created or merged, sealed for the citizen, linked from the callbacks row;
anonymous lines and opted-out citizens; a retried request makes no second task."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from ivr.callbacks.sealing import Callbacks
from ivr.config import Settings
from ivr.configs import flow_config
from ivr.context import ActiveCall, CallContext
from ivr.crypto import Sealer
from ivr.flow import call as flow
from ivr.flow.commands import CallbackConsent, CallbackReason
from ivr.flow.menu import load_menu
from ivr.followup.model import Status, TaskType, Team, seal_purpose
from ivr.followup.planner import AlertKind, alert_on_close
from ivr.followup.records import FollowupRecords
from ivr.followup.requests import NO_NUMBER_NOTE, OPTED_OUT_NOTE
from ivr.paths import PROJECT_ROOT
from ivr.store import Store

NOW = 1_764_000_000.0
NUMBER = "01098765432"
HASH = "hash-citizen"
FLOW = flow_config(Settings(), load_menu(PROJECT_ROOT / "config" / "menu.toml"))


class Rig:
    def __init__(self, store: Store, path: Path) -> None:
        self.store, self.path = store, path
        self.sealer = Sealer(Sealer.new_key())
        self.records = FollowupRecords(store)
        self.now = NOW
        self.settings = Settings()
        ctx = SimpleNamespace(
            store=store, sealer=self.sealer, clock=lambda: self.now, settings=self.settings
        )
        self.room = Callbacks(cast(CallContext, ctx))

    async def request(
        self,
        call_id: str,
        reason: CallbackReason = CallbackReason.MAX_WAIT,
        consent: CallbackConsent = CallbackConsent.CALLER_KEYPRESS,
        by: str | None = None,
        caller: str = HASH,
        number: str = NUMBER,
    ) -> None:
        call = ActiveCall(call_id, flow.CallFlow(call_id, FLOW, 0.0), caller, number)
        await self.room._request(call, flow.RequestCallback(reason, consent, by))

    async def links(self) -> list[tuple[str, int | None]]:
        rows = await self.store.fetch("SELECT call_id, task_id FROM callbacks ORDER BY id")
        return [(r[0], r[1]) for r in rows]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    path = tmp_path / "db.sqlite3"
    store = await Store.open(path)
    try:
        yield Rig(store, path)
    finally:
        await store.close()


async def test_a_callback_request_becomes_an_open_counselor_task_sealed_for_the_citizen(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    await rig.request("call-1")
    (task,) = await rig.records.tasks()
    assert (task.type, task.team, task.status) == (TaskType.CALLBACK, Team.COUNSELORS, Status.OPEN)
    assert task.due_at == NOW and task.created_at == NOW and task.priority == 1
    assert task.caller_hash == HASH and task.call_id == "call-1"
    assert task.requested_by == "caller"
    blob, purpose = await rig.records.sealed_number(task.id) or (b"", "")
    assert purpose == seal_purpose(HASH) and rig.sealer.open(blob, purpose) == NUMBER
    assert await rig.links() == [("call-1", task.id)]
    assert [t.id for t in await rig.records.due(Team.COUNSELORS, NOW, 10)] == [task.id]
    audit = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    assert any(f"callback task {task.id}" in m for m in audit), audit
    assert not any(NUMBER in m for m in audit)
    # The number is nowhere in the clear in the database's files.
    await rig.store.close()
    for file in rig.path.parent.iterdir():
        assert NUMBER.encode() not in file.read_bytes(), file


async def test_a_second_request_merges_into_the_citizens_open_task_and_says_so(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    await rig.request("call-1")
    rig.now += 600
    welfare = (CallbackReason.WELFARE_SILENCE, CallbackConsent.NONE_WELFARE_CHECK)
    await rig.request("call-2", *welfare)
    (task,) = await rig.records.tasks()
    # The welfare check is the more urgent: it wins; the due time stays the earlier one.
    assert task.type is TaskType.WELFARE and task.priority == 0 and task.due_at == NOW
    assert await rig.links() == [("call-1", task.id), ("call-2", task.id)]
    audit = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    assert any(f"merged into task {task.id}" in m for m in audit), audit
    # The counselor's *8 is the social workers' need: a task of its own.
    await rig.request(
        "call-2", CallbackReason.SOCIAL_WORKER, CallbackConsent.VERBAL_TO_COUNSELOR, "counselor01"
    )
    in_depth = await rig.records.tasks(team=Team.SOCIAL_WORKERS)
    assert [(t.type, t.requested_by, t.due_at) for t in in_depth] == [
        (TaskType.IN_DEPTH, "counselor01", NOW + 600)
    ]


async def test_a_retried_request_finds_its_task_instead_of_making_another(rig: Rig) -> None:
    """The bookkeeping policy retries the whole command when the callbacks row fails: the task
    written the first time is found again."""
    welfare = (CallbackReason.WELFARE_SILENCE, CallbackConsent.NONE_WELFARE_CHECK)
    await rig.request("call-1", *welfare, caller="anonymous", number="")
    await rig.request("call-1", *welfare, caller="anonymous", number="")
    await rig.request("call-2")
    await rig.request("call-2")
    tasks = await rig.records.tasks(limit=10)
    assert sorted(t.call_id or "" for t in tasks) == ["call-1", "call-2"]
    by_call = {t.call_id: t.id for t in tasks}
    assert await rig.links() == [
        ("call-1", by_call["call-1"]),
        ("call-1", by_call["call-1"]),
        ("call-2", by_call["call-2"]),
        ("call-2", by_call["call-2"]),
    ]


async def test_an_anonymous_line_gets_a_task_closed_unreachable_that_a_supervisor_sees(
    rig: Rig,
) -> None:
    welfare = (CallbackReason.WELFARE_SILENCE, CallbackConsent.NONE_WELFARE_CHECK)
    await rig.request("call-1", *welfare, caller="anonymous", number="")
    (task,) = await rig.records.tasks()
    assert task.type is TaskType.WELFARE and task.status is Status.UNREACHABLE
    assert task.outcome == "unreachable" and task.closed_by == "system"
    assert task.note == NO_NUMBER_NOTE and task.requested_by == "system"
    assert await rig.records.sealed_number(task.id) is None
    assert await rig.records.due(Team.COUNSELORS, NOW + 1, 10) == []
    alert = alert_on_close(task, task.status)
    assert alert is not None and alert.kind is AlertKind.WELFARE_UNREACHABLE
    (callback,) = await rig.store.callbacks()
    assert callback.number_sealed is None


async def test_an_opted_out_citizen_asking_for_a_callback_is_called_but_not_for_welfare(
    rig: Rig,
) -> None:
    await rig.records.opt_out(HASH, NOW - 100, "call-0", "key")
    welfare = (CallbackReason.WELFARE_SILENCE, CallbackConsent.NONE_WELFARE_CHECK)
    await rig.request("call-1", *welfare)
    (closed,) = await rig.records.tasks()
    assert closed.status is Status.OPTED_OUT and closed.note == OPTED_OUT_NOTE
    assert await rig.records.opted_out(HASH)
    # Their own key 1 is a new wish to be called: the opt-out is lifted and the task is due.
    await rig.request("call-2")
    assert not await rig.records.opted_out(HASH)
    (due,) = await rig.records.due(Team.COUNSELORS, NOW, 10)
    assert due.type is TaskType.CALLBACK and due.call_id == "call-2"


async def test_an_in_depth_request_on_a_later_call_lifts_the_opt_out(rig: Rig) -> None:
    await rig.records.opt_out(HASH, NOW - 100, "call-0", "key")
    in_depth = (CallbackReason.SOCIAL_WORKER, CallbackConsent.VERBAL_TO_COUNSELOR)
    await rig.request("call-1", *in_depth, by="counselor01")
    assert not await rig.records.opted_out(HASH)
    (due,) = await rig.records.due(Team.SOCIAL_WORKERS, NOW, 10)
    assert due.type is TaskType.IN_DEPTH and due.call_id == "call-1"


async def test_a_request_on_the_call_the_citizen_opted_out_on_does_not_lift_it(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    # Key 9 on follow-up call fu-1, then the staff member's `*8` on the same call.
    await rig.records.opt_out(HASH, NOW - 30, "fu-1", "key")
    in_depth = (CallbackReason.SOCIAL_WORKER, CallbackConsent.VERBAL_TO_COUNSELOR)
    await rig.request("fu-1", *in_depth, by="social01")
    assert await rig.records.opted_out(HASH)
    (kept,) = await rig.records.tasks()
    assert kept.type is TaskType.IN_DEPTH and kept.status is Status.OPTED_OUT
    assert kept.outcome == "opted_out" and kept.note == OPTED_OUT_NOTE
    assert kept.requested_by == "social01"  # the worklist shows the request arrived
    assert await rig.links() == [("fu-1", kept.id)]
    assert await rig.records.due(Team.SOCIAL_WORKERS, NOW + 1, 10) == []
    audit = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    assert any("kept closed: they opted out (call fu-1)" in m for m in audit), audit


async def test_a_lift_the_database_cannot_take_now_does_not_lose_the_request(
    rig: Rig, tmp_path: Path
) -> None:
    import sqlite3

    await rig.records.opt_out(HASH, NOW - 100, "call-0", "key")
    await rig.store.fetch("PRAGMA busy_timeout=0")
    locker = sqlite3.connect(rig.path, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        await rig.request("call-1")  # the lift, the task and the callbacks row all wait
    finally:
        locker.rollback()
        locker.close()
    assert await rig.store.flush()
    assert not await rig.records.opted_out(HASH)
    (due,) = await rig.records.due(Team.COUNSELORS, NOW, 10)
    assert due.type is TaskType.CALLBACK and due.call_id == "call-1"


async def test_with_follow_up_off_the_request_is_only_a_callbacks_row(rig: Rig) -> None:
    rig.settings = Settings(followup_enabled=False)
    rig.room.ctx.settings = rig.settings
    await rig.request("call-1")
    assert await rig.records.tasks() == []
    assert await rig.links() == [("call-1", None)]
