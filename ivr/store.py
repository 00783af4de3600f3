"""The call records, in an embedded SQLite database (WAL mode, one writer).

A row is written when the call starts and completed when it ends, so a crash of the controller
mid-call still leaves a trace. Schema changes go through `MIGRATIONS` (append only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from ivr.flow.call import CallRecord

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calls (
        call_id      TEXT PRIMARY KEY,
        caller_hash  TEXT NOT NULL,
        started_at   REAL NOT NULL,
        menu_path    TEXT NOT NULL DEFAULT '',
        queue        TEXT,
        queued_at    REAL,
        answered_at  REAL,
        member       TEXT,
        wait_seconds REAL,
        talk_seconds REAL,
        ended_at     REAL,
        outcome      TEXT
    );
    CREATE INDEX calls_started ON calls (started_at);
    CREATE INDEX calls_caller ON calls (caller_hash);
    """,
)


@dataclass(frozen=True)
class StoredCall:
    call_id: str
    caller_hash: str
    started_at: float
    menu_path: str
    queue: str | None
    member: str | None
    wait_seconds: float | None
    talk_seconds: float | None
    ended_at: float | None
    outcome: str | None


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await _migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    async def call_started(self, call_id: str, caller_hash: str, started_at: float) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO calls (call_id, caller_hash, started_at) VALUES (?, ?, ?)",
            (call_id, caller_hash, started_at),
        )
        await self._db.commit()

    async def call_ended(self, call_id: str, rec: CallRecord) -> None:
        await self._db.execute(
            """UPDATE calls SET menu_path=?, queue=?, queued_at=?, answered_at=?, member=?,
               wait_seconds=?, talk_seconds=?, ended_at=?, outcome=? WHERE call_id=?""",
            (
                "".join(rec.menu_path),
                rec.queue,
                rec.queued_at,
                rec.answered_at,
                rec.member,
                rec.wait_seconds,
                rec.talk_seconds,
                rec.ended_at,
                rec.outcome.value if rec.outcome else None,
                call_id,
            ),
        )
        await self._db.commit()

    async def calls(self, limit: int = 100) -> list[StoredCall]:
        cur = await self._db.execute(
            """SELECT call_id, caller_hash, started_at, menu_path, queue, member, wait_seconds,
               talk_seconds, ended_at, outcome FROM calls ORDER BY started_at DESC LIMIT ?""",
            (limit,),
        )
        rows = await cur.fetchall()
        return [StoredCall(*row) for row in rows]

    async def get(self, call_id: str) -> StoredCall | None:
        cur = await self._db.execute(
            """SELECT call_id, caller_hash, started_at, menu_path, queue, member, wait_seconds,
               talk_seconds, ended_at, outcome FROM calls WHERE call_id=?""",
            (call_id,),
        )
        row: Any = await cur.fetchone()
        return StoredCall(*row) if row else None


async def _migrate(db: aiosqlite.Connection) -> None:
    cur = await db.execute("PRAGMA user_version")
    row = await cur.fetchone()
    version = int(row[0]) if row else 0
    for i, script in enumerate(MIGRATIONS[version:], start=version + 1):
        log.info("database: applying migration %d", i)
        await db.executescript(f"BEGIN; {script} PRAGMA user_version={i}; COMMIT;")
