"""Companion series over the Store: a citizen enrolled with one companion of 외로움돌봄동행단.

``ivr-admin companion enrol CALL --companion ID --every 7d --at "화 15:00"`` (POST
/api/companions) creates a `companion_series` row (the number sealed, from the same source as
a referral's: ivr.followup.citizen) and its first task (type companion, ``member`` = that
companion, so the planner offers it to nobody else). When a companion task closes,
ivr.followup.closing schedules the next one from the series (ivr.followup.series).
``companion stop SERIES|CALL`` stops the series and cancels its open task.

A citizen has at most one active series (one companion, always the same); a citizen who opted
out of follow-up calls cannot be enrolled.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import aiosqlite

from ivr.crypto import Sealer
from ivr.followup import citizen
from ivr.followup.errors import Conflict, FollowupError, NotFound
from ivr.followup.model import Outcome, Status, TaskType
from ivr.followup.records import FollowupRecords
from ivr.followup.series import Schedule, next_occurrence
from ivr.store import Store

log = logging.getLogger(__name__)

_COLUMNS = (
    "id, caller_hash, member, every_days, weekday, at_minute, started_at, stopped_at, call_id,"
    " number_sealed IS NOT NULL"
)


@dataclass(frozen=True)
class Series:
    id: int
    caller_hash: str
    member: str
    every_days: int
    weekday: int
    at_minute: int
    started_at: float
    stopped_at: float | None
    call_id: str | None
    dialable: bool

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.every_days, self.weekday, self.at_minute)

    @property
    def active(self) -> bool:
        return self.stopped_at is None

    def next_after(self, after: float) -> float:
        return next_occurrence(self.started_at, self.schedule, after)

    def view(self) -> dict[str, Any]:
        return {**asdict(self), "schedule": self.schedule.describe()}


def _series(row: tuple[Any, ...]) -> Series:
    id_, caller, member, every, weekday, minute, started, stopped, call_id, dialable = row
    return Series(
        int(id_), caller, member, every, weekday, minute, started, stopped, call_id, bool(dialable)
    )


class CompanionSeries:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, series_id: int) -> Series | None:
        rows = await self.store.fetch(
            f"SELECT {_COLUMNS} FROM companion_series WHERE id=?", (series_id,)
        )
        return _series(rows[0]) if rows else None

    async def list(
        self,
        *,
        active_only: bool = True,
        caller_hash: str | None = None,
        call_id: str | None = None,
    ) -> list[Series]:
        sql = f"SELECT {_COLUMNS} FROM companion_series WHERE 1=1"
        args: list[Any] = []
        if active_only:
            sql += " AND stopped_at IS NULL"
        for column, value in (("caller_hash", caller_hash), ("call_id", call_id)):
            if value is not None:
                sql += f" AND {column}=?"
                args.append(value)
        return [_series(r) for r in await self.store.fetch(sql + " ORDER BY id", tuple(args))]

    async def sealed(self, series_id: int) -> citizen.Sealed | None:
        rows = await self.store.fetch(
            "SELECT number_sealed, sealed_for FROM companion_series WHERE id=?", (series_id,)
        )
        if not rows or rows[0][0] is None or rows[0][1] is None:
            return None
        return bytes(rows[0][0]), str(rows[0][1])

    async def add(
        self,
        caller_hash: str,
        sealed: citizen.Sealed | None,
        member: str,
        schedule: Schedule,
        now: float,
        call_id: str,
    ) -> int:
        async def insert(db: aiosqlite.Connection) -> int:
            cur = await db.execute(
                "SELECT id FROM companion_series WHERE caller_hash=? AND stopped_at IS NULL",
                (caller_hash,),
            )
            if await cur.fetchone() is not None:
                raise Conflict(
                    "the citizen already has an active companion series",
                    "이미 동행 중인 시민입니다 (한 시민에게 한 명의 동행단원)",
                )
            cur = await db.execute(
                "INSERT INTO companion_series (caller_hash, number_sealed, sealed_for, member,"
                " every_days, weekday, at_minute, started_at, call_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    caller_hash,
                    *citizen.columns(sealed),
                    member,
                    schedule.every_days,
                    schedule.weekday,
                    schedule.at_minute,
                    now,
                    call_id,
                ),
            )
            return int(cur.lastrowid or 0)

        return await self.store.atomically(insert)

    async def stop(self, series_id: int, now: float) -> bool:
        changed = await self.store.change(
            "UPDATE companion_series SET stopped_at=? WHERE id=? AND stopped_at IS NULL",
            (now, series_id),
        )
        return changed == 1


async def schedule_next(
    records: FollowupRecords,
    series: Series,
    sealed: citizen.Sealed | None,
    after: float,
    now: float,
) -> tuple[int, float]:
    """The series' next task, due at its first occurrence after `after`."""
    due = series.next_after(after)
    task_id, _ = await records.add_or_merge(
        TaskType.COMPANION,
        series.caller_hash,
        *citizen.columns(sealed),
        now,
        due,
        call_id=series.call_id,
        requested_by="system",
        member=series.member,
        series_id=series.id,
        note=f"동행 companion series #{series.id}: {series.schedule.describe()}",
    )
    return task_id, due


