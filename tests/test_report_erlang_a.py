"""Erlang A (ivr.report.erlang_a) against values computed independently of its code:

- Erlang C's published values (tests/test_report_erlang.py checks those): callers who never
  hang up (a patience of 10⁹ s) give Erlang C's wait probability and service level
  (Call Centre Helper's worked example: 10 Erlangs, 180 s, 14 agents -> 17.41 % wait).
- An exact closed form: when the patience equals the handle time (θ = μ), the number of
  callers in the system dies at k·μ at every level, so it is Poisson(A) (M/M/∞): the wait
  probability is P(Poisson(A) >= N) and the abandonment E[(K − N)⁺] / A.
- A separate seeded Monte Carlo of the M/M/N+M FIFO queue written here (every arrival takes
  the first counselor free after the callers before it, or leaves when that is beyond its
  patience), 300,000 callers: the service level within 20 s and the abandonment agree within
  0.005 (about five standard errors).
No published numeric Erlang A table was found (searched for one); these three are the checks.
"""

from __future__ import annotations

import heapq
import math
import random

import pytest

from ivr.report import erlang, erlang_a
from ivr.report.rows import CallRow, Period, seoul


def test_infinite_patience_is_erlang_c() -> None:
    a = 100 / 1800 * 180  # 10 Erlangs
    r = erlang_a.erlang_a(14, a, 180, 1e9, 20)
    assert r.wait_probability == pytest.approx(0.1741, abs=5e-5)
    assert r.service_level == pytest.approx(erlang.service_level(14, a, 180, 20), abs=1e-6)
    assert r.mean_wait == pytest.approx(erlang.mean_wait(14, a, 180), rel=1e-5)
    assert r.abandonment < 1e-6


def test_patience_equal_to_handle_time_is_poisson() -> None:
    n, a = 5, 5.0
    pmf = [math.exp(-a) * a**k / math.factorial(k) for k in range(80)]
    wait = 1 - sum(pmf[:n])
    abandon = sum((k - n) * p for k, p in enumerate(pmf) if k > n) / a
    r = erlang_a.erlang_a(n, a, 300, 300, 20)
    assert r.wait_probability == pytest.approx(wait, abs=1e-9)
    assert r.abandonment == pytest.approx(abandon, abs=1e-9)
    # Nobody abandons within 0 s of an infinite target: answered = 1 − abandoned.
    assert erlang_a.erlang_a(n, a, 300, 300, 1e5).service_level == pytest.approx(1 - abandon)


def _monte_carlo(n: int, a: float, handle: float, patience: float, target: float) -> tuple:
    rng = random.Random(12)
    lam = a / handle
    free = [0.0] * n
    t = 0.0
    within = gone = 0
    calls = 300_000
    for _ in range(calls):
        t += rng.expovariate(lam)
        start = max(t, free[0])
        if start - t > rng.expovariate(1 / patience):
            gone += 1
            continue
        within += start - t <= target
        heapq.heapreplace(free, start + rng.expovariate(1 / handle))
    return within / calls, gone / calls


@pytest.mark.parametrize(("n", "a", "handle", "patience"), [(3, 2.5, 300, 120), (4, 5.0, 900, 180)])
def test_against_a_monte_carlo_of_the_queue(
    n: int, a: float, handle: float, patience: float
) -> None:
    sl, ab = _monte_carlo(n, a, handle, patience, 20)
    r = erlang_a.erlang_a(n, a, handle, patience, 20)
    assert r.service_level == pytest.approx(sl, abs=0.005)
    assert r.abandonment == pytest.approx(ab, abs=0.005)


def test_abandonment_needs_fewer_counselors_than_erlang_c() -> None:
    # 200 calls/h of 180 s (10 E): Erlang C needs 14 for 80 % in 20 s; impatient callers
    # (2 minutes) leave the queue short, so fewer suffice.
    need_a = erlang_a.agents_needed_a(200, 180, 120, 0.8, 20)
    assert need_a < erlang.agents_needed(200, 180, 0.8, 20) == 14
    a = 10.0
    assert erlang_a.erlang_a(need_a, a, 180, 120, 20).service_level >= 0.8
    assert erlang_a.erlang_a(need_a - 1, a, 180, 120, 20).service_level < 0.8
    assert erlang_a.agents_needed_a(0, 180, 120, 0.8, 20) == 0


def _row(n: int, start: float, wait: float, answered: bool, outcome: str) -> CallRow:
    queued = start + 5
    return CallRow(
        f"c{n}", f"h{n}", start, "inbound", "5", "loneliness", queued,
        queued + wait if answered else None, "k1" if answered else None, wait,
        600.0 if answered else None, queued + wait + (600 if answered else 0), outcome,
    )  # fmt: skip


