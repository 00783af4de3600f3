"""Who is on shift: the counselors, their rotation and the exceptions, as data.

The 외로움안녕120 counselors work 24-hour shifts in rotation, every day of the year. The roster
file (``config/roster.toml``) lists:

* ``[[counselor]]`` — ``id``, ``name`` (display name) and ``endpoint`` (the SIP endpoint rung);
* ``[teams]`` — team name -> counselor ids; every counselor is in at most one team;
* ``[rotation]`` — ``start`` (a date), ``shift_start`` ("HH:MM"), ``shift_hours`` and ``cycle``
  (team names): the shift beginning at ``start`` + ``shift_start`` belongs to ``cycle[0]``,
  the next one to ``cycle[1]``, and so on, round and round, back and forth in time;
* ``[[override]]`` — ``from``/``until`` (date-times), ``off``/``on`` (counselor ids) and a
  ``reason``: sick leave, swaps, extra cover. Within ``[from, until)`` the ``off`` counselors
  are off and the ``on`` counselors are on, whatever the rotation says.

All times are Seoul time (Asia/Seoul). Date-times without an offset in the file are read as
Seoul time; :func:`on_shift` needs an aware datetime (any zone) and converts it. Shifts are
counted in elapsed hours from the rotation's first shift; Seoul has kept standard time since
1988, so this equals the wall clock. Shift intervals are half-open: at the instant of a shift
change the new team is on shift and the old one is not.

Pure: :func:`load_roster` reads one TOML file; everything else is computation. Every problem
in a file is reported at once (:class:`RosterError`), each line naming what is wrong.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.paths import CONFIG_DIR
from ivr.timezone import SEOUL
from ivr.tomlfile import read_toml

__all__ = [
    "DEFAULT_ROSTER_PATH",
    "SEOUL",
    "Counselor",
    "Override",
    "Roster",
    "RosterError",
    "Rotation",
    "Shift",
    "current_shift",
    "load_roster",
    "on_shift",
    "on_shift_ids",
    "parse_roster",
]

DEFAULT_ROSTER_PATH = CONFIG_DIR / "roster.toml"

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class RosterError(ValueError):
    """The roster file is missing, not valid TOML, or inconsistent."""


@dataclass(frozen=True)
class Counselor:
    id: str
    name: str
    endpoint: str


@dataclass(frozen=True)
class Rotation:
    """Shift k (k = 0 starts at `first_shift`) is worked by team ``cycle[k % len(cycle)]``."""

    first_shift: dt.datetime  # aware
    shift_hours: float
    cycle: tuple[str, ...]

    @property
    def length(self) -> dt.timedelta:
        return dt.timedelta(hours=self.shift_hours)


@dataclass(frozen=True)
class Override:
    """Within ``[start, end)``, `off` counselors are off shift and `on` counselors on shift."""

    start: dt.datetime  # aware
    end: dt.datetime  # aware
    off: frozenset[str]
    on: frozenset[str]
    reason: str

    def covers(self, when: dt.datetime) -> bool:
        return self.start <= when < self.end


@dataclass(frozen=True)
class Shift:
    """One rotation shift: `team` works ``[start, end)`` (Seoul time)."""

    index: int
    team: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Roster:
    counselors: Mapping[str, Counselor]  # by id
    teams: Mapping[str, tuple[str, ...]]  # team -> counselor ids
    rotation: Rotation
    overrides: tuple[Override, ...] = ()

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(c.endpoint for c in self.counselors.values())


# --- queries ----------------------------------------------------------------------------


def _aware(when: dt.datetime) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        raise ValueError(f"{when.isoformat()} has no time zone; pass an aware datetime")
    return when.astimezone(SEOUL)


def current_shift(roster: Roster, when: dt.datetime) -> Shift:
    """The rotation shift in force at `when` (before overrides)."""
    when = _aware(when)
    rot = roster.rotation
    index = (when - rot.first_shift) // rot.length
    start = rot.first_shift + index * rot.length
    return Shift(index, rot.cycle[index % len(rot.cycle)], start, start + rot.length)


def on_shift_ids(roster: Roster, when: dt.datetime) -> frozenset[str]:
    """Counselor ids on shift at `when`: the rotation's team, then the overrides."""
    ids = set(roster.teams[current_shift(roster, when).team])
    when = _aware(when)
    for ov in roster.overrides:
        if ov.covers(when):
            ids -= ov.off
            ids |= ov.on
    return frozenset(ids)


def on_shift(roster: Roster, when: dt.datetime) -> frozenset[str]:
    """SIP endpoints of the counselors on shift at `when` (an aware datetime)."""
    return frozenset(roster.counselors[i].endpoint for i in on_shift_ids(roster, when))


