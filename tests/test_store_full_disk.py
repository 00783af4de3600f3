"""The store on a full disk (ivr.store, ivr.store_buffer): real SQLite on a small tmpfs that
the test fills. A write the disk cannot take is kept in memory and written, in order, once
space returns; the connection stays usable; the bound drops the oldest with an error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.flow.call import CallRecord, Outcome
from ivr.store import Store, WriteDeferred
from ivr.store_buffer import PendingWrites, Write


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path` (the tests run as root), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(path: Path) -> Path:
    """Fill the filesystem of `path` with one file until it is full; returns the file."""
    filler = path / "filler"
    # Unbuffered: a buffered file would raise ENOSPC again when closing flushes its rest.
    with filler.open("wb", buffering=0) as fh:
        chunk = b"\0" * 65536
        try:
            while True:
                fh.write(chunk)
        except OSError:
            pass
    with contextlib.suppress(OSError), filler.open("ab", buffering=0) as fh:  # the last bytes
        while True:
            fh.write(b"\0")
    return filler


def calls(db: Path) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return [(str(c), o) for c, o in conn.execute("SELECT call_id, outcome FROM calls")]
    finally:
        conn.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "2m") as disk:
        yield disk


async def test_records_wait_in_memory_until_space_returns(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(small_disk / "ivr120.sqlite3", retry_seconds=3600)
    try:
        await store.call_started("before", "h", 1.0)
        filler = fill(small_disk)
        with caplog.at_level(logging.ERROR, logger="ivr.store_buffer"):
            with pytest.raises(WriteDeferred):
                await store.call_started("c1", "h", 2.0)
        assert any("database or disk is full" in r.getMessage() for r in caplog.records)
        health = store.health()
        assert health["ok"] is False and health["pending_writes"] == 1
        assert "full" in health["error"]
        rec = CallRecord(started_at=2.0)
        rec.outcome = Outcome.COMPLETED
        with pytest.raises(WriteDeferred):  # queued behind the start, never before it
            await store.call_ended("c1", rec)
        assert [c.call_id for c in await store.calls()] == ["before"]  # reads still work
        assert not await store.flush()  # still full

        os.unlink(filler)
        assert await store.flush()
        assert store.health() == {
            "ok": True,
            "pending_writes": 0,
            "dropped_writes": 0,
            "error": None,
        }
        assert sorted(calls(small_disk / "ivr120.sqlite3")) == [
            ("before", None),
            ("c1", Outcome.COMPLETED.value),
        ]
        await store.call_started("after", "h", 3.0)  # and it takes new writes directly
    finally:
        await store.close()


async def test_the_store_retries_by_itself(small_disk: Path) -> None:
    store = await Store.open(small_disk / "ivr120.sqlite3", retry_seconds=0.05)
    try:
        filler = fill(small_disk)
        with pytest.raises(WriteDeferred):
            await store.silence_event("c1", "caller", 1.0, 20.0, "notified")
        os.unlink(filler)
        async with asyncio.timeout(10):
            while not store.health()["ok"]:
                await asyncio.sleep(0.05)
    finally:
        await store.close()
    conn = sqlite3.connect(small_disk / "ivr120.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM silence_events").fetchone()[0] == 1
    finally:
        conn.close()


def test_the_pending_writes_are_bounded(caplog: pytest.LogCaptureFixture) -> None:
    pending = PendingWrites(limit=3)
    with caplog.at_level(logging.ERROR, logger="ivr.store_buffer"):
        pending.failed(Write("w0", "", ()), sqlite3.OperationalError("database or disk is full"))
        for i in range(1, 5):
            pending.queue(Write(f"w{i}", "", ()))
    assert len(pending) == 3 and pending.peek().what == "w2" and pending.dropped == 2
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 2 and "(w0)" in dropped[0]
