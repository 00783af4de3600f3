"""End to end: the report built from records real calls left (real Asterisk, pjsua2 phones,
the controller, SQLite). Three calls — a hang-up in the menu, a hang-up while the consent
question is asked (stored as abandoned_consent, not abandoned_queue), a counselled call — then
`ivr-report` over the hotline's live database: its numbers are the rows, counted."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import sqlite3
from pathlib import Path

from ivr.flow import call as flow
from ivr.report.cli import main
from ivr.report.rows import Period
from ivr.timezone import SEOUL
from tests.conftest import Hotline, PhoneFactory
from tests.test_e2e_calls import counselor, dial_120


def _csv(path: Path) -> dict[str, list[str]]:
    with path.open(encoding="utf-8") as fh:
        return {r[0]: r[1:] for r in list(csv.reader(fh))[1:]}


async def _wait_wrapup(hotline: Hotline, call_id: str, timeout: float = 10) -> float:
    async with asyncio.timeout(timeout):
        while True:
            row = await hotline.wait_row(call_id)
            if row["wrapup_seconds"] is not None:
                return float(row["wrapup_seconds"])
            await asyncio.sleep(0.1)


async def test_report_counts_the_rows_real_calls_left(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    # 1. Hangs up in the menu.
    a = await dial_120(hotline, phones, "caller-a")
    id_a = await hotline.last_call_id()
    await a.hangup()
    row_a = await hotline.wait_row(id_a)
    # 2. Hangs up while the consent question is asked.
    b = await dial_120(hotline, phones, "caller-b")
    id_b = await hotline.last_call_id()
    await hotline.press_5(b, id_b, consent=None)
    assert hotline.controller.calls[id_b].flow.state is flow.State.CONSENT
    await b.hangup()
    row_b = await hotline.wait_row(id_b)
    # 3. Talks with a counselor.
    k1 = await counselor(hotline, phones, "counselor01", auto_answer=True)
    c = await dial_120(hotline, phones, "caller-c")
    id_c = await hotline.last_call_id()
    await hotline.press_5(c, id_c)
    await hotline.wait_state(id_c, flow.State.CONNECTED, timeout=30)
    await c.hangup()
    await k1.wait_for("call_state", state="DISCONNECTED", timeout=10)
    row_c = await hotline.wait_row(id_c)

    assert (row_a["outcome"], row_a["ended_in"]) == ("abandoned_menu", "menu")
    assert (row_b["outcome"], row_b["ended_in"]) == ("abandoned_consent", "consent")
    assert row_b["consent_seconds"] > 0 and row_b["queue_seconds"] is None
    assert (row_c["outcome"], row_c["ended_in"]) == ("completed", "staff")
    assert row_c["staff_seconds"] > 0 and row_c["queue_seconds"] is not None
    # The counselor's wrap-up is stored with the call when their leg ends (after the record).
    wrapup = await _wait_wrapup(hotline, id_c)
    assert wrapup == hotline.settings.wrapup_seconds

    today = dt.datetime.now(SEOUL).date()
    period = Period(today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    db = hotline.settings.state_path(hotline.settings.database)
    argv = ["--from", str(period.first), "--to", str(period.last), "--db", str(db)]
    out, tables = tmp_path / "report.html", tmp_path / "csv"
    assert main([*argv, "--no-roster", "--out", str(out), "--csv", str(tables)]) == 0

    # Everything the session's calls stored in the period, counted from the rows.
    with sqlite3.connect(db) as con:
        where = "direction='inbound' AND started_at >= ? AND started_at < ?"
        span = (period.start, period.end)
        outcomes = dict(
            con.execute(f"SELECT outcome, COUNT(*) FROM calls WHERE {where} GROUP BY outcome", span)
        )  # noqa: E501
        offered = con.execute(
            f"SELECT COUNT(*) FROM calls WHERE {where} AND queued_at IS NOT NULL", span
        ).fetchone()[0]  # noqa: E501
        answered = con.execute(
            f"SELECT COUNT(*) FROM calls WHERE {where} AND answered_at IS NOT NULL", span
        ).fetchone()[0]  # noqa: E501
    rates = _csv(tables / "answer_rates.csv")
    assert int(rates["inbound"][0]) == sum(outcomes.values())
    assert int(rates["offered"][0]) == offered
    assert int(rates["answered"][0]) == answered
    assert int(rates["abandoned_consent"][0]) == outcomes["abandoned_consent"] >= 1
    assert int(rates["abandoned_menu"][0]) == outcomes["abandoned_menu"] >= 1
    with (tables / "endings.csv").open(encoding="utf-8") as fh:
        endings = {(r["outcome"], r["ended_in"]): int(r["calls"]) for r in csv.DictReader(fh)}
    assert endings[("abandoned_consent", "consent")] >= 1
    assert endings[("completed", "staff")] >= 1
    assert sum(endings.values()) == sum(outcomes.values())
    # Handle times (talk + wrap-up) of the answered calls, and the workload per counselor.
    with sqlite3.connect(db) as con:
        handles = [
            (talk + (wrapup or 0)) / 60
            for talk, wrapup in con.execute(
                f"SELECT talk_seconds, wrapup_seconds FROM calls WHERE {where}"
                " AND queued_at IS NOT NULL AND answered_at IS NOT NULL",
                span,
            )
        ]
        per_member = dict(
            con.execute(
                "SELECT member, COUNT(*) FROM calls WHERE started_at >= ? AND started_at < ?"
                " AND answered_at IS NOT NULL AND member IS NOT NULL GROUP BY member",
                span,
            )
        )
        # Chats taken by a counselor in the session (tests/test_e2e_chat.py): their own column.
        chats_per_member = dict(
            con.execute(
                "SELECT member, COUNT(*) FROM chats WHERE started_at >= ? AND started_at < ?"
                " AND answered_at IS NOT NULL GROUP BY member",
                span,
            )
        )
    by_handle = {k: int(v[0]) for k, v in _csv(tables / "handle_times.csv").items()}
    assert sum(by_handle.values()) == len(handles) == answered
    assert by_handle["0-5"] == sum(1 for h in handles if h < 5)
    work = _csv(tables / "workload.csv")
    assert {m: int(r[0]) for m, r in work.items() if int(r[0])} == per_member
    assert {m: int(r[1]) for m, r in work.items() if int(r[1])} == chats_per_member
    assert set(work) == set(per_member) | set(chats_per_member)
    assert per_member["counselor01"] >= 1
    assert float(work["counselor01"][-1]) > 0  # the longest stretch without a break (minutes)
    assert "외로움안녕120 운영 보고서" in out.read_text(encoding="utf-8")
