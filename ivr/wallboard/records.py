"""What the wallboard reads back from the store when it starts (or a new controller is heard):
the stored rows its recent alerts and wellbeing stretches are seeded from, `start` <= time <
`end`. Read only; the rows become alerts and spans in the pure modules (alerts.from_rows,
wellbeing.from_rows). No caller number is read (the calls' and chats' ids only).

These run at a start on the one connection the controller writes through, over tables that are
never purged: each is bounded by an index (`started_at` of calls, chats and silence_events,
`at` of counselor_events, `call_id` of caller_flags; tests/test_wallboard_records.py checks
the plans). A call or chat is looked for only when it started at most `LONGEST` seconds before
the window (a row of a longer one, a stuck record, is not seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.report.workload import MemberEvent
from ivr.store import Store
from ivr.wallboard.alerts import AbuseRow, SilenceRow
from ivr.wallboard.wellbeing import BusyRow

#: Seconds a call or chat (with its wrap-up) can last and still be seeded: 12 hours, far past
#: any counselling session; a silence lies within its call, so the same bound holds for it.
LONGEST = 12 * 3600.0
#: Seconds an abuse flag may lie before the call's end it is read for (the hang-up's delay).
FLAG_SLACK = 60.0

# A call still live has no line or counselor in `calls` yet: its live_calls snapshot has them.
_SILENCES = """
SELECT s.call_id, s.party, s.started_at + s.seconds, s.seconds,
       COALESCE(c.queue, l.queue), COALESCE(c.member, l.member)
FROM silence_events s
LEFT JOIN calls c ON c.call_id = s.call_id
LEFT JOIN live_calls l ON l.call_id = s.call_id
WHERE s.started_at >= ? AND s.started_at < ?
  AND s.action = 'told_counselor' AND s.started_at + s.seconds >= ?
  AND s.started_at + s.seconds < ?
ORDER BY s.started_at + s.seconds, s.id
"""
# The flag's time is the moment of the ending; a withheld number is not flagged (call's end).
# (Subqueries, not a join grouped by call: a GROUP BY would scan the table in key order.)
_CALL_ABUSES = """
SELECT c.call_id, COALESCE((SELECT MIN(f.created_at) FROM caller_flags f
                            WHERE f.call_id = c.call_id AND f.kind = 'abuse'), c.ended_at),
       c.queue, COALESCE((SELECT MIN(f.member) FROM caller_flags f
                          WHERE f.call_id = c.call_id AND f.kind = 'abuse'), c.member)
FROM calls c
WHERE c.started_at >= ? AND c.outcome = 'abuse_ended' AND c.ended_at >= ?
"""
_CHAT_ABUSES = """
SELECT h.chat_id, COALESCE((SELECT MIN(f.created_at) FROM caller_flags f
                            WHERE f.call_id = h.chat_id AND f.kind = 'abuse'), h.ended_at),
       h.member
FROM chats h
WHERE h.started_at >= ? AND h.outcome = 'abuse' AND h.ended_at >= ?
"""
# The calls still going on (their live_calls snapshot) are busy up to `end` (the looks go on).
_BUSY = """
SELECT member, answered_at, ended_at, wrapup_seconds FROM calls
WHERE started_at >= ? AND member IS NOT NULL AND answered_at IS NOT NULL AND ended_at IS NOT NULL
  AND ended_at < ? AND ended_at + COALESCE(wrapup_seconds, 0) >= ?
UNION ALL
SELECT member, answered_at, ?, NULL FROM live_calls
WHERE member IS NOT NULL AND answered_at IS NOT NULL AND answered_at < ?
ORDER BY 2
"""
_EVENTS = """
SELECT member, at, field, new FROM counselor_events
WHERE at >= ? AND at < ? AND field IN ('logged_in', 'paused') ORDER BY at, id
"""

# The board's figures of today (Feed.figures, every FIGURES_TTL s): through indexes as well —
# `callbacks` is never purged either (migration 24: by status, and by request time).
TODAY_CALLS = """
SELECT answered_at IS NOT NULL, wait_seconds, outcome FROM calls
WHERE started_at >= ? AND queued_at IS NOT NULL AND ended_at IS NOT NULL
"""
OPEN_CALLBACKS = "SELECT COUNT(*) FROM callbacks WHERE status = 'open'"
CLOSED_CALLBACKS_SINCE = (
    "SELECT COUNT(*) FROM callbacks WHERE requested_at >= ? AND status != 'open'"
)


@dataclass(frozen=True, slots=True)
class Stored:
    silences: list[SilenceRow]
    abuses: list[AbuseRow]
    calls: list[BusyRow]
    events: list[MemberEvent]


async def read(store: Store, start: float, end: float) -> Stored:
    """The stored rows of `start` to `end` (the abuse endings filtered by time in from_rows:
    the flag's time may differ from the call's end by the hang-up)."""
    first = start - LONGEST  # the earliest start of a call or chat (or silence) that matters
    silences = [SilenceRow(*r) for r in await store.fetch(_SILENCES, (first, end, start, end))]
    since = start - FLAG_SLACK
    abuses = [AbuseRow(*r) for r in await store.fetch(_CALL_ABUSES, (first, since))]
    abuses += [
        AbuseRow(c, at, None, m, chat=True)
        for c, at, m in await store.fetch(_CHAT_ABUSES, (first, since))
    ]
    calls = [BusyRow(*r) for r in await store.fetch(_BUSY, (first, end, start, end, end))]
    events = [MemberEvent(*r) for r in await store.fetch(_EVENTS, (start, end))]
    return Stored(silences, abuses, calls, events)
