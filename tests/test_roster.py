"""The roster (ivr.staff.roster): who is on shift when, overrides, and what a bad file is told."""

from __future__ import annotations

import copy
import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.config import Settings
from ivr.staff.roster import (
    DEFAULT_ROSTER_PATH,
    SEOUL,
    Roster,
    RosterError,
    current_shift,
    load_roster,
    on_shift,
    on_shift_ids,
    parse_roster,
)

TEAM_A = {"counselor01", "counselor02", "counselor03", "counselor04"}
TEAM_B = {"counselor05", "counselor06", "counselor07", "counselor08"}
TEAM_C = {"counselor09", "counselor10", "counselor11"}
TEAM_D = {"counselor12", "counselor13", "counselor14"}


def seoul(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, sec, tzinfo=SEOUL)


def base_data() -> dict[str, Any]:
    """A small roster as parsed TOML: four counselors, two teams of two, 24-hour shifts."""
    return {
        "counselor": [
            {"id": f"c{n}", "name": f"상담사 {n}", "endpoint": f"ep{n}"} for n in range(1, 5)
        ],
        "teams": {"A": ["c1", "c2"], "B": ["c3", "c4"]},
        "rotation": {
            "start": dt.date(2025, 4, 1),
            "shift_start": "09:00",
            "shift_hours": 24,
            "cycle": ["A", "B"],
        },
    }


def with_overrides(*overrides: dict[str, Any]) -> Roster:
    data = base_data()
    data["override"] = list(overrides)
    return parse_roster(data)


# --------------------------------------------------------------------------- the real file


def test_default_roster_has_fourteen_counselors_matching_the_settings() -> None:
    roster = load_roster()
    assert len(roster.counselors) == 14
    assert roster.endpoints == set(Settings().counselors)
    assert all(c.name for c in roster.counselors.values())


def test_default_rotation_hands_over_at_nine_in_the_morning() -> None:
    roster = load_roster()
    assert on_shift(roster, seoul(2025, 4, 1, 9)) == TEAM_A
    assert on_shift(roster, seoul(2025, 4, 2, 8, 59, 59)) == TEAM_A
    assert on_shift(roster, seoul(2025, 4, 2, 9)) == TEAM_B  # the instant of the change
    assert on_shift(roster, seoul(2025, 4, 3, 9)) == TEAM_C
    assert on_shift(roster, seoul(2025, 4, 4, 9)) == TEAM_D
    assert on_shift(roster, seoul(2025, 4, 5, 9)) == TEAM_A  # the cycle starts over
    assert on_shift(roster, seoul(2025, 4, 1, 8, 59)) == TEAM_D  # before `start`, backwards


@settings(deadline=None)
@given(st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31)))
def test_default_rotation_always_has_several_counselors_and_nobody_works_two_in_a_row(
    naive: dt.datetime,
) -> None:
    roster = load_roster()
    when = naive.replace(tzinfo=SEOUL)
    now_on = on_shift(roster, when)
    assert 3 <= len(now_on) <= 4
    shift = current_shift(roster, when)
    assert shift.start <= when < shift.end
    assert shift.end - shift.start == dt.timedelta(hours=24)
    assert (shift.start.hour, shift.start.minute) == (9, 0)
    assert not now_on & on_shift(roster, shift.end)  # a 24-hour shift, then time off
    assert not now_on & on_shift(roster, shift.start - dt.timedelta(seconds=1))


