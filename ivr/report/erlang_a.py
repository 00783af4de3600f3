"""Staffing with abandonment: Erlang A (M/M/N+M, Palm's queue: callers who wait too long hang
up), beside Erlang C (ivr.report.erlang) in the report. Pure.

The model: Poisson arrivals at rate λ, exponential handle times with mean h (μ = 1/h), N
counselors, and each waiting caller's patience exponential with mean p (θ = 1/p): a caller not
answered within their patience hangs up. The number of callers in the system is a birth-death
chain (birth λ; death k·μ for k <= N, N·μ + (k − N)·θ above), stable for every load because
waiting callers leave; its stationary law π is computed exactly (truncated where the tail is
below 1e-13 of the mass). A caller arriving (PASTA: they see π) to N + j callers waits behind j
others; each step forward comes at rate N·μ + i·θ (a counselor frees up, or one of the i ahead
hangs up) and they hang up themselves at rate θ. The share answered within T s is computed for
all arrivals in one pass by uniformization of that small chain (exact up to the truncation of
the Poisson series, below 1e-12).

Measures, of the callers offered (the report's definitions, ivr.report.figures):
- service level: answered within T s (callers who hang up count as not answered);
- abandonment: hung up before an answer = θ·E[queue] / λ (the rate of hang-ups over arrivals);
- wait probability: found every counselor busy;
- mean wait: E[queue] / λ (Little's law; the wait of all callers, hung up or answered).

The patience is measured from the line's own calls (:func:`mean_patience`): the exponential
patience's estimate with the answered callers' waits as censored observations (they would have
waited at least that long) = total seconds waited by the offered callers / callers who left
unanswered. Fewer than `MIN_ABANDONED` callers who left: the data do not allow it, and the
Erlang A columns stay empty. Callers are more or less patient at different times of the day
(:func:`patience_by_hour`, the table `abandonment_by_wait_hour`): an hour of the day with
`MIN_ABANDONED` or more callers who left uses its own patience for its staffing (on every
weekday), the others the period's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.report import erlang
from ivr.report.figures import WAIT_EDGES, Table, bucket, buckets, offered
from ivr.report.rows import ABANDONED_AFTER_CHOICE, CallRow

#: Fewer callers who left the queue unanswered than this: no patience estimate, no Erlang A.
MIN_ABANDONED = 10
#: Outcomes of a caller who stopped waiting (hung up, or asked to be called back instead).
LEFT = ABANDONED_AFTER_CHOICE | {"callback_requested"}
_TAIL = 1e-13
_MAX_QUEUE = 200_000


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Erlang A's measures for N counselors (shares of the callers offered)."""

    agents: int
    #: Answered within the target seconds.
    service_level: float
    #: Hung up before an answer.
    abandonment: float
    #: Found every counselor busy.
    wait_probability: float
    #: Mean wait (s) of all callers offered.
    mean_wait: float


def _stationary(n: int, a: float, ratio: float) -> tuple[list[float], list[float]]:
    """(π_0..π_{N−1}, π_N, π_{N+1}, ...) normalised; `ratio` = θ/μ (hang-up over handle rate).
    In units of μ: birth A, death k below N, N + j·ratio for the j-th waiting caller."""
    below = [0.0] * n
    p = 1.0  # π_N before normalising
    for k in range(n, 0, -1):  # π_{k−1} = π_k · k / A
        p = p * k / a
        below[k - 1] = p
    queue = [1.0]
    total = sum(below) + 1.0
    term, j = 1.0, 0
    while True:
        j += 1
        term *= a / (n + j * ratio)
        if term > 1e200:  # a heavy overload with patient callers: rescale, never overflow
            below, queue = [x / term for x in below], [x / term for x in queue]
            total, term = total / term, 1.0
        queue.append(term)
        total += term
        if (term < _TAIL * total and a < n + j * ratio) or j > _MAX_QUEUE:
            break
    return [x / total for x in below], [x / total for x in queue]


