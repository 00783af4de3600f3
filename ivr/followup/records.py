"""The follow-up tables (ivr.store_schema): tasks, attempts, opt-outs, through the one Store.

Writes that record what happened (a new request, an attempt, a close) go through the Store's
buffered `write`, so a full disk keeps them for later; the dialling lock and administrators'
changes go through `change` and fail at once (a lock that cannot be taken is not taken).

The sealed number is read only by `sealed_number` (the dialler, right before dialling); no
other query returns it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiosqlite

from ivr.followup.model import (
    PRIORITY,
    TEAM_OF,
    AttemptResult,
    Status,
    Task,
    TaskType,
    Team,
)
from ivr.store import Store
from ivr.store_buffer import WRITE_ERRORS

log = logging.getLogger(__name__)

#: Every column of followup_tasks but the sealed number, in Task's field order.
TASK_COLUMNS = (
    "id, type, team, caller_hash, created_at, due_at, priority, attempts, status, outcome,"
    " closed_at, closed_by, member, call_id, requested_by, referral_id, series_id, note,"
    " locked_by, locked_until, alerted_at, in_depth_at"
)


@dataclass(frozen=True)
class OptOut:
    """A citizen's wish not to be called again (`followup_optouts`)."""

    at: float
    call_id: str | None  # the call it was made on (None: by another way)
    via: str  # "key" (9 on a follow-up call), "admin", ...


def _task(row: tuple[Any, ...]) -> Task:
    (id_, type_, team, caller, created, due, prio, attempts, status, *rest) = row
    return Task(
        id=int(id_),
        type=TaskType(type_),
        team=Team(team),
        caller_hash=caller,
        created_at=created,
        due_at=due,
        priority=prio,
        attempts=attempts,
        status=Status(status),
        outcome=rest[0],
        closed_at=rest[1],
        closed_by=rest[2],
        member=rest[3],
        call_id=rest[4],
        requested_by=rest[5],
        referral_id=rest[6],
        series_id=rest[7],
        note=rest[8],
        locked_by=rest[9],
        locked_until=rest[10],
        alerted_at=rest[11],
        in_depth_at=rest[12],
    )


