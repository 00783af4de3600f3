"""Per-counselor workload (for the supervisor: shown per member id, sorted by id, never ranked
or published): calls, talk hours, hard calls, abuse endings, the longest call and the longest
stretch without a break. Rows read from the database read only (like ivr.report.reader), the
table computed here (pure).

Definitions:
- **calls**: the calls a counselor answered that started in the period, inbound and follow-up
  calls alike (both are a conversation they carried); **chats**: the text chats they took
  (started in the period; not in the talk hours or stretches: a chat runs beside a call).
- **hard call**: an answered call with any of: a warm transfer to the crisis line (outcome
  `transferred` or end reason `crisis_transfer`), an abuse ending (outcome `abuse_ended` or end
  reason `abuse`), a silence alert (a `silence_events` row for the call: the silent-line
  procedure ran), a silent line flagged for a welfare check (end reason `silent`), or a talk
  time of `HARD_CALL_MINUTES` or more. Each call counts once, whatever it had.
- **longest stretch without a break**: the counselor's time on calls and their wrap-ups
  (answered to ended + the stored wrap-up) strung together while the gap to the next call
  is shorter than `BREAK_MINUTES` and they were neither paused nor logged out in that gap
  (`counselor_events`: any pause is a break, whatever its length or reason). Measured from the
  first answer to the last wrap-up's end, in minutes. A counselor whose first event in the
  period is an unpause or a log-in counts as paused (logged out) from the period's start.
"""

from __future__ import annotations

import bisect
import itertools
import math
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ivr.report.figures import Table
from ivr.report.rows import CallRow, Period

#: A call this long or longer is a hard call.
HARD_CALL_MINUTES = 40.0
#: A gap between calls this long or longer is a break (so is any pause).
BREAK_MINUTES = 10.0
HARD_OUTCOMES = frozenset({"transferred", "abuse_ended"})
HARD_END_REASONS = frozenset({"crisis_transfer", "abuse", "silent"})
COLUMNS = (
    "member",
    "calls",
    "chats",
    "talk_hours",
    "hard_calls",
    "abuse_endings",
    "longest_call_min",
    "longest_stretch_min",
)


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """One row of `counselor_events` (field logged_in | paused, new 'true' | 'false')."""

    member: str
    at: float
    field: str
    new: str


_EVENTS = """
SELECT member, at, field, new FROM counselor_events
WHERE at >= ? AND at < ? AND field IN ('logged_in', 'paused') ORDER BY at, id
"""
_SILENT_CALLS = """
SELECT DISTINCT call_id FROM silence_events WHERE started_at >= ? AND started_at < ?
"""


def read_events(db: sqlite3.Connection, period: Period) -> list[MemberEvent]:
    return [MemberEvent(*r) for r in db.execute(_EVENTS, (period.start, period.end))]


def read_silent_calls(db: sqlite3.Connection, period: Period) -> set[str]:
    """The calls with a silence alert (the silent-line procedure ran at least once)."""
    return {str(c) for (c,) in db.execute(_SILENT_CALLS, (period.start, period.end))}


def is_hard(call: CallRow, silent_calls: frozenset[str]) -> bool:
    return (
        call.outcome in HARD_OUTCOMES
        or call.end_reason in HARD_END_REASONS
        or call.call_id in silent_calls
        or (call.talk_seconds or 0.0) >= HARD_CALL_MINUTES * 60
    )


def away_intervals(
    events: Iterable[MemberEvent], period: Period
) -> dict[str, list[tuple[float, float]]]:
    """Per member, the times paused or logged out (start, end); an open one ends at +inf."""
    return away_since(events, period.start)


