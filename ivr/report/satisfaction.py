"""The post-call satisfaction survey in the report (ivr.flow.survey, table `survey_answers`):
answers counted per line, the average score, the distribution 1-5, and "did this help?" yes/no.
Reads the answers only (they hold no caller number and no hash); the figure is pure.

Definitions: an *answer* is one stored survey answer (at most one per call; a caller who did
not answer, or hung up first, left none), counted on the Seoul day it was given. The *average
score* is the mean of the 1-5 answers (None without any); the *helped* share is not averaged
with the scores. A row per line, then `all` when there is more than one line.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr.report.figures import Table
from ivr.report.rows import Period

SCORES = (1, 2, 3, 4, 5)
COLUMNS = (
    "line",
    "score_answers",
    "average_score",
    *(f"score_{n}" for n in SCORES),
    "helped_yes",
    "helped_no",
)

_ANSWERS = "SELECT line, kind, answer FROM survey_answers WHERE at >= ? AND at < ?"


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """One row of `survey_answers` (what the report needs of it)."""

    line: str
    kind: str  # score | helped
    answer: int  # score: 1-5; helped: 1 yes, 0 no


def read_answers(
    db: sqlite3.Connection, period: Period, line: str | None = None
) -> list[SurveyAnswer]:
    sql, args = _ANSWERS, list[Any]([period.start, period.end])
    if line is not None:
        sql += " AND line = ?"
        args.append(line)
    return [SurveyAnswer(str(a), str(b), int(c)) for a, b, c in db.execute(sql, args)]


def _row(line: str, answers: Sequence[SurveyAnswer]) -> tuple[Any, ...]:
    scores = [a.answer for a in answers if a.kind == "score"]
    helped = [a.answer for a in answers if a.kind == "helped"]
    average = sum(scores) / len(scores) if scores else None
    dist = tuple(scores.count(n) for n in SCORES)
    return (line, len(scores), average, *dist, helped.count(1), helped.count(0))


def satisfaction(answers: Sequence[SurveyAnswer]) -> Table:
    """Per line (sorted), and all lines together when there are several."""
    per: dict[str, list[SurveyAnswer]] = defaultdict(list)
    for a in answers:
        per[a.line].append(a)
    rows = [_row(line, per[line]) for line in sorted(per)]
    if len(per) > 1:
        rows.append(_row("all", answers))
    return Table("satisfaction", COLUMNS, rows)
