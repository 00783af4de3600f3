"""`ivr-report` end to end over a real SQLite database filled with a seeded synthetic month
(ivr.report.synthetic, through the product's own store API): the numbers in the CSVs are the
rows counted in the database, the HTML is one self-contained file with the Korean title and the
synthetic label, and a missing Korean font fails clearly. matplotlib warns about every glyph
its font lacks and the suite turns warnings into errors, so Korean drawn as empty boxes fails."""

from __future__ import annotations

import csv
import datetime as dt
import re
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from ivr.report.cli import main
from ivr.report.reader import ReportError
from ivr.report.render import use_cjk_font
from ivr.report.synthetic import Params, generate
from ivr.store import Store

FIRST = dt.date(2026, 11, 1)
PARAMS = Params(calls_per_day=12, callers=60)


async def _month(path: Path, seed: int = 7) -> Counter[str]:
    store = await Store.open(path)
    try:
        return await generate(store, FIRST, 30, seed, PARAMS)
    finally:
        await store.close()


def _csv(directory: Path, key: str) -> dict[str, list[str]]:
    with (directory / f"{key}.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    return {r[0]: r[1:] for r in rows}


async def test_synthetic_month_is_seeded(tmp_path: Path) -> None:
    a = await _month(tmp_path / "a.db", seed=3)
    b = await _month(tmp_path / "b.db", seed=3)
    c = await _month(tmp_path / "c.db", seed=4)
    assert a == b and a != c
    assert sum(v for k, v in a.items() if not k.startswith("tasks")) == 12 * 30


async def test_report_numbers_are_the_rows(tmp_path: Path) -> None:
    db, out, tables = tmp_path / "ivr.db", tmp_path / "r" / "report.html", tmp_path / "csv"
    written = await _month(db)
    argv = ["--from", "2026-11-01", "--to", "2026-11-30", "--db", str(db), "--no-roster"]
    assert main([*argv, "--out", str(out), "--csv", str(tables)]) == 0

    with sqlite3.connect(db) as con:
        by_outcome = dict(con.execute("SELECT outcome, COUNT(*) FROM calls GROUP BY outcome"))
        offered = con.execute("SELECT COUNT(*) FROM calls WHERE queued_at IS NOT NULL").fetchone()
        answered_20 = con.execute(
            "SELECT COUNT(*) FROM calls WHERE answered_at IS NOT NULL AND wait_seconds <= 20"
        ).fetchone()
        done = con.execute("SELECT COUNT(*) FROM followup_tasks WHERE status='done'").fetchone()
        answers = dict(
            con.execute(
                "SELECT s.answer, COUNT(*) FROM calls c JOIN consents s USING (call_id)"
                " WHERE c.menu_path LIKE '5%' AND c.queued_at IS NOT NULL GROUP BY s.answer"
            )
        )
        withdrawn = con.execute(
            "SELECT COUNT(*) FROM consents WHERE answer='yes' AND withdrawn_at IS NOT NULL"
        ).fetchone()[0]
    assert by_outcome == {k: v for k, v in written.items() if not k.startswith("tasks")}
    rates = _csv(tables, "answer_rates")
    assert int(rates["offered"][0]) == offered[0]
    assert int(rates["answered"][0]) == by_outcome["completed"] + by_outcome["abuse_ended"]
    for o in ("abandoned_intro", "abandoned_consent", "abandoned_queue", "abandoned_menu"):
        assert int(rates[o][0]) == by_outcome.get(o, 0), o
    sl20 = float(_csv(tables, "waits")["service_level_20s"][0])
    assert sl20 == pytest.approx(answered_20[0] / offered[0])
    assert int(_csv(tables, "followups")["callback"][1]) == done[0] == written["tasks_done"]
    steps = _csv(tables, "funnel")
    assert int(steps["consent_answered_yes_no"][0]) == answers["yes"] + answers["no"]
    assert int(steps["consent_not_answered"][0]) == answers["none"]
    assert int(steps["consent_withdrawn"][0]) == withdrawn > 0
    assert int(steps["consented_not_withdrawn"][0]) == answers["yes"] - withdrawn
    days = _csv(tables, "contacts_per_day")
    assert len({d for d in days}) == 30

    page = out.read_text(encoding="utf-8")
    assert "외로움안녕120 운영 보고서" in page and "합성 데이터" in page
    imgs = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(imgs) >= 6 and all(src.startswith("data:image/png;base64,") for src in imgs)
    assert "<link" not in page and "http://" not in page and "https://" not in page
    assert out.stat().st_mode & 0o777 == 0o600


async def test_report_in_english_with_the_roster(tmp_path: Path) -> None:
    db, out = tmp_path / "ivr.db", tmp_path / "report.html"
    await _month(db)
    roster = Path("config/roster.toml")
    argv = ["--from", "2026-11-01", "--to", "2026-11-07", "--db", str(db), "--lang", "en"]
    assert main([*argv, "--roster", str(roster), "--out", str(out), "--csv", str(tmp_path)]) == 0
    assert "Loneliness Hotline 120 operations report" in out.read_text(encoding="utf-8")
    with (tmp_path / "staffing.csv").open(encoding="utf-8") as fh:
        verdicts = {row["verdict"] for row in csv.DictReader(fh)}
    assert verdicts <= {"under", "over", "ok"} and "no_roster" not in verdicts


def test_missing_korean_font_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="fonts-noto-cjk"):
        use_cjk_font([tmp_path / "NotoSansCJK-Regular.ttc"])


def test_missing_database_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--from", "2026-11-01", "--to", "2026-11-30", "--db", str(tmp_path / "none.db")]
    assert main([*argv, "--no-roster", "--out", str(tmp_path / "r.html")]) == 2
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_benchmark_runs_small(capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.report.bench import main as bench

    assert bench(["--days", "2", "--per-day", "30"]) == 0
    assert "report over 2 days" in capsys.readouterr().out