@dataclass(frozen=True)
class Enrolled:
    series: Series
    task_id: int
    due_at: float


async def enrol(
    store: Store,
    records: FollowupRecords,
    *,
    call_id: str,
    member: str,
    schedule: Schedule,
    now: float,
    by: str | None,
    companions: Collection[str],
    live_number: str | None = None,
    sealer: Sealer | None = None,
) -> Enrolled:
    """Enrol the caller of `call_id` with companion `member`; creates the first task."""
    if companions and member not in companions:
        raise NotFound(
            f"{member} is not a companion (companions: {', '.join(sorted(companions))})",
            "동행단원 목록에 없습니다",
        )
    caller_hash = await citizen.caller_of(store, call_id)
    if caller_hash is None:
        raise NotFound(f"no call {call_id}", "통화 기록이 없습니다")
    if caller_hash == citizen.ANONYMOUS:
        raise FollowupError(
            "the call has no caller number: a series cannot call back",
            "발신 번호가 없는 통화라 동행 전화를 드릴 수 없습니다",
        )
    if await records.opted_out(caller_hash):
        raise Conflict(
            "the citizen asked not to be called again", "후속 전화를 원하지 않는 시민입니다"
        )
    sealed = await citizen.citizen_number(store, caller_hash, live_number, sealer)
    series_id = await CompanionSeries(store).add(
        caller_hash, sealed, member, schedule, now, call_id
    )
    series = await CompanionSeries(store).get(series_id)
    assert series is not None
    # The first occurrence at or after now (next_after is strictly after its argument).
    task_id, due = await schedule_next(records, series, sealed, now - 1e-6, now)
    log.info(
        "companion series %d: %s with %s (by %s), first call task %d",
        series_id,
        schedule.describe(),
        member,
        by or "-",
        task_id,
    )
    return Enrolled(series, task_id, due)


@dataclass(frozen=True)
class Stopped:
    series_id: int
    cancelled_tasks: tuple[int, ...]


async def stop(
    store: Store, records: FollowupRecords, target: str, now: float, by: str
) -> list[Stopped]:
    """Stop a series given its id, or every active series enrolled on a call (a call id):
    the series ends and its open task is cancelled. Raises NotFound."""
    book = CompanionSeries(store)
    if target.isdigit():
        found = await book.get(int(target))
        chosen = [found] if found is not None and found.active else []
    else:
        chosen = await book.list(call_id=target)
        if not chosen:
            caller_hash = await citizen.caller_of(store, target)
            if caller_hash is not None and caller_hash != citizen.ANONYMOUS:
                chosen = await book.list(caller_hash=caller_hash)
    if not chosen:
        raise NotFound(f"no active companion series for {target}", "진행 중인 동행이 없습니다")
    done = []
    for series in chosen:
        await book.stop(series.id, now)
        open_tasks = await store.fetch(
            "SELECT id FROM followup_tasks WHERE series_id=? AND status='open'", (series.id,)
        )
        ids = tuple(int(r[0]) for r in open_tasks)
        for task_id in ids:
            await records.close(task_id, Status.CANCELLED, Outcome.CANCELLED.value, now, by)
        log.info("companion series %d stopped by %s; cancelled tasks %s", series.id, by, ids)
        done.append(Stopped(series.id, ids))
    return done