def test_any_time_zone_is_accepted_and_converted() -> None:
    roster = load_roster()
    utc = dt.datetime(2025, 4, 2, 0, 0, tzinfo=dt.UTC)  # = 09:00 in Seoul
    assert on_shift(roster, utc) == TEAM_B
    assert on_shift(roster, utc - dt.timedelta(microseconds=1)) == TEAM_A
    berlin = dt.datetime(2025, 4, 2, 2, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # CEST, 09:00 KST
    assert on_shift(roster, berlin) == TEAM_B


def test_naive_datetime_is_refused() -> None:
    roster = load_roster()
    with pytest.raises(ValueError, match="time zone"):
        on_shift(roster, dt.datetime(2025, 4, 2, 9))
    with pytest.raises(TypeError):
        on_shift(roster, dt.date(2025, 4, 2))  # type: ignore[arg-type]


def test_examples_in_the_default_file_are_valid_and_do_what_they_say() -> None:
    text = DEFAULT_ROSTER_PATH.read_text(encoding="utf-8")
    examples = re.findall(r"^# (\[\[override\]\].*|\w+ = .*)$", text, flags=re.M)
    data = tomllib.loads(text + "\n" + "\n".join(examples) + "\n")
    roster = parse_roster(data)
    assert len(roster.overrides) == 3
    sick = on_shift(roster, seoul(2025, 4, 10, 12))
    assert sick == (TEAM_B - {"counselor06"}) | {"counselor13"}
    assert on_shift(roster, seoul(2025, 4, 11, 9)) == TEAM_C  # the override has ended
    assert on_shift(roster, seoul(2025, 4, 14, 12)) == (TEAM_B - {"counselor05"}) | {"counselor12"}
    assert on_shift(roster, seoul(2025, 4, 16, 12)) == (TEAM_D - {"counselor12"}) | {"counselor05"}


# --------------------------------------------------------------------------- overrides


def test_override_applies_within_its_half_open_range_only() -> None:
    roster = with_overrides(
        {
            "from": dt.datetime(2025, 4, 1, 21, 0),
            "until": dt.datetime(2025, 4, 2, 3, 0),
            "off": ["c2"],
            "on": ["c3"],
            "reason": "sick leave for the night",
        }
    )
    assert on_shift_ids(roster, seoul(2025, 4, 1, 20, 59)) == {"c1", "c2"}
    assert on_shift_ids(roster, seoul(2025, 4, 1, 21, 0)) == {"c1", "c3"}
    assert on_shift_ids(roster, seoul(2025, 4, 2, 2, 59)) == {"c1", "c3"}
    assert on_shift_ids(roster, seoul(2025, 4, 2, 3, 0)) == {"c1", "c2"}
    assert on_shift(roster, seoul(2025, 4, 1, 22)) == {"ep1", "ep3"}  # endpoints, not ids


def test_override_with_offset_datetimes_and_extra_cover() -> None:
    roster = with_overrides(
        {
            "from": dt.datetime(2025, 4, 2, 0, 0, tzinfo=dt.UTC),  # 09:00 Seoul
            "until": dt.datetime(2025, 4, 2, 12, 0, tzinfo=dt.UTC),
            "on": ["c1"],
            "reason": "extra cover",
        }
    )
    assert on_shift_ids(roster, seoul(2025, 4, 2, 9)) == {"c1", "c3", "c4"}
    assert on_shift_ids(roster, seoul(2025, 4, 2, 21)) == {"c3", "c4"}


def test_overlapping_overrides_with_different_counselors_combine() -> None:
    roster = with_overrides(
        {
            "from": dt.datetime(2025, 4, 1, 9),
            "until": dt.datetime(2025, 4, 2, 9),
            "off": ["c1"],
            "reason": "leave",
        },
        {
            "from": dt.datetime(2025, 4, 1, 12),
            "until": dt.datetime(2025, 4, 1, 18),
            "off": ["c2"],
            "on": ["c4"],
            "reason": "appointment",
        },
    )
    assert on_shift_ids(roster, seoul(2025, 4, 1, 10)) == {"c2"}
    assert on_shift_ids(roster, seoul(2025, 4, 1, 12)) == {"c4"}
    assert on_shift_ids(roster, seoul(2025, 4, 1, 18)) == {"c2"}


def test_rotation_of_twelve_hour_shifts_and_a_cycle_with_repeats() -> None:
    data = base_data()
    data["rotation"] = {
        "start": dt.date(2025, 4, 1),
        "shift_start": "07:30",
        "shift_hours": 12,
        "cycle": ["A", "A", "B"],
    }
    roster = parse_roster(data)
    assert on_shift_ids(roster, seoul(2025, 4, 1, 7, 30)) == {"c1", "c2"}
    assert on_shift_ids(roster, seoul(2025, 4, 1, 19, 30)) == {"c1", "c2"}
    assert on_shift_ids(roster, seoul(2025, 4, 2, 7, 30)) == {"c3", "c4"}
    assert on_shift_ids(roster, seoul(2025, 4, 2, 19, 29)) == {"c3", "c4"}
    assert on_shift_ids(roster, seoul(2025, 4, 2, 19, 30)) == {"c1", "c2"}
    shift = current_shift(roster, seoul(2025, 4, 2, 8))
    assert (shift.index, shift.team) == (2, "B")
    assert shift.start == seoul(2025, 4, 2, 7, 30) and shift.end == seoul(2025, 4, 2, 19, 30)


# --------------------------------------------------------------------------- validation


def errors_of(data: dict[str, Any]) -> str:
    with pytest.raises(RosterError) as info:
        parse_roster(data, source="roster.toml")
    message = str(info.value)
    assert message.startswith("roster.toml: invalid roster:")
    return message


def test_unknown_counselor_in_a_team() -> None:
    data = base_data()
    data["teams"]["B"] = ["c3", "c9"]
    assert "[teams] B: unknown counselor(s) c9" in errors_of(data)


def test_counselor_in_two_teams_and_empty_team() -> None:
    data = base_data()
    data["teams"] = {"A": ["c1", "c2"], "B": ["c2", "c3"], "C": []}
    data["rotation"]["cycle"] = ["A", "B", "C"]
    msg = errors_of(data)
    assert "[teams] B: c2 is already in team A" in msg
    assert "[teams] C: a team needs at least one counselor" in msg


def test_bad_counselors() -> None:
    data = base_data()
    data["counselor"] += [
        {"id": "c1", "name": "again", "endpoint": "ep9"},
        {"id": "c5", "name": "shares", "endpoint": "ep2"},
        {"id": "c 6", "name": "x", "endpoint": "ep6"},
        {"id": "c7", "endpoint": "ep7"},
        {"id": "c8", "name": "x", "endpoint": "ep8", "phone": "1"},
    ]
    msg = errors_of(data)
    assert "[[counselor]] c1: duplicate counselor id" in msg
    assert "[[counselor]] c5: endpoint ep2 is already used by c2" in msg
    assert "[[counselor]] c 6: id must be letters, digits, - and _" in msg
    assert "[[counselor]] #8: missing `name`" in msg
    assert "[[counselor]] #9: unknown key(s) phone" in msg


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"shift_start": "9:00"}, '`shift_start` must be a time "HH:MM"'),
        ({"shift_start": "24:00"}, '`shift_start` must be a time "HH:MM"'),
        ({"shift_hours": 0}, "`shift_hours` must be a number of hours above 0"),
        ({"shift_hours": "24"}, "`shift_hours` must be a number of hours above 0"),
        ({"start": "2025-04-01"}, "`start` must be a date like 2025-04-01"),
        ({"start": dt.datetime(2025, 4, 1, 9)}, "`start` must be a date like 2025-04-01"),
        ({"cycle": []}, "`cycle` must be a non-empty list of team names"),
        ({"cycle": ["A", "B", "X"]}, "`cycle` names unknown team(s) X"),
        ({"cycle": ["A"]}, "team(s) B never on shift in `cycle`"),
        ({"weekly": {}}, "[rotation]: unknown key(s) weekly"),
    ],
)
def test_bad_rotation(change: dict[str, Any], expected: str) -> None:
    data = base_data()
    data["rotation"].update(change)
    assert expected in errors_of(data)