def test_patience_from_the_calls_and_the_table() -> None:
    # 10 callers hung up after 30 s, 20 were answered after 15 s: (300 + 300) s / 10 = 60 s.
    t0 = 1_793_000_000.0
    left = [_row(i, t0 + i * 60, 30.0, False, "abandoned_queue") for i in range(10)]
    kept = [_row(100 + i, t0 + i * 60, 15.0, True, "completed") for i in range(20)]
    assert erlang_a.mean_patience(left + kept) == (60.0, 10)
    assert erlang_a.mean_patience(left[:9] + kept) == (None, 9)  # too few: no Erlang A
    period = Period(seoul(t0).date(), seoul(t0).date())
    c = erlang.staffing(left + kept, period, None)
    table = erlang_a.staffing_a(c, left + kept)
    assert len(table.rows) == 168 and table.columns[-1] == "verdict"
    busy = [r for r in table.rows if r[2] > 0]
    assert busy and all(r[4] == 60.0 and r[6] is not None and r[-1] == "no_roster" for r in busy)
    assert erlang_a.staffing_a(c, left[:9] + kept).rows[busy[0][0] * 24 + busy[0][1]][-1] == (
        "no_patience"
    )


def test_heavy_overload_with_patient_callers_stays_finite() -> None:
    # 24 Erlangs on 3 counselors, callers who would wait ~28 hours: the queue's law peaks near
    # (24 − 3) / (θ/μ) ≈ 2,333 callers, where its unnormalised terms reach e^1600 (a float
    # overflows at e^709): rescaled on the fly.
    r = erlang_a.erlang_a(3, 24.0, 900, 100_000, 20)
    assert 0.0 <= r.service_level < 0.01
    assert r.abandonment == pytest.approx(1 - 3 / 24, abs=0.01)  # all but what 3 can serve
    assert math.isfinite(r.mean_wait)


def test_patience_per_hour_of_the_day_feeds_erlang_a() -> None:
    """Monday 2 Nov 2026, Seoul: at 9h 10 callers left after 30 s and 20 were answered after
    15 s (patience (300 + 300) / 10 = 60 s); at 21h 10 left after 100 s and 10 were answered
    after 50 s ((1000 + 500) / 10 = 150 s); at 3h 2 left after 10 s and 2 were answered after
    5 s: too few, the period's patience (300 + 300 + 1000 + 500 + 20 + 10) / 22 s."""
    import datetime as dt

    from ivr.timezone import SEOUL

    def at(hour: int, i: int) -> float:
        return dt.datetime(2026, 11, 2, hour, tzinfo=SEOUL).timestamp() + 60 * i

    calls = [_row(i, at(9, i), 30.0, False, "abandoned_queue") for i in range(10)]
    calls += [_row(100 + i, at(9, i), 15.0, True, "completed") for i in range(20)]
    calls += [_row(200 + i, at(21, i), 100.0, False, "callback_requested") for i in range(10)]
    calls += [_row(300 + i, at(21, i), 50.0, True, "completed") for i in range(10)]
    calls += [_row(400 + i, at(3, i), 10.0, False, "abandoned_intro") for i in range(2)]
    calls += [_row(500 + i, at(3, i), 5.0, True, "completed") for i in range(2)]
    overall = 2130 / 22
    assert erlang_a.mean_patience(calls) == (pytest.approx(overall), 22)
    assert erlang_a.patience_by_hour(calls) == {9: (60.0, 10), 21: (150.0, 10), 3: (None, 2)}

    table = erlang_a.abandonment_by_wait_hour(calls)
    got = {r[0]: r[1:] for r in table.rows}
    assert len(table.rows) == 24
    assert table.columns[3:8] == tuple(
        f"left_waited_{b}s" for b in ("0-20", "20-60", "60-120", "120-300", "300+")
    )
    assert got[9] == (30, 10, 0, 10, 0, 0, 0, pytest.approx(10 / 30), 60.0, "hour")
    assert got[21] == (20, 10, 0, 0, 10, 0, 0, pytest.approx(0.5), 150.0, "hour")
    assert got[3] == (4, 2, 2, 0, 0, 0, 0, pytest.approx(0.5), None, "period")
    assert got[12] == (0, 0, 0, 0, 0, 0, 0, None, None, "period")
    assert sum(r[1] for r in table.rows) == len(calls)
    assert sum(r[2] for r in table.rows) == 22

    day = dt.date(2026, 11, 2)
    staffing = erlang.staffing(calls, Period(day, day), None)
    rows = {(r[0], r[1]): r for r in erlang_a.staffing_a(staffing, calls).rows}
    assert rows[(0, 9)][4] == 60.0 and rows[(0, 21)][4] == 150.0  # their own
    assert rows[(0, 3)][4] == pytest.approx(overall)  # the period's
    assert rows[(0, 9)][6] is not None and rows[(0, 21)][6] is not None
    # Without enough callers who left in the whole period there is no Erlang A at all.
    few = calls[:9] + calls[10:30]
    monday = [r for r in erlang_a.staffing_a(staffing, few).rows if r[0] == 0]
    assert {r[-1] for r in monday} == {"no_patience"}
    assert {r[-1] for r in erlang_a.abandonment_by_wait_hour(few).rows} == {None}
