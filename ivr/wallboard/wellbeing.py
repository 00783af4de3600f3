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
the current stretch are kept, so memory stays a few entries per member. What the desk did not
see (before it started) is not counted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.report.workload import BREAK_MINUTES, Breaks, stretches
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
