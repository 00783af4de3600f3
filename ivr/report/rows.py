"""The plain rows the report is computed from (read by ivr.report.reader, made by tests), and
the report's period in Seoul time. No I/O."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ivr.timezone import SEOUL

#: Outcomes of a caller who hung up (the honest labels: where they hung up).
ABANDONED = frozenset({"abandoned_menu", "abandoned_intro", "abandoned_consent", "abandoned_queue"})
#: The stages of an inbound call and of a follow-up call, in their order (ivr.flow.record.Stage).
INBOUND_STAGES = ("menu", "intro", "consent", "queue", "staff", "goodbye")
FOLLOWUP_STAGES = ("whisper", "dialling", "staff", "outcome", "goodbye")
#: Every stage column the reader reads (`<stage>_seconds`).
STAGES = (*INBOUND_STAGES, "whisper", "dialling", "outcome")
STAGE_INDEX = {stage: i for i, stage in enumerate(STAGES)}
#: Of those, the ones after a line was chosen (the phones were ringing for the caller).
ABANDONED_AFTER_CHOICE = frozenset({"abandoned_intro", "abandoned_consent", "abandoned_queue"})


@dataclass(frozen=True, slots=True)
class CallRow:
    """One row of `calls` (and the consent answer, when the call had one)."""

    call_id: str
    caller_hash: str
    started_at: float
    direction: str  # inbound | outbound (a follow-up call)
    menu_path: str
    queue: str | None
    queued_at: float | None
    answered_at: float | None
    member: str | None
    wait_seconds: float | None
    talk_seconds: float | None
    ended_at: float | None
    outcome: str | None
    ended_in: str | None = None
    consent: str | None = None  # yes | no | none (consents.answer), None when not asked
    #: The caller called before this call (any time, also before the period); never for a call
    #: without a number (caller_hash ANONYMOUS: who called is unknown).
    repeat: bool = False
    #: The consent was withdrawn (`*6` during the call, or on the caller's request later).
    consent_withdrawn: bool = False
    #: The counselor's wrap-up after the call (s); None when nobody answered or not recorded
    #: (calls stored before the wrap-up was recorded count no wrap-up).
    wrapup_seconds: float | None = None
    #: Why the call ended when it was not the usual way (calls.end_reason: abuse,
    #: crisis_transfer, silent, ...).
    end_reason: str | None = None
    #: Seconds in each stage, in the order of `STAGES` (the `*_seconds` columns; None: not
    #: entered): an inbound call's menu ... goodbye, a follow-up call's whisper ... goodbye.
    stages: tuple[float | None, ...] = ()

    def stage_seconds(self, stage: str) -> float:
        """Seconds in `stage` (0 when not entered)."""
        i = STAGE_INDEX[stage]
        return (self.stages[i] or 0.0) if i < len(self.stages) else 0.0

    @property
    def handle_seconds(self) -> float | None:
        """Talk + wrap-up of an answered call (None without a talk time)."""
        if self.talk_seconds is None:
            return None
        return self.talk_seconds + (self.wrapup_seconds or 0.0)


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One row of `followup_tasks`."""

    id: int
    type: str
    created_at: float
    status: str
    outcome: str | None
    closed_at: float | None


@dataclass(frozen=True, slots=True)
class Period:
    """Whole Seoul days, `first` to `last` inclusive."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"the period ends ({self.last}) before it starts ({self.first})")

    @property
    def start(self) -> float:
        return dt.datetime.combine(self.first, dt.time(), SEOUL).timestamp()

    @property
    def end(self) -> float:
        """The first second after the period."""
        nxt = self.last + dt.timedelta(days=1)
        return dt.datetime.combine(nxt, dt.time(), SEOUL).timestamp()

    def days(self) -> list[dt.date]:
        n = (self.last - self.first).days + 1
        return [self.first + dt.timedelta(days=i) for i in range(n)]

    def hours_of_week(self) -> dict[tuple[int, int], int]:
        """How many times each (weekday, hour) occurs in the period (Monday = 0)."""
        counts: dict[tuple[int, int], int] = {}
        for day in self.days():
            for hour in range(24):
                key = (day.weekday(), hour)
                counts[key] = counts.get(key, 0) + 1
        return counts


def seoul(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, SEOUL)


def seoul_hour(ts: float) -> int:
    """The hour of the day in Seoul, fast (no tz lookup): Korea has kept UTC+9 without summer
    time since 1988 (the same as `seoul(ts).hour` for any record of this product)."""
    return (int(ts // 3600) + 9) % 24


def seoul_day(ts: float) -> int:
    """The Seoul day `ts` falls on, as a day number (days since 1970-01-01 in Seoul), fast: as
    :func:`seoul_hour`, UTC+9 without summer time."""
    return int((ts + 9 * 3600) // 86400)


def hour_of_week(ts: float) -> tuple[int, int]:
    t = seoul(ts)
    return t.weekday(), t.hour
