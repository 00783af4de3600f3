"""The report's reads from the product's database: read only (SQLite `mode=ro`), never a
write, nothing decrypted (caller hashes only; sealed numbers are not read)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ivr.privacy import ANONYMOUS
from ivr.report.rows import STAGES, CallRow, Period, TaskRow
from ivr.store_schema import MIGRATIONS


class ReportError(Exception):
    """The report cannot be made (a database it cannot read, a missing font, ...)."""


_CALLS = f"""
SELECT c.call_id, c.caller_hash, c.started_at, c.direction, c.menu_path, c.queue, c.queued_at,
       c.answered_at, c.member, c.wait_seconds, c.talk_seconds, c.ended_at, c.outcome,
       c.ended_in, s.answer, s.withdrawn_at, c.wrapup_seconds, c.end_reason,
       {", ".join(f"c.{stage}_seconds" for stage in STAGES)}
FROM calls c LEFT JOIN consents s ON s.call_id = c.call_id
WHERE c.started_at >= ? AND c.started_at < ?
"""

#: Each caller's first inbound call up to the period's end (whatever line: a repeat caller is
#: one who called before, on any line). Calls without a number share one hash (ANONYMOUS) and
#: are not one caller: left out.
_FIRST_CALLS = """
SELECT caller_hash, MIN(started_at) FROM calls
WHERE direction = 'inbound' AND started_at < ? AND caller_hash <> ? GROUP BY caller_hash
"""

_TASKS = """
SELECT id, type, created_at, status, outcome, closed_at FROM followup_tasks
WHERE created_at >= ? AND created_at < ? ORDER BY id
"""


def connect(path: Path) -> sqlite3.Connection:
    """Open the database read only; a clear error when it is missing or not migrated."""
    if not path.is_file():
        raise ReportError(f"no database at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version < len(MIGRATIONS):
        db.close()
        raise ReportError(
            f"{path} is at schema version {version}, the report needs {len(MIGRATIONS)}:"
            " start the controller (ivr-run) once with this version to migrate it"
        )
    return db


def read_calls(db: sqlite3.Connection, period: Period, line: str | None = None) -> list[CallRow]:
    sql, args = _CALLS, list[Any]([period.start, period.end])
    if line is not None:
        sql += " AND c.queue = ?"
        args.append(line)
    rows = db.execute(sql + " ORDER BY c.started_at", args).fetchall()
    first: dict[str, float] = dict(db.execute(_FIRST_CALLS, (period.end, ANONYMOUS)).fetchall())
    return [_call(r, first) for r in rows]


def _call(r: tuple[Any, ...], first: dict[str, float]) -> CallRow:
    """A row; a repeat when the caller's first inbound call was earlier than this one (never
    for a call without a number: `first` has no entry for ANONYMOUS)."""
    call_id, caller, started, direction, menu, queue, queued, answered, member = r[:9]
    wait, talk, ended, outcome, ended_in, consent, withdrawn_at, wrapup, end_reason = r[9:18]
    stages = r[18:]
    repeat = direction == "inbound" and started > first.get(caller, started)
    return CallRow(
        call_id,
        caller,
        started,
        direction,
        menu,
        queue,
        queued,
        answered,
        member,
        wait,
        talk,
        ended,
        outcome,
        ended_in,
        consent,
        repeat,
        withdrawn_at is not None,
        wrapup,
        end_reason,
        stages,
    )


def read_silence_actions(db: sqlite3.Connection, period: Period) -> list[str]:
    sql = "SELECT action FROM silence_events WHERE started_at >= ? AND started_at < ?"
    return [str(a) for (a,) in db.execute(sql, (period.start, period.end))]


def read_flag_levels(db: sqlite3.Connection, period: Period) -> list[int]:
    sql = "SELECT level FROM caller_flags WHERE created_at >= ? AND created_at < ?"
    return [int(n) for (n,) in db.execute(sql, (period.start, period.end))]


def read_tasks(db: sqlite3.Connection, period: Period) -> list[TaskRow]:
    return [TaskRow(*r) for r in db.execute(_TASKS, (period.start, period.end)).fetchall()]
