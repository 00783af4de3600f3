"""The follow-up API in process (a real aiohttp server on port 0 and the real SQLite store, no
PBX): filters, errors with their ids, and that no answer holds a number."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.config import load_settings
from ivr.crypto import Sealer
from ivr.followup import http as followup_http
from ivr.followup.admin_commands import render
from ivr.followup.agencies import AgencyBook, load_agencies
from ivr.followup.http import parse_when
from ivr.keys import AGENCIES, SECRETS, SETTINGS, STORE
from ivr.paths import CONFIG_DIR
from ivr.pbx.secrets import load_or_create
from ivr.store import Store
from ivr.timezone import SEOUL
from tests.conftest import TEST_CALLER_NUMBER

Api = Any


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    settings = load_settings(
        env={}, overrides={"state_dir": tmp_path / "state", "monitoring_after_days": 2}
    )
    store = await Store.open(tmp_path / "db.sqlite3")
    secrets = load_or_create(tmp_path / "secrets.json", ["counselor01"])
    now = time.time()
    await store.call_started("call-a", "hash-a", now - 60)
    sealed = Sealer(secrets.data_key).seal(TEST_CALLER_NUMBER, "callback:call-a")
    await store.add_callback("call-a", "hash-a", sealed, now - 30, "max_wait", "none", None)
    app = web.Application()
    app[SETTINGS], app[STORE], app[SECRETS] = settings, store, secrets
    app[AGENCIES] = AgencyBook(load_agencies(CONFIG_DIR / "agencies.toml"))
    followup_http.add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url(""))

    async def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, base + path, json=body) as r,
        ):
            data = await r.json()
            assert TEST_CALLER_NUMBER not in await r.text()
            return r.status, data

    call.store = store  # type: ignore[attr-defined]
    try:
        yield call
    finally:
        await server.close()
        await store.close()


async def test_referral_to_monitoring_task_to_close_through_the_api(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "ivr.audit")
    t0 = time.time()
    status, done = await api(
        "POST", "/api/referrals", {"call_id": "call-a", "agency": "mapo-meals", "by": "c01"}
    )
    assert status == 200, done
    task_id = done["monitoring_task"]
    assert done["dialable"] and abs(done["due_at"] - (t0 + 2 * 86400)) < 5
    status, tasks = await api("GET", "/api/followups?type=monitoring&status=open&who=s01")
    assert status == 200 and [t["id"] for t in tasks] == [task_id]
    assert "number_sealed" not in tasks[0] and tasks[0]["dialable"] is True
    assert "follow-up worklist read by s01: 1 tasks" in caplog.text
    status, one = await api("GET", f"/api/followups/{task_id}")
    assert status == 200 and one["attempts_list"] == [] and one["referral_id"]
    status, closed = await api(
        "POST", f"/api/followups/{task_id}/close", {"outcome": "reached", "by": "social01"}
    )
    assert status == 200 and closed["status"] == "done", closed
    assert closed["referral"] == [done["referral"]["id"], "confirmed"]
    assert "닫았습니다 closed" in render("followup", closed)
    status, again = await api("POST", f"/api/followups/{task_id}/close", {"outcome": "reached"})
    assert status == 409 and again["error_id"] == "task_closed"


async def test_bad_requests_get_their_error_ids(api: Api) -> None:
    assert (await api("GET", "/api/followups?team=plumbers"))[0] == 400
    status, err = await api("POST", "/api/referrals", {"call_id": "nope", "agency": "mapo-meals"})
    assert status == 404 and err["error_id"] == "not_found" and err["message_ko"]
    status, err = await api("POST", "/api/referrals", {"call_id": "call-a", "agency": "x"})
    assert status == 404 and "agency" in err["message"]
    status, err = await api("POST", "/api/referrals/1", {"status": "linked"})
    assert status == 404
    status, err = await api(
        "POST",
        "/api/companions",
        {"call_id": "call-a", "companion": "c7", "every": "7d", "at": "someday"},
    )
    assert status == 400 and err["error_id"] == "bad_schedule"
    assert (await api("GET", "/api/followups/999"))[0] == 404


async def test_companion_enrol_reschedule_assign_and_stop(api: Api) -> None:
    status, done = await api(
        "POST",
        "/api/companions",
        {"call_id": "call-a", "companion": "companion05", "every": "7d", "at": "수 10:00"},
    )
    assert status == 200, done
    due = dt.datetime.fromtimestamp(done["due_at"], SEOUL)
    assert (due.weekday(), due.hour, due.minute) == (2, 10, 0)
    task = done["task"]
    status, moved = await api("POST", f"/api/followups/{task}/reschedule", {"due": "+1h"})
    assert status == 200 and moved["due_at"] > time.time() + 3500
    status, _ = await api("POST", f"/api/followups/{task}/assign", {"member": "companion06"})
    status, one = await api("GET", f"/api/followups/{task}")
    assert one["member"] == "companion06"
    status, series = await api("GET", "/api/companions")
    assert [s["member"] for s in series] == ["companion05"] and "수" in series[0]["schedule"]
    status, stopped = await api("POST", "/api/companions/stop", {"target": "call-a"})
    assert status == 200 and stopped[0]["cancelled_tasks"] == [task]
    assert (await api("GET", "/api/companions"))[1] == []


async def test_agencies_filter(api: Api) -> None:
    status, rows = await api("GET", "/api/agencies?category=legal")
    assert status == 200 and {r["category"] for r in rows} == {"법률"} and rows


def test_times_staff_type() -> None:
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=SEOUL).timestamp()
    assert parse_when("now", now) == now
    assert parse_when("+2h", now) == now + 7200
    assert parse_when("+1d", now) == now + 86400
    end = dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=SEOUL).timestamp()
    assert parse_when("today", now) == end
    assert parse_when("2026-12-01", now) == end
    ten = dt.datetime(2026, 12, 2, 10, 0, tzinfo=SEOUL).timestamp()
    assert parse_when("2026-12-02 10:00", now) == ten
    with pytest.raises(ValueError, match="cannot read the time"):
        parse_when("tomorrow-ish", now)


async def test_a_task_being_dialled_cannot_be_closed_or_rescheduled_by_hand(api: Api) -> None:
    from ivr.followup.model import TaskType
    from ivr.followup.records import FollowupRecords

    records = FollowupRecords(api.store)
    now = time.time()
    task_id, _ = await records.add_or_merge(TaskType.CALLBACK, "hash-b", None, None, now, now)
    assert await records.lock(task_id, "run-1", now, 300)
    for action, body in (("close", {"outcome": "cancelled"}), ("reschedule", {"due": "+1h"})):
        status, refused = await api("POST", f"/api/followups/{task_id}/{action}", body)
        assert status == 409 and refused["error_id"] == "task_in_call", refused
        assert "통화 중인 작업입니다" in str(refused)
    task = await records.task(task_id)
    assert task is not None and task.open and task.locked_by == "run-1" and task.due_at == now


async def test_an_in_depth_tasks_deadline_is_one_working_day_in_the_worklist(api: Api) -> None:
    from ivr.followup.model import TaskType
    from ivr.followup.records import FollowupRecords

    records = FollowupRecords(api.store)
    # A `*8` on Friday 5 December 2025 at 17:00: due by Monday 18:00 (config/teams.toml's
    # social workers' hours), not Saturday 17:00.
    friday = dt.datetime(2025, 12, 5, 17, 0, tzinfo=SEOUL).timestamp()
    monday_end = dt.datetime(2025, 12, 8, 18, 0, tzinfo=SEOUL).timestamp()
    task_id, _ = await records.add_or_merge(TaskType.IN_DEPTH, "hash-d", None, None, friday, friday)
    status, shown = await api("GET", f"/api/followups/{task_id}")
    assert status == 200 and shown["deadline"] == monday_end and shown["overdue"] is True
    assert "기한 deadline: 12-08 18:00:00" in render("followup", shown)
    assert "지남 overdue" in render("followup", shown)
    status, listed = await api("GET", "/api/followups?type=in_depth")
    assert status == 200 and [t["deadline"] for t in listed] == [monday_end]
    assert "기한 deadline" in render("followups", listed)
    status, callbacks = await api("GET", "/api/followups?type=callback")
    assert all(t["deadline"] is None and t["overdue"] is False for t in callbacks)
