"""Referrals, their monitoring tasks, companion series and what follows a task's close,
through the real SQLite store."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.crypto import Sealer
from ivr.followup import citizen, companions
from ivr.followup.agencies import load_agencies
from ivr.followup.closing import task_closed
from ivr.followup.errors import Conflict, NotFound
from ivr.followup.model import FollowupConfig, Outcome, Status, TaskType, Team, seal_purpose
from ivr.followup.records import FollowupRecords
from ivr.followup.referrals import Referrals, ReferralStatus, Referred, refer
from ivr.followup.series import parse_schedule
from ivr.paths import CONFIG_DIR
from ivr.store import Store
from ivr.timezone import SEOUL
from tests.conftest import TEST_CALLER_NUMBER

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=SEOUL).timestamp()  # a Tuesday
CONFIG = FollowupConfig(
    backoff=(1800.0,),
    max_attempts=3,
    calling_start=9 * 60,
    calling_end=20 * 60,
    lock_seconds=300,
    companion_grace=3600,
    monitoring_after=14 * 86400.0,
    reached_min_talk=30,
)
AGENCIES = load_agencies(CONFIG_DIR / "agencies.toml")
SEALER = Sealer(Sealer.new_key())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "db.sqlite3")
    try:
        await s.call_started("call-1", "h1", NOW - 600)
        await s.call_started("call-2", "h1", NOW - 60)
        await s.call_started("anon", "anonymous", NOW - 60)
        yield s
    finally:
        await s.close()


async def referred(
    store: Store,
    *,
    call_id: str = "call-2",
    agency: str = "welfare-129",
    by: str | None = "c1",
    note: str | None = None,
    live_number: str | None = None,
    now: float = NOW,
) -> Referred:
    """`refer` with the test config (`live_number`: the call is still up)."""
    return await refer(
        store,
        FollowupRecords(store),
        AGENCIES,
        call_id=call_id,
        agency=agency,
        now=now,
        config=CONFIG,
        by=by,
        note=note,
        live_number=live_number,
        sealer=SEALER,
    )


async def test_a_referral_schedules_its_monitoring_task_sealed_from_the_live_call(
    store: Store,
) -> None:
    records = FollowupRecords(store)
    done = await referred(
        store,
        agency="mapo-meals",
        by="counselor01",
        note="점심 모임",
        live_number=TEST_CALLER_NUMBER,
    )
    assert done.referral.status is ReferralStatus.PROPOSED and done.referral.caller_hash == "h1"
    assert done.task_id is not None and done.dialable and not done.merged
    task = await records.task(done.task_id)
    assert task is not None
    assert task.type is TaskType.MONITORING and task.team is Team.SOCIAL_WORKERS
    assert task.due_at == NOW + 14 * 86400 and task.referral_id == done.referral.id
    sealed = await records.sealed_number(done.task_id)
    assert sealed is not None and sealed[1] == seal_purpose("h1")
    assert SEALER.open(*sealed) == TEST_CALLER_NUMBER
    rows = await store.fetch("SELECT * FROM referrals")
    assert TEST_CALLER_NUMBER not in repr(rows)


async def test_after_the_call_the_number_comes_from_the_citizens_latest_sealed_one(
    store: Store,
) -> None:
    records = FollowupRecords(store)
    old = SEALER.seal(TEST_CALLER_NUMBER, "callback:call-1")
    await store.add_callback("call-1", "h1", old, NOW - 500, "max_wait", "none", None)
    assert await citizen.latest_sealed(store, "h1") == (old, "callback:call-1")
    done = await referred(store, by="counselor01")
    assert done.task_id is not None and done.dialable
    sealed = await records.sealed_number(done.task_id)
    assert sealed is not None and SEALER.open(*sealed) == TEST_CALLER_NUMBER


async def test_without_any_number_the_monitoring_task_exists_but_is_not_dialable(
    store: Store,
) -> None:
    records = FollowupRecords(store)
    done = await referred(store, call_id="anon", by="counselor01", live_number="")
    assert done.task_id is not None and not done.dialable
    assert await records.sealed_number(done.task_id) is None


async def test_unknown_agency_or_call_is_refused(store: Store) -> None:
    with pytest.raises(NotFound, match="agency"):
        await referred(store, agency="nope", by=None)
    with pytest.raises(NotFound, match="call"):
        await referred(store, call_id="nope", by=None)
    assert await store.fetch("SELECT * FROM referrals") == []


async def test_an_opted_out_citizen_gets_the_referral_but_no_monitoring_call(
    store: Store,
) -> None:
    records = FollowupRecords(store)
    await records.opt_out("h1", NOW - 10, "call-1", "key")
    done = await referred(store)
    assert done.task_id is None and done.why_not == "opted_out"


async def test_referral_statuses_move_forward_only(store: Store) -> None:
    referrals = Referrals(store)
    rid = await referrals.add("call-2", "h1", "welfare-129", NOW, "c1")
    linked = await referrals.set_status(rid, ReferralStatus.LINKED, NOW + 1, "c1", "전화함")
    assert linked.status is ReferralStatus.LINKED and linked.updated_at == NOW + 1
    assert linked.note is not None and "전화함" in linked.note
    with pytest.raises(Conflict):
        await referrals.set_status(rid, ReferralStatus.PROPOSED, NOW + 2, "c1")
    await referrals.set_status(rid, ReferralStatus.FAILED, NOW + 3, "c1")
    with pytest.raises(Conflict):
        await referrals.set_status(rid, ReferralStatus.CONFIRMED, NOW + 4, "c1")
    with pytest.raises(NotFound):
        await referrals.set_status(999, ReferralStatus.LINKED, NOW, "c1")


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("reached", "confirmed"), ("not_linked", "failed"), ("unreachable", "proposed")],
)
async def test_the_monitoring_outcome_updates_the_referral(
    store: Store, outcome: str, status: str
) -> None:
    records = FollowupRecords(store)
    done = await referred(store, live_number=TEST_CALLER_NUMBER)
    assert done.task_id is not None
    await records.close(done.task_id, Status.DONE, outcome, NOW + 10, "social01")
    task = await records.task(done.task_id)
    assert task is not None
    after = await task_closed(records, store, task, outcome, NOW + 10, CONFIG)
    assert after.referral == (done.referral.id, status)
    assert after.in_depth_task is None
    ref = await Referrals(store).get(done.referral.id)
    assert ref is not None and ref.status == status


@pytest.mark.parametrize(
    ("outcome", "first_status", "second_status"),
    [
        ("reached", "confirmed", "confirmed"),
        ("not_linked", "failed", "failed"),
        ("unreachable", "linked", "proposed"),  # says nothing about them: left as they were
    ],
)
async def test_the_monitoring_outcome_updates_every_referral_merged_into_the_task(
    store: Store, outcome: str, first_status: str, second_status: str
) -> None:
    records = FollowupRecords(store)

    async def referral(agency: str, call_id: str, at: float) -> tuple[int, int | None, bool]:
        done = await refer(
            store,
            records,
            AGENCIES,
            call_id=call_id,
            agency=agency,
            now=at,
            config=CONFIG,
            by="c1",
            live_number=TEST_CALLER_NUMBER,
            sealer=SEALER,
        )
        return done.referral.id, done.task_id, done.merged

    first, task_id, merged = await referral("welfare-129", "call-1", NOW)
    assert task_id is not None and not merged
    # The first referral was linked; then a second one on a later call merges into its task.
    await Referrals(store).set_status(first, ReferralStatus.LINKED, NOW + 5, "c1")
    second, same, merged = await referral("mapo-meals", "call-2", NOW + 60)
    assert same == task_id and merged
    # A third one staff already confirmed by hand keeps its status whatever the call found.
    third, same, _ = await referral("welfare-129", "call-2", NOW + 70)
    assert same == task_id
    await Referrals(store).set_status(third, ReferralStatus.CONFIRMED, NOW + 80, "c1")
    await records.close(task_id, Status.DONE, outcome, NOW + 100, "social01")
    task = await records.task(task_id)
    assert task is not None and task.referral_id == first
    after = await task_closed(records, store, task, outcome, NOW + 100, CONFIG)
    expected = ((first, first_status), (second, second_status), (third, "confirmed"))
    assert after.referral == (first, first_status)
    assert after.referrals == expected
    for rid, status in expected:
        ref = await Referrals(store).get(rid)
        assert ref is not None and ref.status == status, rid


async def test_more_help_on_a_monitoring_call_makes_an_in_depth_task_with_the_number(
    store: Store,
) -> None:
    records = FollowupRecords(store)
    done = await referred(store, live_number=TEST_CALLER_NUMBER)
    assert done.task_id is not None
    await records.close(done.task_id, Status.DONE, "more_help", NOW + 10, "social01")
    task = await records.task(done.task_id)
    assert task is not None
    after = await task_closed(records, store, task, Outcome.MORE_HELP, NOW + 10, CONFIG)
    assert after.in_depth_task is not None and after.in_depth_task != done.task_id
    new = await records.task(after.in_depth_task)
    assert new is not None and new.type is TaskType.IN_DEPTH and new.open
    assert new.due_at == NOW + 10 and new.requested_by == "social01"
    sealed = await records.sealed_number(new.id)
    assert sealed is not None and SEALER.open(*sealed) == TEST_CALLER_NUMBER
    ref = await Referrals(store).get(done.referral.id)
    assert ref is not None and ref.status is ReferralStatus.PROPOSED
    # Told twice: no second task.
    again = await task_closed(records, store, task, Outcome.MORE_HELP, NOW + 11, CONFIG)
    assert again.in_depth_task == after.in_depth_task


async def test_more_help_on_a_callback_makes_an_in_depth_task(store: Store) -> None:
    records = FollowupRecords(store)
    tid, _ = await records.add_or_merge(TaskType.CALLBACK, "h1", b"x", "citizen:h1", NOW, NOW)
    await records.close(tid, Status.DONE, "more_help", NOW + 5, "counselor01")
    task = await records.task(tid)
    assert task is not None
    after = await task_closed(records, store, task, "more_help", NOW + 5, CONFIG)
    assert after.referral is None and after.in_depth_task is not None
    new = await records.task(after.in_depth_task)
    assert new is not None and new.team is Team.SOCIAL_WORKERS


async def test_a_companion_series_calls_again_with_the_same_companion(store: Store) -> None:
    records = FollowupRecords(store)
    enrolled = await companions.enrol(
        store,
        records,
        call_id="call-2",
        member="companion07",
        schedule=parse_schedule("7d", "화 15:00"),
        now=NOW,
        by="c1",
        companions=("companion07", "companion08"),
        live_number=TEST_CALLER_NUMBER,
        sealer=SEALER,
    )
    first = await records.task(enrolled.task_id)
    assert first is not None and first.type is TaskType.COMPANION
    assert first.member == "companion07" and first.series_id == enrolled.series.id
    assert first.due_at == dt.datetime(2026, 12, 1, 15, 0, tzinfo=SEOUL).timestamp()
    sealed = await records.sealed_number(first.id)
    assert sealed is not None and SEALER.open(*sealed) == TEST_CALLER_NUMBER
    # The call happens a little late; the next one is a week after the planned time.
    await records.close(first.id, Status.DONE, "reached", first.due_at + 900, "companion07")
    closed = await records.task(first.id)
    assert closed is not None
    after = await task_closed(records, store, closed, "reached", first.due_at + 900, CONFIG)
    assert after.next_companion_task is not None
    second = await records.task(after.next_companion_task)
    assert second is not None and second.member == "companion07" and second.open
    assert second.due_at == first.due_at + 7 * 86400
    assert await records.sealed_number(second.id) is not None


async def test_one_series_per_citizen_and_only_known_companions(store: Store) -> None:
    records = FollowupRecords(store)
    s = parse_schedule("7d", "Tue 15:00")
    with pytest.raises(NotFound, match="not a companion"):
        await companions.enrol(
            store,
            records,
            call_id="call-2",
            member="counselor01",
            schedule=s,
            now=NOW,
            by="c1",
            companions=("companion01",),
        )
    await companions.enrol(
        store,
        records,
        call_id="call-2",
        member="companion01",
        schedule=s,
        now=NOW,
        by="c1",
        companions=("companion01",),
    )
    with pytest.raises(Conflict):
        await companions.enrol(
            store,
            records,
            call_id="call-1",
            member="companion01",
            schedule=s,
            now=NOW,
            by="c1",
            companions=("companion01",),
        )


async def test_stopping_a_series_cancels_its_open_task_and_no_next_one_follows(
    store: Store,
) -> None:
    records = FollowupRecords(store)
    enrolled = await companions.enrol(
        store,
        records,
        call_id="call-2",
        member="companion02",
        schedule=parse_schedule("14d", "금 10:00"),
        now=NOW,
        by="c1",
        companions=(),
    )
    [stopped] = await companions.stop(store, records, "call-2", NOW + 5, "admin")
    assert stopped.series_id == enrolled.series.id
    assert stopped.cancelled_tasks == (enrolled.task_id,)
    task = await records.task(enrolled.task_id)
    assert task is not None and task.status is Status.CANCELLED
    after = await task_closed(records, store, task, "cancelled", NOW + 5, CONFIG)
    assert after.next_companion_task is None
    with pytest.raises(NotFound):
        await companions.stop(store, records, str(enrolled.series.id), NOW + 6, "admin")


async def test_an_opt_out_on_a_companion_call_stops_the_series(store: Store) -> None:
    records = FollowupRecords(store)
    enrolled = await companions.enrol(
        store,
        records,
        call_id="call-2",
        member="companion03",
        schedule=parse_schedule("7d", "화 15:00"),
        now=NOW,
        by="c1",
        companions=(),
    )
    await records.opt_out("h1", NOW + 10, "out-1", "key")
    task = await records.task(enrolled.task_id)
    assert task is not None and task.status is Status.OPTED_OUT
    after = await task_closed(records, store, task, "opted_out", NOW + 10, CONFIG)
    assert after.next_companion_task is None
    series = await companions.CompanionSeries(store).get(enrolled.series.id)
    assert series is not None and not series.active