def test_missing_sections() -> None:
    msg = errors_of({"extra": 1})
    assert "roster: unknown key(s) extra" in msg
    assert "[[counselor]]: the roster needs at least one counselor" in msg
    assert "[teams]: missing" in msg
    assert "[rotation]: missing" in msg


OVERRIDE = {
    "from": dt.datetime(2025, 4, 1, 9),
    "until": dt.datetime(2025, 4, 2, 9),
    "off": ["c1"],
    "reason": "sick leave",
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"until": dt.datetime(2025, 4, 1, 9)}, "`from` 2025-04-01T09:00:00+09:00 is not before"),
        ({"until": dt.datetime(2025, 3, 1, 9)}, "is not before `until`"),
        ({"from": dt.date(2025, 4, 1)}, "`from`: 2025-04-01 is a date; give a date and time"),
        ({"until": "tomorrow"}, "`until`: expected a date and time like"),
        ({"from": None}, "`from`: missing"),
        ({"off": ["c1", "c9"]}, "`off`: unknown counselor(s) c9"),
        ({"off": "c1"}, "`off`: expected a list of counselor ids"),
        ({"off": [], "on": []}, "names nobody in `off` or `on`"),
        ({"on": ["c1"]}, "both off and on: c1"),
        ({"on": ["c3", "c3"]}, "`on`: listed twice: c3"),
        ({"reason": ""}, "`reason` must be a non-empty string"),
        ({"who": "x"}, "unknown key(s) who"),
    ],
)
def test_bad_override(change: dict[str, Any], expected: str) -> None:
    entry = {k: v for k, v in {**OVERRIDE, **change}.items() if v is not None}
    data = base_data()
    data["override"] = [entry]
    msg = errors_of(data)
    assert "[[override]] #1" in msg
    assert expected in msg


def test_overlapping_overrides_naming_the_same_counselor_conflict() -> None:
    data = base_data()
    second = copy.deepcopy(OVERRIDE)
    second.update(
        {"from": dt.datetime(2025, 4, 2, 8), "until": dt.datetime(2025, 4, 3, 9), "on": ["c3"]}
    )
    second["off"] = []
    third = {**OVERRIDE, "from": dt.datetime(2025, 4, 2, 9), "until": dt.datetime(2025, 4, 2, 10)}
    fourth = {**OVERRIDE, "off": ["c3"], "from": dt.datetime(2025, 4, 2, 8, 30)}
    data["override"] = [OVERRIDE, second, third, fourth]
    msg = errors_of(data)
    # #1 and #3 touch (09:00 is #1's end) but do not overlap; #2 and #4 share c3 from 08:30.
    assert "[[override]] #2 and #4: overlapping times both name c3" in msg
    assert "#1 and #3" not in msg
    assert "#1 and #2" not in msg  # overlapping times, different counselors
    assert "#1 and #4" not in msg


def test_every_problem_is_reported_at_once() -> None:
    data = base_data()
    data["teams"]["A"] = ["c1", "nobody"]
    data["rotation"]["shift_start"] = "noon"
    data["override"] = [{**OVERRIDE, "off": ["ghost"]}]
    msg = errors_of(data)
    assert msg.count("\n") == 3


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RosterError, match="roster not found"):
        load_roster(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[teams\n", encoding="utf-8")
    with pytest.raises(RosterError, match="not valid TOML"):
        load_roster(bad)
    invalid = tmp_path / "invalid.toml"
    invalid.write_text("[teams]\nA = []\n", encoding="utf-8")
    with pytest.raises(RosterError, match=r"invalid\.toml: invalid roster"):
        load_roster(invalid)
