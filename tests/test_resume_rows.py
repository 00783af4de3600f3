"""The live calls' snapshots in real SQLite (ivr.resume): written as the journey changes, read
back by the next run exactly as taken, gone with the call record's end (same transaction),
and left open by the restart's blanket close (the next run takes them back or closes them).
Taking a call back whose counselor hung up during the downtime, with the real staff driver
and ring group (the commands recorded instead of carried out against Asterisk)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ivr.config import load_settings
from ivr.configs import ring_group_config
from ivr.context import ActiveCall
from ivr.flow.call import (
    CallerHungUp,
    CallFlow,
    Command,
    Connect,
    Enqueue,
    Finish,
    FlowEvent,
    HangupCaller,
    Outcome,
    Recover,
    State,
)
from ivr.flow.menu import load_menu
from ivr.flow.restore import restore, take
from ivr.paths import CONFIG_DIR
from ivr.resume import LiveCalls, recordings_of, taps_of
from ivr.staff.driver import StaffDriver
from ivr.staff.roster import load_roster
from ivr.store import Store
from tests.flow_support import CONFIG, LEG, connected, connecting, of, one, waiting


def owner(store: Store, tmp_path: Path) -> SimpleNamespace:
    """What LiveCalls reads of its controller: the store, the clock, the run's prefix."""
    return SimpleNamespace(
        store=store,
        clock=lambda: 50.0,
        ctx=SimpleNamespace(leg_prefix="ivr-abc123-"),
        settings=SimpleNamespace(state_dir=tmp_path),
    )


def live_call(flow) -> ActiveCall:  # type: ignore[no-untyped-def]
    return ActiveCall(
        call_id="c1",
        flow=flow,
        caller="h1",
        number="",
        holding_bridge="hold-c1",
        channel_name="PJSIP/caller-00000001",
        flag_level=0,  # the flow was started unflagged (Started(flagged=level > 0))
    )


async def test_a_snapshot_is_read_back_as_taken_and_restores(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "calls.db")
    try:
        await store.call_started("c1", "h1", 0.0)
        flow = waiting()
        call = live_call(flow)
        live = LiveCalls(owner(store, tmp_path))  # type: ignore[arg-type]
        await live.save(call)
        await live.save(call)  # unchanged: not written again
        flow2 = connected()
        call.flow = flow2
        await live.save(call)
        assert (await store.close_left_open(60.0, "controller_restart", 1.0))[0] == 0
        again = LiveCalls(owner(store, tmp_path))  # type: ignore[arg-type]
        await again.load()
        [row] = again._left
        assert row.snap == take(flow2)
        assert (row.caller_hash, row.holding_bridge, row.flag_level) == ("h1", "hold-c1", 0)
        assert row.owner == "ivr-abc123-"
        assert restore(row.snap, CONFIG, 60.0, "r1") is not None
        flow2.handle(CallerHungUp(), 70.0)
        await store.call_ended("c1", flow2.record)
        await live.save(call)  # ended: nothing written again
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "calls.db") as db:
        assert db.execute("SELECT COUNT(*) FROM live_calls").fetchone() == (0,)
        assert db.execute("SELECT outcome FROM calls").fetchall() == [("completed",)]


async def test_a_snapshot_whose_caller_is_gone_closes_its_record_once(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "calls.db")
    try:
        await store.call_started("c1", "h1", 0.0)
        ctrl = owner(store, tmp_path)
        await LiveCalls(ctrl).save(live_call(waiting()))  # type: ignore[arg-type]
        again = LiveCalls(ctrl)  # type: ignore[arg-type]
        await again.load()
        ctrl.calls = {}
        await again.adopt([])  # Asterisk has no such channel any more
        await again.adopt([])  # a reconnect later: nothing left to take back or close
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "calls.db") as db:
        assert db.execute("SELECT COUNT(*) FROM live_calls").fetchone() == (0,)
        rows = db.execute("SELECT outcome, end_reason, ended_at FROM calls").fetchall()
    assert rows == [("error", "controller_restart", 50.0)]


WRAPUP = 20.0