# --- loading ----------------------------------------------------------------------------


def load_roster(path: str | Path | None = None) -> Roster:
    """Read and validate a roster file (default: ``config/roster.toml``)."""
    file = Path(path) if path is not None else DEFAULT_ROSTER_PATH
    data = read_toml(file, RosterError, missing="roster not found", unreadable="cannot read roster")
    return parse_roster(data, source=str(file))


class _Errors(list[str]):
    def check(self, ok: bool, msg: str) -> bool:
        if not ok:
            self.append(msg)
        return ok


def _table_keys(errors: _Errors, where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    errors.check(not unknown, f"{where}: unknown key(s) {', '.join(unknown)}")


def _str(errors: _Errors, where: str, table: Mapping[str, Any], key: str) -> str | None:
    value = table.get(key)
    if value is None:
        errors.append(f"{where}: missing `{key}`")
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}: `{key}` must be a non-empty string, got {value!r}")
        return None
    return value.strip()


def _datetime(errors: _Errors, where: str, value: Any) -> dt.datetime | None:
    """A TOML date-time (local = Seoul time, or with an offset)."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=SEOUL) if value.tzinfo is None else value.astimezone(SEOUL)
    if isinstance(value, dt.date):
        errors.append(
            f"{where}: {value.isoformat()} is a date; give a date and time, "
            f"e.g. {value.isoformat()}T09:00:00 (Seoul time)"
        )
    elif value is None:
        errors.append(f"{where}: missing")
    else:
        errors.append(f"{where}: expected a date and time like 2025-04-01T09:00:00, got {value!r}")
    return None


def _id_list(errors: _Errors, where: str, value: Any, known: Mapping[str, Counselor]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}: expected a list of counselor ids, got {value!r}")
        return []
    unknown = [v for v in value if v not in known]
    errors.check(not unknown, f"{where}: unknown counselor(s) {', '.join(unknown)}")
    dup = sorted({v for v in value if value.count(v) > 1})
    errors.check(not dup, f"{where}: listed twice: {', '.join(dup)}")
    return [v for v in value if v in known]


def _counselors(errors: _Errors, data: Mapping[str, Any]) -> dict[str, Counselor]:
    raw = data.get("counselor")
    if not isinstance(raw, list) or not raw:
        errors.append("[[counselor]]: the roster needs at least one counselor")
        return {}
    counselors: dict[str, Counselor] = {}
    endpoints: dict[str, str] = {}
    for n, entry in enumerate(raw, 1):
        where = f"[[counselor]] #{n}"
        if not isinstance(entry, Mapping):
            errors.append(f"{where}: expected a table")
            continue
        _table_keys(errors, where, entry, {"id", "name", "endpoint"})
        cid = _str(errors, where, entry, "id")
        name = _str(errors, where, entry, "name")
        endpoint = _str(errors, where, entry, "endpoint")
        if cid is None or name is None or endpoint is None:
            continue
        where = f"[[counselor]] {cid}"
        ok = errors.check(bool(_ID.match(cid)), f"{where}: id must be letters, digits, - and _")
        ok &= errors.check(
            bool(_ID.match(endpoint)), f"{where}: endpoint {endpoint!r}: letters, digits, - and _"
        )
        ok &= errors.check(cid not in counselors, f"{where}: duplicate counselor id")
        ok &= errors.check(
            endpoint not in endpoints,
            f"{where}: endpoint {endpoint} is already used by {endpoints.get(endpoint)}",
        )
        if ok:
            counselors[cid] = Counselor(cid, name, endpoint)
            endpoints[endpoint] = cid
    return counselors


def _teams(
    errors: _Errors, data: Mapping[str, Any], counselors: Mapping[str, Counselor]
) -> dict[str, tuple[str, ...]]:
    raw = data.get("teams")
    if not isinstance(raw, Mapping) or not raw:
        errors.append("[teams]: missing; give each team its counselor ids, e.g. A = [...]")
        return {}
    teams: dict[str, tuple[str, ...]] = {}
    team_of: dict[str, str] = {}
    for name, members in raw.items():
        where = f"[teams] {name}"
        ids = _id_list(errors, where, members, counselors)
        if isinstance(members, list):
            errors.check(bool(members), f"{where}: a team needs at least one counselor")
        for cid in ids:
            if errors.check(
                cid not in team_of, f"{where}: {cid} is already in team {team_of.get(cid)}"
            ):
                team_of[cid] = name
        teams[name] = tuple(ids)
    return teams


def _rotation(
    errors: _Errors, data: Mapping[str, Any], teams: Mapping[str, tuple[str, ...]]
) -> Rotation | None:
    raw = data.get("rotation")
    where = "[rotation]"
    if not isinstance(raw, Mapping):
        errors.append(f"{where}: missing (start, shift_start, shift_hours, cycle)")
        return None
    _table_keys(errors, where, raw, {"start", "shift_start", "shift_hours", "cycle"})
    start = raw.get("start")
    if isinstance(start, dt.datetime) or not isinstance(start, dt.date):
        errors.append(f"{where}: `start` must be a date like 2025-04-01, got {start!r}")
        start = None
    shift_start = raw.get("shift_start")
    m = _HHMM.match(shift_start) if isinstance(shift_start, str) else None
    errors.check(
        m is not None, f'{where}: `shift_start` must be a time "HH:MM", got {shift_start!r}'
    )
    hours = raw.get("shift_hours")
    hours_ok = errors.check(
        isinstance(hours, int | float) and not isinstance(hours, bool) and 0 < hours <= 24 * 7,
        f"{where}: `shift_hours` must be a number of hours above 0 (at most a week), got {hours!r}",
    )
    cycle = raw.get("cycle")
    cycle_ok = errors.check(
        isinstance(cycle, list) and bool(cycle) and all(isinstance(t, str) for t in cycle),
        f"{where}: `cycle` must be a non-empty list of team names, got {cycle!r}",
    )
    if cycle_ok:
        assert isinstance(cycle, list)
        unknown = sorted({t for t in cycle if t not in teams})
        cycle_ok = errors.check(
            not unknown, f"{where}: `cycle` names unknown team(s) {', '.join(unknown)}"
        )
        unused = sorted(set(teams) - set(cycle))
        errors.check(not unused, f"{where}: team(s) {', '.join(unused)} never on shift in `cycle`")
    if start is None or m is None or not hours_ok or not cycle_ok:
        return None
    assert isinstance(cycle, list) and isinstance(hours, int | float)
    first = dt.datetime.combine(start, dt.time(int(m[1]), int(m[2])), tzinfo=SEOUL)
    return Rotation(first, float(hours), tuple(cycle))


def _overrides(
    errors: _Errors, data: Mapping[str, Any], counselors: Mapping[str, Counselor]
) -> tuple[Override, ...]:
    raw = data.get("override", [])
    if not isinstance(raw, list):
        errors.append("[[override]]: expected an array of tables")
        return ()
    overrides: list[tuple[int, Override]] = []
    for n, entry in enumerate(raw, 1):
        where = f"[[override]] #{n}"
        if not isinstance(entry, Mapping):
            errors.append(f"{where}: expected a table")
            continue
        _table_keys(errors, where, entry, {"from", "until", "off", "on", "reason"})
        start = _datetime(errors, f"{where} `from`", entry.get("from"))
        end = _datetime(errors, f"{where} `until`", entry.get("until"))
        reason = _str(errors, where, entry, "reason")
        off = _id_list(errors, f"{where} `off`", entry.get("off", []), counselors)
        on = _id_list(errors, f"{where} `on`", entry.get("on", []), counselors)
        named = entry.get("off") or entry.get("on")
        ok = errors.check(bool(named), f"{where}: names nobody in `off` or `on`")
        ok &= len(off) == len(entry.get("off", [])) and len(on) == len(entry.get("on", []))
        both = sorted(set(off) & set(on))
        ok &= errors.check(not both, f"{where}: both off and on: {', '.join(both)}")
        if start is None or end is None or reason is None:
            continue
        ok &= errors.check(
            start < end, f"{where}: `from` {start.isoformat()} is not before `until`"
        )
        if ok:
            overrides.append((n, Override(start, end, frozenset(off), frozenset(on), reason)))
    for i, (n1, a) in enumerate(overrides):
        for n2, b in overrides[i + 1 :]:
            shared = sorted((a.off | a.on) & (b.off | b.on))
            if shared and a.start < b.end and b.start < a.end:
                errors.append(
                    f"[[override]] #{n1} and #{n2}: overlapping times both name "
                    f"{', '.join(shared)}; merge them or make the times not overlap"
                )
    return tuple(o for _, o in overrides)


def parse_roster(data: Mapping[str, Any], source: str = "roster") -> Roster:
    """Validate already-parsed TOML data. `source` names the file in error messages."""
    errors = _Errors()
    _table_keys(errors, "roster", data, {"counselor", "teams", "rotation", "override"})
    counselors = _counselors(errors, data)
    teams = _teams(errors, data, counselors)
    rotation = _rotation(errors, data, teams)
    overrides = _overrides(errors, data, counselors)
    if errors or rotation is None:
        raise RosterError(f"{source}: invalid roster:\n" + "\n".join(f"  {e}" for e in errors))
    return Roster(counselors, teams, rotation, overrides)
