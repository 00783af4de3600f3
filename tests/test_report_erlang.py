"""Erlang C (ivr.report.erlang) against published values, and the staffing table against the
roster on a hand-made case.

Published values used (the source of each stated where it is asserted):
- Erlang B tables (e.g. the ITU-T/Bellcore-style tables in every traffic-engineering text):
  B(N=10, A=5 E) = 0.0184 and B(N=5, A=2 E) = 0.0367.
- Call Centre Helper, "Erlang C Formula – Made Simple" (callcentrehelper.com), worked example:
  100 calls per 30 minutes, average handle time 180 s -> 10 Erlangs; with 11 agents the
  probability a call waits is 68.21 %, with 14 agents 17.41 %.
- The M/M/m textbook exercise quoted on Mathematics Stack Exchange ("probability of a
  customer joining a queue via Erlang C curve"): 120 customers per hour, 3 minutes each,
  10 servers (6 Erlangs) -> "the probability of waiting is about 0.10".
- Exact: M/M/2 at 1 Erlang waits with probability 1/3; M/M/3 at 2 Erlangs, 4/9.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from ivr.report import erlang
from ivr.report.rows import CallRow, Period
from ivr.timezone import SEOUL


def test_erlang_b_table_values() -> None:
    assert erlang.erlang_b(10, 5.0) == pytest.approx(0.0184, abs=5e-5)
    assert erlang.erlang_b(5, 2.0) == pytest.approx(0.0367, abs=5e-5)


def test_erlang_c_call_centre_helper_example() -> None:
    a = 100 / 1800 * 180  # 10 Erlangs
    assert erlang.erlang_c(11, a) == pytest.approx(0.6821, abs=5e-5)
    assert erlang.erlang_c(14, a) == pytest.approx(0.1741, abs=5e-5)


def test_erlang_c_textbook_curve_value() -> None:
    assert erlang.erlang_c(10, 120 / 60 * 3) == pytest.approx(0.10, abs=0.005)


def test_erlang_c_exact_small_systems() -> None:
    assert erlang.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang.erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert erlang.erlang_c(3, 3.0) == 1.0  # overloaded: everybody waits
    assert erlang.mean_wait(3, 3.0, 180) == math.inf


def test_service_level_and_agents_needed() -> None:
    # 10 Erlangs, 180 s: SL(20 s) = 1 - C * exp(-(N - A) * 20 / 180)
    want = 1 - 0.174132 * math.exp(-4 * 20 / 180)
    assert erlang.service_level(14, 10.0, 180, 20) == pytest.approx(want, abs=1e-5)
    assert erlang.service_level(13, 10.0, 180, 20) < 0.8 <= erlang.service_level(14, 10.0, 180, 20)
    assert erlang.agents_needed(200, 180, 0.8, 20) == 14  # 200 calls/h * 180 s = 10 E
    assert erlang.agents_needed(0, 180, 0.8, 20) == 0


def _answered(n: int, start: float, talk: float) -> CallRow:
    return CallRow(
        f"c{n}",
        f"h{n}",
        start,
        "inbound",
        "5",
        "loneliness",
        start + 5,
        start + 15,
        "k1",
        10.0,
        talk,
        start + 15 + talk,
        "completed",
    )


def test_staffing_against_the_roster() -> None:
    # One Monday (2 Nov 2026): 6 calls of 10 minutes between 21:00 and 22:00 -> λ = 6/h,
    # h = 600 s, A = 1 Erlang; 80 % within 20 s needs 3 counselors:
    # SL(2) = 1 - (1/3) e^(-20/600) = 0.678, SL(3) = 1 - C(3,1) e^(-40/600) = 0.915.
    day = dt.date(2026, 11, 2)
    t21 = dt.datetime(2026, 11, 2, 21, tzinfo=SEOUL).timestamp()
    calls = [_answered(i, t21 + i * 600, 600.0) for i in range(6)]
    period = Period(day, day)
    rostered = erlang.roster_staffing(lambda when: 2 if when.hour >= 12 else 5, period)
    rows = {(r[0], r[1]): r for r in erlang.staffing(calls, period, rostered).rows}
    rate, handle, load, need, have, verdict = rows[(0, 21)][2:]
    assert (rate, handle, load, need, have, verdict) == (6.0, 600.0, 1.0, 3, 2.0, "under")
    # Nobody called at 3:00 or 13:00: one counselor is needed all the same (open 24/7).
    assert rows[(0, 3)][5:] == (1, 5.0, "over")
    assert rows[(0, 13)][5:] == (1, 2.0, "over")
    assert rows[(1, 21)][5:] == (0, 0.0, "not_in_period")  # Tuesday is not in the period
    assert erlang.staffing(calls, period, None).rows[0][-1] == "no_roster"
    assert erlang.staffing(calls, period, {(0, h): 1.0 for h in range(24)}).rows[5][-1] == "ok"
