"""The hotline's time zone: shifts, flags and administrators' views are in Seoul time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

#: Korea Standard Time (no daylight saving time).
SEOUL = ZoneInfo("Asia/Seoul")


def in_seoul(when: dt.datetime) -> dt.datetime:
    """An aware datetime in Seoul time; a naive one (or anything else) is refused."""
    if not isinstance(when, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ValueError(f"{when.isoformat()} has no time zone; pass an aware datetime")
    return when.astimezone(SEOUL)
