"""Referrals to partner agencies, and the monitoring call each one schedules.

A counselor who links a caller to an agency of the catalog (ivr.followup.agencies) records a
referral on the call (``ivr-admin referral add CALL AGENCY``, POST /api/referrals). Its status:

    proposed ──> linked ──> confirmed
        │           └─────> failed
        ├──────────────────> confirmed   (the monitoring call found it worked)
        └──────────────────> failed

``proposed``: the counselor suggested the agency; ``linked``: the agency was contacted or the
citizen went; ``confirmed``: the help arrived (usually set by the monitoring call's outcome,
ivr.followup.closing); ``failed``: it did not. ``confirmed`` and ``failed`` are final — a new
need is a new referral.

Creating a referral schedules its ``monitoring`` task for the social workers,
``monitoring_after_days`` later, through ``FollowupRecords.add_or_merge`` (so it merges into
the citizen's open social-worker task if there is one; that task then checks this referral
too: ``followup_task_referrals`` links a task to every referral it checks, and the monitoring
call's outcome updates each of them, ivr.followup.closing).
The citizen's number comes from ivr.followup.citizen; without one the task is kept but cannot
be dialled (``dialable`` false). A citizen who opted out of follow-up calls gets no monitoring
task (the referral is still recorded).

Writes: the referral itself is an administrator's action and happens at once or fails
(``Store.atomically``/``Store.change``); the monitoring task goes through the records API.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import asdict, dataclass
from typing import Any

import aiosqlite

from ivr.crypto import Sealer
from ivr.followup import citizen
from ivr.followup.agencies import Agencies
from ivr.followup.errors import Conflict, FollowupError, NotFound
from ivr.followup.model import FollowupConfig, TaskType
from ivr.followup.records import FollowupRecords
from ivr.store import Store, WriteDeferred

log = logging.getLogger(__name__)


class ReferralStatus(enum.StrEnum):
    PROPOSED = "proposed"
    LINKED = "linked"
    CONFIRMED = "confirmed"
    FAILED = "failed"


FINAL = frozenset({ReferralStatus.CONFIRMED, ReferralStatus.FAILED})
#: Allowed status changes.
NEXT: dict[ReferralStatus, frozenset[ReferralStatus]] = {
    ReferralStatus.PROPOSED: frozenset(
        {ReferralStatus.LINKED, ReferralStatus.CONFIRMED, ReferralStatus.FAILED}
    ),
    ReferralStatus.LINKED: frozenset({ReferralStatus.CONFIRMED, ReferralStatus.FAILED}),
    ReferralStatus.CONFIRMED: frozenset(),
    ReferralStatus.FAILED: frozenset(),
}
STATUS_KO = {"proposed": "제안", "linked": "연계", "confirmed": "확인", "failed": "실패"}

_COLUMNS = "id, call_id, caller_hash, agency, status, created_at, updated_at, created_by, note"


@dataclass(frozen=True)
class Referral:
    id: int
    call_id: str
    caller_hash: str
    agency: str
    status: ReferralStatus
    created_at: float
    updated_at: float
    created_by: str | None
    note: str | None

    def view(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def _referral(row: tuple[Any, ...]) -> Referral:
    id_, call_id, caller, agency, status, created, updated, by, note = row
    return Referral(
        int(id_), call_id, caller, agency, ReferralStatus(status), created, updated, by, note
    )


def parse_status(text: str) -> ReferralStatus:
    try:
        return ReferralStatus(text)
    except ValueError:
        raise FollowupError(
            f"unknown referral status {text!r} (one of {', '.join(ReferralStatus)})",
            "알 수 없는 연계 상태입니다",
        ) from None


class Referrals:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(
        self,
        call_id: str,
        caller_hash: str,
        agency: str,
        now: float,
        by: str | None,
        note: str | None = None,
    ) -> int:
        async def insert(db: aiosqlite.Connection) -> int:
            cur = await db.execute(
                "INSERT INTO referrals (call_id, caller_hash, agency, status, created_at,"
                " updated_at, created_by, note) VALUES (?, ?, ?, 'proposed', ?, ?, ?, ?)",
                (call_id, caller_hash, agency, now, now, by, note),
            )
            return int(cur.lastrowid or 0)

        return await self.store.atomically(insert)

    async def get(self, referral_id: int) -> Referral | None:
        rows = await self.store.fetch(
            f"SELECT {_COLUMNS} FROM referrals WHERE id=?", (referral_id,)
        )
        return _referral(rows[0]) if rows else None

    async def list(
        self,
        *,
        call_id: str | None = None,
        status: ReferralStatus | None = None,
        caller_hash: str | None = None,
        limit: int = 500,
    ) -> list[Referral]:
        sql = f"SELECT {_COLUMNS} FROM referrals WHERE 1=1"
        args: list[Any] = []
        for column, value in (
            ("call_id", call_id),
            ("status", status),
            ("caller_hash", caller_hash),
        ):
            if value is not None:
                sql += f" AND {column}=?"
                args.append(str(value))
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        return [_referral(r) for r in await self.store.fetch(sql, tuple(args))]

    async def set_status(
        self,
        referral_id: int,
        status: ReferralStatus,
        now: float,
        by: str | None,
        note: str | None = None,
    ) -> Referral:
        """Move a referral on (see NEXT); a note is appended. Raises NotFound or Conflict."""
        current = await self.get(referral_id)
        if current is None:
            raise NotFound(f"no referral {referral_id}", "연계 기록이 없습니다")
        if status is current.status:
            return current
        if status not in NEXT[current.status]:
            raise Conflict(
                f"referral {referral_id} is {current.status}; it cannot become {status}",
                f"연계 상태를 {STATUS_KO[current.status]}에서 {STATUS_KO[status]}(으)로 바꿀 수"
                " 없습니다",
            )
        line = f"{STATUS_KO[status]} {status}" + (f" ({by})" if by else "")
        if note:
            line += f": {note}"
        changed = await self.store.change(
            "UPDATE referrals SET status=?, updated_at=?,"
            " note=CASE WHEN note IS NULL OR note='' THEN ? ELSE note || char(10) || ? END"
            " WHERE id=? AND status=?",
            (status.value, now, line, line, referral_id, current.status.value),
        )
        if changed != 1:  # changed meanwhile: check again from the new state
            return await self.set_status(referral_id, status, now, by, note)
        log.info("referral %d: %s -> %s", referral_id, current.status, status)
        updated = await self.get(referral_id)
        assert updated is not None
        return updated


async def checked_by(store: Store, task_id: int, own: int | None) -> list[int]:
    """The referrals a task checks: its own (`referral_id`) first, then every other one whose
    monitoring merged into it, oldest first."""
    rows = await store.fetch(
        "SELECT referral_id FROM followup_task_referrals WHERE task_id=? ORDER BY referral_id",
        (task_id,),
    )
    ids = [] if own is None else [own]
    return ids + [int(r[0]) for r in rows if int(r[0]) != own]


@dataclass(frozen=True)
class Referred:
    """What `refer` did: the referral, and its monitoring task (None: not scheduled, see
    `why_not`)."""

    referral: Referral
    task_id: int | None
    merged: bool
    due_at: float | None
    dialable: bool
    why_not: str | None = None


async def refer(
    store: Store,
    records: FollowupRecords,
    agencies: Agencies,
    *,
    call_id: str,
    agency: str,
    now: float,
    config: FollowupConfig,
    by: str | None,
    note: str | None = None,
    live_number: str | None = None,
    sealer: Sealer | None = None,
) -> Referred:
    """Record a referral on a call and schedule its monitoring task. `live_number` is the
    call's number if it is still up (ivr.followup.citizen). Raises NotFound for an unknown
    call or agency."""
    found = agencies.get(agency)
    if found is None:
        raise NotFound(f"no agency {agency!r} in the catalog", "기관 목록에 없는 기관입니다")
    caller_hash = await citizen.caller_of(store, call_id)
    if caller_hash is None:
        raise NotFound(f"no call {call_id}", "통화 기록이 없습니다")
    rid = await Referrals(store).add(call_id, caller_hash, agency, now, by, note)
    referral = await Referrals(store).get(rid)
    assert referral is not None
    if await records.opted_out(caller_hash):
        log.info("referral %d: the citizen opted out of follow-up calls; no monitoring", rid)
        return Referred(referral, None, False, None, False, "opted_out")
    sealed = await citizen.citizen_number(store, caller_hash, live_number, sealer)
    due = now + config.monitoring_after
    try:
        task_id, merged = await records.add_or_merge(
            TaskType.MONITORING,
            caller_hash,
            sealed[0] if sealed else None,
            sealed[1] if sealed else None,
            now,
            due,
            call_id=call_id,
            requested_by=by,
            referral_id=rid,
            note=f"연계 referral #{rid}: {found.name} ({found.id})",
        )
    except WriteDeferred:
        log.warning("referral %d: its monitoring task is kept until the database can take it", rid)
        return Referred(referral, None, False, due, sealed is not None, "deferred")
    if merged:
        # The citizen's open social-worker task now also checks this referral.
        await store.write(
            "monitoring referral",
            "UPDATE followup_tasks SET referral_id=COALESCE(referral_id, ?) WHERE id=?",
            (rid, task_id),
        )
    await store.write(
        "monitoring referral link",
        "INSERT OR IGNORE INTO followup_task_referrals (task_id, referral_id) VALUES (?, ?)",
        (task_id, rid),
    )
    if sealed is None:
        log.warning(
            "referral %d: monitoring task %d has no number to dial (the call is over and no"
            " sealed number of the citizen is kept); staff must close it by hand",
            rid,
            task_id,
        )
    task = await records.task(task_id)
    return Referred(
        referral,
        task_id,
        merged,
        task.due_at if task else due,
        sealed is not None or (await records.sealed_number(task_id)) is not None,
    )
