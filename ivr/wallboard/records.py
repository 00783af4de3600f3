"""What the wallboard reads back from the store when it starts (or a new controller is heard):
the stored rows its recent alerts and wellbeing stretches are seeded from, `start` <= time <
`end`. Read only; the rows become alerts and spans in the pure modules (alerts.from_rows,
wellbeing.from_rows). No caller number is read (the calls' and chats' ids only).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.report.workload import MemberEvent
from ivr.store import Store
from ivr.wallboard.alerts import AbuseRow, SilenceRow
from ivr.wallboard.wellbeing import BusyRow

# A call still live has no line or counselor in `calls` yet: its live_calls snapshot has them.
_SILENCES = """
SELECT s.call_id, s.party, s.started_at + s.seconds, s.seconds,
       COALESCE(c.queue, l.queue), COALESCE(c.member, l.member)
FROM silence_events s
LEFT JOIN calls c ON c.call_id = s.call_id
LEFT JOIN live_calls l ON l.call_id = s.call_id
WHERE s.action = 'told_counselor' AND s.started_at + s.seconds >= ?
  AND s.started_at + s.seconds < ?
ORDER BY s.started_at + s.seconds, s.id
"""
# The flag's time is the moment of the ending; a withheld number is not flagged (call's end).
_CALL_ABUSES = """
SELECT c.call_id, COALESCE(MIN(f.created_at), c.ended_at), c.queue,
       COALESCE(MIN(f.member), c.member)
FROM calls c LEFT JOIN caller_flags f ON f.call_id = c.call_id AND f.kind = 'abuse'
WHERE c.outcome = 'abuse_ended' AND c.ended_at >= ?
GROUP BY c.call_id
"""
_CHAT_ABUSES = """
SELECT h.chat_id, COALESCE(MIN(f.created_at), h.ended_at), h.member
FROM chats h LEFT JOIN caller_flags f ON f.call_id = h.chat_id AND f.kind = 'abuse'
WHERE h.outcome = 'abuse' AND h.ended_at >= ?
GROUP BY h.chat_id
"""
# The calls still going on (their live_calls snapshot) are busy up to `end` (the looks go on).
_BUSY = """
SELECT member, answered_at, ended_at, wrapup_seconds FROM calls
WHERE member IS NOT NULL AND answered_at IS NOT NULL AND ended_at IS NOT NULL
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


@dataclass(frozen=True, slots=True)
class Stored:
    silences: list[SilenceRow]
    abuses: list[AbuseRow]
    calls: list[BusyRow]
    events: list[MemberEvent]


async def read(store: Store, start: float, end: float) -> Stored:
    """The stored rows of `start` to `end` (the abuse endings filtered by time in from_rows:
    the flag's time may differ from the call's end by the hang-up)."""
    silences = [SilenceRow(*r) for r in await store.fetch(_SILENCES, (start, end))]
    abuses = [AbuseRow(*r) for r in await store.fetch(_CALL_ABUSES, (start - 60,))]
    abuses += [
        AbuseRow(c, at, None, m, chat=True)
        for c, at, m in await store.fetch(_CHAT_ABUSES, (start - 60,))
    ]
    calls = [BusyRow(*r) for r in await store.fetch(_BUSY, (end, start, end, end))]
    events = [MemberEvent(*r) for r in await store.fetch(_EVENTS, (start, end))]
    return Stored(silences, abuses, calls, events)