class Restarted:
    """A restarted controller's parts that taking back uses: the real staff driver (its ring
    groups), a clock at 50 s, the commands recorded (a Finish ends the call)."""

    def __init__(self, store: Store, tmp_path: Path) -> None:
        settings = load_settings(
            env={}, overrides={"state_dir": tmp_path, "wrapup_seconds": WRAPUP}
        )
        self.calls: dict[str, ActiveCall] = {}
        self.ran: list[Command] = []
        ctx: Any = SimpleNamespace(
            settings=settings,
            clock=lambda: 50.0,
            calls=self.calls,
            feed=self.feed,
            store=store,
            leg_prefix="ivr-def456-",
        )
        menu = load_menu(CONFIG_DIR / "menu.toml")
        roster = load_roster(CONFIG_DIR / "roster.toml")
        self.staff = StaffDriver(ctx, menu, roster, ring_group_config(settings))
        self.ctrl: Any = SimpleNamespace(
            store=store,
            clock=ctx.clock,
            ctx=ctx,
            settings=settings,
            calls=self.calls,
            journey=SimpleNamespace(flow_config=CONFIG),
            staff=self.staff,
            effects=self,
            ari=self,
        )

    async def run(self, call: ActiveCall, cmds: list[Command]) -> None:
        self.ran += cmds
        if of(cmds, Finish):
            self.calls.pop(call.call_id, None)

    async def feed(self, call_id: str, event: FlowEvent) -> None:
        call = self.calls.get(call_id)
        if call is not None:
            await self.run(call, call.flow.handle(event, 50.0))

    async def delete(self, path: str) -> None:
        """The dead run's playback and taps: nothing to delete here."""


async def taken_back_without_the_staff_leg(flow: CallFlow, tmp_path: Path) -> Restarted:
    """`flow`'s snapshot taken back by a new run whose Asterisk has the caller but not the
    counselor's leg (the counselor hung up while no controller ran)."""
    store = await Store.open(tmp_path / "calls.db")
    await store.call_started("c1", "h1", 0.0)
    await LiveCalls(owner(store, tmp_path)).save(live_call(flow))  # type: ignore[arg-type]
    new = Restarted(store, tmp_path)
    live = LiveCalls(new.ctrl)
    await live.load()
    assert take(flow).staff_leg == LEG
    channel = {"id": "c1", "name": "PJSIP/caller-00000001", "caller": {"number": ""}}
    assert await live.adopt([channel]) == {"c1"}  # reconcile leaves it, ended or not
    await store.close()
    return new


async def test_a_counselor_who_hung_up_during_the_downtime_is_released(tmp_path: Path) -> None:
    new = await taken_back_without_the_staff_leg(connected(), tmp_path)
    group = new.staff.groups["loneliness"]
    assert "counselor01" not in group.busy_members()
    assert new.staff.legs == {}
    # The call ended as the counselor's hang-up ends it.
    assert HangupCaller() in new.ran and one(new.ran, Finish).outcome is Outcome.COMPLETED
    assert of(new.ran, Connect) == [] and of(new.ran, Recover) == []
    assert "c1" not in new.calls
    # The counselor is in wrap-up, then offered calls again.
    assert group.counselor("counselor01").wrapup_until == 50.0 + WRAPUP
    assert "counselor01" not in group.free_members({"counselor01"}, 50.0 + WRAPUP - 1)
    assert "counselor01" in group.free_members({"counselor01"}, 50.0 + WRAPUP)


async def test_a_caller_whose_counselor_hung_up_during_the_whisper_waits_again(
    tmp_path: Path,
) -> None:
    flow, _ = connecting()
    queued_at = flow.record.queued_at
    new = await taken_back_without_the_staff_leg(flow, tmp_path)
    assert new.calls["c1"].flow.state is State.WAITING
    assert of(new.ran, Connect) == [] and of(new.ran, Recover) == []
    assert one(new.ran, Enqueue) == Enqueue("loneliness", queued_at or -1.0)
    assert "counselor01" not in new.staff.groups["loneliness"].busy_members()
    assert new.staff.legs == {}


def test_the_dead_runs_taps_are_found_opened_again_too_and_no_other_calls() -> None:
    """A caller's tap closes in the queue and opens again (ids `tap-caller-<id>-N`): taking a
    call back drops each of them, and never the tap of a call whose id merely starts alike."""
    present = [
        "1700.5",
        "tap-caller-1700.5-snoop",
        "tap-caller-1700.5-media",
        "tap-caller-1700.5-2-snoop",
        "tap-caller-1700.5-2-media",
        "tap-caller-1700.55-snoop",  # another call
        "tap-caller-1700.5-x-snoop",  # not a tap of ours
    ]
    assert taps_of(present, "tap-caller-1700.5") == {"tap-caller-1700.5", "tap-caller-1700.5-2"}
    assert taps_of([], "tap-staff-leg1") == {"tap-staff-leg1"}


def test_the_recordings_column_reads_both_layouts() -> None:
    # A release before segments kept party -> name (a hand-over from it reads it so).
    assert recordings_of({"caller": "ivr120-c1-caller", "staff": "ivr120-c1-staff"}) == {
        "ivr120-c1-caller": "caller",
        "ivr120-c1-staff": "staff",
    }
    both = {"ivr120-c1-caller": "caller", "ivr120-c1-caller-2": "caller"}
    assert recordings_of(both) == both
