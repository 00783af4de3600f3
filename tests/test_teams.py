"""The follow-up teams' working hours (config/teams.toml, ivr/staff/teams.py) and the staff
driver's team groups: pure, time passed in."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ivr.config import ConfigError, load_settings
from ivr.configs import ring_group_config
from ivr.flow.menu import load_menu
from ivr.paths import CONFIG_DIR
from ivr.staff.driver import StaffDriver, StaffError, load_teams
from ivr.staff.roster import RosterError, load_roster
from ivr.staff.teams import Teams, TeamsError, check_members, parse_teams
from ivr.staff.teams import load_teams as read_teams
from ivr.timezone import SEOUL

DEFAULT = CONFIG_DIR / "teams.toml"


def seoul(y: int, mo: int, d: int, h: int, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=SEOUL)


def parse(text: str) -> Teams:
    return parse_teams(tomllib.loads(text), source="t.toml")


# ------------------------------------------------------------------ the default file
def test_default_file_matches_the_default_settings() -> None:
    settings = load_settings(env={})
    teams = load_teams(settings)  # checked against the settings: raises if it did not match
    assert len(teams.members) == len(settings.companions) == 20
    for c in settings.companions:
        assert teams.windows("companions", c), c


def test_social_workers_work_weekdays_nine_to_six_seoul_time() -> None:
    teams = read_teams(DEFAULT)
    tuesday = (2026, 12, 1)  # a Tuesday
    assert teams.on_duty("social_workers", "social01", seoul(*tuesday, 9))
    assert teams.on_duty("social_workers", "social04", seoul(*tuesday, 17, 59))
    assert not teams.on_duty("social_workers", "social01", seoul(*tuesday, 8, 59))
    assert not teams.on_duty("social_workers", "social01", seoul(*tuesday, 18))  # half-open
    assert not teams.on_duty("social_workers", "social01", seoul(2026, 12, 5, 12))  # Saturday
    assert not teams.on_duty("social_workers", "social01", seoul(2026, 12, 6, 12))  # Sunday
    # Any zone in, Seoul time used: 00:30 UTC is 09:30 in Seoul.
    utc = dt.datetime(2026, 12, 1, 0, 30, tzinfo=dt.UTC)
    assert teams.on_duty("social_workers", "social02", utc)


def test_companions_keep_their_own_hours() -> None:
    teams = read_teams(DEFAULT)
    # companion01: Monday and Wednesday mornings.
    assert teams.on_duty("companions", "companion01", seoul(2026, 11, 30, 10))  # Monday
    assert not teams.on_duty("companions", "companion01", seoul(2026, 12, 1, 10))  # Tuesday
    # Not everyone works at the same time: the schedules differ.
    monday_ten = seoul(2026, 11, 30, 10)
    on = teams.on_duty_members(
        "companions", [f"companion{n:02d}" for n in range(1, 21)], monday_ten
    )
    assert 0 < len(on) < 20, on


def test_naive_datetime_is_refused() -> None:
    teams = read_teams(DEFAULT)
    with pytest.raises(ValueError, match="time zone"):
        teams.on_duty("social_workers", "social01", dt.datetime(2026, 12, 1, 10))


# ------------------------------------------------------------------ parsing rules
def test_day_ranges_lists_korean_days_and_midnight() -> None:
    teams = parse(
        """
        [team.social_workers]
        hours = ["월-금 09:00-12:00", "mon,wed 13:00-15:00", "sun 20:00-24:00"]
        """
    )
    duty = teams.on_duty
    assert duty("social_workers", "s", seoul(2026, 12, 4, 11))  # Friday morning
    assert duty("social_workers", "s", seoul(2026, 12, 2, 14))  # Wednesday afternoon
    assert not duty("social_workers", "s", seoul(2026, 12, 1, 14))  # Tuesday afternoon
    assert duty("social_workers", "s", seoul(2026, 12, 6, 23, 59))  # Sunday before midnight
    assert not duty("social_workers", "s", seoul(2026, 12, 7, 0))  # Monday 00:00


def test_a_members_own_hours_replace_the_teams() -> None:
    teams = parse(
        """
        [team.social_workers]
        hours = ["mon-fri 09:00-18:00"]
        [member]
        social02 = ["sat 10:00-14:00"]
        """
    )
    saturday, tuesday = seoul(2026, 12, 5, 11), seoul(2026, 12, 1, 11)
    assert teams.on_duty("social_workers", "social02", saturday)
    assert not teams.on_duty("social_workers", "social02", tuesday)
    assert teams.on_duty("social_workers", "social01", tuesday)


def test_away_takes_a_member_off_duty_for_the_period_only() -> None:
    teams = parse(
        """
        [team.companions]
        hours = ["mon-sun 09:00-18:00"]
        [[away]]
        member = "companion03"
        from = 2026-12-24T00:00:00
        until = 2026-12-28T00:00:00
        reason = "휴가"
        """
    )
    assert not teams.on_duty("companions", "companion03", seoul(2026, 12, 24, 10))
    assert not teams.on_duty("companions", "companion03", seoul(2026, 12, 27, 17))
    assert teams.on_duty("companions", "companion03", seoul(2026, 12, 28, 9))
    assert teams.on_duty("companions", "companion04", seoul(2026, 12, 24, 10))


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(TeamsError) as err:
        parse(
            """
            extra = 1
            [team.social_workers]
            hours = ["mon-fri 09:00-18:00", "fri 17:00-19:00", "funday 09:00-10:00"]
            colour = "blue"
            [team.cleaners]
            hours = []
            [member]
            companion01 = ["tue 15:00-14:00"]
            companion02 = ["wed 09:00-25:00"]
            companion03 = "mon 09:00-10:00"
            [[away]]
            member = "companion04"
            from = 2026-12-24
            until = 2026-12-20T00:00:00
            """
        )
    text = str(err.value)
    for expected in (
        "unknown table(s) extra",
        "[team.social_workers]: unknown key(s) colour",
        "overlapping hours on fri",
        "'funday 09:00-10:00' is not",
        "[team.cleaners]: unknown team",
        "the end is not after the start",
        "not a time of day",
        "[member] companion03: expected a list",
        "[[away]] #1: `reason` must be",
        "[[away]] #1 `from`: expected a date and time",
    ):
        assert expected in text, (expected, text)
    assert isinstance(err.value, RosterError)  # the start-up and reload paths report it


def test_check_members_against_the_settings() -> None:
    teams = parse(
        """
        [team.social_workers]
        hours = ["mon-fri 09:00-18:00"]
        [member]
        companion01 = ["tue 10:00-12:00"]
        companion99 = ["tue 10:00-12:00"]
        [[away]]
        member = "ghost"
        from = 2026-12-24T00:00:00
        until = 2026-12-25T00:00:00
        reason = "x"
        """
    )
    staff = {"social_workers": ["social01"], "companions": ["companion01", "companion02"]}
    with pytest.raises(TeamsError) as err:
        check_members(teams, staff, "t.toml")
    text = str(err.value)
    assert "[member] companion99: not in" in text, text
    assert "[[away]] ghost: not in" in text, text
    assert "companion02 (companions): no working hours" in text, text
    assert "social01" not in text and "companion01 " not in text, text


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(TeamsError, match="not found"):
        read_teams(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[team\n", encoding="utf-8")
    with pytest.raises(TeamsError, match="not valid TOML"):
        read_teams(bad)


# ------------------------------------------------------------------ settings
def test_team_and_trunk_settings_are_validated() -> None:
    s = load_settings(env={})
    assert s.social_workers == ("social01", "social02", "social03", "social04")
    assert s.companions[0] == "companion01" and len(s.companions) == 20
    assert s.supervisors == ("supervisor01",)
    for ep in (*s.social_workers, *s.companions, *s.supervisors):
        assert ep in s.staff_endpoints
    assert (s.outbound_trunk_host, s.outbound_trunk_port) == ("127.0.0.1", 5070)
    assert s.service_caller_id == "02120"
    for overrides, name in (
        ({"companions": "trunk"}, "'trunk' and 'carrier'"),
        ({"social_workers": "counselor01"}, "duplicate endpoints"),
        ({"supervisors": "boss one"}, "letters, digits"),
        ({"outbound_trunk_port": 0}, "outbound_trunk_port"),
        ({"outbound_trunk_transport": "tls"}, "outbound_trunk_transport"),
        ({"outbound_trunk_host": "a b"}, "outbound_trunk_host"),
        ({"service_caller_id": "02-120"}, "service_caller_id"),
    ):
        with pytest.raises(ConfigError, match=name):
            load_settings(env={}, overrides=overrides)


# ------------------------------------------------------------------ the driver's teams
def driver(teams_text: str, tmp_path: Path, now: float) -> StaffDriver:
    path = tmp_path / "teams.toml"
    path.write_text(teams_text, encoding="utf-8")
    settings = load_settings(
        env={},
        overrides={
            "state_dir": tmp_path,
            "social_workers": "social01,social02",
            "companions": "companion01,companion02",
            "teams_file": path,
        },
    )
    ctx: Any = SimpleNamespace(settings=settings, clock=lambda: now)
    menu = load_menu(CONFIG_DIR / "menu.toml")
    roster = load_roster(CONFIG_DIR / "roster.toml")
    return StaffDriver(ctx, menu, roster, ring_group_config(settings))


TEAMS = """
[team.social_workers]
hours = ["mon-fri 09:00-18:00"]
[team.companions]
hours = []
[member]
companion01 = ["tue 10:00-12:00"]
companion02 = ["wed 10:00-12:00"]
"""


def test_driver_team_groups_and_who_is_on_shift(tmp_path: Path) -> None:
    tuesday_ten = seoul(2026, 12, 1, 10, 30).timestamp()
    d = driver(TEAMS, tmp_path, tuesday_ten)
    assert d.team_group("social_workers").members == ("social01", "social02")
    assert d.team_group("companions").members == ("companion01", "companion02")
    counselors = d.team_group("counselors")
    assert counselors is d.groups["loneliness"]  # follow-up calls share the inbound state
    with pytest.raises(StaffError):
        d.team_group("cleaners")
    assert d.team_on_shift("social_workers", tuesday_ten) == {"social01", "social02"}
    assert d.team_on_shift("companions", tuesday_ten) == {"companion01"}
    saturday = seoul(2026, 12, 5, 10, 30).timestamp()
    assert d.team_on_shift("social_workers", saturday) == frozenset()
    shift = d.team_on_shift("counselors", tuesday_ten)
    assert shift is not None and shift <= set(d.groups["loneliness"].members) and shift
    assert d.team_on_shift("agents", tuesday_ten) is None


def test_driver_lists_every_member_with_their_team(tmp_path: Path) -> None:
    tuesday_ten = seoul(2026, 12, 1, 10, 30).timestamp()
    d = driver(TEAMS, tmp_path, tuesday_ten)
    d.registrations = SimpleNamespace(  # type: ignore[assignment]
        get=lambda m: SimpleNamespace(online=False, since=None)
    )
    listed = {m["member"]: m for m in d.members()}
    assert listed["social01"]["team"] == "social_workers" and listed["social01"]["on_shift"]
    assert listed["companion01"]["team"] == "companions" and listed["companion01"]["on_shift"]
    assert listed["companion02"]["team"] == "companions"
    assert not listed["companion02"]["on_shift"]
    assert listed["counselor01"]["team"] == "counselors"
    assert listed["agent01"]["team"] == "agents"
    # Team members start logged in (their working hours decide when they are offered calls).
    assert listed["social01"]["logged_in"] and listed["companion02"]["logged_in"]
    assert listed["social01"]["queue"] is None and listed["counselor01"]["queue"] == "loneliness"


def test_driver_refuses_a_teams_file_that_does_not_match_the_settings(tmp_path: Path) -> None:
    with pytest.raises(TeamsError, match="companion02 \\(companions\\): no working hours"):
        driver(TEAMS.replace('companion02 = ["wed 10:00-12:00"]', ""), tmp_path, 0.0)


def test_admin_listing_shows_each_members_team() -> None:
    from ivr import admin

    base = {"on_shift": True, "logged_in": True, "paused": False, "state": "idle"}
    out = admin.render(
        "counselors",
        [
            {"member": "counselor01", "team": "counselors", **base},
            {"member": "social01", "team": "social_workers", **base},
            {"member": "companion07", "team": "companions", **base, "on_shift": False},
        ],
    )
    assert "팀 team" in out.splitlines()[0], out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "상담사" in lines["counselor01"], out
    assert "사회복지사" in lines["social01"], out
    assert "동행단" in lines["companion07"] and "아니요" in lines["companion07"], out


def test_reload_reads_and_checks_the_teams_file(tmp_path: Path) -> None:
    from ivr.paths import project_file
    from ivr.reload import REQUIRED_PROMPTS, ReloadError, load_files

    path = tmp_path / "teams.toml"
    path.write_text(TEAMS, encoding="utf-8")
    overrides = {"social_workers": "social01", "companions": "companion01,companion02"}
    settings = load_settings(env={}, overrides={**overrides, "teams_file": path})
    files = load_files(settings, REQUIRED_PROMPTS, project_file)
    assert files.teams is not None and set(files.teams.members) == {"companion01", "companion02"}
    path.write_text(TEAMS.replace("10:00-12:00", "12:00-10:00"), encoding="utf-8")
    with pytest.raises(ReloadError, match="the end is not after the start"):
        load_files(settings, REQUIRED_PROMPTS, project_file)
