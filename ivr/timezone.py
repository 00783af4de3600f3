"""The hotline's time zone: shifts, flags and administrators' views are in Seoul time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

#: Korea Standard Time (no daylight saving time).
SEOUL = ZoneInfo("Asia/Seoul")
