"""The follow-up teams' working hours, as data (``config/teams.toml``, the `teams_file` setting).

The counselors work the rotation of ``config/roster.toml``; the follow-up teams work weekly
hours instead. The file lists:

* ``[team.<team>]`` with ``hours``: the team's default weekly hours (social workers: Monday to
  Friday, 09:00-18:00). Teams: ``social_workers`` and ``companions``.
* ``[member]``: a member's own weekly hours (``companion01 = ["tue 14:00-17:00", ...]``), used
  instead of their team's. Every companion keeps their own schedule here.
* ``[[away]]``: ``member``, ``from``/``until`` (date-times) and a ``reason``: leave, sickness —
  within ``[from, until)`` the member is off duty whatever their hours say.
* ``[closed]`` with ``days``: the centre's own closure days (``[2026-12-31]``), besides the
  Korean public holidays. Neither is a working day when the in-depth call's deadline ("within
  one working day", ivr.followup.workdays) is counted.

Weekly hours are a list of ``"DAYS HH:MM-HH:MM"`` strings. DAYS is one day (``mon`` or ``월``),
a range (``mon-fri``, ``월-금``) or a comma list (``mon,wed,fri``); the end may be ``24:00`` and
must be after the start (split a night across midnight in two entries).

All times are Seoul time (Asia/Seoul); date-times without an offset are read as Seoul time.
Intervals are half-open: at 18:00 a member working 09:00-18:00 is off duty.

Pure: :func:`load_teams` reads one TOML file; :meth:`Teams.on_duty` is computation. Every problem
in a file is reported at once (:class:`TeamsError`, a :class:`~ivr.staff.roster.RosterError`:
the staff plan did not load), each line naming what is wrong. :func:`check_members` compares the
file with the staff lists of the settings.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.staff.roster import RosterError
from ivr.timezone import SEOUL
from ivr.tomlfile import read_toml

__all__ = [
    "FOLLOWUP_TEAMS",
    "Away",
    "Teams",
    "TeamsError",
    "Window",
    "check_members",
    "load_checked",
    "load_teams",
    "parse_teams",
]

#: The teams whose hours this file gives (the counselors have the roster).
FOLLOWUP_TEAMS = ("social_workers", "companions")

_DAYS = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}
_DAYS.update({d: i for i, d in enumerate("월화수목금토일")})
_ENTRY = re.compile(r"^\s*(\S+)\s+(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})\s*$")
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
DAY_MINUTES = 24 * 60


class TeamsError(RosterError):
    """The teams file is missing, not valid TOML, or inconsistent."""


@dataclass(frozen=True)
class Window:
    """Weekly working time: `weekday` (0 = Monday), minutes after midnight [start, end)."""

    weekday: int
    start: int
    end: int

    def covers(self, when: dt.datetime) -> bool:
        minute = when.hour * 60 + when.minute
        return when.weekday() == self.weekday and self.start <= minute < self.end


@dataclass(frozen=True)
class Away:
    """`member` is off duty within ``[start, end)`` (aware datetimes)."""

    member: str
    start: dt.datetime
    end: dt.datetime
    reason: str

    def covers(self, when: dt.datetime) -> bool:
        return self.start <= when < self.end


@dataclass(frozen=True)
class Teams:
    hours: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)  # team -> default
    members: Mapping[str, tuple[Window, ...]] = field(default_factory=dict)  # member -> own
    away: tuple[Away, ...] = ()
    #: The centre's own closure days (``[closed] days``; Seoul dates).
    closed: frozenset[dt.date] = frozenset()

    def windows(self, team: str, member: str) -> tuple[Window, ...]:
        """The member's weekly hours: their own if the file gives them, else their team's."""
        if member in self.members:
            return self.members[member]
        return self.hours.get(team, ())

    def on_duty(self, team: str, member: str, when: dt.datetime) -> bool:
        """Whether `member` of `team` works at `when` (an aware datetime, any zone)."""
        when = _aware(when)
        if any(a.member == member and a.covers(when) for a in self.away):
            return False
        return any(w.covers(when) for w in self.windows(team, member))

    def next_on_duty(
        self, team: str, member: str, when: dt.datetime, horizon_days: int = 92
    ) -> dt.datetime | None:
        """The first instant at or after `when` at which `member` is on duty (their weekly
        hours, outside their absences); None when they have no hours within `horizon_days`."""
        when = _aware(when)
        windows = self.windows(team, member)
        day = when.date()
        for n in range(horizon_days + 1):
            date = day + dt.timedelta(days=n)
            midnight = dt.datetime.combine(date, dt.time(), tzinfo=SEOUL)
            for w in sorted((w for w in windows if w.weekday == date.weekday()), key=_start):
                start = max(midnight + dt.timedelta(minutes=w.start), when)
                end = midnight + dt.timedelta(minutes=w.end)
                while start < end:
                    away = next(
                        (a for a in self.away if a.member == member and a.covers(start)), None
                    )
                    if away is None:
                        return start
                    start = max(start, away.end)
        return None

    def on_duty_members(
        self, team: str, members: Iterable[str], when: dt.datetime
    ) -> frozenset[str]:
        return frozenset(m for m in members if self.on_duty(team, m, when))


def _start(w: Window) -> int:
    return w.start


def _aware(when: dt.datetime) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ValueError(f"{when.isoformat()} has no time zone; pass an aware datetime")
    return when.astimezone(SEOUL)


# --- loading ----------------------------------------------------------------------------


def load_teams(path: str | Path) -> Teams:
    """Read and validate a teams file."""
    file = Path(path)
    data = read_toml(
        file, TeamsError, missing="teams file not found", unreadable="cannot read the teams file"
    )
    return parse_teams(data, source=str(file))


def _days(text: str) -> list[int] | None:
    days: list[int] = []
    for part in text.split(","):
        first, sep, last = part.partition("-")
        if first not in _DAYS or (sep and last not in _DAYS):
            return None
        a, b = _DAYS[first], _DAYS[last] if sep else _DAYS[first]
        if b < a:
            return None
        days.extend(range(a, b + 1))
    return days


def _windows(errors: list[str], where: str, value: Any) -> tuple[Window, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f'{where}: expected a list like ["mon-fri 09:00-18:00"], got {value!r}')
        return ()
    out: list[Window] = []
    for entry in value:
        m = _ENTRY.match(entry)
        days = _days(m[1].lower()) if m else None
        if m is None or days is None:
            errors.append(
                f'{where}: {entry!r} is not "DAYS HH:MM-HH:MM" (DAYS: mon, mon-fri, '
                "mon,wed,fri or 월, 월-금)"
            )
            continue
        sh, sm, eh, em = (int(m[i]) for i in range(2, 6))
        start, end = sh * 60 + sm, eh * 60 + em
        if sh > 23 or sm > 59 or em > 59 or end > DAY_MINUTES:
            errors.append(f"{where}: {entry!r}: not a time of day (00:00 to 24:00)")
            continue
        if end <= start:
            errors.append(
                f"{where}: {entry!r}: the end is not after the start (split a night at 24:00)"
            )
            continue
        out.extend(Window(d, start, end) for d in days)
    for i, a in enumerate(out):
        for b in out[i + 1 :]:
            if a.weekday == b.weekday and a.start < b.end and b.start < a.end:
                day = next(k for k, v in _DAYS.items() if v == a.weekday)
                errors.append(f"{where}: overlapping hours on {day}")
                return tuple(out)
    return tuple(out)


def _datetime(errors: list[str], where: str, value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=SEOUL) if value.tzinfo is None else value.astimezone(SEOUL)
    errors.append(f"{where}: expected a date and time like 2026-12-24T09:00:00, got {value!r}")
    return None


def _away(errors: list[str], data: Mapping[str, Any]) -> tuple[Away, ...]:
    raw = data.get("away", [])
    if not isinstance(raw, list):
        errors.append("[[away]]: expected an array of tables")
        return ()
    out: list[Away] = []
    for n, entry in enumerate(raw, 1):
        where = f"[[away]] #{n}"
        if not isinstance(entry, Mapping):
            errors.append(f"{where}: expected a table")
            continue
        unknown = sorted(set(entry) - {"member", "from", "until", "reason"})
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}")
        member, reason = entry.get("member"), entry.get("reason")
        ok = True
        if not isinstance(member, str) or not _ID.match(member):
            errors.append(f"{where}: `member` must be a staff endpoint name, got {member!r}")
            ok = False
        if not isinstance(reason, str) or not reason.strip():
            errors.append(f"{where}: `reason` must be a non-empty string")
            ok = False
        start = _datetime(errors, f"{where} `from`", entry.get("from"))
        end = _datetime(errors, f"{where} `until`", entry.get("until"))
        if start is not None and end is not None and start >= end:
            errors.append(f"{where}: `from` {start.isoformat()} is not before `until`")
            ok = False
        if ok and start is not None and end is not None:
            assert isinstance(member, str) and isinstance(reason, str)
            out.append(Away(member, start, end, reason.strip()))
    return tuple(out)


def parse_teams(data: Mapping[str, Any], source: str = "teams") -> Teams:
    """Validate already-parsed TOML data. `source` names the file in error messages."""
    errors: list[str] = []
    unknown = sorted(set(data) - {"team", "member", "away", "closed"})
    if unknown:
        errors.append(f"teams: unknown table(s) {', '.join(unknown)}")
    hours: dict[str, tuple[Window, ...]] = {}
    raw_teams = data.get("team", {})
    if not isinstance(raw_teams, Mapping):
        errors.append("[team]: expected tables like [team.social_workers]")
        raw_teams = {}
    for name, table in raw_teams.items():
        where = f"[team.{name}]"
        if name not in FOLLOWUP_TEAMS:
            errors.append(f"{where}: unknown team (known: {', '.join(FOLLOWUP_TEAMS)})")
            continue
        if not isinstance(table, Mapping):
            errors.append(f"{where}: expected a table with `hours`")
            continue
        extra = sorted(set(table) - {"hours"})
        if extra:
            errors.append(f"{where}: unknown key(s) {', '.join(extra)}")
        hours[name] = _windows(errors, f"{where} hours", table.get("hours", []))
    members: dict[str, tuple[Window, ...]] = {}
    raw_members = data.get("member", {})
    if not isinstance(raw_members, Mapping):
        errors.append('[member]: expected a table like companion01 = ["tue 14:00-17:00"]')
        raw_members = {}
    for name, value in raw_members.items():
        if not _ID.match(name):
            errors.append(f"[member] {name!r}: endpoint names are letters, digits, - and _")
            continue
        members[name] = _windows(errors, f"[member] {name}", value)
    away = _away(errors, data)
    closed = _closed(errors, data)
    if errors:
        raise TeamsError(f"{source}: invalid teams file:\n" + "\n".join(f"  {e}" for e in errors))
    return Teams(hours, members, away, closed)


def _closed(errors: list[str], data: Mapping[str, Any]) -> frozenset[dt.date]:
    raw = data.get("closed", {})
    if not isinstance(raw, Mapping):
        errors.append("[closed]: expected a table like [closed] days = [2026-12-31]")
        return frozenset()
    extra = sorted(set(raw) - {"days"})
    if extra:
        errors.append(f"[closed]: unknown key(s) {', '.join(extra)}")
    days = raw.get("days", [])
    if not isinstance(days, list):
        errors.append(f"[closed] days: expected a list of dates like [2026-12-31], got {days!r}")
        return frozenset()
    out: set[dt.date] = set()
    for value in days:
        # A TOML local date; a date-time or a string is a mistake worth naming.
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            out.add(value)
        else:
            errors.append(f"[closed] days: {value!r} is not a date like 2026-12-31 (no quotes)")
    return frozenset(out)


def load_checked(path: str | Path, staff: Mapping[str, Iterable[str]]) -> Teams:
    """:func:`load_teams` and :func:`check_members` (team -> members from the settings)."""
    teams = load_teams(path)
    check_members(teams, staff, str(path))
    return teams


def check_members(teams: Teams, staff: Mapping[str, Iterable[str]], source: str) -> None:
    """Compare the file with the settings' team lists (team -> members): every name in the file
    is a member of a follow-up team, and every member has some working hours."""
    team_of = {m: t for t, ms in staff.items() for m in ms}
    errors = [
        f"[member] {m}: not in the social_workers or companions setting"
        for m in teams.members
        if m not in team_of
    ]
    errors += [
        f"[[away]] {a.member}: not in the social_workers or companions setting"
        for a in teams.away
        if a.member not in team_of
    ]
    errors += [
        f"{m} ({t}): no working hours; give them in [member] or [team.{t}] hours"
        for m, t in team_of.items()
        if not teams.windows(t, m)
    ]
    if errors:
        raise TeamsError(f"{source}: invalid teams file:\n" + "\n".join(f"  {e}" for e in errors))
