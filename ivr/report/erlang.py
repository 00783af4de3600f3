"""Staffing from the line's own data: Erlang C (M/M/N, callers wait, nobody abandons) per hour
of the week, set against the roster. Pure.

For each hour of the week: the arrival rate λ (offered inbound calls per hour, averaged over
the times that hour occurs in the period), the mean handle time h (talk + wrap-up seconds of
the answered calls in that hour, the period's mean where an hour has fewer than
`MIN_ANSWERED`), the load A = λ·h (Erlangs), and the fewest counselors N with a service level
SL(N) = 1 − C(N, A)·exp(−(N − A)·T / h) at or above the target. Erlang C ignores abandonment;
with callers who hang up it overstates the waits (Erlang A: ivr.report.erlang_a).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

from ivr.report.figures import Table, offered
from ivr.report.rows import CallRow, Period, hour_of_week
from ivr.timezone import SEOUL

#: An hour with fewer answered calls than this uses the period's mean handle time.
MIN_ANSWERED = 5
#: More counselors than this are never proposed (a load that needs more is reported as such).
MAX_AGENTS = 500


def erlang_b(n: int, a: float) -> float:
    """Blocking probability B(N, A), by the stable recursion B(k) = A·B(k−1) / (k + A·B(k−1))."""
    if n < 0 or a < 0:
        raise ValueError(f"Erlang B needs N >= 0 and A >= 0, not N={n}, A={a}")
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """Probability that a caller waits, C(N, A); 1 when N <= A (the queue grows without end)."""
    if n <= a:
        return 1.0
    b = erlang_b(n, a)
    return n * b / (n - a * (1 - b))


def service_level(n: int, a: float, handle: float, target: float) -> float:
    """Share of callers answered within `target` seconds with N counselors (Erlang C)."""
    if n <= a:
        return 0.0
    return 1.0 - erlang_c(n, a) * math.exp(-(n - a) * target / handle)


def mean_wait(n: int, a: float, handle: float) -> float:
    """Average speed of answer (s) with N counselors; inf when N <= A."""
    return math.inf if n <= a else erlang_c(n, a) * handle / (n - a)


def agents_needed(rate_per_hour: float, handle: float, level: float, target: float) -> int:
    """The fewest counselors for `level` of callers answered within `target` s (0: no calls)."""
    if rate_per_hour <= 0:
        return 0
    a = rate_per_hour * handle / 3600
    n = max(1, math.floor(a) + 1)
    while service_level(n, a, handle, target) < level:
        n += 1
        if n > MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} counselors needed for {a:.1f} Erlangs")
    return n


def roster_staffing(
    on_shift: Callable[[dt.datetime], int], period: Period
) -> dict[tuple[int, int], float]:
    """The roster's counselors on shift per hour of the week (averaged over the period), from
    `on_shift(when)` — e.g. `lambda t: len(on_shift_ids(roster, t))` — asked at each half hour."""
    sums: dict[tuple[int, int], float] = defaultdict(float)
    occurs = period.hours_of_week()
    for day in period.days():
        for hour in range(24):
            when = dt.datetime.combine(day, dt.time(hour, 30), SEOUL)
            sums[(day.weekday(), hour)] += on_shift(when)
    return {k: sums[k] / occurs[k] for k in occurs}


def staffing(
    calls: Sequence[CallRow],
    period: Period,
    rostered: dict[tuple[int, int], float] | None,
    level: float = 0.8,
    target: float = 20.0,
    minimum: int = 1,
) -> Table:
    """Per hour of the week: λ, h, A, counselors needed, rostered, and the verdict
    (under | over | ok | no_roster, or not_in_period for an hour a short period lacks).
    Needed is at least `minimum` (the line is open around the clock: someone answers even in
    an hour nobody called before); over-staffed: at least one counselor more than needed."""
    occurs = period.hours_of_week()
    arrivals: dict[tuple[int, int], int] = defaultdict(int)
    talk: dict[tuple[int, int], list[float]] = defaultdict(list)
    for c in offered(calls):
        key = hour_of_week(c.queued_at or c.started_at)
        arrivals[key] += 1
        handled = c.handle_seconds
        if c.answered_at is not None and handled is not None:
            talk[key].append(handled)
    every = [t for ts in talk.values() for t in ts]
    overall = sum(every) / len(every) if every else 0.0
    rows = []
    for wd in range(7):
        for h in range(24):
            key = (wd, h)
            n_occ = occurs.get(key, 0)
            rate = arrivals[key] / n_occ if n_occ else 0.0
            ts = talk[key]
            handle = sum(ts) / len(ts) if len(ts) >= MIN_ANSWERED else overall
            need = agents_needed(rate, handle, level, target) if handle > 0 else 0
            need = max(need, minimum) if n_occ else 0
            have = None if rostered is None else rostered.get(key, 0.0)
            if not n_occ:
                verdict = "not_in_period"
            elif have is None:
                verdict = "no_roster"
            elif have < need:
                verdict = "under"
            elif have >= need + 1:
                verdict = "over"
            else:
                verdict = "ok"
            load = rate * handle / 3600
            rows.append((wd, h, rate, handle, load, need, have, verdict))
    cols = ("weekday", "hour", "calls_per_hour", "handle_s", "erlangs", "needed", "rostered")
    return Table("staffing", (*cols, "verdict"), rows)
