"""Working days, pure: the in-depth call's deadline ("within one working day") and when a
companion may be called again. No I/O and no clock: the time comes in.

A *working day* of a team is a Seoul calendar day on which the team's weekly hours
(config/teams.toml, ivr.staff.teams) have a window, that is not a Korean public holiday
(the `holidays` package: 설날, 추석, their substitute days, ...) and not one of the centre's own
closure days (``[closed] days`` in config/teams.toml). The day's working hours run from its
first window's start to its last window's end.

The in-depth deadline is the end of the working hours of the first working day that has not
yet begun when the request is made: a `*8` on Tuesday at 07:30 is due by Tuesday 18:00 (the
whole working day is still ahead), one on Tuesday at 10:00 by Wednesday 18:00, one on Friday at
17:00 by Monday 18:00, and one on the eve of 추석 by the end of the first working day after it.
A request never has less than one whole working day.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Set
from dataclasses import dataclass

import holidays

from ivr.staff.teams import Teams, Window
from ivr.timezone import SEOUL

__all__ = ["DEFAULT_HOURS", "WorkCalendar", "calendar", "in_depth_deadline", "is_public_holiday"]

#: The social workers' hours when the teams file gives their team none: Mon-Fri 09:00-18:00.
DEFAULT_HOURS = tuple(Window(day, 9 * 60, 18 * 60) for day in range(5))
#: How far ahead a working day is looked for (a year of closures is an error in the data).
HORIZON_DAYS = 400


@functools.cache
def _korean_holidays() -> holidays.HolidayBase:
    return holidays.country_holidays("KR")  # years are added as they are asked for


def is_public_holiday(day: dt.date) -> bool:
    """A Korean public holiday (substitute holidays included)."""
    return day in _korean_holidays()


@dataclass(frozen=True)
class WorkCalendar:
    """A team's weekly hours and the days it does not work."""

    hours: tuple[Window, ...] = DEFAULT_HOURS
    #: The centre's own closure days (besides the public holidays).
    closed: Set[dt.date] = frozenset()

    def working_day(self, day: dt.date) -> bool:
        return (
            any(w.weekday == day.weekday() for w in self.hours)
            and day not in self.closed
            and not is_public_holiday(day)
        )

    def day_hours(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working hours of `day` (Seoul), or None when it is not a working day."""
        if not self.working_day(day):
            return None
        windows = [w for w in self.hours if w.weekday == day.weekday()]
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=SEOUL)
        start = min(w.start for w in windows)
        end = max(w.end for w in windows)
        return midnight + dt.timedelta(minutes=start), midnight + dt.timedelta(minutes=end)

    def working_days(self, start: dt.date) -> Iterable[tuple[dt.datetime, dt.datetime]]:
        """The working days' hours from `start` on (at most HORIZON_DAYS days ahead)."""
        for n in range(HORIZON_DAYS):
            hours = self.day_hours(start + dt.timedelta(days=n))
            if hours is not None:
                yield hours


def in_depth_deadline(created_at: float, cal: WorkCalendar) -> float | None:
    """The end of the first working day that had not begun at `created_at` (see the module
    docstring). None: no working day within the horizon (a team without hours)."""
    when = dt.datetime.fromtimestamp(created_at, SEOUL)
    for start, end in cal.working_days(when.date()):
        if start >= when:
            return end.timestamp()
    return None


def calendar(teams: Teams, team: str = "social_workers") -> WorkCalendar:
    """The team's calendar from the teams file (its own hours, else DEFAULT_HOURS)."""
    return WorkCalendar(teams.hours.get(team) or DEFAULT_HOURS, teams.closed)
