"""The follow-up parts of the report: time to callback, referrals by agency category with their
monitoring outcome, companion series kept up. Rows read from the database (read only, like
ivr.report.reader), tables computed here (pure).

Definitions:
- **time to callback**: callback tasks (the caller asked for a call back, or left the queue
  with one) created in the period; the time from the request (the task, made during the call)
  to the task closed `done` (the callback call reached them and was closed with an outcome).
- **referrals**: referrals made in the period, by the agency's category (the catalog,
  config/agencies.toml; an agency no longer in it is `?`), by their status now (proposed,
  linked, confirmed, failed), and by how their monitoring call went: the social workers' task
  that checks the referral (`followup_task_referrals`; the latest one when several did) is
  `done`, `unreachable`, still `open`, `cancelled`, or there is `none` (the citizen opted out
  of follow-up calls).
- **companion series kept up**: the companion calls of a series that fell due in the period
  (one task per call of the series): done, unreachable (the attempts ran out), cancelled,
  still open; kept up = done / those closed.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ivr.report.figures import Table, percentile
from ivr.report.rows import Period, TaskRow

#: A callback done within this many hours of the request counts as "within a day".
WITHIN_HOURS = 24.0
UNKNOWN_CATEGORY = "?"


@dataclass(frozen=True, slots=True)
class ReferralRow:
    id: int
    agency: str
    status: str  # proposed | linked | confirmed | failed
    created_at: float
    monitoring: str | None  # the checking task's status; None: no task (opted out)


@dataclass(frozen=True, slots=True)
class SeriesCallRow:
    """One companion call (task) of a series."""

    series_id: int
    due_at: float
    status: str


_REFERRALS = """
SELECT r.id, r.agency, r.status, r.created_at,
       (SELECT t.status FROM followup_task_referrals l JOIN followup_tasks t ON t.id = l.task_id
        WHERE l.referral_id = r.id ORDER BY t.created_at DESC, t.id DESC LIMIT 1)
FROM referrals r WHERE r.created_at >= ? AND r.created_at < ? ORDER BY r.id
"""
_SERIES_CALLS = """
SELECT series_id, due_at, status FROM followup_tasks
WHERE type = 'companion' AND series_id IS NOT NULL AND due_at >= ? AND due_at < ?
ORDER BY series_id, due_at
"""


def read_referrals(db: sqlite3.Connection, period: Period) -> list[ReferralRow]:
    return [ReferralRow(*r) for r in db.execute(_REFERRALS, (period.start, period.end))]


def read_series_calls(db: sqlite3.Connection, period: Period) -> list[SeriesCallRow]:
    return [SeriesCallRow(*r) for r in db.execute(_SERIES_CALLS, (period.start, period.end))]


def callback_times(tasks: Sequence[TaskRow]) -> Table:
    """One row: callbacks requested, done, the median and 90th percentile hours from the
    request to done, and the share of the requested done within `WITHIN_HOURS`."""
    asked = [t for t in tasks if t.type == "callback"]
    hours = [
        (t.closed_at - t.created_at) / 3600
        for t in asked
        if t.status == "done" and t.closed_at is not None
    ]
    within = sum(1 for h in hours if h <= WITHIN_HOURS)
    share = within / len(asked) if asked else None
    row = ("callback", len(asked), len(hours), percentile(hours, 50), percentile(hours, 90))
    cols = ("type", "requested", "done", "p50_hours", "p90_hours", "done_within_24h_share")
    return Table("callback_times", cols, [(*row, share)])


REFERRAL_STATUSES = ("proposed", "linked", "confirmed", "failed")
MONITORING = ("done", "unreachable", "open", "cancelled", "none")


def referrals(rows: Sequence[ReferralRow], categories: Mapping[str, str]) -> Table:
    """Per agency category (`categories`: agency id -> category): referrals made, by status
    now, and by the monitoring call's task."""
    by_cat: dict[str, list[ReferralRow]] = defaultdict(list)
    for r in rows:
        by_cat[categories.get(r.agency, UNKNOWN_CATEGORY)].append(r)
    out = []
    for cat in sorted(by_cat):
        rs = by_cat[cat]
        st = Counter(r.status for r in rs)
        mon = Counter(r.monitoring or "none" for r in rs)
        out.append(
            (cat, len(rs), *(st[s] for s in REFERRAL_STATUSES), *(mon[m] for m in MONITORING))
        )
    cols = ("category", "referred", *REFERRAL_STATUSES, *(f"monitoring_{m}" for m in MONITORING))
    return Table("referrals", cols, out)


def companions(rows: Sequence[SeriesCallRow]) -> Table:
    """One row: series with a call due in the period, their calls, by status, and the share
    kept up (done of the closed)."""
    st = Counter(r.status for r in rows)
    closed = st["done"] + st["unreachable"] + st["cancelled"]
    kept = st["done"] / closed if closed else None
    series = len({r.series_id for r in rows})
    row = ("companion", series, len(rows), st["done"], st["unreachable"], st["cancelled"])
    cols = ("type", "series", "calls_due", "done", "unreachable", "cancelled", "open")
    return Table("companions", (*cols, "kept_up_share"), [(*row, st["open"], kept)])


def agency_categories(path: Path) -> dict[str, str]:
    """Agency id -> category from the catalog; {} (every category `?`) when it cannot be read:
    the report is still made."""
    from ivr.followup.agencies import AgencyError, load_agencies

    try:
        return {a.id: a.category for a in load_agencies(path)}
    except (OSError, AgencyError, ValueError):
        return {}


@dataclass(frozen=True)
class Rows:
    """What these tables are computed from, besides the tasks."""

    referrals: Sequence[ReferralRow] = ()
    series_calls: Sequence[SeriesCallRow] = ()
    categories: Mapping[str, str] = field(default_factory=dict)


def read(db: sqlite3.Connection, period: Period, agencies: Path | None) -> Rows:
    """The rows of the period (the catalog: `agencies`, else the settings' default, relative
    to the project as the app reads it)."""
    from ivr.config import Settings
    from ivr.paths import project_file

    path = agencies if agencies is not None else project_file(Settings().agencies_file)
    return Rows(read_referrals(db, period), read_series_calls(db, period), agency_categories(path))


def tables(tasks: Sequence[TaskRow], rows: Rows) -> list[Table]:
    """The three tables, in the report's order (after the follow-ups)."""
    return [
        callback_times(tasks),
        referrals(rows.referrals, rows.categories),
        companions(rows.series_calls),
    ]
