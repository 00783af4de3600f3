"""The partner-agency catalog (pure): the shipped file loads, and every problem in a bad file
is reported at once, in Korean and English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.app import Options, build_app
from ivr.config import load_settings
from ivr.followup.agencies import CATEGORIES, AgencyError, load_agencies, parse_agencies
from ivr.paths import CONFIG_DIR, project_file
from ivr.reload import REQUIRED_PROMPTS, ReloadError, load_files

GOOD = {
    "id": "test-housing",
    "name": "시험 주거센터",
    "category": "주거",
    "district": "종로구",
    "contact": "02-000-0000",
    "hours": "평일 09:00–18:00",
}


def test_the_shipped_catalog_loads_with_every_category_and_no_personal_numbers() -> None:
    agencies = load_agencies(CONFIG_DIR / "agencies.toml")
    assert len(agencies) >= 10
    assert {a.category for a in agencies} == set(CATEGORIES)
    for a in agencies:
        # Placeholders (02-000-xxxx) or public helplines' short/main numbers, never a mobile.
        assert not a.contact.startswith("010"), a
        assert re.fullmatch(r"02-000-\d{4}|\d{3}|1\d{3}-\d{4}", a.contact), a


def test_a_good_entry_is_read_with_its_english_category() -> None:
    agencies = parse_agencies({"agency": [GOOD]})
    a = agencies.get("test-housing")
    assert a is not None and a.category_en == "housing" and a.note == ""
    assert a.view()["category_en"] == "housing"


def test_select_by_category_in_either_language_and_district_includes_citywide() -> None:
    city = {**GOOD, "id": "city", "district": "서울시"}
    other = {**GOOD, "id": "mapo", "district": "마포구"}
    legal = {**GOOD, "id": "law", "category": "법률"}
    agencies = parse_agencies({"agency": [GOOD, city, other, legal]})
    assert [a.id for a in agencies.select("housing", "종로구")] == ["test-housing", "city"]
    assert [a.id for a in agencies.select("법률")] == ["law"]


def test_every_problem_is_reported_at_once_in_korean_and_english() -> None:
    bad = [
        {**GOOD, "category": "교통"},
        {**GOOD, "id": "b", "district": "부산진구"},
        {**GOOD, "id": "c", "contact": "call me"},
        {k: v for k, v in GOOD.items() if k != "hours"} | {"id": "d"},
        {**GOOD, "id": "e f", "colour": "red"},
        GOOD,
        GOOD,
    ]
    with pytest.raises(AgencyError) as err:
        parse_agencies({"agency": bad}, source="agencies.toml")
    lines = str(err.value).splitlines()
    assert lines[0] == "agencies.toml: 기관 목록 오류 — invalid agency catalog:"
    text = str(err.value)
    for expected in (
        "알 수 없는 분류 '교통' — unknown category",
        "서울의 자치구가 아닙니다 '부산진구' — not a Seoul district",
        "연락처 형식이 잘못되었습니다 'call me'",
        "`hours` 항목이 없습니다 — missing `hours`",
        "unknown key(s) colour",
        "id must be letters, digits, - and _",
        "duplicate agency id test-housing",
    ):
        assert expected in text, text
    assert len(lines) == 1 + 7, lines


def test_an_empty_or_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgencyError, match="at least one agency"):
        parse_agencies({})
    with pytest.raises(AgencyError, match="agency catalog not found"):
        load_agencies(tmp_path / "none.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[[agency]\n", encoding="utf-8")
    with pytest.raises(AgencyError, match="not valid TOML"):
        load_agencies(broken)


def _bad_catalog(tmp_path: Path) -> Path:
    bad = tmp_path / "agencies.toml"
    bad.write_text(
        '[[agency]]\nid = "x"\nname = "엑스"\ncategory = "교통"\ndistrict = "종로구"\n'
        'contact = "02-000-0000"\nhours = "24시간"\n',
        encoding="utf-8",
    )
    return bad


def test_a_bad_catalog_stops_the_start_with_its_message(tmp_path: Path) -> None:
    settings = load_settings(
        env={},
        overrides={"state_dir": tmp_path / "state", "agencies_file": _bad_catalog(tmp_path)},
    )
    with pytest.raises(AgencyError, match="unknown category"):
        build_app(settings, Options(manage_pbx=False, run_controller=False))


def test_reload_reads_the_catalog_and_refuses_a_bad_one(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"state_dir": tmp_path / "state"})
    files = load_files(settings, REQUIRED_PROMPTS, project_file)
    assert files.agencies.get("welfare-129") is not None
    bad = load_settings(
        env={},
        overrides={"state_dir": tmp_path / "state", "agencies_file": _bad_catalog(tmp_path)},
    )
    with pytest.raises(ReloadError, match="알 수 없는 분류 '교통' — unknown category"):
        load_files(bad, REQUIRED_PROMPTS, project_file)
