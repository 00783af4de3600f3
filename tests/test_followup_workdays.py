"""Working days, pure, with the time passed in: the in-depth call's "within one working day"
deadline (weekends, Korean public holidays, the centre's own closure days) and the teams
file's `[closed]` days."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.followup.model import TaskType
from ivr.followup.planner import deadline, overdue
from ivr.followup.workdays import WorkCalendar, calendar, in_depth_deadline, is_public_holiday
from ivr.staff.teams import TeamsError, Window, parse_teams
from ivr.timezone import SEOUL
from tests.test_followup_planner import task

CAL = WorkCalendar()  # Mon-Fri 09:00-18:00, the default of config/teams.toml


def seoul(*args: int) -> float:
    return dt.datetime(*args, tzinfo=SEOUL).timestamp()


def due(*args: int, cal: WorkCalendar = CAL) -> dt.datetime:
    limit = in_depth_deadline(seoul(*args), cal)
    assert limit is not None
    return dt.datetime.fromtimestamp(limit, SEOUL)


def test_friday_evening_is_due_by_the_end_of_monday() -> None:
    # 2026-12-04 is a Friday: a `*8` at 17:00 is not overdue on Saturday.
    assert due(2026, 12, 4, 17, 0) == dt.datetime(2026, 12, 7, 18, 0, tzinfo=SEOUL)
    assert due(2026, 12, 4, 21, 30) == dt.datetime(2026, 12, 7, 18, 0, tzinfo=SEOUL)
    assert due(2026, 12, 5, 11, 0) == dt.datetime(2026, 12, 7, 18, 0, tzinfo=SEOUL)  # Saturday


def test_a_weekday_request_gets_one_whole_working_day() -> None:
    # Before 09:00 the whole day is still ahead; from 09:00 on, the next day is the one.
    assert due(2026, 12, 8, 7, 30) == dt.datetime(2026, 12, 8, 18, 0, tzinfo=SEOUL)
    assert due(2026, 12, 8, 9, 0) == dt.datetime(2026, 12, 8, 18, 0, tzinfo=SEOUL)
    assert due(2026, 12, 8, 9, 1) == dt.datetime(2026, 12, 9, 18, 0, tzinfo=SEOUL)
    assert due(2026, 12, 8, 19, 0) == dt.datetime(2026, 12, 9, 18, 0, tzinfo=SEOUL)


def test_korean_public_holidays_are_not_working_days() -> None:
    # 설날 2027: Sat 6 - Tue 9 Feb (the 9th the substitute holiday).
    assert all(is_public_holiday(dt.date(2027, 2, d)) for d in (6, 7, 8, 9))
    assert due(2027, 2, 5, 10, 0) == dt.datetime(2027, 2, 10, 18, 0, tzinfo=SEOUL)
    # 추석 2027: Tue 14 - Thu 16 Sep.
    assert due(2027, 9, 13, 15, 0) == dt.datetime(2027, 9, 17, 18, 0, tzinfo=SEOUL)
    assert due(2027, 9, 15, 8, 0) == dt.datetime(2027, 9, 17, 18, 0, tzinfo=SEOUL)
    # Christmas 2026 is a Friday: a Thursday request waits for Monday.
    assert due(2026, 12, 24, 12, 0) == dt.datetime(2026, 12, 28, 18, 0, tzinfo=SEOUL)


def test_the_centres_closure_days_are_not_working_days() -> None:
    cal = WorkCalendar(closed=frozenset({dt.date(2026, 12, 31)}))
    assert due(2026, 12, 30, 10, 0, cal=cal) == dt.datetime(2027, 1, 4, 18, 0, tzinfo=SEOUL)
    # Without it: the 31st (1 January is a holiday).
    assert due(2026, 12, 30, 10, 0) == dt.datetime(2026, 12, 31, 18, 0, tzinfo=SEOUL)


def test_the_teams_hours_set_the_working_day() -> None:
    # Hours split over the day: the day ends with its last window.
    cal = WorkCalendar(hours=(Window(0, 10 * 60, 12 * 60), Window(0, 13 * 60, 17 * 60)))
    assert due(2026, 12, 4, 17, 0, cal=cal) == dt.datetime(2026, 12, 7, 17, 0, tzinfo=SEOUL)
    assert due(2026, 12, 7, 9, 59, cal=cal) == dt.datetime(2026, 12, 7, 17, 0, tzinfo=SEOUL)
    assert due(2026, 12, 7, 10, 1, cal=cal) == dt.datetime(2026, 12, 14, 17, 0, tzinfo=SEOUL)
    assert in_depth_deadline(seoul(2026, 12, 7, 10, 0), WorkCalendar(hours=())) is None


def test_the_planner_deadline_and_overdue_follow_the_working_day() -> None:
    friday = seoul(2026, 12, 4, 17, 0)
    request = task(1, TaskType.IN_DEPTH, due=friday)
    monday_end = seoul(2026, 12, 7, 18, 0)
    assert deadline(request, CAL) == monday_end
    assert not overdue(request, seoul(2026, 12, 5, 17, 1), CAL)  # Saturday: not overdue
    assert not overdue(request, monday_end, CAL)
    assert overdue(request, monday_end + 1, CAL)


def test_closed_days_are_read_and_checked_in_the_teams_file() -> None:
    teams = parse_teams(
        {
            "team": {"social_workers": {"hours": ["mon-fri 09:00-17:00"]}},
            "closed": {"days": [dt.date(2026, 12, 31)]},
        }
    )
    assert teams.closed == {dt.date(2026, 12, 31)}
    cal = calendar(teams)
    assert cal.closed == {dt.date(2026, 12, 31)}
    assert due(2026, 12, 30, 10, 0, cal=cal) == dt.datetime(2027, 1, 4, 17, 0, tzinfo=SEOUL)
    with pytest.raises(TeamsError) as err:
        parse_teams({"closed": {"days": ["2026-12-31", dt.datetime(2026, 1, 2)], "when": 1}})
    text = str(err.value)
    assert "'2026-12-31' is not a date" in text and "unknown key(s) when" in text
    assert "datetime.datetime(2026, 1, 2, 0, 0) is not a date" in text
    with pytest.raises(TeamsError, match=r"\[closed\]: expected a table"):
        parse_teams({"closed": [dt.date(2026, 12, 31)]})
