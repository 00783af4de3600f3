"""The lease on a real SQLite file (ivr/lease/records.py, ivr/lease/fence.py, ivr/store.py):
take-over and renewal as compare-and-set from several processes at once, and the store's
writes refused once the token is no longer this controller's."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import aiosqlite
import pytest

from ivr.lease import records
from ivr.lease.fence import Fence, LeaseLost
from ivr.lease.model import Decision, Lease, LeaseParams
from ivr.store import Store
from tests.lease_support import Process

P = LeaseParams(lease_seconds=2.0, renew_seconds=0.5)


async def _database(tmp_path: Path) -> Path:
    path = tmp_path / "ivr.sqlite3"
    store = await Store.open(path)  # the migrations create the leases table
    await store.close()
    return path


def _expire(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("UPDATE leases SET expires_at=0")


async def test_of_racing_standbys_exactly_one_takes_over(tmp_path: Path) -> None:
    path = await _database(tmp_path)
    racers = [Process("race", str(path)) for _ in range(4)]
    try:
        for round_ in range(1, 6):
            for racer in racers:
                racer.send("go")
            answers = [racer.expect("") for racer in racers]
            assert sorted(answers) == [*["standby"] * 3, f"took {round_}"], answers
            _expire(path)
    finally:
        for racer in racers:
            racer.stop()


async def test_a_renewal_after_a_take_over_is_lost(tmp_path: Path) -> None:
    path = await _database(tmp_path)
    a, b = records.connect(path, 1.0), records.connect(path, 1.0)
    try:
        _, mine = records.attempt(a, "a", None, 100.0, P)
        assert mine == Lease("a", 1, 102.0)
        _, theirs = records.attempt(b, "b", None, 102.5, P)  # a paused past its lease
        assert theirs == Lease("b", 2, 104.5)
        assert records.attempt(a, "a", mine, 103.0, P) == (Decision.LOST, theirs)
    finally:
        a.close()
        b.close()


async def test_a_released_lease_is_taken_at_once(tmp_path: Path) -> None:
    path = await _database(tmp_path)
    a, b = records.connect(path, 1.0), records.connect(path, 1.0)
    try:
        _, mine = records.attempt(a, "a", None, 100.0, P)
        assert mine is not None and records.release(a, mine, 100.5)
        assert records.attempt(b, "b", None, 100.6, P)[0] is Decision.TAKE_OVER
    finally:
        a.close()
        b.close()


class Losses:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, why: str) -> None:
        self.reasons.append(why)


async def _fenced_pair(path: Path, losses: Losses) -> tuple[Store, Store, Lease]:
    """Store a holds token 1; then b takes the lease over (token 2) and fences its store."""
    conn = records.connect(path, 1.0)
    try:
        _, first = records.attempt(conn, "a", None, time.time() - 10, P)
        assert first is not None
        a, b = await Store.open(path), await Store.open(path)
        a.fence = Fence(first.token, first.expires_at, losses)
        await a.call_started("a-before", "h", 1.0)
        _, second = records.attempt(conn, "b", None, time.time(), P)
        assert second is not None and second.token == 2
        b.fence = Fence(second.token, second.expires_at, Losses())
        return a, b, second
    finally:
        conn.close()


def _call_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT call_id FROM calls ORDER BY call_id")]


async def test_a_write_with_an_old_token_is_refused_and_not_committed(tmp_path: Path) -> None:
    path = await _database(tmp_path)
    losses = Losses()
    a, b, _ = await _fenced_pair(path, losses)
    try:
        with pytest.raises(LeaseLost):
            await a.call_started("a-after", "h", 2.0)
        await b.call_started("b-1", "h", 3.0)
    finally:
        await a.close()
        await b.close()
    assert _call_ids(path) == ["a-before", "b-1"]


async def test_the_loss_is_reported_once(tmp_path: Path) -> None:
    path = await _database(tmp_path)
    losses = Losses()
    a, b, _ = await _fenced_pair(path, losses)
    try:
        for n in range(3):
            with pytest.raises(LeaseLost):
                await a.call_started(f"a-after-{n}", "h", 2.0)
    finally:
        await a.close()
        await b.close()
    assert len(losses.reasons) == 1


async def test_a_refused_write_is_not_kept_for_later(tmp_path: Path) -> None:
    path = await _database(tmp_path)
    a, b, _ = await _fenced_pair(path, Losses())
    try:
        with pytest.raises(LeaseLost):
            await a.call_started("a-after", "h", 2.0)
        assert len(a.pending) == 0
    finally:
        await a.close()
        await b.close()


async def test_a_refused_transaction_writes_nothing(tmp_path: Path) -> None:
    path = await _database(tmp_path)
    a, b, _ = await _fenced_pair(path, Losses())

    async def two_rows(db: aiosqlite.Connection) -> None:
        await db.execute("UPDATE calls SET menu_path='y'")
        await db.execute("UPDATE calls SET queue='q'")

    try:
        with pytest.raises(LeaseLost):
            await a.atomically(two_rows)
        with pytest.raises(LeaseLost):
            await a.change("UPDATE calls SET menu_path='x'", ())
    finally:
        await a.close()
        await b.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT menu_path, queue FROM calls").fetchall() == [("", None)]


def test_a_fence_past_its_renewal_stops_the_controller() -> None:
    losses = Losses()
    fence = Fence(3, valid_until=10.0, on_lost=losses)
    fence.check(9.9)
    with pytest.raises(LeaseLost):
        fence.check(10.0)
    assert len(losses.reasons) == 1
