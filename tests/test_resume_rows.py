"""The live calls' snapshots in real SQLite (ivr.resume): written as the journey changes, read
back by the next run exactly as taken, gone with the call record's end (same transaction),
and left open by the restart's blanket close (the next run takes them back or closes them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

from ivr.context import ActiveCall
from ivr.flow.call import CallerHungUp
from ivr.flow.restore import restore, take
from ivr.resume import LiveCalls
from ivr.store import Store
from tests.flow_support import CONFIG, connected, waiting


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
