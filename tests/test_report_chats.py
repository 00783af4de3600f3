"""Chats in the report (ivr.report.chats): a store filled through the chat channel's own
records API (ivr.chat.records), read read only, every number worked out by hand; and
`ivr-report` over a synthetic month with chats: the CSVs are the rows counted in SQLite."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from ivr.chat import records
from ivr.report import chats as rc
from ivr.report import figures
from ivr.report.channels import contacts
from ivr.report.cli import main
from ivr.report.reader import connect
from ivr.report.rows import Period
from ivr.report.synthetic import Params, generate
from ivr.report.text import TEXT
from ivr.store import Store
from ivr.timezone import SEOUL

DAY = dt.date(2026, 11, 2)
PERIOD = Period(DAY, DAY)


def at(h: int, m: int = 0, s: int = 0, day: dt.date = DAY) -> float:
    return dt.datetime.combine(day, dt.time(h, m, s), SEOUL).timestamp()


async def _fill(path: Path) -> None:
    """Five chats on the day (and one the next day), as the chat service writes them."""
    store = await Store.open(path)
    try:
        # (id, start, consent, queue, wait or None, handle s, outcome, member, withdrawn)
        chats = [
            ("ch1", at(10), True, "loneliness", 10.0, 600.0, "completed", "k1", False),
            ("ch2", at(11), False, "loneliness", 50.0, 300.0, "abuse", "k2", False),
            ("ch3", at(12), True, "loneliness", None, 90.0, "abandoned", None, False),
            ("ch4", at(13), True, "loneliness", 70.0, 1200.0, "completed", "k1", True),
            ("ch5", at(23), False, None, None, None, None, None, False),  # still waiting
            ("ch6", at(1, day=dt.date(2026, 12, 1)), True, "loneliness", 5.0, 60.0,
             "completed", "k1", False),
        ]  # fmt: skip
        for i, (cid, start, consent, queue, wait, handle, outcome, member, withdrawn) in enumerate(
            chats
        ):
            queued = start + 20.0 + 10 * i  # the guided start: 20, 30, 40, 50, 60 (and 70) s
            await records.opened(store, cid, "h-" + cid, start, queued, consent, ["chat"], 0, queue)
            if wait is not None and member is not None and handle is not None:
                await records.answered(store, cid, member, queued + wait)
                if withdrawn:
                    await records.forget(store, cid, queued + wait + 5)
                await records.ended(store, cid, queued + wait + handle, str(outcome), "counselor")
            elif outcome is not None and handle is not None:
                await records.ended(store, cid, queued + handle, outcome, "citizen")
    finally:
        await store.close()


async def test_chats_from_the_records_api(tmp_path: Path) -> None:
    path = tmp_path / "ivr.db"
    await _fill(path)
    db = connect(path)
    try:
        rows = rc.read_chats(db, PERIOD)
        only = rc.read_chats(db, PERIOD, "loneliness")
    finally:
        db.close()
    assert [c.chat_id for c in rows] == ["ch1", "ch2", "ch3", "ch4", "ch5"]
    assert [c.chat_id for c in only] == ["ch1", "ch2", "ch3", "ch4"]
    got = dict(rc.chat_table(rows).rows)
    assert got["offered"] == 5 and got["answered"] == 3 and got["abandoned_waiting"] == 1
    assert got["answer_rate"] == pytest.approx(3 / 5)
    assert got["abandonment_rate"] == pytest.approx(1 / 5)
    assert (got["outcome_completed"], got["outcome_abuse"]) == (2, 1)
    assert (got["outcome_abandoned"], got["outcome_open"]) == (1, 1)
    # Waits 10, 50, 70 s: p50 50, p90 50 + 0.8 * 20 = 66; within 20 s: 1 of 5, 60 s: 2 of 5.
    assert got["p50_wait_s"] == pytest.approx(50.0)
    # Guided starts 20..60 s: p50 40, p90 50 + 0.6 * 10 = 56 (rank 0.9 * 4 = 3.6).
    assert got["p50_guided_start_s"] == pytest.approx(40.0)
    assert got["p90_guided_start_s"] == pytest.approx(56.0)
    assert got["p90_wait_s"] == pytest.approx(66.0)
    assert got["service_level_20s"] == pytest.approx(1 / 5)
    assert got["service_level_60s"] == pytest.approx(2 / 5)
    # Handle 600, 300, 1200 s: mean 700 s, p50 600 s, p90 600 + 0.8 * 600 = 1080 s.
    assert got["mean_handle_min"] == pytest.approx(700 / 60)
    assert got["p50_handle_min"] == pytest.approx(10.0)
    assert got["p90_handle_min"] == pytest.approx(18.0)
    # Consent: ch1, ch3, ch4 said yes, ch4 withdrew it: 2 of 5 kept.
    assert got["consent_share"] == pytest.approx(2 / 5)
    assert got["consent_withdrawn"] == 1 and got["abuse_endings"] == 1
    assert rc.per_member(rows) == {"k1": 2, "k2": 1}

    per_day = figures.contacts_per_day(contacts([], rc.contacts(rows)), PERIOD)
    assert per_day.rows == [
        ("2026-11-02", "chat", "chat", 1),
        ("2026-11-02", "chat", "loneliness", 4),
    ]


@pytest.mark.parametrize("lang", sorted(TEXT))
def test_every_chat_row_has_words(lang: str) -> None:
    t = TEXT[lang]
    assert t["chats"].strip() and t["chats_note"].strip()
    for key in ("offered", "answered", "abandoned_waiting", "consent_share", "abuse_endings",
                "p50_guided_start_s", "p90_guided_start_s"):  # fmt: skip
        assert t[f"chats.{key}"].strip(), (lang, key)


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.reader(fh))[1:]


@pytest.mark.parametrize("lang", ["ko", "en"])
async def test_report_counts_the_chats(tmp_path: Path, lang: str) -> None:
    """A synthetic month with chats plus the hand-made day: the chat table, the contacts per
    day and the workload in the CSVs are the `chats` rows counted; the HTML shows the table."""
    db, out, tables = tmp_path / "ivr.db", tmp_path / "report.html", tmp_path / "csv"
    store = await Store.open(db)
    try:
        written = await generate(store, dt.date(2026, 11, 1), 30, 5, Params(8, 40, chats_per_day=6))
    finally:
        await store.close()
    await _fill(db)
    assert sum(v for k, v in written.items() if k.startswith("chats_")) == 6 * 30
    argv = ["--from", "2026-11-01", "--to", "2026-11-30", "--db", str(db), "--no-roster"]
    assert main([*argv, "--lang", lang, "--out", str(out), "--csv", str(tables)]) == 0

    with sqlite3.connect(db) as con:
        month = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30))
        span = (month.start, month.end)
        q = "SELECT {} FROM chats WHERE started_at >= ? AND started_at < ?"
        offered = con.execute(q.format("COUNT(*)"), span).fetchone()[0]
        answered = con.execute(q.format("COUNT(answered_at)"), span).fetchone()[0]
        abuse = con.execute(q.format("SUM(outcome = 'abuse')"), span).fetchone()[0]
        left = con.execute(
            q.format("SUM(outcome = 'abandoned' AND answered_at IS NULL)"), span
        ).fetchone()[0]
        per_member = dict(
            con.execute(
                q.format("member, COUNT(*)") + " AND answered_at IS NOT NULL GROUP BY member", span
            )
        )
    assert offered == 6 * 30 + 5  # ch6 is in December
    got = {r[0]: r[1] for r in _csv(tables / "chats.csv")}
    assert int(got["offered"]) == offered and int(got["answered"]) == answered
    assert int(got["abandoned_waiting"]) == left and int(got["abuse_endings"]) == abuse
    per_day = [r for r in _csv(tables / "contacts_per_day.csv") if r[1] == "chat"]
    assert sum(int(r[3]) for r in per_day) == offered
    assert {r[2] for r in per_day} == {"loneliness", "chat"}
    work = {r[0]: int(r[2]) for r in _csv(tables / "workload.csv")}
    assert {m: n for m, n in work.items() if n} == per_member
    page = out.read_text(encoding="utf-8")
    assert TEXT[lang]["chats"] in page.replace("&#x27;", "'")
    assert TEXT[lang]["chats.abandoned_waiting"] in page
    assert "not_yet" not in TEXT[lang]  # chats were the last part missing