def erlang_a(n: int, a: float, handle: float, patience: float, target: float) -> ErlangA:
    """Erlang A for N counselors at A Erlangs, handle time `handle` s, mean patience `patience`
    s, service level within `target` s."""
    if n < 1 or a <= 0 or handle <= 0 or patience <= 0 or target < 0:
        raise ValueError(
            f"Erlang A needs N >= 1, A > 0, handle > 0, patience > 0 and target >= 0, not "
            f"N={n}, A={a}, handle={handle}, patience={patience}, target={target}"
        )
    mu, theta = 1 / handle, 1 / patience
    lam = a * mu
    below, queue = _stationary(n, a, theta / mu)
    mean_queue = sum(j * q for j, q in enumerate(queue))
    waits = sum(queue)
    answered = sum(below) + _answered_in_time(n, mu, theta, queue, target)
    return ErlangA(
        agents=n,
        service_level=min(1.0, answered),
        abandonment=theta * mean_queue / lam,
        wait_probability=waits,
        mean_wait=mean_queue / lam,
    )


def _answered_in_time(
    n: int, mu: float, theta: float, queue: Sequence[float], target: float
) -> float:
    """Mass of the arrivals that find N + j callers (`queue[j]`) and are answered within
    `target` s: uniformization of the tagged caller's chain (j ahead -> j − 1 at N·μ + j·θ, from
    0 -> answered at N·μ, and away at θ), all starting masses at once."""
    if target == 0:
        return 0.0
    top = len(queue) - 1
    uniform = n * mu + top * theta + theta
    step = [(n * mu + j * theta) / uniform for j in range(top + 1)]
    stay = [1 - s - theta / uniform for s in step]
    x = list(queue)
    lt = uniform * target
    log_lt = math.log(lt)
    # P(answered by t) = Σ_m Pois(m; Λt) · (mass absorbed within m steps); weights in log
    # space (e^−Λt underflows for long targets).
    absorbed, result, m = 0.0, 0.0, 0
    cum_weight = math.exp(-lt)
    while m < lt or 1 - cum_weight > 1e-12:
        m += 1
        absorbed += x[0] * step[0]
        nxt = [x[j] * stay[j] + x[j + 1] * step[j + 1] for j in range(top)]
        nxt.append(x[top] * stay[top])
        x = nxt
        w = math.exp(-lt + m * log_lt - math.lgamma(m + 1))
        result += w * absorbed
        cum_weight += w
        if m > lt + 40 * math.sqrt(lt) + 100:
            break
    return result


def agents_needed_a(
    rate_per_hour: float, handle: float, patience: float, level: float, target: float
) -> int:
    """The fewest counselors for `level` answered within `target` s under Erlang A (0: no
    calls)."""
    if rate_per_hour <= 0:
        return 0
    a = rate_per_hour * handle / 3600

    def ok(k: int) -> bool:
        return erlang_a(k, a, handle, patience, target).service_level >= level

    n = max(1, round(a))
    while n > 1 and ok(n - 1):
        n -= 1
    while not ok(n):
        n += 1
        if n > erlang.MAX_AGENTS:
            raise ValueError(f"more than {erlang.MAX_AGENTS} counselors needed for {a:.1f} E")
    return n


def mean_patience(calls: Sequence[CallRow]) -> tuple[float | None, int]:
    """(the mean patience in s, callers who left unanswered) from the offered calls: every
    offered caller's seconds waited / the callers who left (see the module docstring); None
    when fewer than `MIN_ABANDONED` left or nobody waited."""
    exposure, left = 0.0, 0
    for c in offered(calls):
        if c.wait_seconds is None:
            continue
        exposure += max(0.0, c.wait_seconds)
        if c.answered_at is None and c.outcome in LEFT:
            left += 1
    if left < MIN_ABANDONED or exposure <= 0:
        return None, left
    return exposure / left, left


