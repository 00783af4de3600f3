"""A seeded synthetic month of calls, written through the product's own store API (`Store.
call_started` / `call_ended` / `record_consent` / `withdraw_consent`, `FollowupRecords`), for
tests and demonstrations of the report. Labelled synthetic: every call id and caller hash
starts with `synthetic-`, and the report says so on its first line when it finds one.

The model (per day, Seoul time): `calls_per_day` inbound calls, arrivals weighted by hour
(fewer at night, most in the evening); a pool of `callers` hashed numbers of which a share call
again; 8 % hang up in the menu, 85 % of the others choose the loneliness line (key 5, with the
consent question: 30 % yes, 60 % no, 10 % no answer; 1 in 10 yes withdrawn with *6 a minute
later) and the rest the general line (key 1); a wait drawn from an exponential with mean
`mean_wait` s against a patience with mean `mean_patience` s (whichever is shorter decides:
answered or abandoned; an abandonment in the first 8 s is during the intro / the consent
question); talk exponential with mean `mean_talk` s; 5 counselors; 1 in 40 answered calls ends
for abuse; 1 in 10 abandoned callers asks for a callback instead, of which 70 % are done two
hours later. Not a forecast: a fixture.

:func:`generate_queued` writes a month whose waits come from a queue instead (for checking the
what-if simulation, ivr.report.simulate, against a recorded month): every call chooses the
loneliness line and waits in ONE first-come-first-served queue for the named counselors, all
on duty all the time: the caller at the head is taken by the first counselor free (end of
their last call and its wrap-up, `RingGroupConfig.wrapup_for`), who picks up `answer_seconds`
after being rung; a caller whose patience (exponential, `mean_patience`) runs out first hangs
up (during the ringing: the counselor is free again at once). Talk and abuse as above.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.flow.commands import Outcome
from ivr.flow.record import CallRecord, Stage
from ivr.followup.model import Status, TaskType
from ivr.followup.records import FollowupRecords
from ivr.report.rows import CallRow
from ivr.staff.members import EndReason, RingGroupConfig
from ivr.store import Store
from ivr.timezone import SEOUL

PREFIX = "synthetic-"
#: Relative arrival weight per hour of the day.
HOUR_WEIGHTS = (3, 2, 2, 1, 1, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 7, 8, 9, 9, 7, 5)
COUNSELORS = tuple(f"counselor0{i}" for i in range(1, 6))
INTRO_SECONDS = 8.0


def is_synthetic(call: CallRow) -> bool:
    return call.call_id.startswith(PREFIX)


@dataclass(frozen=True)
class Params:
    calls_per_day: int = 40
    callers: int = 300
    mean_wait: float = 40.0
    mean_patience: float = 180.0
    mean_talk: float = 900.0
    #: Text chats per day (ivr.chat.records; 0: none, the months written before chats).
    chats_per_day: int = 0

    def __post_init__(self) -> None:
        if self.calls_per_day < 0 or self.callers < 1:
            raise ValueError("calls_per_day >= 0 and callers >= 1 are needed")


async def generate(
    store: Store, first: dt.date, days: int, seed: int, params: Params = Params()
) -> Counter[str]:
    """Write `days` days of synthetic calls from `first`; returns what was written, counted
    by outcome (and `tasks`, `tasks_done`)."""
    rng = random.Random(seed)
    followups = FollowupRecords(store)
    written: Counter[str] = Counter()
    n = 0
    for d in range(days):
        day = dt.datetime.combine(first + dt.timedelta(days=d), dt.time(), SEOUL).timestamp()
        hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=params.calls_per_day)
        for start in sorted(day + h * 3600 + rng.uniform(0, 3600) for h in hours):
            n += 1
            call_id = f"{PREFIX}{seed}-{n}"
            caller = f"{PREFIX}{rng.randrange(params.callers)}"
            rec = one_call(rng, start, params)
            await store.call_started(call_id, caller, start)
            if rec.queue == "loneliness" and rec.ended_in not in (Stage.INTRO, Stage.CONSENT):
                answer = rng.choices(["yes", "no", "none"], weights=(3, 6, 1))[0]
                at = start + 10.0
                await store.record_consent(call_id, answer, "key", at, "consent", "synthetic", "-")
                if answer == "yes" and rng.random() < 0.1:  # *6 a minute later
                    await store.withdraw_consent(call_id, "caller", at + 60.0)
            await store.call_ended(call_id, rec)
            written[rec.outcome.value if rec.outcome else "open"] += 1
            if rec.outcome is Outcome.CALLBACK_REQUESTED and rec.ended_at is not None:
                task, merged = await followups.add_or_merge(
                    TaskType.CALLBACK,
                    caller,
                    None,
                    None,
                    rec.ended_at,
                    rec.ended_at,
                    call_id=call_id,
                )
                if not merged:
                    written["tasks"] += 1
                    if rng.random() < 0.7:
                        closed_at = rec.ended_at + 7200
                        await followups.close(task, Status.DONE, "reached", closed_at, "synthetic")
                        written["tasks_done"] += 1
    if params.chats_per_day:
        await _chats(store, first, days, seed, params, written)
    return written


async def _chats(
    store: Store, first: dt.date, days: int, seed: int, p: Params, written: Counter[str]
) -> None:
    """`chats_per_day` chats a day through the chat channel's records (their own random
    stream: the calls stay the same): queued 30 s after the start, 40 % with consent (1 in 10
    withdrawn), answered after an exponential wait (mean `mean_wait`) unless the citizen's
    patience ran out first (abandoned); talk exponential (mean `mean_talk`); 1 in 20 answered
    chats ends for abuse. Counted as `chats_<outcome>`."""
    from ivr.chat import records

    rng = random.Random(seed * 7919 + 1)
    n = 0
    for d in range(days):
        day = dt.datetime.combine(first + dt.timedelta(days=d), dt.time(), SEOUL).timestamp()
        hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=p.chats_per_day)
        for start in sorted(day + h * 3600 + rng.uniform(0, 3600) for h in hours):
            n += 1
            chat_id, queued = f"{PREFIX}chat-{seed}-{n}", start + 30.0
            consent = rng.random() < 0.4
            ident = f"{PREFIX}{rng.randrange(p.callers)}"
            await records.opened(
                store, chat_id, ident, start, queued, consent, ["chat"], 0, "loneliness"
            )
            wait, patience = rng.expovariate(1 / p.mean_wait), rng.expovariate(1 / p.mean_patience)
            if patience < wait:
                await records.ended(store, chat_id, queued + patience, "abandoned", "citizen")
                written["chats_abandoned"] += 1
                continue
            answered = queued + wait
            await records.answered(store, chat_id, rng.choice(COUNSELORS), answered)
            if consent and rng.random() < 0.1:
                await records.forget(store, chat_id, answered + 60.0)
            outcome = "abuse" if rng.random() < 0.05 else "completed"
            ended = answered + rng.expovariate(1 / p.mean_talk)
            await records.ended(store, chat_id, ended, outcome, "counselor")
            written[f"chats_{outcome}"] += 1


def one_call(rng: random.Random, start: float, p: Params) -> CallRecord:
    rec = CallRecord(started_at=start)
    menu = rng.uniform(4, 20)
    rec.spent(Stage.MENU, menu)
    if rng.random() < 0.08:
        return _end(rec, start + menu, Outcome.ABANDONED_MENU, Stage.MENU)
    key = "5" if rng.random() < 0.85 else "1"
    rec.menu_path = [key]
    rec.queue = "loneliness" if key == "5" else "general"
    first = Stage.CONSENT if key == "5" else Stage.INTRO
    rec.queued_at = queued = start + menu
    wait, patience = rng.expovariate(1 / p.mean_wait), rng.expovariate(1 / p.mean_patience)
    if patience < wait:
        if patience < INTRO_SECONDS:
            rec.spent(first, patience)
            gone = Outcome.ABANDONED_CONSENT if key == "5" else Outcome.ABANDONED_INTRO
            return _end(rec, queued + patience, gone, first)
        rec.spent(first, INTRO_SECONDS)
        rec.spent(Stage.QUEUE, patience - INTRO_SECONDS)
        if rng.random() < 0.1:
            rec.spent(Stage.GOODBYE, 4.0)
            return _end(rec, queued + patience + 4.0, Outcome.CALLBACK_REQUESTED, Stage.QUEUE)
        return _end(rec, queued + patience, Outcome.ABANDONED_QUEUE, Stage.QUEUE)
    rec.spent(first, min(wait, INTRO_SECONDS))
    if wait > INTRO_SECONDS:
        rec.spent(Stage.QUEUE, wait - INTRO_SECONDS)
    rec.answered_at = queued + wait
    rec.member = rng.choice(COUNSELORS)
    talk = max(30.0, rng.expovariate(1 / p.mean_talk))
    rec.spent(Stage.STAFF, talk)
    abuse = rng.random() < 1 / 40
    return _end(
        rec,
        rec.answered_at + talk,
        Outcome.ABUSE_ENDED if abuse else Outcome.COMPLETED,
        Stage.STAFF,
    )


def _end(rec: CallRecord, at: float, outcome: Outcome, stage: Stage) -> CallRecord:
    rec.ended_at, rec.outcome, rec.ended_in = at, outcome, stage
    return rec


async def generate_queued(
    store: Store,
    first: dt.date,
    days: int,
    seed: int,
    counselors: Sequence[str],
    config: RingGroupConfig,
    params: Params = Params(),
    answer_seconds: float = 5.0,
) -> Counter[str]:
    """Write `days` days of calls queued for `counselors` (see the module docstring); returns
    them counted by outcome."""
    rng = random.Random(seed)
    free = [(0.0, i, name) for i, name in enumerate(counselors)]
    heapq.heapify(free)
    written: Counter[str] = Counter()
    n = 0
    starts: list[float] = []
    for d in range(days):
        day = dt.datetime.combine(first + dt.timedelta(days=d), dt.time(), SEOUL).timestamp()
        hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=params.calls_per_day)
        starts += sorted(day + h * 3600 + rng.uniform(0, 3600) for h in hours)
    for start in starts:
        n += 1
        call_id, caller = f"{PREFIX}q{seed}-{n}", f"{PREFIX}{rng.randrange(params.callers)}"
        rec = CallRecord(started_at=start)
        menu = rng.uniform(4, 20)
        rec.spent(Stage.MENU, menu)
        rec.menu_path, rec.queue = ["5"], "loneliness"
        rec.queued_at = queued = start + menu
        patience = rng.expovariate(1 / params.mean_patience)
        talk = max(30.0, rng.expovariate(1 / params.mean_talk))
        abuse = rng.random() < 1 / 40
        at, i, name = free[0]
        rung = max(queued, at)
        if rung + answer_seconds - queued > patience:
            if rung - queued < patience:  # hung up while the counselor's phone rang
                heapq.heapreplace(free, (queued + patience, i, name))
            stage = Stage.CONSENT if patience < INTRO_SECONDS else Stage.QUEUE
            rec.spent(Stage.CONSENT, min(patience, INTRO_SECONDS))
            if patience > INTRO_SECONDS:
                rec.spent(Stage.QUEUE, patience - INTRO_SECONDS)
            gone = Outcome.ABANDONED_CONSENT if stage is Stage.CONSENT else Outcome.ABANDONED_QUEUE
            _end(rec, queued + patience, gone, stage)
        else:
            rec.answered_at = rung + answer_seconds
            rec.member = name
            wait = rec.answered_at - queued
            rec.spent(Stage.CONSENT, min(wait, INTRO_SECONDS))
            if wait > INTRO_SECONDS:
                rec.spent(Stage.QUEUE, wait - INTRO_SECONDS)
            rec.spent(Stage.STAFF, talk)
            reason = EndReason.ABUSE if abuse else EndReason.NORMAL
            wrapup = config.wrapup_for(talk, reason)
            heapq.heapreplace(free, (rec.answered_at + talk + wrapup, i, name))
            outcome = Outcome.ABUSE_ENDED if abuse else Outcome.COMPLETED
            _end(rec, rec.answered_at + talk, outcome, Stage.STAFF)
        await store.call_started(call_id, caller, start)
        await store.call_ended(call_id, rec)
        written[rec.outcome.value if rec.outcome else "open"] += 1
    return written
