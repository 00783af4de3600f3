"""The migrations on a real SQLite file (ivr/store_schema.py migrate): controllers of a pair
starting at the same moment on one fresh file all open it, the schema applied once; a failing
step leaves the version before it and nothing of the step; a database at the newest version
is only read; one newer than this release is refused with nothing written."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sqlite3
import traceback
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from ivr.store import Store
from ivr.store_schema import MIGRATIONS, SchemaTooNew, migrate, statements

OPENERS = 4


class _Steps(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "database: applying migration %d":
            self.steps.append(int(record.args[0]))  # type: ignore[index]


def _open_together(path: str, barrier: Barrier, results: Any) -> None:
    """One controller's start: Store.open as soon as all the others are ready too."""
    steps = _Steps()
    logger = logging.getLogger("ivr.store_schema")
    logger.addHandler(steps)
    logger.setLevel(logging.INFO)

    async def run() -> None:
        barrier.wait()
        store = await Store.open(Path(path))
        await store.close()

    try:
        asyncio.run(run())
    except Exception:  # reported to the test, which fails with it
        results.put(("failed", traceback.format_exc()))
    else:
        results.put(("ok", steps.steps))


def _schema(path: Path) -> tuple[int, list[tuple[str, str]]]:
    with sqlite3.connect(path) as db:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        rows = db.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    db.close()
    return version, rows


def test_controllers_starting_together_migrate_a_fresh_file_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(OPENERS), ctx.Queue()
    path = tmp_path / "ivr120.sqlite3"
    openers = [
        ctx.Process(target=_open_together, args=(str(path), barrier, results))
        for _ in range(OPENERS)
    ]
    for p in openers:
        p.start()
    outcomes = [results.get(timeout=60) for _ in openers]
    for p in openers:
        p.join(timeout=10)
        assert p.exitcode == 0
    assert [kind for kind, _ in outcomes] == ["ok"] * OPENERS, outcomes
    applied = sorted(step for _, steps in outcomes for step in steps)
    assert applied == list(range(1, len(MIGRATIONS) + 1))  # each step by one of them, once
    version, _ = _schema(path)
    assert version == len(MIGRATIONS)


async def test_a_database_at_the_newest_version_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ivr120.sqlite3"
    store = await Store.open(path)
    await store.close()
    before, schema = path.read_bytes(), _schema(path)
    assert schema[0] == len(MIGRATIONS)
    store = await Store.open(path)
    await store.close()
    assert _schema(path) == schema
    assert path.read_bytes() == before


async def test_a_database_newer_than_this_release_is_refused_untouched(tmp_path: Path) -> None:
    # An older release started on a database a newer one migrated (a downgrade, or the old
    # node of a pair): it must not write rows into tables it does not know.
    path = tmp_path / "ivr120.sqlite3"
    store = await Store.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew, match=f"schema version {len(MIGRATIONS) + 1}, newer"):
        await Store.open(path)
    assert path.read_bytes() == before
    assert _schema(path)[0] == len(MIGRATIONS) + 1


async def test_a_failing_step_leaves_the_version_before_it(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    steps = (
        "CREATE TABLE a (x);",
        "CREATE TABLE b (x); INSERT INTO a VALUES (1); CREATE TABLE a (y);",
    )
    async with aiosqlite.connect(path) as db:
        with pytest.raises(sqlite3.OperationalError, match="already exists"):
            await migrate(db, steps)
        assert not db.in_transaction
        cur = await db.execute("PRAGMA busy_timeout")
        assert await cur.fetchone() == (5000,)  # the connection's own timeout is back
    version, rows = _schema(path)
    assert version == 1
    assert [name for name, _ in rows] == ["a"]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM a").fetchone() == (0,)
    db.close()


async def test_a_busy_database_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another controller in the middle of a migration
    async with aiosqlite.connect(path, timeout=0.0) as db:
        migrating = asyncio.ensure_future(migrate(db, ("CREATE TABLE a (x);",)))
        done, _ = await asyncio.wait({migrating}, timeout=1.0)
        assert not done  # waiting, not failed with "database is locked"
        holder.execute("COMMIT")
        await migrating
    holder.close()
    assert _schema(path)[0] == 1


def test_statements_of_every_migration() -> None:
    for script in MIGRATIONS:
        parts = statements(script)
        assert all(sqlite3.complete_statement(p) for p in parts)
        assert (
            "".join(parts).replace(" ", "").replace("\n", "")
            == script.replace(" ", "").replace("\n", "").rstrip()
        )
    trigger = [p for s in MIGRATIONS for p in statements(s) if "CREATE TRIGGER" in p]
    assert len(trigger) == 1 and trigger[0].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        statements("CREATE TABLE a (x); CREATE TABLE b (")


async def test_a_fresh_file_being_migrated_is_waited_for_before_wal(tmp_path: Path) -> None:
    """SQLite refuses journal_mode=WAL at once (no busy wait) while another connection writes
    a file still in rollback mode: the second controller's first statement on a fresh file."""
    path = tmp_path / "ivr120.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other (x)")
    opening = asyncio.ensure_future(Store.open(path))
    done, _ = await asyncio.wait({opening}, timeout=1.0)
    assert not done  # waiting, not failed with "database is locked"
    holder.execute("COMMIT")
    holder.close()
    store = await opening
    await store.close()
    assert _schema(path)[0] == len(MIGRATIONS)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()
