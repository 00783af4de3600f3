"""The report's follow-up tables (ivr/report/followups.py) over a small case stored through
the product's own follow-up API in a real SQLite database, counted against the values worked
out by hand: time to callback, referrals by agency category with their monitoring outcome,
companion series kept up. Then `ivr-report` writes them as CSV."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from ivr.followup.companions import CompanionSeries
from ivr.followup.model import Status, TaskType
from ivr.followup.records import FollowupRecords
from ivr.followup.referrals import Referrals, ReferralStatus
from ivr.followup.series import parse_schedule
from ivr.paths import CONFIG_DIR
from ivr.report import followups as follow
from ivr.report.cli import main
from ivr.report.reader import connect, read_tasks
from ivr.report.rows import Period
from ivr.store import Store
from ivr.timezone import SEOUL
from tests.test_followup_referrals import referred

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=SEOUL).timestamp()
HOUR, DAY = 3600.0, 86400.0
PERIOD = Period(dt.date(2026, 12, 1), dt.date(2026, 12, 31))
AGENCIES = CONFIG_DIR / "agencies.toml"


async def _stored(path: Path) -> None:
    store = await Store.open(path)
    try:
        rec = FollowupRecords(store)
        # Callbacks: done after 2 h, done after 30 h, open; one from before the period.
        a, _ = await rec.add_or_merge(TaskType.CALLBACK, "ca", None, None, NOW, NOW)
        b, _ = await rec.add_or_merge(TaskType.CALLBACK, "cb", None, None, NOW, NOW)
        await rec.add_or_merge(TaskType.CALLBACK, "cc", None, None, NOW, NOW)
        old, _ = await rec.add_or_merge(TaskType.CALLBACK, "cd", None, None, NOW - 40 * DAY, NOW)
        await rec.close(a, Status.DONE, "reached", NOW + 2 * HOUR, "k1")
        await rec.close(b, Status.DONE, "reached", NOW + 30 * HOUR, "k1")
        await rec.close(old, Status.DONE, "reached", NOW - 39 * DAY, "k1")

        # Referrals: h1 to welfare-129 (돌봄) and jongno-housing (주거), the second merged into
        # the first one's monitoring task, which is then done; h2 to jongno-housing, confirmed,
        # its monitoring unreachable; h3 to an agency since removed from the catalog, no task.
        for call_id, caller in (("call-1", "h1"), ("call-2", "h1"), ("call-3", "h2")):
            await store.call_started(call_id, caller, NOW - 600)
        await store.call_started("call-4", "h3", NOW - 600)
        first = await referred(store, call_id="call-1", agency="welfare-129")
        second = await referred(store, call_id="call-2", agency="jongno-housing")
        assert first.task_id == second.task_id is not None
        assert first.task_id is not None
        await rec.close(first.task_id, Status.DONE, "reached", NOW + DAY, "sw1")
        third = await referred(store, call_id="call-3", agency="jongno-housing")
        assert third.task_id is not None
        await Referrals(store).set_status(
            third.referral.id, ReferralStatus.CONFIRMED, NOW + HOUR, "sw1"
        )
        await rec.close(third.task_id, Status.UNREACHABLE, "no_answer", NOW + DAY, "dialler")
        await Referrals(store).add("call-4", "h3", "closed-agency", NOW, "c1")

        # Companion series: s1 with calls done, unreachable and open in the period (one more
        # before it); s2 with one cancelled.
        series = CompanionSeries(store)
        weekly = parse_schedule("7d", "tue 10:00")
        s1 = await series.add("p1", None, "comp1", weekly, NOW - 30 * DAY, "call-1")
        s2 = await series.add("p2", None, "comp2", weekly, NOW, "call-3")
        closes = (
            (s1, NOW - 7 * DAY, Status.DONE),
            (s1, NOW + DAY, Status.DONE),
            (s1, NOW + 8 * DAY, Status.UNREACHABLE),
            (s1, NOW + 15 * DAY, None),
            (s2, NOW + 2 * DAY, Status.CANCELLED),
        )
        for sid, due, status in closes:
            caller = "p1" if sid == s1 else "p2"
            task, merged = await rec.add_or_merge(
                TaskType.COMPANION, caller, None, None, due - DAY, due, series_id=sid
            )
            assert not merged
            if status is not None:
                await rec.close(task, status, "x", due + HOUR, "comp")
    finally:
        await store.close()


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "ivr.db"
    await _stored(path)
    return path


def test_time_to_callback_is_request_to_done(db: Path) -> None:
    con = connect(db)
    try:
        tasks = read_tasks(con, PERIOD)
    finally:
        con.close()
    (row,) = follow.callback_times(tasks).rows
    assert row[:3] == ("callback", 3, 2)
    assert row[3] == pytest.approx(16.0)  # median of 2 h and 30 h
    assert row[4] == pytest.approx(2 + 0.9 * 28)  # p90, linear between ranks
    assert row[5] == pytest.approx(1 / 3)  # 1 of the 3 requested done within 24 h


def test_referrals_by_category_with_their_monitoring_outcome(db: Path) -> None:
    con = connect(db)
    try:
        more = follow.read(con, PERIOD, AGENCIES)
    finally:
        con.close()
    table = follow.referrals(more.referrals, more.categories)
    got = {r[0]: dict(zip(table.columns[1:], r[1:], strict=True)) for r in table.rows}
    assert set(got) == {"돌봄", "주거", "?"}
    assert got["돌봄"]["referred"] == 1 and got["돌봄"]["monitoring_done"] == 1
    assert got["주거"]["referred"] == 2
    assert (got["주거"]["proposed"], got["주거"]["confirmed"]) == (1, 1)
    assert (got["주거"]["monitoring_done"], got["주거"]["monitoring_unreachable"]) == (1, 1)
    assert got["?"]["referred"] == 1 and got["?"]["monitoring_none"] == 1
    assert sum(r[1] for r in table.rows) == 4


def test_companion_series_kept_up(db: Path) -> None:
    con = connect(db)
    try:
        more = follow.read(con, PERIOD, AGENCIES)
    finally:
        con.close()
    (row,) = follow.companions(more.series_calls).rows
    cols = follow.companions(more.series_calls).columns
    got = dict(zip(cols, row, strict=True))
    assert (got["series"], got["calls_due"]) == (2, 4)
    assert (got["done"], got["unreachable"], got["cancelled"], got["open"]) == (1, 1, 1, 1)
    assert got["kept_up_share"] == pytest.approx(1 / 3)


def test_the_report_writes_the_follow_up_tables(db: Path, tmp_path: Path) -> None:
    argv = ["--from", "2026-12-01", "--to", "2026-12-31", "--db", str(db), "--no-roster"]
    out, tables = tmp_path / "r.html", tmp_path / "csv"
    assert main([*argv, "--agencies", str(AGENCIES), "--out", str(out), "--csv", str(tables)]) == 0
    with (tables / "referrals.csv").open(encoding="utf-8") as fh:
        rows = {r[0]: r for r in list(csv.reader(fh))[1:]}
    assert rows["주거"][1] == "2"
    with (tables / "callback_times.csv").open(encoding="utf-8") as fh:
        assert list(csv.reader(fh))[1][:3] == ["callback", "3", "2"]
    page = out.read_text(encoding="utf-8")
    assert "분류별 기관 연계와 모니터링 결과" in page and "동행 시리즈" in page


def test_every_agency_category_reads_in_english() -> None:
    from ivr.followup.agencies import CATEGORIES
    from ivr.report.text import TEXT

    for ko, en in CATEGORIES.items():
        assert TEXT["en"][f"referrals.{ko}"].startswith(en)
    assert "referrals.?" in TEXT["ko"] and "referrals.?" in TEXT["en"]


def test_without_agencies_the_catalog_is_the_projects_from_any_directory(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    con = connect(db)
    try:
        more = follow.read(con, PERIOD, None)
    finally:
        con.close()
    assert more.categories["jongno-housing"] == "주거"
    assert follow.agency_categories(tmp_path / "none.toml") == {}
