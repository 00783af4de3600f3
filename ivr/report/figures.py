"""The report's figures as tables, computed from plain rows (ivr.report.rows). Pure.

Definitions (the same in every figure):
- *inbound* calls only, unless a figure says otherwise; a call belongs to the day (Seoul time)
  it started on.
- *offered*: an inbound call that chose a line (queued_at set: the phones rang for it).
- *answered*: an offered call a counselor answered (answered_at set); its *wait* is from the
  choice to the answer, an abandoned call's wait is from the choice to the hang-up.
- *abandoned*: an offered call whose caller hung up before a counselor answered, wherever
  that was (intro, consent question, queue; each counted on its own as well).
- *service level within T s*: answered within T s / offered.
- *handle time*: talk + wrap-up seconds of an answered call (the wrap-up the counselor got
  after it, `calls.wrapup_seconds`; none for calls stored before it was recorded).
- *caller*: the hashed number; calls without a number (hash ANONYMOUS) are no one caller and
  are counted apart wherever a figure counts callers.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.privacy import ANONYMOUS
from ivr.report.rows import (
    ABANDONED_AFTER_CHOICE,
    FOLLOWUP_STAGES,
    INBOUND_STAGES,
    STAGE_INDEX,
    CallRow,
    Period,
    TaskRow,
    hour_of_week,
    seoul_day,
)
from ivr.timezone import SEOUL

#: Wait buckets (seconds) for abandonment by time waited; the last is open-ended.
WAIT_EDGES = (0, 20, 60, 120, 300)
#: Handle-time buckets (minutes).
HANDLE_EDGES_MIN = (0, 5, 10, 20, 30, 60)
PERCENTILES = (50, 80, 90, 95)
SERVICE_LEVEL_SECONDS = (20, 60)


@dataclass(frozen=True)
class Table:
    """One figure's numbers: `key` names its CSV file and its title (ivr.report.text)."""

    key: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def inbound(calls: Sequence[CallRow]) -> list[CallRow]:
    return [c for c in calls if c.direction == "inbound"]


