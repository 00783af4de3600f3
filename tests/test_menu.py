"""The menu as data (ivr.flow.menu): the real file, and what a malformed one is told."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ivr.flow.menu import MenuError, load_menu, parse_menu
from ivr.paths import PROJECT_ROOT
from ivr.prompts.catalog import MissingPromptError, load_catalog

MENU_FILE = PROJECT_ROOT / "config" / "menu.toml"


def test_real_menu_loads() -> None:
    menu = load_menu(MENU_FILE)
    assert [o.digit for o in menu.options] == ["5", "1", "2", "3", "0"]  # the loneliness line first
    five = menu.option("5")
    assert five is not None and five.queue == "loneliness"
    assert menu.option("9") is None
    assert menu.option("*") is None
    assert set(menu.queues) == {"loneliness", "general"}
    assert menu.queues["loneliness"].members == "counselors"
    assert menu.queues["general"].members == "agents"
    assert menu.greeting == ("welcome",)
    assert menu.option_prompts[-1] == menu.repeat_hint == "menu_repeat"


def test_every_prompt_of_the_real_menu_is_in_the_catalog() -> None:
    menu = load_menu(MENU_FILE)
    catalog = load_catalog(PROJECT_ROOT / "prompts" / "catalog.toml")
    ids = menu.prompt_ids()
    assert {"welcome", "menu_5", "loneliness_intro", "hold_reassurance"} <= ids
    catalog.require(ids)  # raises MissingPromptError naming what is missing


def test_catalog_check_names_a_missing_prompt() -> None:
    data = _valid()
    data["option"][0]["prompt"] = "menu_42"
    menu = parse_menu(data)
    with pytest.raises(MissingPromptError, match="menu_42"):
        load_catalog().require(menu.prompt_ids())


_VALID: dict[str, Any] = {
    "greeting": ["welcome"],
    "repeat_hint": "menu_repeat",
    "option": [
        {"digit": "1", "prompt": "menu_1", "queue": "general"},
        {"digit": "5", "prompt": "menu_5", "queue": "loneliness"},
    ],
    "queues": {
        "loneliness": {"intro": "loneliness_intro", "members": "counselors"},
        "general": {"intro": "general_intro", "members": "agents", "whisper": "w"},
    },
}


def _valid() -> dict[str, Any]:
    return copy.deepcopy(_VALID)


def test_minimal_menu_defaults() -> None:
    menu = parse_menu(_valid())
    q = menu.queues["loneliness"]
    assert q.reassurance == "hold_reassurance"
    assert q.whisper == ""
    assert "" not in menu.prompt_ids()
    assert "w" in menu.prompt_ids()


def _dup_digit(d: dict[str, Any]) -> None:
    d["option"][1]["digit"] = "1"


def _unknown_queue(d: dict[str, Any]) -> None:
    d["option"][1]["queue"] = "sales"


def _digit(value: object) -> Any:
    def change(d: dict[str, Any]) -> None:
        d["option"][0]["digit"] = value

    return change


def _no_queues(d: dict[str, Any]) -> None:
    del d["queues"]


def _empty_queues(d: dict[str, Any]) -> None:
    d["queues"] = {}


def _no_options(d: dict[str, Any]) -> None:
    del d["option"]


def _no_intro(d: dict[str, Any]) -> None:
    del d["queues"]["general"]["intro"]


def _bad_members(d: dict[str, Any]) -> None:
    d["queues"]["general"]["members"] = "everyone"


def _no_prompt(d: dict[str, Any]) -> None:
    d["option"][0]["prompt"] = ""


def _bad_greeting(d: dict[str, Any]) -> None:
    d["greeting"] = "welcome"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_dup_digit, r"digit 1 is used twice"),
        (_unknown_queue, r"queue 'sales' is not defined"),
        (_digit("*"), r"option 1: digit must be one of 0-9 or # \(got '\*'\)"),
        (_digit("12"), r"option 1: digit .*'12'"),
        (_digit(""), r"option 1: digit"),
        (_digit(1), r"option 1: digit .*got 1\)"),
        (_no_queues, r"needs a \[queues\.NAME\] table"),
        (_empty_queues, r"needs a \[queues\.NAME\] table"),
        (_no_options, r"needs at least one \[\[option\]\]"),
        (_no_intro, r"queue 'general' needs an intro prompt"),
        (_bad_members, r"queue 'general': members must be"),
        (_no_prompt, r"option 1: needs a prompt id"),
        (_bad_greeting, r"greeting must be a list"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_malformed_menu_is_rejected_with_a_message(change: Any, message: str) -> None:
    data = _valid()
    change(data)
    with pytest.raises(MenuError, match=message) as info:
        parse_menu(data, "menu.toml")
    assert str(info.value).startswith("menu.toml: ")
    assert isinstance(info.value, ValueError)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "menu.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_file_names_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
[[option]]
digit = "5"
prompt = "menu_5"
queue = "loneliness"

[[option]]
digit = "5"
prompt = "menu_1"
queue = "loneliness"

[queues.loneliness]
intro = "loneliness_intro"
members = "counselors"
""",
    )
    with pytest.raises(MenuError, match=r"option 2: digit 5 is used twice") as info:
        load_menu(path)
    assert str(path) in str(info.value)


def test_invalid_toml_is_a_menu_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "[[option]\ndigit = 5\n")
    with pytest.raises(MenuError, match="not valid TOML"):
        load_menu(path)


def test_missing_file_is_a_menu_error(tmp_path: Path) -> None:
    with pytest.raises(MenuError, match="cannot read menu file"):
        load_menu(tmp_path / "nope.toml")
