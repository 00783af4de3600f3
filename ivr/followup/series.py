"""A companion's series, pure: when its calls are due. No I/O and no clock.

A citizen who wants to keep talking is enrolled with one companion of 외로움돌봄동행단: every N
days at a weekday and time, Seoul time (``--every 7d --at "화 15:00"``). The first call is the
first such weekday and time at or after the enrolment; each later one is N days after the one
before, at the same wall-clock time (so with N a multiple of 7 they stay on that weekday; with
another N the weekday only places the first call). Seoul keeps standard time all year, but the
dates are still counted in Seoul calendar days, not in 86,400-second steps.

Weekdays are written in Korean (월 화 수 목 금 토 일, also 월요일 …) or English (Mon … Sun,
Monday …); the interval as ``7d``, ``14d`` or plain days (``7``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ivr.timezone import SEOUL

__all__ = [
    "Schedule",
    "ScheduleError",
    "WEEKDAYS_EN",
    "WEEKDAYS_KO",
    "first_occurrence",
    "next_occurrence",
    "parse_at",
    "parse_every",
    "parse_schedule",
]

WEEKDAYS_KO = "월화수목금토일"
WEEKDAYS_EN = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: The longest interval a series may have (a companion calls at least every ~3 months).
MAX_EVERY_DAYS = 91

_AT = re.compile(r"^\s*(\S+)\s+([01]?[0-9]|2[0-3]):([0-5][0-9])\s*$")
_EVERY = re.compile(r"^\s*(\d+)\s*(d|days?|일)?\s*$", re.IGNORECASE)


class ScheduleError(ValueError):
    """A weekday, time or interval that cannot be read (the message is Korean and English)."""


@dataclass(frozen=True, slots=True)
class Schedule:
    every_days: int
    weekday: int  # 0 = Monday
    at_minute: int  # minutes after Seoul midnight

    def __post_init__(self) -> None:
        if not 1 <= self.every_days <= MAX_EVERY_DAYS:
            raise ScheduleError(
                f"간격은 1–{MAX_EVERY_DAYS}일이어야 합니다 — every must be 1 to "
                f"{MAX_EVERY_DAYS} days, got {self.every_days}"
            )
        if not 0 <= self.weekday <= 6:
            raise ScheduleError(f"요일 오류 — weekday must be 0 (Mon) to 6 (Sun): {self.weekday}")
        if not 0 <= self.at_minute < 24 * 60:
            raise ScheduleError(f"시각 오류 — at_minute must be within a day: {self.at_minute}")

    def describe(self) -> str:
        """E.g. "7일마다 화 15:00 every 7 days, Tue 15:00"."""
        hhmm = f"{self.at_minute // 60:02d}:{self.at_minute % 60:02d}"
        ko, en = WEEKDAYS_KO[self.weekday], WEEKDAYS_EN[self.weekday].capitalize()
        return f"{self.every_days}일마다 {ko} {hhmm} every {self.every_days} days, {en} {hhmm}"


def parse_weekday(text: str) -> int:
    word = text.strip().lower()
    if word.endswith("요일"):
        word = word[:-2]
    if len(word) == 1 and word in WEEKDAYS_KO:
        return WEEKDAYS_KO.index(word)
    for names in (WEEKDAYS_EN, _FULL_EN):
        if word in names:
            return names.index(word)
    raise ScheduleError(
        f"요일을 알 수 없습니다 {text!r} — unknown weekday; use 월 화 수 목 금 토 일 or Mon..Sun"
    )


def parse_at(text: str) -> tuple[int, int]:
    """ "화 15:00" / "Tue 15:00" -> (weekday, minutes after midnight)."""
    m = _AT.match(text)
    if m is None:
        raise ScheduleError(
            f"요일과 시각을 읽을 수 없습니다 {text!r} — expected a weekday and a time like"
            ' "화 15:00" or "Tue 15:00"'
        )
    return parse_weekday(m[1]), int(m[2]) * 60 + int(m[3])


def parse_every(text: str) -> int:
    """ "7d" / "14 days" / "7" / "7일" -> days."""
    m = _EVERY.match(text)
    if m is None:
        raise ScheduleError(
            f"간격을 읽을 수 없습니다 {text!r} — expected a number of days like 7d or 14d"
        )
    return int(m[1])


def parse_schedule(every: str, at: str) -> Schedule:
    weekday, minute = parse_at(at)
    return Schedule(parse_every(every), weekday, minute)


def _at(day: dt.date, schedule: Schedule) -> float:
    t = dt.time(schedule.at_minute // 60, schedule.at_minute % 60)
    return dt.datetime.combine(day, t, tzinfo=SEOUL).timestamp()


def first_occurrence(start: float, schedule: Schedule) -> float:
    """The series' first call: the first of its weekday at its time at or after `start`."""
    day = dt.datetime.fromtimestamp(start, SEOUL).date()
    day += dt.timedelta(days=(schedule.weekday - day.weekday()) % 7)
    if _at(day, schedule) < start:
        day += dt.timedelta(days=7)
    return _at(day, schedule)


def next_occurrence(start: float, schedule: Schedule, after: float) -> float:
    """The first call of the series begun at `start` that is strictly after `after`."""
    first = first_occurrence(start, schedule)
    if first > after:
        return first
    first_day = dt.datetime.fromtimestamp(first, SEOUL).date()
    after_day = dt.datetime.fromtimestamp(after, SEOUL).date()
    steps = (after_day - first_day).days // schedule.every_days
    while True:
        candidate = _at(first_day + dt.timedelta(days=steps * schedule.every_days), schedule)
        if candidate > after:
            return candidate
        steps += 1
