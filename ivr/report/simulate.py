"""What-if: replay a period's arrivals through the product's OWN ring group
(ivr.staff.ringgroup.RingGroup) and roster (ivr.staff.roster.on_shift) with a candidate roster,
and count the service level, waits and abandonment it would have given. Pure: a discrete-event
loop on a simulated clock (the ring group takes `now`); no I/O, no wall clock. Everything it
produces is SIMULATED (시뮬레이션) and says so where it is shown (ivr.report.simulate_cli).

The callers (:func:`arrivals`): every offered call of the period (the line's, inbound, queued)
arrives when it was queued, with
- handle: its measured talk seconds when it was answered; for a caller who was not answered,
  one drawn (seeded) from the period's measured talk times;
- patience: for a caller who left unanswered (hung up, asked for a callback, or ended there
  for another reason), their measured wait: they leave after exactly as long as they waited;
  for an answered caller (who would have waited at least their wait), the wait plus a draw from
  the exponential patience measured from the period (ivr.report.erlang_a.mean_patience: the
  memoryless model's remaining patience); no estimate: they never hang up;
- a call the counselor ended for abuse is released with the abuse wrap-up, as in the product.
`scale` above 1 adds copies (each call once more per whole unit, and with probability of the
fraction), each at a random second of the same clock hour of the same day; below 1 each call
is kept with probability `scale`. Seeded.

The loop (:func:`simulate`): events in time order — a caller arrives (RingGroup.enqueue, a
hang-up timer); a rung counselor picks up `Rings.answer_seconds` later (RingGroup.answered) or,
for a share `Rings.no_answer` of the rings, does not and the leg ends after the ring timeout
(RingGroup.leg_ended: the cooldown; a counselor paused for it unpauses `unpause_after` later);
a caller hangs up (RingGroup.dequeue); a call ends after its handle time (RingGroup.released:
wrap-up); a wrap-up or cooldown ends; the roster's shift changes (rotation boundaries and
overrides, roster.on_shift) — and after each the ring group plans (RingGroup.plan with every
member reachable and the roster's on-shift set). Not modelled: counselors who pause by
themselves, log out or make follow-up calls; the menu and the consent question before the
queue (the arrival is the moment the call was queued, as measured). Each run starts with
nobody waiting or talking.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.report.erlang_a import mean_patience
from ivr.report.figures import PERCENTILES, SERVICE_LEVEL_SECONDS, offered, percentile
from ivr.report.rows import CallRow, seoul
from ivr.staff import roster as rosters
from ivr.staff.ringgroup import EndReason, LegOutcome, RingGroup, RingGroupConfig
from ivr.timezone import SEOUL

#: Seconds a rung counselor takes to pick up in the simulation (the measured waits include
#: the ringing; the product does not store ring durations per call in `calls`).
ANSWER_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Arrival:
    """One caller to replay."""

    call_id: str
    #: When the call was queued (s, epoch).
    at: float
    #: Talk seconds once answered.
    handle: float
    #: Seconds the caller waits before hanging up (math.inf: never).
    patience: float
    #: The counselor ended it for abuse (the longer wrap-up).
    abuse: bool = False


@dataclass(frozen=True, slots=True)
class SimCall:
    """What the simulation gave one caller."""

    call_id: str
    at: float
    #: Seconds waited until answered, or until hanging up.
    wait: float
    answered: bool
    member: str | None = None


def arrivals(
    calls: Sequence[CallRow], rng: random.Random, scale: float = 1.0, line: str | None = None
) -> list[Arrival]:
    """The callers to replay from the measured calls (see the module docstring), by time."""
    if scale < 0:
        raise ValueError(f"scale must be >= 0, got {scale}")
    offers = [c for c in offered(calls) if line is None or c.queue == line]
    talks = [c.talk_seconds for c in offers if c.answered_at is not None and c.talk_seconds]
    patience, _left = mean_patience(offers)
    base: list[Arrival] = []
    for c in offers:
        assert c.queued_at is not None
        wait = max(0.0, c.wait_seconds or 0.0)
        if c.answered_at is not None:
            handle = c.talk_seconds or 0.0
            extra = rng.expovariate(1 / patience) if patience else math.inf
            base.append(
                Arrival(c.call_id, c.queued_at, handle, wait + extra, c.outcome == "abuse_ended")
            )
        else:
            handle = rng.choice(talks) if talks else 0.0
            base.append(Arrival(c.call_id, c.queued_at, handle, wait))
    out: list[Arrival] = []
    whole, frac = int(scale), scale - int(scale)
    for a in base:
        copies = whole + (1 if rng.random() < frac else 0)
        for k in range(copies):
            if k == 0:
                out.append(a)
                continue
            # Seoul's clock hours are the epoch's (UTC+9, whole hours, no summer time).
            at = math.floor(a.at / 3600) * 3600 + rng.uniform(0, 3600)
            out.append(Arrival(f"{a.call_id}~{k}", at, a.handle, a.patience, a.abuse))
    out.sort(key=lambda a: (a.at, a.call_id))
    return out


# Event kinds, in the order they are handled at the same instant.
_SHIFT, _END, _WAKE, _UNPAUSE, _ANSWER, _NO_ANSWER, _ABANDON, _ARRIVE = range(8)


@dataclass(frozen=True, slots=True)
class Rings:
    """How the counselors' phones behave in the simulation (measured where the database has
    ring attempts: ivr.report.simulate_cli)."""

    #: Seconds from being rung to picking up.
    answer_seconds: float = ANSWER_SECONDS
    #: Share of rings not answered: they ring `ring_timeout` s, then RingGroup.leg_ended
    #: (no answer: the cooldown, and the pause after too many in a row).
    no_answer: float = 0.0
    ring_timeout: float = 20.0
    #: A counselor paused for not answering unpauses this long after.
    unpause_after: float = 300.0
    seed: int = 1

    def __post_init__(self) -> None:
        if min(self.answer_seconds, self.ring_timeout, self.unpause_after) < 0:
            raise ValueError("answer_seconds, ring_timeout and unpause_after must be >= 0")
        if not 0 <= self.no_answer <= 1:
            raise ValueError(f"no_answer is a share (0 to 1), got {self.no_answer}")


def shift_changes(roster: rosters.Roster, start: float, end: float) -> list[float]:
    """The instants in [start, end) where who is on shift may change (rotation and overrides)."""
    first = rosters.current_shift(roster, dt.datetime.fromtimestamp(start, SEOUL)).end
    step = roster.rotation.shift_hours * 3600
    times = {start}
    t = first.timestamp()
    while t < end:
        times.add(t)
        t += step
    for ov in roster.overrides:
        times.update(x for x in (ov.start.timestamp(), ov.end.timestamp()) if start < x < end)
    return sorted(times)


def simulate(
    callers: Iterable[Arrival],
    roster: rosters.Roster,
    config: RingGroupConfig,
    start: float,
    end: float,
    rings: Rings = Rings(),
) -> list[SimCall]:
    """Replay `callers` (arriving in [start, end)) through a fresh RingGroup of the roster's
    counselors (their SIP endpoints, as the product rings them) with the roster's shifts.
    Runs until the last caller is answered or gone."""
    rng = random.Random(rings.seed)
    members = tuple(c.endpoint for c in roster.counselors.values())
    group = RingGroup("simulation", members, config)
    events: list[tuple[float, int, int, Any]] = []
    seq = 0

    def push(at: float, kind: int, data: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, kind, seq, data))

    for t in shift_changes(roster, start, end):
        push(t, _SHIFT, None)
    by_id: dict[str, Arrival] = {}
    for a in callers:
        if start <= a.at < end:
            by_id[a.call_id] = a
            push(a.at, _ARRIVE, a)
    on_shift: frozenset[str] = frozenset()
    live: dict[str, str] = {}  # ringing leg -> call id
    talking: dict[str, tuple[str, bool]] = {}  # member -> (call id, abuse)
    done: dict[str, SimCall] = {}
    while events:
        now, kind, _seq, data = heapq.heappop(events)
        if kind == _SHIFT:
            on_shift = rosters.on_shift(roster, dt.datetime.fromtimestamp(now, SEOUL))
        elif kind == _ARRIVE:
            group.enqueue(data.call_id, now)
            if math.isfinite(data.patience):
                push(now + data.patience, _ABANDON, data.call_id)
        elif kind == _ABANDON:
            if data in done or group.position(data) is None:
                continue
            for leg in group.dequeue(data):
                live.pop(leg, None)
            a = by_id[data]
            done[data] = SimCall(data, a.at, now - a.at, False)
        elif kind == _ANSWER:
            if live.pop(data, None) is None:
                continue
            got = group.answered(data, now)
            if got is None:
                continue
            call_id, member, others = got
            for leg in others:
                live.pop(leg, None)
            a = by_id[call_id]
            done[call_id] = SimCall(call_id, a.at, now - a.at, True, member)
            talking[member] = (call_id, a.abuse)
            push(now + a.handle, _END, member)
        elif kind == _NO_ANSWER:
            if live.pop(data, None) is None:
                continue  # the caller hung up meanwhile
            change = group.leg_ended(data, LegOutcome.NO_ANSWER, now)
            if change is not None and change.new:
                push(now + rings.unpause_after, _UNPAUSE, change.member)
            wake = group.next_wakeup(now)
            if wake is not None:
                push(wake, _WAKE, None)
        elif kind == _UNPAUSE:
            group.unpause(data, now, "simulated")
        elif kind == _END:
            _call, abuse = talking.pop(data)
            reason = EndReason.ABUSE if abuse else EndReason.NORMAL
            until = group.released(data, now, reason)
            if until is not None and until > now:
                push(until, _WAKE, None)
                continue
        for ring in group.plan(members, "sim-", now, on_shift):
            live[ring.leg_id] = ring.call_id
            if rings.no_answer and rng.random() < rings.no_answer:
                push(now + rings.ring_timeout, _NO_ANSWER, ring.leg_id)
            else:
                push(now + rings.answer_seconds, _ANSWER, ring.leg_id)
    return sorted(done.values(), key=lambda c: (c.at, c.call_id))


def summary(calls: Sequence[SimCall]) -> dict[str, float | int | None]:
    """Offered, answered, abandoned (share), service level within 20 s and 60 s (answered
    within T s / offered, the report's definition) and the answered callers' wait
    percentiles."""
    n = len(calls)
    waits = [c.wait for c in calls if c.answered]
    out: dict[str, float | int | None] = {
        "offered": n,
        "answered": len(waits),
        "abandoned": n - len(waits),
        "abandonment": (n - len(waits)) / n if n else None,
    }
    for t in SERVICE_LEVEL_SECONDS:
        out[f"service_level_{t}s"] = sum(1 for w in waits if w <= t) / n if n else None
    for p in PERCENTILES:
        out[f"p{p}_wait_s"] = percentile(waits, p)
    return out


def measured(calls: Sequence[CallRow], line: str | None = None) -> dict[str, float | int | None]:
    """The same summary of the recorded calls (for the comparison the operator sees)."""
    rows = [
        SimCall(c.call_id, c.queued_at or c.started_at, max(0.0, c.wait_seconds or 0.0),
                c.answered_at is not None)
        for c in offered(calls)
        if line is None or c.queue == line
    ]  # fmt: skip
    return summary(rows)


def night(at: float, first_hour: int = 21, last_hour: int = 9) -> bool:
    """Seoul time from `first_hour` to `last_hour` (default 21:00–09:00)."""
    h = seoul(at).hour
    return h >= first_hour or h < last_hour
