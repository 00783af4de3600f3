"""The call records, in an embedded SQLite database (WAL mode, one writer).

A row is written when the call starts and completed when it ends, so a crash of the controller
mid-call still leaves a trace. Schema changes go through `ivr.store_schema.MIGRATIONS`
(append only).

Records the database cannot take (a full disk) are kept in memory and written, in order, when
it can again (`ivr.store_buffer`); such a write raises `WriteDeferred`, which callers log and
go on from. Administrators' changes (`lift_flags`) are not kept: they fail at once.

With a `fence` (active/standby controllers, ivr/lease) every write transaction starts with
``BEGIN IMMEDIATE`` and checks that the lease's token is still this controller's; when it is
not, nothing is committed and `LeaseLost` is raised (never kept for later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import aiosqlite

from ivr.flow.call import CallRecord
from ivr.flow.record import Stage
from ivr.lease.fence import CHECK_SQL, Fence
from ivr.store_buffer import (
    DEFAULT_LIMIT,
    DEFAULT_RETRY_SECONDS,
    WRITE_ERRORS,
    PendingWrites,
    Write,
    WriteDeferred,
)
from ivr.store_schema import MIGRATIONS, migrate, use_wal

__all__ = ["MIGRATIONS", "Store", "WriteDeferred"]

log = logging.getLogger(__name__)

T = TypeVar("T")


#: How long an abuse flag lasts, by how many flags the caller already had (graduated).
FLAG_HOURS = (24.0, 7 * 24.0, 30 * 24.0)
#: Earlier flags within this many days count towards the level.
FLAG_MEMORY_DAYS = 180


@dataclass(frozen=True)
class Flag:
    id: int
    caller_hash: str
    kind: str
    level: int
    created_at: float
    until: float
    lifted_at: float | None


@dataclass(frozen=True)
class Callback:
    id: int
    call_id: str
    caller_hash: str
    number_sealed: bytes | None
    requested_at: float
    reason: str
    consent: str
    requested_by: str | None
    status: str


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


@dataclass(frozen=True)
class MemberState:
    """A counselor's or agent's logged-in and paused state, as last stored."""

    member: str
    logged_in: bool
    logged_in_since: float | None
    paused: bool
    pause_reason: str | None
    paused_since: float | None


class Store:
    def __init__(
        self,
        db: aiosqlite.Connection,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._db = db
        #: Records that could not be written yet (a full disk), retried every retry_seconds.
        self.pending = PendingWrites(limit)
        self.retry_seconds = retry_seconds
        self._lock = asyncio.Lock()
        self._retrying: asyncio.Task[None] | None = None
        #: Set when this controller holds the lease of an active/standby pair (ivr/lease).
        self.fence: Fence | None = None

    @classmethod
    async def open(cls, path: Path, retry_seconds: float = DEFAULT_RETRY_SECONDS) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        try:
            await use_wal(db)  # waits while the other controller of a pair migrates
            # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on a power loss or
            # an OS crash. A consent answer, a callback request or a call record that the caller
            # was told is kept must survive; a sync per commit costs little at this call rate.
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA busy_timeout=5000")
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, retry_seconds)

    async def close(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
        if self.pending:
            async with self._lock:
                await self._flush()
            if self.pending:
                log.error(
                    "database: %d records could not be written and are lost", len(self.pending)
                )
        await self._db.close()

    # -- writing, with the records the database could not take kept for later ---------------
    def health(self) -> dict[str, Any]:
        """For /health: ok, or the reason writes fail and how many records wait."""
        return self.pending.status()

    async def _write(self, what: str, sql: str, args: tuple[Any, ...]) -> int:
        """Write one record (returns its rowid), or keep it and raise WriteDeferred."""
        write = Write(what, sql, args)
        async with self._lock:
            if self.pending:
                await self._flush()
            if self.pending:  # still failing: queue behind the others, in order
                self.pending.queue(write)
                raise WriteDeferred(f"{what}: kept in memory ({self.pending.problem})")
            try:
                return await self._apply(write)
            except WRITE_ERRORS as exc:
                self.pending.failed(write, exc)
                self._retry_later()
                raise WriteDeferred(f"{what}: kept in memory ({exc})") from exc

    async def _begin(self) -> None:
        """Start a write transaction; with a fence, refuse it (LeaseLost) unless the lease's
        token is still ours. One extra SELECT per write, under the write lock
        (BEGIN IMMEDIATE), so no take-over can come between the check and the commit."""
        if self.fence is None:
            return
        await self._db.execute("BEGIN IMMEDIATE")
        cur = await self._db.execute(CHECK_SQL, (self.fence.name,))
        row = await cur.fetchone()
        self.fence.verify(int(row[0]) if row else None)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction (call holding the lock): committed when the block ends,
        rolled back if it raises (the connection stays usable after SQLITE_FULL)."""
        try:
            await self._begin()
            yield self._db
            await self._db.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._db.rollback()
            raise

    async def _apply(self, write: Write) -> int:
        async with self._transaction() as db:
            cur = await db.execute(write.sql, write.args)
        return int(cur.lastrowid or 0)

    async def _flush(self) -> None:
        """Write what is pending, oldest first, until one fails (call holding the lock)."""
        written = 0
        while self.pending:
            write = self.pending.peek()
            try:
                await self._apply(write)
            except WRITE_ERRORS as exc:
                self.pending.problem = f"{type(exc).__name__}: {exc}"
                return
            except sqlite3.Error as exc:  # this one can never be written: do not block the rest
                log.error("database: pending %s cannot be written (%s), dropped", write.what, exc)
            self.pending.written()
            written += 1
        self.pending.recovered(written)

    async def flush(self) -> bool:
        """Try to write what is pending now; True when nothing is left."""
        async with self._lock:
            await self._flush()
        return not self.pending

    def _retry_later(self) -> None:
        if self._retrying is None or self._retrying.done():
            self._retrying = asyncio.create_task(self._retry(), name="store-retry")

    async def _retry(self) -> None:
        while self.pending:
            await asyncio.sleep(self.retry_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("database: retrying the pending records failed")

    async def call_started(self, call_id: str, caller_hash: str, started_at: float) -> None:
        await self._write(
            "call start",
            "INSERT OR IGNORE INTO calls (call_id, caller_hash, started_at) VALUES (?, ?, ?)",
            (call_id, caller_hash, started_at),
        )

    async def call_ended(self, call_id: str, rec: CallRecord) -> None:
        await self._write(
            "call end",
            """UPDATE calls SET menu_path=?, queue=?, queued_at=?, answered_at=?, member=?,
               wait_seconds=?, talk_seconds=?, ended_at=?, outcome=?, end_reason=?,
               menu_failures=?, ended_in=?, menu_seconds=?, intro_seconds=?,
               consent_seconds=?, queue_seconds=?, staff_seconds=?, goodbye_seconds=?,
               whisper_seconds=?, dialling_seconds=?, outcome_seconds=?, staff_lost=?
               WHERE call_id=?""",
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
                rec.end_reason,
                rec.menu_failures,
                rec.ended_in,
                *(rec.stage_seconds.get(stage) for stage in Stage),
                rec.staff_lost,
                call_id,
            ),
        )

    async def call_wrapup(self, call_id: str, seconds: float) -> None:
        """The wrap-up the counselor got after the call (the report's handle time)."""
        await self._write(
            "call wrap-up",
            "UPDATE calls SET wrapup_seconds=? WHERE call_id=?",
            (seconds, call_id),
        )

    async def calls(self, limit: int = 100) -> list[StoredCall]:
        cur = await self._db.execute(
            """SELECT call_id, caller_hash, started_at, menu_path, queue, member, wait_seconds,
               talk_seconds, ended_at, outcome FROM calls ORDER BY started_at DESC LIMIT ?""",
            (limit,),
        )
        rows = await cur.fetchall()
        return [StoredCall(*row) for row in rows]

    async def previous_calls(self, caller_hash: str, call_id: str) -> int:
        """How many earlier calls the same (hashed) number made."""
        cur = await self._db.execute(
            "SELECT COUNT(*) FROM calls WHERE caller_hash=? AND call_id<>?", (caller_hash, call_id)
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close_left_open(
        self, at: float, reason: str, downtime: float | None
    ) -> tuple[int, int]:
        """Close the calls and ring attempts a dead run left open (once: only open ones), but
        for the calls with a snapshot (ivr.resume takes those back)."""
        async with self._lock, self._transaction() as db:
            cur = await db.execute(
                "UPDATE calls SET ended_at=?, outcome='error', end_reason=?, downtime_seconds=?"
                " WHERE outcome IS NULL"
                # a live call's snapshot: taken back, or closed, at the first connect
                " AND call_id NOT IN (SELECT call_id FROM live_calls)",
                (at, reason, downtime),
            )
            rings = await db.execute(
                "UPDATE ring_attempts SET ended_at=?, outcome=? WHERE outcome IS NULL",
                (at, reason),
            )
        return cur.rowcount, rings.rowcount

    # -- ring attempts and counselor state ---------------------------------------------------
    async def ring_started(self, leg_id: str, call_id: str, member: str, at: float) -> None:
        await self._write(
            "ring start",
            "INSERT OR REPLACE INTO ring_attempts (leg_id, call_id, member, started_at)"
            " VALUES (?, ?, ?, ?)",
            (leg_id, call_id, member, at),
        )

    async def ring_ended(self, leg_id: str, at: float, outcome: str) -> None:
        await self._write(
            "ring end",
            "UPDATE ring_attempts SET ended_at=?, outcome=? WHERE leg_id=? AND outcome IS NULL",
            (at, outcome, leg_id),
        )

    async def counselor_event(
        self, member: str, at: float, field: str, old: str, new: str, reason: str
    ) -> None:
        await self._write(
            "counselor event",
            "INSERT INTO counselor_events (member, at, field, old, new, reason)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (member, at, field, old, new, reason),
        )

    async def save_member_state(self, state: MemberState) -> None:
        # Under the lock like every write: a commit here must not land inside another
        # coroutine's `atomically` transaction.
        async with self._lock, self._transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO counselor_state (member, logged_in, logged_in_since,"
                " paused, pause_reason, paused_since) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    state.member,
                    int(state.logged_in),
                    state.logged_in_since,
                    int(state.paused),
                    state.pause_reason,
                    state.paused_since,
                ),
            )

    async def member_states(self) -> list[MemberState]:
        cur = await self._db.execute(
            "SELECT member, logged_in, logged_in_since, paused, pause_reason, paused_since"
            " FROM counselor_state ORDER BY member"
        )
        return [
            MemberState(m, bool(li), lis, bool(p), pr, ps)
            for m, li, lis, p, pr, ps in await cur.fetchall()
        ]

    async def silence_event(
        self, call_id: str, party: str, started_at: float, seconds: float, action: str
    ) -> None:
        await self._write(
            "silence event",
            "INSERT INTO silence_events (call_id, party, started_at, seconds, action)"
            " VALUES (?, ?, ?, ?, ?)",
            (call_id, party, started_at, seconds, action),
        )

    # -- abuse flags -------------------------------------------------------------------------
    async def flag_caller(
        self, caller_hash: str, call_id: str, member: str | None, now: float, kind: str = "abuse"
    ) -> Flag:
        """Flag a caller; each earlier flag (lifted or not) in memory lengthens the next one."""
        cur = await self._db.execute(
            "SELECT COUNT(*) FROM caller_flags WHERE caller_hash=? AND kind=? AND created_at>?",
            (caller_hash, kind, now - FLAG_MEMORY_DAYS * 86400),
        )
        row = await cur.fetchone()
        earlier = int(row[0]) if row else 0
        level = earlier + 1
        until = now + FLAG_HOURS[min(earlier, len(FLAG_HOURS) - 1)] * 3600
        rowid = await self._write(
            "abuse flag",
            "INSERT INTO caller_flags (caller_hash, kind, level, created_at, until, call_id,"
            " member) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (caller_hash, kind, level, now, until, call_id, member),
        )
        return Flag(rowid, caller_hash, kind, level, now, until, None)

    async def active_flag(self, caller_hash: str, now: float) -> Flag | None:
        cur = await self._db.execute(
            "SELECT id, caller_hash, kind, level, created_at, until, lifted_at FROM caller_flags"
            " WHERE caller_hash=? AND until>? AND lifted_at IS NULL ORDER BY until DESC LIMIT 1",
            (caller_hash, now),
        )
        row: Any = await cur.fetchone()
        return Flag(*row) if row else None

    async def flags(self, now: float, active_only: bool = True) -> list[Flag]:
        sql = "SELECT id, caller_hash, kind, level, created_at, until, lifted_at FROM caller_flags"
        args: tuple[Any, ...] = ()
        if active_only:
            sql += " WHERE until>? AND lifted_at IS NULL"
            args = (now,)
        cur = await self._db.execute(sql + " ORDER BY created_at", args)
        return [Flag(*row) for row in await cur.fetchall()]

    async def lift_flags(self, caller_hash: str, by: str, now: float) -> int:
        # An administrator's change: fails at once, is not kept.
        return await self.change(
            "UPDATE caller_flags SET lifted_at=?, lifted_by=? WHERE caller_hash=? AND"
            " lifted_at IS NULL AND until>?",
            (now, by, caller_hash, now),
        )

    # -- for the rooms' own persistence modules (ivr/followup/records.py, ...) ---------------
    async def write(self, what: str, sql: str, args: tuple[Any, ...]) -> int:
        """A record (returns its rowid); kept for later if the database cannot take it now
        (raises WriteDeferred then)."""
        return await self._write(what, sql, args)

    async def keep(
        self, what: str, sql: str, args: tuple[Any, ...], exc: BaseException
    ) -> NoReturn:
        """A record whose write just failed with `exc` (in `atomically`): kept for later without
        trying again now (a locked database would make the caller wait twice). Raises
        WriteDeferred."""
        async with self._lock:
            self.pending.failed(Write(what, sql, args), exc)
            self._retry_later()
        raise WriteDeferred(f"{what}: kept in memory ({exc})") from exc

    async def change(self, sql: str, args: tuple[Any, ...]) -> int:
        """A change that must happen now or fail (a lock, an administrator's action): not
        kept for later. Returns the number of rows changed."""
        async with self._lock, self._transaction() as db:
            cur = await db.execute(sql, args)
        return cur.rowcount

    async def atomically(self, func: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run `func` (reads and writes on the connection) as one transaction, in turn with
        every other write of this process; committed when it returns, rolled back if it
        raises."""
        async with self._lock, self._transaction() as db:
            result = await func(db)
        return result

    async def fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = await self._db.execute(sql, args)
        return [tuple(row) for row in await cur.fetchall()]

    # -- callback requests -------------------------------------------------------------------
    async def add_callback(
        self,
        call_id: str,
        caller_hash: str,
        number_sealed: bytes | None,
        at: float,
        reason: str,
        consent: str,
        requested_by: str | None,
        task_id: int | None = None,
    ) -> int:
        """`task_id`: the follow-up task the request became (ivr/followup/requests.py)."""
        return await self._write(
            "callback request",
            "INSERT INTO callbacks (call_id, caller_hash, number_sealed, requested_at, reason,"
            " consent, requested_by, task_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (call_id, caller_hash, number_sealed, at, reason, consent, requested_by, task_id),
        )

    async def callbacks(self, status: str | None = "open") -> list[Callback]:
        sql = (
            "SELECT id, call_id, caller_hash, number_sealed, requested_at, reason, consent,"
            " requested_by, status FROM callbacks"
        )
        args: tuple[Any, ...] = ()
        if status:
            sql += " WHERE status=?"
            args = (status,)
        cur = await self._db.execute(sql + " ORDER BY requested_at", args)
        return [Callback(*row) for row in await cur.fetchall()]

    # -- consent and recordings ----------------------------------------------------------
    async def record_consent(
        self,
        call_id: str,
        answer: str,
        answered_by: str,
        at: float,
        prompt_id: str,
        prompt_version: str,
        channel: str,
    ) -> None:
        await self._write(
            "consent",
            "INSERT OR REPLACE INTO consents (call_id, answer, answered_by, at, prompt_id,"
            " prompt_version, channel) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (call_id, answer, answered_by, at, prompt_id, prompt_version, channel),
        )

    async def survey_answer(
        self, call_id: str, line: str, kind: str, answer: int, answered_by: str, at: float
    ) -> None:
        """The caller's one survey answer (a second for the same call is ignored)."""
        await self._write(
            "survey answer",
            "INSERT INTO survey_answers (call_id, line, kind, answer, answered_by, at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING",
            (call_id, line, kind, answer, answered_by, at),
        )

    async def withdraw_consent(self, call_id: str, by: str, at: float) -> None:
        await self._write(
            "consent withdrawal",
            "UPDATE consents SET withdrawn_at=?, withdrawn_by=? WHERE call_id=?",
            (at, by, call_id),
        )

    async def recording_started(self, name: str, call_id: str, party: str, at: float) -> None:
        await self._write(
            "recording start",
            "INSERT OR REPLACE INTO recordings (name, call_id, party, started_at, status)"
            " VALUES (?, ?, ?, ?, 'recording')",
            (name, call_id, party, at),
        )

    async def recording_status(self, name: str, status: str, path: str | None = None) -> None:
        await self._write(
            "recording status",
            "UPDATE recordings SET status=?, path=COALESCE(?, path) WHERE name=?",
            (status, path, name),
        )

    async def recordings_to_collect(self) -> list[tuple[str, str, str]]:
        """(name, call_id, party) of recordings still in Asterisk (e.g. after a restart)."""
        cur = await self._db.execute(
            "SELECT name, call_id, party FROM recordings WHERE status='recording'"
        )
        return [(str(n), str(c), str(p)) for n, c, p in await cur.fetchall()]

    async def add_transcription_job(self, call_id: str, at: float) -> None:
        await self._write(
            "transcription job",
            "INSERT OR IGNORE INTO transcription_jobs (call_id, created_at, updated_at, status)"
            " VALUES (?, ?, ?, 'pending')",
            (call_id, at, at),
        )
