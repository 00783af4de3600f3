"""A companion series' times (pure): the first call at the weekday and time on or after the
enrolment, then every N Seoul days; Korean and English weekdays."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.followup.series import (
    Schedule,
    ScheduleError,
    first_occurrence,
    next_occurrence,
    parse_at,
    parse_every,
    parse_schedule,
)
from ivr.timezone import SEOUL


def seoul(*args: int) -> float:
    return dt.datetime(*args, tzinfo=SEOUL).timestamp()


def when(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, SEOUL)


# 2026-12-01 is a Tuesday.
TUE_NOON = seoul(2026, 12, 1, 12, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("화 15:00", (1, 900)),
        ("화요일 15:00", (1, 900)),
        ("Tue 15:00", (1, 900)),
        ("tuesday 9:05", (1, 545)),
        ("일 23:59", (6, 1439)),
        ("Mon 00:00", (0, 0)),
    ],
)
def test_weekday_and_time_in_korean_or_english(text: str, expected: tuple[int, int]) -> None:
    assert parse_at(text) == expected


@pytest.mark.parametrize("text", ["화", "화 25:00", "xyz 10:00", "15:00 화", ""])
def test_an_unreadable_time_is_refused_in_korean_and_english(text: str) -> None:
    with pytest.raises(ScheduleError, match="—"):
        parse_at(text)


def test_every_in_days() -> None:
    assert [parse_every(t) for t in ("7d", "14d", "7", "3 days", "7일")] == [7, 14, 7, 3, 7]
    with pytest.raises(ScheduleError):
        parse_every("weekly")
    with pytest.raises(ScheduleError):
        parse_schedule("0d", "화 15:00")
    with pytest.raises(ScheduleError):
        parse_schedule("200d", "화 15:00")


def test_the_first_call_is_later_the_same_day_when_the_time_is_still_ahead() -> None:
    s = parse_schedule("7d", "화 15:00")
    assert when(first_occurrence(TUE_NOON, s)) == dt.datetime(2026, 12, 1, 15, 0, tzinfo=SEOUL)


def test_the_first_call_is_next_week_when_the_time_has_passed() -> None:
    s = parse_schedule("7d", "화 11:00")
    assert when(first_occurrence(TUE_NOON, s)) == dt.datetime(2026, 12, 8, 11, 0, tzinfo=SEOUL)


def test_the_first_call_on_another_weekday() -> None:
    s = parse_schedule("14d", "Fri 10:30")
    assert when(first_occurrence(TUE_NOON, s)) == dt.datetime(2026, 12, 4, 10, 30, tzinfo=SEOUL)


def test_the_next_call_after_a_late_call_is_the_following_week_not_the_same_day() -> None:
    s = parse_schedule("7d", "화 15:00")
    reached_late = seoul(2026, 12, 1, 16, 30)
    nxt = next_occurrence(TUE_NOON, s, reached_late)
    assert when(nxt) == dt.datetime(2026, 12, 8, 15, 0, tzinfo=SEOUL)


def test_after_a_long_gap_the_next_call_skips_the_missed_ones() -> None:
    s = parse_schedule("7d", "화 15:00")
    after = seoul(2027, 1, 20, 9, 0)  # a Wednesday, weeks later
    assert when(next_occurrence(TUE_NOON, s, after)) == dt.datetime(
        2027, 1, 26, 15, 0, tzinfo=SEOUL
    )


@given(
    start=st.floats(1.7e9, 1.9e9),
    every=st.integers(1, 91),
    weekday=st.integers(0, 6),
    minute=st.integers(0, 24 * 60 - 1),
    gap=st.floats(0, 400 * 86400),
)
def test_occurrences_keep_the_time_and_the_step(
    start: float, every: int, weekday: int, minute: int, gap: float
) -> None:
    s = Schedule(every, weekday, minute)
    first = first_occurrence(start, s)
    assert start <= first < start + 7 * 86400
    assert when(first).weekday() == weekday
    nxt = next_occurrence(start, s, start + gap)
    assert nxt > start + gap
    t = when(nxt)
    assert t.hour * 60 + t.minute == minute and t.second == 0
    assert (t.date() - when(first).date()).days % every == 0
    # Nothing of the series lies between `after` and the answer.
    assert nxt - every * 86400 <= start + gap or nxt == first
    if every % 7 == 0:
        assert t.weekday() == weekday