def offered(calls: Sequence[CallRow]) -> list[CallRow]:
    return [c for c in inbound(calls) if c.queued_at is not None]


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile, linear between closest ranks (numpy's default); None if empty."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def bucket(value: float, edges: Sequence[float]) -> str:
    for lo, hi in zip(edges, edges[1:], strict=False):
        if lo <= value < hi:
            return f"{lo}-{hi}"
    return f"{edges[-1]}+"


def buckets(edges: Sequence[float]) -> list[str]:
    return [f"{lo}-{hi}" for lo, hi in zip(edges, edges[1:], strict=False)] + [f"{edges[-1]}+"]


def contacts_per_day(contacts: Iterable[tuple[float, str, str]], period: Period) -> Table:
    """Per day: contacts (started_at, channel, line: ivr.report.channels.Contact) by channel and
    line (ivr.report.channels: phone calls in, follow-up calls out, and whatever channel is
    added there)."""
    counts: Counter[tuple[int, str, str]] = Counter(
        (seoul_day(ts), channel, line) for ts, channel, line in contacts
    )
    keys = sorted({(ch, line) for _, ch, line in counts})
    rows = []
    for day in period.days():
        n = seoul_day(dt.datetime.combine(day, dt.time(12), SEOUL).timestamp())
        rows += [(day.isoformat(), ch, line, counts[(n, ch, line)]) for ch, line in keys]
    return Table("contacts_per_day", ("date", "channel", "line", "contacts"), rows)


def arrivals_heatmap(calls: Sequence[CallRow]) -> Table:
    """Inbound arrivals by weekday (Monday = 0) and hour, Seoul time: 7 × 24 rows."""
    counts = Counter(hour_of_week(c.started_at) for c in inbound(calls))
    rows = [(wd, h, counts[(wd, h)]) for wd in range(7) for h in range(24)]
    return Table("arrivals_heatmap", ("weekday", "hour", "calls"), rows)


def answer_rates(calls: Sequence[CallRow]) -> Table:
    """Inbound calls, offered, answered, abandoned (and where), with rates of the offered."""
    all_in, off = inbound(calls), offered(calls)
    n = len(off)
    answered = sum(1 for c in off if c.answered_at is not None)
    where = Counter(c.outcome for c in off if c.answered_at is None)
    abandoned = sum(where[o] for o in ABANDONED_AFTER_CHOICE)
    rows: list[tuple[Any, ...]] = [
        ("inbound", len(all_in), None),
        ("abandoned_menu", sum(1 for c in all_in if c.outcome == "abandoned_menu"), None),
        ("offered", n, 1.0 if n else None),
        ("answered", answered, answered / n if n else None),
        ("abandoned", abandoned, abandoned / n if n else None),
    ]
    for o in ("abandoned_intro", "abandoned_consent", "abandoned_queue", "callback_requested"):
        rows.append((o, where[o], where[o] / n if n else None))
    return Table("answer_rates", ("measure", "calls", "share_of_offered"), rows)


def abandonment_by_wait(calls: Sequence[CallRow]) -> Table:
    """Offered calls by time waited (s): how many, how many abandoned, the share abandoned."""
    total: Counter[str] = Counter()
    gone: Counter[str] = Counter()
    for c in offered(calls):
        if c.wait_seconds is None:
            continue
        b = bucket(c.wait_seconds, WAIT_EDGES)
        total[b] += 1
        if c.answered_at is None and c.outcome in ABANDONED_AFTER_CHOICE:
            gone[b] += 1
    rows = [
        (b, total[b], gone[b], gone[b] / total[b] if total[b] else None)
        for b in buckets(WAIT_EDGES)
    ]
    return Table("abandonment_by_wait", ("waited_s", "offered", "abandoned", "share"), rows)


def waits(calls: Sequence[CallRow]) -> Table:
    """Wait percentiles of the answered calls and the service levels."""
    off = offered(calls)
    answered = [
        c.wait_seconds for c in off if c.answered_at is not None and c.wait_seconds is not None
    ]
    rows: list[tuple[Any, ...]] = [(f"p{p}_wait_s", percentile(answered, p)) for p in PERCENTILES]
    for t in SERVICE_LEVEL_SECONDS:
        within = sum(1 for w in answered if w <= t)
        rows.append((f"service_level_{t}s", within / len(off) if off else None))
    return Table("waits", ("measure", "value"), rows)


def _handles(calls: Sequence[CallRow]) -> list[float]:
    """Handle times (talk + wrap-up, s) of the answered inbound calls."""
    out = []
    for c in offered(calls):
        handle = c.handle_seconds
        if c.answered_at is not None and handle is not None:
            out.append(handle)
    return out


def handle_times(calls: Sequence[CallRow]) -> Table:
    """Answered inbound calls by handle time (talk + wrap-up, minutes)."""
    counts = Counter(bucket(t / 60, HANDLE_EDGES_MIN) for t in _handles(calls))
    rows = [(b, counts[b]) for b in buckets(HANDLE_EDGES_MIN)]
    return Table("handle_times", ("handle_min", "calls"), rows)


def mean_handle_seconds(calls: Sequence[CallRow]) -> float | None:
    handles = _handles(calls)
    return sum(handles) / len(handles) if handles else None


def repeat_callers(calls: Sequence[CallRow]) -> Table:
    """Inbound calls from first-time callers and from callers who called before (hashed number).
    A caller's first call in the period is a repeat if they called before the period.

    Calls without a number (withheld; hash ANONYMOUS) cannot be told apart: they are their own
    `unknown` row (no caller count) and left out of the shares, which are of the calls with a
    number."""
    first_seen: set[str] = set()
    kinds: Counter[str] = Counter()
    callers: dict[str, set[str]] = defaultdict(set)
    for c in sorted(inbound(calls), key=lambda c: c.started_at):
        if c.caller_hash == ANONYMOUS:
            kinds["unknown"] += 1
            continue
        kind = "repeat" if c.repeat or c.caller_hash in first_seen else "first_time"
        first_seen.add(c.caller_hash)
        kinds[kind] += 1
        callers[kind].add(c.caller_hash)
    known = kinds["first_time"] + kinds["repeat"]
    rows: list[tuple[Any, ...]] = [
        (k, kinds[k], len(callers[k]), kinds[k] / known if known else None)
        for k in ("first_time", "repeat")
    ]
    rows.append(("unknown", kinds["unknown"], None, None))
    return Table("repeat_callers", ("kind", "calls", "callers", "share_of_calls_with_number"), rows)


def funnel(calls: Sequence[CallRow], key: str = "5") -> Table:
    """The loneliness line's funnel, in calls: inbound; pressed `key` (and the line was offered);
    answered the consent question yes or no; asked but no answer (none: silence, or a counselor
    answered first); consented and not withdrawn; consented and later withdrawn (`*6` during
    the call, or on request afterwards: as recorded when the report is made); reached a
    counselor."""
    all_in = inbound(calls)
    pressed = [c for c in all_in if c.menu_path.startswith(key) and c.queued_at is not None]
    yes = [c for c in pressed if c.consent == "yes"]
    rows = [
        ("inbound", len(all_in)),
        (f"pressed_{key}", len(pressed)),
        ("consent_answered_yes_no", sum(1 for c in pressed if c.consent in ("yes", "no"))),
        ("consent_not_answered", sum(1 for c in pressed if c.consent == "none")),
        ("consented_not_withdrawn", sum(1 for c in yes if not c.consent_withdrawn)),
        ("consent_withdrawn", sum(1 for c in yes if c.consent_withdrawn)),
        ("reached_counselor", sum(1 for c in pressed if c.answered_at is not None)),
    ]
    return Table("funnel", ("step", "calls"), rows)


def followups(tasks: Sequence[TaskRow]) -> Table:
    """Follow-up tasks created in the period by type: requested, done, unreachable, still
    open, other closes, and the median hours from the request to a done close."""
    by_type: dict[str, list[TaskRow]] = defaultdict(list)
    for t in tasks:
        by_type[t.type].append(t)
    rows = []
    for typ in sorted(by_type):
        ts = by_type[typ]
        done = [t for t in ts if t.status == "done"]
        hours = [(t.closed_at - t.created_at) / 3600 for t in done if t.closed_at is not None]
        st = Counter(t.status for t in ts)
        other = len(ts) - st["done"] - st["unreachable"] - st["open"]
        rows.append(
            (typ, len(ts), st["done"], st["unreachable"], st["open"], other, percentile(hours, 50))
        )
    cols = ("type", "requested", "done", "unreachable", "open", "other", "median_hours_to_done")
    return Table("followups", cols, rows)


def _ending_rows(calls: Sequence[CallRow], stages: Sequence[str]) -> list[tuple[Any, ...]]:
    """(outcome, ended_in, calls, mean seconds in each of `stages`) per ending, sorted; a stage
    a call never entered counts 0 s for it."""
    pick = operator.itemgetter(*(STAGE_INDEX[st] for st in stages))
    groups: dict[tuple[str, str], list[tuple[float | None, ...]]] = defaultdict(list)
    none = (None,) * len(stages)
    for c in calls:
        groups[(c.outcome or "open", c.ended_in or "-")].append(
            pick(c.stages) if c.stages else none
        )
    rows = []
    for key in sorted(groups):
        picked = groups[key]
        n = len(picked)
        rows.append((*key, n, *(sum(filter(None, col)) / n for col in zip(*picked, strict=True))))
    return rows


def endings(calls: Sequence[CallRow]) -> Table:
    """Inbound calls by outcome and the stage they ended in, with the mean seconds per stage."""
    cols = ("outcome", "ended_in", "calls", *(f"{st}_s" for st in INBOUND_STAGES))
    return Table("endings", cols, _ending_rows(inbound(calls), INBOUND_STAGES))


def followup_endings(calls: Sequence[CallRow]) -> Table:
    """Follow-up calls (outbound: callbacks, welfare checks, monitoring, companion calls) by
    outcome and the stage they ended in (whisper: the staff member heard the task; dialling:
    the citizen was not reached; staff: with the citizen; outcome: the staff member was keying
    the outcome), with the mean seconds per stage."""
    out = [c for c in calls if c.direction == "outbound"]
    cols = ("outcome", "ended_in", "calls", *(f"{st}_s" for st in FOLLOWUP_STAGES))
    return Table("followup_endings", cols, _ending_rows(out, FOLLOWUP_STAGES))


def silence_and_abuse(
    calls: Sequence[CallRow], silence_actions: Sequence[str], flag_levels: Sequence[int]
) -> Table:
    """Silence events by what was done (gentle prompt, told the counselor, welfare callback),
    calls ended for abuse, and abuse flags set (by level: 1 = 24 h, 2 = 7 days, 3+ = 30 days)."""
    acts = Counter(silence_actions)
    levels = Counter(min(level, 3) for level in flag_levels)
    rows: list[tuple[Any, ...]] = [
        (f"silence_{a}", acts[a]) for a in ("gentle_prompt", "told_counselor", "welfare_callback")
    ]
    rows.append(("abuse_ended_calls", sum(1 for c in inbound(calls) if c.outcome == "abuse_ended")))
    rows.append(("flags_set", len(flag_levels)))
    rows += [(f"flags_level_{n}", levels[n]) for n in (1, 2, 3)]
    return Table("silence_and_abuse", ("measure", "count"), rows)
