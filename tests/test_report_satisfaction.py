"""The satisfaction survey in the report (ivr.report.satisfaction): the figure from rows with
hand-computed values, and `ivr-report` over a real SQLite database whose answers were stored
through the product's own store API (one answer per call, nothing about the caller): the CSV's
numbers are the rows counted."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from ivr.report.cli import main
from ivr.report.rows import Period
from ivr.report.satisfaction import SurveyAnswer, satisfaction
from ivr.store import Store
from ivr.timezone import SEOUL

NOV = Period(dt.date(2026, 11, 1), dt.date(2026, 11, 30))


def test_average_distribution_and_helped_per_line_hand_computed() -> None:
    rows = [SurveyAnswer("loneliness", "score", n) for n in (5, 4, 4, 3)]
    rows += [SurveyAnswer("general", "helped", n) for n in (1, 0, 1)]
    rows.append(SurveyAnswer("general", "score", 1))
    table = satisfaction(rows)
    assert table.key == "satisfaction"
    by_line = {r[0]: r[1:] for r in table.rows}
    #                          answers avg  1  2  3  4  5  yes no
    assert by_line["loneliness"] == (4, 4.0, 0, 0, 1, 2, 1, 0, 0)
    assert by_line["general"] == (1, 1.0, 1, 0, 0, 0, 0, 2, 1)
    assert by_line["all"] == (5, 17 / 5, 1, 0, 1, 2, 1, 2, 1)
    assert [r[0] for r in table.rows] == ["general", "loneliness", "all"]


def test_no_answers_no_rows_and_one_line_has_no_total() -> None:
    assert satisfaction([]).rows == []
    only = satisfaction([SurveyAnswer("loneliness", "helped", 0)])
    assert only.rows == [("loneliness", 0, None, 0, 0, 0, 0, 0, 0, 1)]


def _at(day: int, hour: int = 12) -> float:
    return dt.datetime(2026, 11, day, hour, tzinfo=SEOUL).timestamp()


async def _answers(path: Path) -> None:
    store = await Store.open(path)
    try:
        stored = [
            ("c1", "loneliness", "score", 5, _at(2)),
            ("c2", "loneliness", "score", 4, _at(3)),
            ("c3", "loneliness", "score", 2, _at(30, 23)),
            ("c4", "general", "helped", 1, _at(4)),
            ("c5", "loneliness", "score", 1, _at(1, 0) - 1),  # 31 October: not in November
        ]
        for call_id, line, kind, answer, at in stored:
            await store.survey_answer(call_id, line, kind, answer, "key", at)
        await store.survey_answer("c1", "loneliness", "score", 1, "key", _at(2))  # ignored
        with pytest.raises(sqlite3.IntegrityError):
            await store.survey_answer("c9", "loneliness", "score", 6, "key", _at(5))
    finally:
        await store.close()


def _csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return {r["line"]: r for r in csv.DictReader(fh)}


async def test_report_counts_the_stored_answers(tmp_path: Path) -> None:
    db = tmp_path / "ivr.db"
    await _answers(db)
    with sqlite3.connect(db) as con:
        cols = [r[1] for r in con.execute("PRAGMA table_info(survey_answers)")]
        scores = [
            n
            for (n,) in con.execute(
                "SELECT answer FROM survey_answers WHERE kind='score' AND line='loneliness'"
                " AND at >= ? AND at < ?",
                (NOV.start, NOV.end),
            )
        ]
    assert not any("caller" in c or "number" in c for c in cols), cols
    assert sorted(scores) == [2, 4, 5]  # one answer per call: c1 kept its 5

    argv = ["--from", "2026-11-01", "--to", "2026-11-30", "--db", str(db), "--no-roster"]
    assert main([*argv, "--out", str(tmp_path / "r.html"), "--csv", str(tmp_path / "a")]) == 0
    lines = _csv(tmp_path / "a" / "satisfaction.csv")
    lone = lines["loneliness"]
    assert int(lone["score_answers"]) == len(scores) == 3
    assert float(lone["average_score"]) == pytest.approx(11 / 3)
    assert [int(lone[f"score_{n}"]) for n in range(1, 6)] == [0, 1, 0, 1, 1]
    assert (lines["general"]["helped_yes"], lines["general"]["helped_no"]) == ("1", "0")
    assert int(lines["all"]["score_answers"]) == 3
    assert "상담 후 만족도 조사" in (tmp_path / "r.html").read_text(encoding="utf-8")

    line_only = [*argv, "--line", "general", "--out", str(tmp_path / "g.html")]
    assert main([*line_only, "--csv", str(tmp_path / "g")]) == 0
    assert set(_csv(tmp_path / "g" / "satisfaction.csv")) == {"general"}