def _hourly(calls: Sequence[CallRow]) -> tuple[list[int], list[float], list[Counter[str]]]:
    """Per hour of the day (Seoul time of the choice), in one pass over the offered calls with
    a wait: callers, seconds waited, and the callers who left by time waited."""
    total, exposure = [0] * 24, [0.0] * 24
    gone: list[Counter[str]] = [Counter() for _ in range(24)]
    for c in calls:
        if c.direction != "inbound" or c.queued_at is None or c.wait_seconds is None:
            continue
        h = (int(c.queued_at // 3600) + 9) % 24  # seoul_hour, inlined: a year is 420,000 calls
        total[h] += 1
        exposure[h] += max(0.0, c.wait_seconds)
        if c.answered_at is None and c.outcome in LEFT:
            gone[h][bucket(c.wait_seconds, WAIT_EDGES)] += 1
    return total, exposure, gone


def _patience(exposure: float, left: int) -> float | None:
    return exposure / left if left >= MIN_ABANDONED and exposure > 0 else None


def patience_by_hour(calls: Sequence[CallRow]) -> dict[int, tuple[float | None, int]]:
    """Per hour of the day with offered calls (Seoul time of the choice): :func:`mean_patience`
    of that hour's calls (None where fewer than `MIN_ABANDONED` left in that hour)."""
    total, exposure, gone = _hourly(calls)
    out = {}
    for h in range(24):
        if total[h]:
            left = sum(gone[h].values())
            out[h] = (_patience(exposure[h], left), left)
    return out


def abandonment_by_wait_hour(calls: Sequence[CallRow]) -> Table:
    """Per hour of the day (Seoul time of the choice): callers offered, callers who left
    unanswered (hung up, or asked for a callback) by the time they had waited, the share who
    left, the hour's measured patience (None: fewer than `MIN_ABANDONED` left) and the
    patience Erlang A uses for the hour's staffing (`hour`: its own; `period`: the period's,
    for want of data; None: none at all)."""
    total, exposure, gone = _hourly(calls)
    period_patience = _patience(sum(exposure), sum(sum(g.values()) for g in gone))
    rows = []
    for h in range(24):
        left = sum(gone[h].values())
        own = _patience(exposure[h], left)
        used = "hour" if own is not None else "period" if period_patience is not None else None
        share = left / total[h] if total[h] else None
        by_wait = [gone[h][b] for b in buckets(WAIT_EDGES)]
        rows.append((h, total[h], left, *by_wait, share, own, used))
    cols = (
        *("hour", "offered", "left"),
        *(f"left_waited_{b}s" for b in buckets(WAIT_EDGES)),
        *("share_left", "patience_s", "patience_used"),
    )
    return Table("abandonment_by_wait_hour", cols, rows)


def staffing_a(
    staffing: Table,
    calls: Sequence[CallRow],
    level: float = 0.8,
    target: float = 20.0,
    minimum: int = 1,
) -> Table:
    """Erlang A beside Erlang C, per hour of the week, from the Erlang C table
    (ivr.report.erlang.staffing: λ, h, needed, rostered) and the measured patience: needed
    under Erlang A, the abandonment it predicts with that many, the service level and
    abandonment Erlang A predicts with the roster's counselors (rounded), and the verdict
    against Erlang A's need. The patience: the hour of the day's own where the data allow it,
    else the period's. Without a patience estimate the Erlang A cells are None and the
    verdict is `no_patience`."""
    overall, _left = mean_patience(calls)
    hourly = patience_by_hour(calls)
    rows = []
    for wd, h, rate, handle, _load, need_c, have, verdict_c in staffing.rows:
        own = hourly.get(h, (None, 0))[0]
        patience = own if own is not None and overall is not None else overall
        need_a = ab_need = sl_have = ab_have = None
        verdict = verdict_c
        if verdict_c == "not_in_period":
            pass
        elif patience is None:
            verdict = "no_patience"
        elif rate > 0 and handle > 0:
            a = rate * handle / 3600
            need_a = max(minimum, agents_needed_a(rate, handle, patience, level, target))
            ab_need = erlang_a(need_a, a, handle, patience, target).abandonment
            if have is not None and round(have) >= 1:
                at = erlang_a(round(have), a, handle, patience, target)
                sl_have, ab_have = at.service_level, at.abandonment
        else:
            need_a = minimum
        if need_a is not None and have is not None:
            verdict = "under" if have < need_a else "over" if have >= need_a + 1 else "ok"
        elif need_a is not None:
            verdict = "no_roster"
        cells = (wd, h, rate, handle, patience, need_c, need_a, ab_need, have, sl_have)
        rows.append((*cells, ab_have, verdict))
    cols = (
        *("weekday", "hour", "calls_per_hour", "handle_s", "patience_s", "needed_erlang_c"),
        *("needed_erlang_a", "abandonment_at_needed", "rostered", "service_level_rostered"),
        *("abandonment_rostered", "verdict"),
    )
    return Table("staffing_erlang_a", cols, rows)
