"""The follow-up tables through the real SQLite store: merging requests, the order tasks are
due in, the dialling lock and opt-outs."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.followup.companions import CompanionSeries
from ivr.followup.model import AttemptResult, Status, TaskType, Team
from ivr.followup.planner import deadline, overdue
from ivr.followup.records import FollowupRecords
from ivr.followup.series import Schedule
from ivr.followup.workdays import WorkCalendar
from ivr.store import Store
from ivr.timezone import SEOUL

NOW = 1_764_000_000.0


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[FollowupRecords]:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        yield FollowupRecords(store)
    finally:
        await store.close()


async def test_a_second_request_of_the_same_team_merges_into_the_open_task(
    records: FollowupRecords,
) -> None:
    first, merged = await records.add_or_merge(
        TaskType.CALLBACK, "h1", b"sealed", "citizen:h1", NOW, NOW + 60, note="first"
    )
    assert not merged
    second, merged = await records.add_or_merge(
        TaskType.WELFARE, "h1", None, None, NOW + 1, NOW + 1, note="second"
    )
    assert merged and second == first
    task = await records.task(first)
    assert task is not None
    # The more urgent type and the earlier due time win; both notes are kept.
    assert task.type is TaskType.WELFARE and task.priority == 0 and task.due_at == NOW + 1
    assert task.note == "first\nsecond"
    assert await records.sealed_number(first) == (b"sealed", "citizen:h1")
    # Another team's need is its own task.
    other, merged = await records.add_or_merge(TaskType.IN_DEPTH, "h1", None, None, NOW, NOW)
    assert not merged and other != first


async def test_due_tasks_come_most_urgent_first_and_a_locked_one_is_skipped(
    records: FollowupRecords,
) -> None:
    cb, _ = await records.add_or_merge(TaskType.CALLBACK, "a", None, None, NOW, NOW - 10)
    wf, _ = await records.add_or_merge(TaskType.WELFARE, "b", None, None, NOW, NOW - 5)
    later, _ = await records.add_or_merge(TaskType.CALLBACK, "c", None, None, NOW, NOW + 100)
    due = await records.due(Team.COUNSELORS, NOW, 10)
    assert [t.id for t in due] == [wf, cb]
    assert await records.lock(wf, "run-a", NOW, 300)
    assert not await records.lock(wf, "run-b", NOW, 300)  # held: nobody else gets it
    assert [t.id for t in await records.due(Team.COUNSELORS, NOW, 10)] == [cb]
    # The lease ends: free again.
    assert await records.lock(wf, "run-b", NOW + 301, 300)
    assert [t.id for t in await records.due(Team.COUNSELORS, NOW + 301, 10)] == [cb, later]


async def test_an_opt_out_closes_every_open_task_and_hides_the_citizen(
    records: FollowupRecords,
) -> None:
    a, _ = await records.add_or_merge(TaskType.CALLBACK, "h", None, None, NOW, NOW)
    b, _ = await records.add_or_merge(TaskType.IN_DEPTH, "h", None, None, NOW, NOW)
    attempt = await records.attempt_started(a, "counselor01", "call-1", NOW)
    await records.attempt_ended(attempt, a, AttemptResult.OPTED_OUT, NOW + 5, counted=False)
    await records.opt_out("h", NOW + 5, "call-1", "key")
    for tid in (a, b):
        task = await records.task(tid)
        assert task is not None and task.status is Status.OPTED_OUT
    assert await records.opted_out("h")
    assert await records.due(Team.COUNSELORS, NOW + 10, 10) == []
    assert [r["result"] for r in await records.attempts(a)] == ["opted_out"]


async def test_the_due_reads_are_bounded_by_the_due_time_in_the_index(
    records: FollowupRecords,
) -> None:
    """The planning cycle's reads must not wade through the tasks due later (with 100,000 open
    tasks a full scan of a team costs tens of ms a cycle): SQLite's plan searches the index by
    team, priority and due time, and the tasks fixed to a member by their own index."""
    store = records.store
    for i in range(50):
        await records.add_or_merge(TaskType.COMPANION, f"c{i}", None, None, NOW, NOW + i * 60)
    await records.assign(1, "companion01")
    seen: list[tuple[str, tuple[object, ...]]] = []
    fetch = store.fetch

    async def spy(sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        seen.append((sql, args))
        return await fetch(sql, args)

    store.fetch = spy  # type: ignore[method-assign]
    try:
        assert len(await records.due(Team.COMPANIONS, NOW + 600, 5)) == 5
        assert [t.id for t in await records.due(Team.COMPANIONS, NOW, 5, member="companion01")] == [
            1
        ]
    finally:
        store.fetch = fetch  # type: ignore[method-assign]
    plans = []
    for sql, args in seen:
        rows = await store.fetch(f"EXPLAIN QUERY PLAN {sql}", args)
        plans.append(" ".join(str(r[-1]) for r in rows))
    team_plan, member_plan = plans
    assert "USING INDEX followup_due (status=? AND team=? AND priority=? AND due_at<?)" in (
        team_plan
    ), team_plan
    assert "USING INDEX followup_member (member=?" in member_plan, member_plan
    assert "due_at<?" in member_plan and "TEMP B-TREE" not in team_plan + member_plan


async def test_a_request_the_locked_database_cannot_take_is_kept_and_written_later(
    records: FollowupRecords, tmp_path: Path
) -> None:
    import sqlite3

    from ivr.store import WriteDeferred

    store = records.store
    await store.fetch("PRAGMA busy_timeout=0")
    locker = sqlite3.connect(tmp_path / "db.sqlite3", timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(WriteDeferred):
            await records.add_or_merge(TaskType.CALLBACK, "h", b"s", "citizen:h", NOW, NOW)
        assert len(store.pending) == 1
    finally:
        locker.rollback()
        locker.close()
    assert await store.flush()
    (task,) = await records.tasks()
    assert task.type is TaskType.CALLBACK and task.caller_hash == "h"


async def test_a_request_is_not_merged_into_the_task_being_dialled(
    records: FollowupRecords,
) -> None:
    first, _ = await records.add_or_merge(TaskType.CALLBACK, "h1", None, None, NOW, NOW)
    assert await records.lock(first, "run-a", NOW, 300)
    second, merged = await records.add_or_merge(
        TaskType.WELFARE, "h1", None, None, NOW + 1, NOW + 1, note="during the call"
    )
    assert not merged and second != first
    await records.close(first, Status.DONE, "reached", NOW + 2, "c1")
    kept = await records.task(second)
    assert kept is not None and kept.status is Status.OPEN and kept.note == "during the call"
    # Once the lease is over, a request merges again.
    third, merged = await records.add_or_merge(TaskType.CALLBACK, "h1", None, None, NOW + 400, NOW)
    assert merged and third == second


async def test_a_close_says_whether_it_closed_the_task(records: FollowupRecords) -> None:
    task_id, _ = await records.add_or_merge(TaskType.CALLBACK, "h1", None, None, NOW, NOW)
    assert await records.close(task_id, Status.CANCELLED, "cancelled", NOW, "admin") == 1
    assert await records.close(task_id, Status.DONE, "reached", NOW + 1, "c1") == 0
    task = await records.task(task_id)
    assert task is not None and (task.status, task.outcome) == (Status.CANCELLED, "cancelled")


async def test_the_diallers_reschedule_leaves_a_lock_taken_over_alone(
    records: FollowupRecords,
) -> None:
    task_id, _ = await records.add_or_merge(TaskType.CALLBACK, "h1", None, None, NOW, NOW)
    assert await records.lock(task_id, "run-b", NOW + 400, 300)  # run-a's lease ran out
    await records.reschedule(task_id, NOW + 3600, "run-a")
    task = await records.task(task_id)
    assert task is not None and task.locked_by == "run-b" and task.due_at == NOW


async def test_an_opt_out_stops_the_citizens_companion_series(
    records: FollowupRecords,
) -> None:
    book = CompanionSeries(records.store)
    series = await book.add("h", None, "companion01", Schedule(7, 1, 600), NOW, "call-1")
    other = await book.add("h-other", None, "companion01", Schedule(7, 1, 600), NOW, "call-2")
    await records.opt_out("h", NOW + 5, "call-3", "key")
    stopped = await book.get(series)
    assert stopped is not None and stopped.stopped_at == NOW + 5
    kept = await book.get(other)
    assert kept is not None and kept.stopped_at is None


async def test_an_in_depth_request_merged_into_an_older_task_keeps_its_own_deadline(
    records: FollowupRecords,
) -> None:
    # A referral's monitoring task made on Monday 2 November; the counselor's `*8` on
    # Tuesday 10 November merges into it: the deadline is Wednesday 11 November's end of day,
    # not the day after the monitoring task was made (overdue the moment it arrived).
    made = dt.datetime(2026, 11, 2, 10, 0, tzinfo=SEOUL).timestamp()
    asked = dt.datetime(2026, 11, 10, 11, 0, tzinfo=SEOUL).timestamp()
    first, _ = await records.add_or_merge(
        TaskType.MONITORING, "h7", b"sealed", "citizen:h7", made, made + 14 * 86400
    )
    merged_id, merged = await records.add_or_merge(
        TaskType.IN_DEPTH, "h7", None, None, asked, asked
    )
    again, _ = await records.add_or_merge(TaskType.IN_DEPTH, "h7", None, None, asked + 60, asked)
    assert merged and merged_id == first == again
    task = await records.task(first)
    assert task is not None and task.type is TaskType.IN_DEPTH
    assert task.created_at == made and task.in_depth_at == asked  # the first in-depth request
    cal = WorkCalendar()
    expected = dt.datetime(2026, 11, 11, 18, 0, tzinfo=SEOUL).timestamp()
    assert deadline(task, cal) == expected
    assert not overdue(task, asked + 3600, cal)
    # A task made as an in-depth request counts from its own time.
    own, _ = await records.add_or_merge(TaskType.IN_DEPTH, "h8", None, None, asked, asked)
    own_task = await records.task(own)
    assert own_task is not None and own_task.in_depth_at == asked
