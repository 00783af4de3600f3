"""Counselor wellbeing on the wallboard (pure: time passed in, no I/O): who has been on calls
longer than the limit without a break.

The rule is the workload report's "longest stretch without a break" (ivr.report.workload,
`stretches` and `Breaks`, shared): time on a call or in its wrap-up is busy; busy spans are
strung together while the gap between them is shorter than `BREAK_MINUTES` and holds no
pause and no log-out. The report reads stored calls afterwards; the board sees the members'
states live (`StateClock` lines, every look), so its spans are what it saw::

    ON_CALL / WRAPUP ──> busy (the span grows to now)
    PAUSED / OFFLINE ──> away (any of it between two spans is a break)
    IDLE / RINGING / COOLDOWN ──> a gap (a break once it reaches BREAK_MINUTES)

A member's current stretch runs from its first busy span to now while busy, or to the end of
the last span during a gap that is not (yet) a break; after a break there is none. Past
`limit` seconds the member is marked "휴식 없이 2시간 10분". Only the spans and absences of
the current stretch are kept, so memory stays a few entries per member.

What the desk did not see (before it started, or before the standby took over) comes from
what is stored (`from_rows`, the rows read by ivr/wallboard/records.py), as the report reads
it: each ended call a span from its answer to its end + the stored wrap-up (a call still
going on, its `live_calls` snapshot, from its answer to the seed's moment), the
`counselor_events` pauses and log-outs the absences (`ivr.report.workload.away_since`).
`Wellbeing.seed` merges them under what the looks saw.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ivr.report.workload import BREAK_MINUTES, Breaks, MemberEvent, away_since, stretches
from ivr.wallboard.board import BoardState, MemberLine

BUSY = frozenset({BoardState.ON_CALL, BoardState.WRAPUP})
AWAY = frozenset({BoardState.PAUSED, BoardState.OFFLINE})


def stretch_ko(seconds: float) -> str:
    """ "휴식 없이 2시간 10분" (whole minutes)."""
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"휴식 없이 {hours}시간 {minutes}분"
    return f"휴식 없이 {hours}시간" if hours else f"휴식 없이 {minutes}분"


Intervals = list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class BusyRow:
    """A stored call a member answered (`calls`; wrap-up None when not stored)."""

    member: str
    answered_at: float
    ended_at: float
    wrapup_seconds: float | None


@dataclass(frozen=True, slots=True)
class Seed:
    """Per member, the stored busy spans and absences (an open one ends at +inf)."""

    spans: Mapping[str, Intervals]
    away: Mapping[str, Intervals]


def union(intervals: Iterable[tuple[float, float]]) -> Intervals:
    """Overlapping intervals joined, in order (so at most the last one is open)."""
    out: Intervals = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def from_rows(calls: Iterable[BusyRow], events: Iterable[MemberEvent], start: float) -> Seed:
    """The spans and absences the stored rows of `start` on make (events in time order)."""
    spans: dict[str, Intervals] = defaultdict(list)
    for c in calls:
        end = c.ended_at + (c.wrapup_seconds or 0.0)
        if end >= start:
            spans[c.member].append((c.answered_at, end))
    away = {m: union(a) for m, a in away_since(events, start).items()}
    return Seed({m: sorted(s) for m, s in spans.items()}, away)


@dataclass
class Wellbeing:
    #: Seconds without a break past which a member is marked.
    limit: float
    #: Minutes of gap that make a break (the report's rule).
    gap: float = BREAK_MINUTES
    _spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _away: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    _busy_now: set[str] = field(default_factory=set)
    _away_now: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.limit <= 0:
            raise ValueError("wellbeing: the limit must be positive")

    def observe(self, lines: Iterable[MemberLine], now: float) -> None:
        """The members' states at `now` (a look of the board)."""
        for line in lines:
            m, since = line.member, now - line.seconds
            spans = self._spans.setdefault(m, [])
            if line.state in BUSY:
                if m in self._busy_now:
                    spans[-1] = (spans[-1][0], now)
                else:
                    spans.append((since, now))
                    self._busy_now.add(m)
            else:
                self._busy_now.discard(m)
            away = self._away.setdefault(m, [])
            if line.state in AWAY:
                if m not in self._away_now:
                    away.append((since, math.inf))
                    self._away_now.add(m)
            elif m in self._away_now:
                away[-1] = (away[-1][0], now)
                self._away_now.discard(m)
            self._prune(m, now)

    def seed(self, seed: Seed, now: float) -> None:
        """Stored spans and absences merged under what the looks saw (a span the looks are
        growing stays the last; an absence still open waits for a look to close it)."""
        for m in set(seed.spans) | set(seed.away):
            spans = self._spans.setdefault(m, [])
            current: Sequence[tuple[float, float]] = ()
            if m in self._busy_now:
                current = [spans.pop()]
            spans[:] = [*sorted(spans + list(seed.spans.get(m, ()))), *current]
            away = union(self._away.get(m, []) + list(seed.away.get(m, ())))
            self._away[m] = away
            if away and away[-1][1] == math.inf:
                self._away_now.add(m)
            self._prune(m, now)

    def stretch(self, member: str, now: float) -> float | None:
        """Seconds of the member's current stretch without a break (None: none now)."""
        spans = self._spans.get(member)
        if not spans:
            return None
        away = self._away.get(member, [])
        start, end = stretches(spans, away, self.gap)[-1]
        if member not in self._busy_now and Breaks(away, self.gap).between(end, now):
            return None
        return end - start

    def marks(self, now: float) -> dict[str, str]:
        """The members past the limit, each with their mark in Korean."""
        out = {}
        for m in self._spans:
            s = self.stretch(m, now)
            if s is not None and s > self.limit:
                out[m] = stretch_ko(s)
        return out

    def _prune(self, member: str, now: float) -> None:
        """Keep only the current stretch's spans and the absences that can still break it."""
        spans = self._spans[member]
        if not spans:
            self._away[member] = [a for a in self._away[member] if a[1] == math.inf]
            return
        away = self._away[member]
        if self.stretch(member, now) is None:
            spans.clear()
            self._away[member] = [a for a in away if a[1] == math.inf]
            return
        start = stretches(spans, away, self.gap)[-1][0]
        spans[:] = [s for s in spans if s[0] >= start]
        self._away[member] = [a for a in away if a[1] > start]