class FollowupRecords:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- requests ---------------------------------------------------------------------------
    async def add_or_merge(
        self,
        type_: TaskType,
        caller_hash: str,
        number_sealed: bytes | None,
        sealed_for: str | None,
        now: float,
        due_at: float,
        *,
        call_id: str | None = None,
        requested_by: str | None = None,
        member: str | None = None,
        referral_id: int | None = None,
        series_id: int | None = None,
        note: str | None = None,
    ) -> tuple[int, bool]:
        """A new request: merged into the citizen's open task of the same team if there is one
        (the earlier due time and the more urgent type win; notes are kept), else a new task.
        Returns (task id, merged). A database that cannot take it now keeps a plain new task
        for later (no merge then) and raises WriteDeferred."""
        team = TEAM_OF[type_]
        priority = PRIORITY[type_]

        async def merge(db: aiosqlite.Connection) -> tuple[int, bool]:
            cur = await db.execute(
                "SELECT id, type, priority, due_at, note, number_sealed FROM followup_tasks"
                " WHERE caller_hash=? AND team=? AND status='open'"
                # Not the task being dialled: its call closes it with what the call found.
                " AND (locked_until IS NULL OR locked_until<=?) ORDER BY id LIMIT 1",
                (caller_hash, team.value, now),
            )
            row: Any = await cur.fetchone()
            if row is not None and caller_hash != "anonymous":
                tid, old_type, old_prio, old_due, old_note, old_sealed = row
                keep_type = type_.value if priority < old_prio else old_type
                notes = "\n".join(n for n in (old_note, note) if n) or None
                # An in-depth request merged into another task: its deadline counts from the
                # first in-depth request, not from when the task was made.
                in_depth_at = now if type_ is TaskType.IN_DEPTH else None
                await db.execute(
                    "UPDATE followup_tasks SET type=?, priority=?, due_at=?, note=?,"
                    " number_sealed=COALESCE(number_sealed, ?),"
                    " sealed_for=COALESCE(sealed_for, ?),"
                    " in_depth_at=COALESCE(in_depth_at, ?) WHERE id=?",
                    (
                        keep_type,
                        min(priority, old_prio),
                        min(due_at, old_due),
                        notes,
                        number_sealed,
                        sealed_for,
                        in_depth_at,
                        tid,
                    ),
                )
                return int(tid), True
            cur = await db.execute(_INSERT, args)
            return int(cur.lastrowid or 0), False

        args = (
            type_.value,
            team.value,
            caller_hash,
            number_sealed,
            sealed_for,
            now,
            due_at,
            priority,
            member,
            call_id,
            requested_by,
            referral_id,
            series_id,
            note,
            now if type_ is TaskType.IN_DEPTH else None,
        )
        try:
            return await self.store.atomically(merge)
        except WRITE_ERRORS as exc:
            log.warning("follow-up request not merged (%s); kept as a new task", exc)
            # Kept for later without a second wait on a locked database (raises WriteDeferred).
            await self.store.keep("follow-up task", _INSERT, args, exc)

    async def add_closed(
        self,
        type_: TaskType,
        caller_hash: str,
        now: float,
        status: Status,
        outcome: str,
        *,
        call_id: str | None,
        requested_by: str | None,
        note: str,
    ) -> int:
        """A request that cannot be served (no number to dial, the citizen opted out), kept as
        a task closed at once so that the worklist and the reports show it. One INSERT, so a
        database that cannot take it now keeps it whole (raises WriteDeferred)."""
        return await self.store.write(
            "follow-up task (closed)",
            "INSERT INTO followup_tasks (type, team, caller_hash, created_at, due_at, priority,"
            " status, outcome, closed_at, closed_by, call_id, requested_by, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'system', ?, ?, ?)",
            (
                type_.value,
                TEAM_OF[type_].value,
                caller_hash,
                now,
                now,
                PRIORITY[type_],
                status.value,
                outcome,
                now,
                call_id,
                requested_by,
                note,
            ),
        )

    async def task_for_call(self, call_id: str, type_: TaskType) -> int | None:
        """The task a request of `call_id` of this type already became (a retried request)."""
        rows = await self.store.fetch(
            "SELECT id FROM followup_tasks WHERE call_id=? AND type=? ORDER BY id LIMIT 1",
            (call_id, type_.value),
        )
        return int(rows[0][0]) if rows else None

    # -- the planner's reads ----------------------------------------------------------------
    async def due(
        self,
        team: Team,
        now: float,
        limit: int,
        *,
        member: str | None = None,
        exclude: Iterable[int] = (),
    ) -> list[Task]:
        """Open tasks of `team` due by `now`, not locked, of citizens who did not opt out, most
        urgent first. With `member`: only the tasks fixed to that member (companions)."""
        skip = tuple(exclude)
        # `priority IN (...)` lets the index followup_due bound due_at within each priority
        # (a long list of tasks due later is not read); a task's priority is always one of
        # PRIORITY's values (add_or_merge keeps it so).
        sql = (
            f"SELECT {TASK_COLUMNS} FROM followup_tasks t WHERE status='open' AND team=?"
            f" AND priority IN ({_PRIORITIES}) AND due_at<=?"
            " AND (locked_until IS NULL OR locked_until<=?)"
            " AND NOT EXISTS (SELECT 1 FROM followup_optouts o WHERE o.caller_hash=t.caller_hash)"
        )
        args: list[Any] = [team.value, now, now]
        if member is not None:
            sql += " AND member=?"
            args.append(member)
        if skip:
            sql += f" AND id NOT IN ({','.join('?' * len(skip))})"
            args += skip
        sql += " ORDER BY priority, due_at, id LIMIT ?"
        args.append(limit)
        return [_task(r) for r in await self.store.fetch(sql, tuple(args))]

    async def task(self, task_id: int) -> Task | None:
        rows = await self.store.fetch(
            f"SELECT {TASK_COLUMNS} FROM followup_tasks WHERE id=?", (task_id,)
        )
        return _task(rows[0]) if rows else None

    async def tasks(
        self,
        *,
        team: Team | None = None,
        type_: TaskType | None = None,
        status: Status | None = None,
        due_before: float | None = None,
        caller_hash: str | None = None,
        limit: int = 1000,
    ) -> list[Task]:
        sql = f"SELECT {TASK_COLUMNS} FROM followup_tasks WHERE 1=1"
        args: list[Any] = []
        for column, value in (
            ("team", team),
            ("type", type_),
            ("status", status),
            ("caller_hash", caller_hash),
        ):
            if value is not None:
                sql += f" AND {column}=?"
                args.append(str(value))
        if due_before is not None:
            sql += " AND due_at<=?"
            args.append(due_before)
        sql += " ORDER BY status='open' DESC, priority, due_at, id LIMIT ?"
        args.append(limit)
        return [_task(r) for r in await self.store.fetch(sql, tuple(args))]

    async def sealed_number(self, task_id: int) -> tuple[bytes, str] | None:
        """The sealed number and its purpose: only for dialling (unseal in memory, never log)."""
        rows = await self.store.fetch(
            "SELECT number_sealed, sealed_for FROM followup_tasks WHERE id=?", (task_id,)
        )
        if not rows or rows[0][0] is None or rows[0][1] is None:
            return None
        return bytes(rows[0][0]), str(rows[0][1])

    async def contacts(self, caller_hash: str) -> int:
        """How many times the service has been in touch with the citizen: their calls
        (inbound and outbound) — for "n-th contact"."""
        if caller_hash == "anonymous":
            return 0
        rows = await self.store.fetch(
            "SELECT COUNT(*) FROM calls WHERE caller_hash=?", (caller_hash,)
        )
        return int(rows[0][0])

    async def lift_opt_out(self, caller_hash: str) -> None:
        """The citizen asked for a call again (a callback request of their own)."""
        await self.store.write(
            "follow-up opt-out lifted",
            "DELETE FROM followup_optouts WHERE caller_hash=?",
            (caller_hash,),
        )

    async def opt_out_of(self, caller_hash: str) -> OptOut | None:
        """The citizen's opt-out, if they opted out."""
        rows = await self.store.fetch(
            "SELECT at, call_id, via FROM followup_optouts WHERE caller_hash=?", (caller_hash,)
        )
        return OptOut(float(rows[0][0]), rows[0][1], str(rows[0][2])) if rows else None

    async def opted_out(self, caller_hash: str) -> bool:
        rows = await self.store.fetch(
            "SELECT 1 FROM followup_optouts WHERE caller_hash=?", (caller_hash,)
        )
        return bool(rows)

    # -- the dialling lock (in the database, not in memory) ---------------------------------
    async def lock(self, task_id: int, owner: str, now: float, seconds: float) -> bool:
        """Take the task for dialling: True only if it is open and nobody holds a live lock.
        One UPDATE, so two controllers (or two cycles) can never both win."""
        changed = await self.store.change(
            "UPDATE followup_tasks SET locked_by=?, locked_until=? WHERE id=? AND status='open'"
            " AND (locked_until IS NULL OR locked_until<=? OR locked_by=?)",
            (owner, now + seconds, task_id, now, owner),
        )
        return changed == 1

    async def unlock(self, task_id: int, owner: str) -> None:
        await self.store.change(
            "UPDATE followup_tasks SET locked_by=NULL, locked_until=NULL"
            " WHERE id=? AND locked_by=?",
            (task_id, owner),
        )

    # -- attempts and outcomes --------------------------------------------------------------
    async def attempt_started(self, task_id: int, member: str, call_id: str, now: float) -> int:
        return await self.store.write(
            "follow-up attempt",
            "INSERT INTO followup_attempts (task_id, started_at, member, call_id)"
            " VALUES (?, ?, ?, ?)",
            (task_id, now, member, call_id),
        )

    async def attempt_ended(
        self,
        attempt_id: int,
        task_id: int,
        result: AttemptResult,
        now: float,
        sip_cause: int | None = None,
        talk_seconds: float | None = None,
        counted: bool = True,
    ) -> None:
        await self.store.write(
            "follow-up attempt end",
            "UPDATE followup_attempts SET ended_at=?, result=?, sip_cause=?, talk_seconds=?"
            " WHERE id=?",
            (now, result.value, sip_cause, talk_seconds, attempt_id),
        )
        if counted:
            await self.store.write(
                "follow-up attempt count",
                "UPDATE followup_tasks SET attempts=attempts+1 WHERE id=?",
                (task_id,),
            )

    async def attempts(self, task_id: int) -> list[dict[str, Any]]:
        rows = await self.store.fetch(
            "SELECT id, started_at, ended_at, member, call_id, result, sip_cause, talk_seconds"
            " FROM followup_attempts WHERE task_id=? ORDER BY id",
            (task_id,),
        )
        keys = ("id", "started_at", "ended_at", "member", "call_id", "result", "sip_cause")
        return [dict(zip((*keys, "talk_seconds"), r, strict=True)) for r in rows]

    async def reschedule(self, task_id: int, due_at: float, owner: str | None = None) -> None:
        """Due again at `due_at`; the dialling lock is released. With `owner` (the dialler),
        only while the task is not locked by another: a lock taken over is left alone."""
        args: tuple[object, ...] = (due_at, task_id)
        sql = ""  # an administrator's (ivr.followup.http refuses a live lock)
        if owner is not None:
            sql, args = " AND (locked_by IS NULL OR locked_by=?)", (due_at, task_id, owner)
        await self.store.write(
            "follow-up reschedule",
            "UPDATE followup_tasks SET due_at=?, locked_by=NULL, locked_until=NULL WHERE id=?"
            " AND status='open'" + sql,
            args,
        )

    async def close_left_open(self, now: float, owner: str) -> tuple[int, int]:
        """At start (one controller per database): the attempts a dead run left open are
        closed `controller_restart` (not counted) and the task locks other runs hold are
        cleared, so the tasks are due again at once. Returns (attempts, locks)."""
        attempts = await self.store.change(
            "UPDATE followup_attempts SET ended_at=?, result=? WHERE ended_at IS NULL",
            (now, AttemptResult.CONTROLLER_RESTART.value),
        )
        locks = await self.store.change(
            "UPDATE followup_tasks SET locked_by=NULL, locked_until=NULL"
            " WHERE locked_by IS NOT NULL AND locked_by<>?",
            (owner,),
        )
        return attempts, locks

    async def assign(self, task_id: int, member: str | None) -> int:
        return await self.store.change(
            "UPDATE followup_tasks SET member=? WHERE id=? AND status='open'", (member, task_id)
        )

    async def close(self, task_id: int, status: Status, outcome: str, now: float, by: str) -> int:
        """Closes an open task: 1, or 0 when it was closed already (what follows a close then
        is not done twice). A database that cannot take it now keeps it for later (raises
        WriteDeferred)."""
        sql = (
            "UPDATE followup_tasks SET status=?, outcome=?, closed_at=?, closed_by=?,"
            " locked_by=NULL, locked_until=NULL WHERE id=? AND status='open'"
        )
        args = (status.value, outcome, now, by, task_id)
        try:
            return await self.store.change(sql, args)
        except WRITE_ERRORS as exc:
            await self.store.keep("follow-up close", sql, args, exc)

    async def untold_unreachable_welfare(self) -> list[int]:
        """Welfare checks closed unreachable that no supervisor has heard of yet (closed by
        hand, an anonymous one closed at once, or an alert that could not be sent)."""
        rows = await self.store.fetch(
            "SELECT id FROM followup_tasks WHERE status=? AND type=? AND alerted_at IS NULL"
            " ORDER BY id LIMIT 50",
            (Status.UNREACHABLE.value, TaskType.WELFARE.value),
        )
        return [int(r[0]) for r in rows]

    async def mark_alerted(self, task_id: int, now: float) -> None:
        await self.store.write(
            "follow-up alert",
            "UPDATE followup_tasks SET alerted_at=? WHERE id=?",
            (now, task_id),
        )

    async def opt_out(self, caller_hash: str, now: float, call_id: str | None, via: str) -> None:
        """The citizen asked not to be called again: recorded, every open task of theirs is
        closed `opted_out` at once and their companion series is stopped."""
        await self.store.write(
            "follow-up opt-out",
            "INSERT OR IGNORE INTO followup_optouts (caller_hash, at, call_id, via)"
            " VALUES (?, ?, ?, ?)",
            (caller_hash, now, call_id, via),
        )
        await self.store.write(
            "follow-up opt-out close",
            "UPDATE followup_tasks SET status='opted_out', outcome='opted_out', closed_at=?,"
            " closed_by=?, locked_by=NULL, locked_until=NULL"
            " WHERE caller_hash=? AND status='open'",
            (now, f"citizen:{via}", caller_hash),
        )
        await self.store.write(
            "follow-up opt-out series",
            "UPDATE companion_series SET stopped_at=? WHERE caller_hash=? AND stopped_at IS NULL",
            (now, caller_hash),
        )


_PRIORITIES = ", ".join(str(p) for p in sorted(set(PRIORITY.values())))
_INSERT = (
    "INSERT INTO followup_tasks (type, team, caller_hash, number_sealed, sealed_for, created_at,"
    " due_at, priority, member, call_id, requested_by, referral_id, series_id, note,"
    " in_depth_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