def away_since(events: Iterable[MemberEvent], start: float) -> dict[str, list[tuple[float, float]]]:
    """`away_intervals` from `start` (the wallboard's seed reads from a time, not a period)."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    since: dict[tuple[str, str], float] = {}
    seen: set[tuple[str, str]] = set()
    for e in events:
        key = (e.member, e.field)
        away = (e.field == "paused") == (e.new == "true")  # paused, or logged out
        if away:
            since.setdefault(key, e.at)
        else:
            began = since.pop(key, start if key not in seen else None)
            if began is not None:
                out[e.member].append((began, e.at))
        seen.add(key)
    for (member, _field), began in since.items():
        out[member].append((began, math.inf))
    return out


def _busy(calls: Sequence[CallRow]) -> list[tuple[float, float]]:
    spans = []
    for c in calls:
        if c.answered_at is None or c.ended_at is None:
            continue
        spans.append((c.answered_at, c.ended_at + (c.wrapup_seconds or 0.0)))
    return sorted(spans)


class Breaks:
    """The break rule between two busy spans, shared with the wallboard's wellbeing mark
    (ivr.wallboard.wellbeing): a gap of `gap` minutes or more is a break, and so is any time
    paused or logged out (`away`: (start, end), an open one ending at +inf) within it."""

    def __init__(self, away: Sequence[tuple[float, float]], gap: float = BREAK_MINUTES) -> None:
        # Away intervals by start, with the latest end among those started so far: the gap
        # (end, a) holds a pause when one that started before `a` ended after `end`.
        ordered = sorted(away)
        self._starts = [s for s, _ in ordered]
        self._latest = list(itertools.accumulate((e for _, e in ordered), max))
        self.gap = gap * 60

    def between(self, end: float, start: float) -> bool:
        """Whether the time from a span's `end` to the next one's `start` is a break."""
        if start - end >= self.gap:
            return True
        k = bisect.bisect_left(self._starts, start)
        return k > 0 and self._latest[k - 1] > end


def stretches(
    spans: Sequence[tuple[float, float]],
    away: Sequence[tuple[float, float]],
    gap: float = BREAK_MINUTES,
) -> list[tuple[float, float]]:
    """Busy spans (start, end) strung together into stretches without a break, in order."""
    ordered = sorted(spans)
    if not ordered:
        return []
    breaks = Breaks(away, gap)
    out = []
    start, end = ordered[0]
    for a, b in ordered[1:]:
        if breaks.between(end, a):
            out.append((start, end))
            start, end = a, b
        elif b > end:
            end = b
    out.append((start, end))
    return out


def longest_stretch(
    calls: Sequence[CallRow], away: Sequence[tuple[float, float]], gap: float = BREAK_MINUTES
) -> float:
    """The longest stretch (s) of calls and wrap-ups without a break (module docstring)."""
    return max((e - s for s, e in stretches(_busy(calls), away, gap)), default=0.0)


@dataclass(frozen=True)
class Rows:
    """What the workload is computed from, besides the calls."""

    events: Sequence[MemberEvent] = ()
    silent_calls: frozenset[str] = frozenset()


def read(db: sqlite3.Connection, period: Period) -> Rows:
    return Rows(read_events(db, period), frozenset(read_silent_calls(db, period)))


def workload(
    calls: Sequence[CallRow], rows: Rows, period: Period, chats: Mapping[str, int] | None = None
) -> Table:
    """One row per counselor who answered a call or took a chat (`chats`: per member,
    ivr.report.chats.per_member) in the period, sorted by member id."""
    chats = chats or {}
    per: dict[str, list[CallRow]] = defaultdict(list)
    for c in calls:
        if c.member is not None and c.answered_at is not None:
            per[c.member].append(c)
    for m in chats:
        per.setdefault(m, [])
    away = away_intervals(rows.events, period)
    out = []
    for m in sorted(per):
        cs = per[m]
        talk, longest, hard, abuse = 0.0, 0.0, 0, 0
        for c in cs:
            t = c.talk_seconds or 0.0
            talk += t
            longest = t if t > longest else longest
            hard += is_hard(c, rows.silent_calls)
            abuse += c.outcome == "abuse_ended" or c.end_reason == "abuse"
        stretch = longest_stretch(cs, away.get(m, ()))
        out.append(
            (m, len(cs), chats.get(m, 0), talk / 3600, hard, abuse, longest / 60, stretch / 60)
        )
    return Table("workload", COLUMNS, out)
