"""What follows when a follow-up task closes (the dialler and ``followup close`` call this).

* A task that checks referrals (a monitoring task, or a social workers' task monitoring
  requests merged into; ``referrals.checked_by``): ``reached`` → each referral is
  ``confirmed``, ``not_linked`` → ``failed``; ``more_help`` leaves them as they are (the
  in-depth task below takes the need on). Other outcomes (unreachable, opted out, cancelled)
  say nothing about the referrals and leave them. Every referral the task checks is updated —
  the task's own and each one whose monitoring merged into it (one call asked about them all);
  a referral staff already set final keeps its status.
* A companion task: the series' next task is scheduled, for the same companion, at the first
  occurrence after both the closed task's due time and now — unless the series was stopped or
  the citizen opted out (then the series is stopped too).
* ``more_help`` on any task: a new ``in_depth`` task for the social workers, due at once
  (merged into the citizen's open social-worker task if there is one), with the closed task's
  sealed number.

Calling it twice for one close does no harm: the new tasks merge into those already made and a
referral already in its status stays.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ivr.followup import citizen
from ivr.followup.companions import CompanionSeries, schedule_next
from ivr.followup.errors import Conflict, NotFound
from ivr.followup.model import FollowupConfig, Outcome, Task, TaskType
from ivr.followup.records import FollowupRecords
from ivr.followup.referrals import Referrals, ReferralStatus, checked_by
from ivr.store import Store, WriteDeferred

log = logging.getLogger(__name__)

#: A referral's new status after the monitoring call's outcome.
REFERRAL_AFTER: dict[Outcome, ReferralStatus] = {
    Outcome.REACHED: ReferralStatus.CONFIRMED,
    Outcome.NOT_LINKED: ReferralStatus.FAILED,
}


@dataclass(frozen=True)
class AfterClose:
    #: (referral id, its status now) for the task's own referral.
    referral: tuple[int, str] | None = None
    #: The same for every referral the task checked (its own first).
    referrals: tuple[tuple[int, str], ...] = ()
    #: The in-depth task made for `more_help`.
    in_depth_task: int | None = None
    #: The companion series' next task, and when it is due.
    next_companion_task: int | None = None
    next_companion_due: float | None = None


async def task_closed(
    records: FollowupRecords,
    store: Store,
    task: Task,
    outcome: Outcome | str,
    now: float,
    config: FollowupConfig,
) -> AfterClose:
    """Carry out what follows the close of `task` with `outcome` (see the module docstring)."""
    outcome = Outcome(outcome)
    ids = await checked_by(store, task.id, task.referral_id)
    updated = [r for r in [await _update_referral(store, task, i, outcome, now) for i in ids] if r]
    referral = updated[0] if updated and updated[0][0] == task.referral_id else None
    in_depth = None
    if outcome is Outcome.MORE_HELP:
        in_depth = await _in_depth(records, task, now)
    next_task, next_due = None, None
    if task.type is TaskType.COMPANION and task.series_id is not None:
        next_task, next_due = await _next_companion(records, store, task, outcome, now)
    return AfterClose(referral, tuple(updated), in_depth, next_task, next_due)


async def _update_referral(
    store: Store, task: Task, referral_id: int, outcome: Outcome, now: float
) -> tuple[int, str] | None:
    referrals = Referrals(store)
    status = REFERRAL_AFTER.get(outcome)
    if status is None:
        current = await referrals.get(referral_id)
        return (current.id, current.status.value) if current else None
    by = f"{task.type}:{task.id}"
    try:
        updated = await referrals.set_status(
            referral_id, status, now, task.closed_by or by, note=f"follow-up task {task.id}"
        )
    except Conflict as exc:  # staff set it final already: theirs stands
        log.info("referral %d not changed by task %d: %s", referral_id, task.id, exc)
        current = await referrals.get(referral_id)
        return (current.id, current.status.value) if current else None
    except NotFound:
        log.warning("task %d checks referral %d, which does not exist", task.id, referral_id)
        return None
    return updated.id, updated.status.value


async def _in_depth(records: FollowupRecords, task: Task, now: float) -> int | None:
    if await records.opted_out(task.caller_hash):
        return None
    sealed = await records.sealed_number(task.id)
    try:
        task_id, merged = await records.add_or_merge(
            TaskType.IN_DEPTH,
            task.caller_hash,
            *citizen.columns(sealed),
            now,
            now,
            call_id=task.call_id,
            requested_by=task.closed_by or "system",
            note=f"추가 지원 more help after {task.type} task #{task.id}",
        )
    except WriteDeferred:
        log.warning("task %d: the in-depth task is kept until the database can take it", task.id)
        return None
    log.info(
        "task %d more help: in-depth task %d (%s)", task.id, task_id, "merged" if merged else "new"
    )
    return task_id


async def _next_companion(
    records: FollowupRecords, store: Store, task: Task, outcome: Outcome, now: float
) -> tuple[int | None, float | None]:
    assert task.series_id is not None
    book = CompanionSeries(store)
    series = await book.get(task.series_id)
    if series is None or not series.active:
        return None, None
    if outcome is Outcome.OPTED_OUT or await records.opted_out(task.caller_hash):
        await book.stop(series.id, now)
        log.info("companion series %d stopped: the citizen opted out", series.id)
        return None, None
    sealed = await book.sealed(series.id) or await records.sealed_number(task.id)
    try:
        task_id, due = await schedule_next(records, series, sealed, max(now, task.due_at), now)
    except WriteDeferred:
        log.warning("series %d: the next task is kept until the database can take it", series.id)
        return None, None
    log.info("companion series %d: next task %d for %s", series.id, task_id, series.member)
    return task_id, due
