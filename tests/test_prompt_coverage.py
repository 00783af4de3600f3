"""Every prompt the product can play exists in the catalog and has audio after a build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr import speak_ko
from ivr.app import REQUIRED_PROMPTS
from ivr.flow.menu import load_menu
from ivr.flow.states import FLOW_PROMPTS
from ivr.paths import DIALPLAN_TEMPLATES, PROJECT_ROOT
from ivr.prompts.build import build, prompt_paths
from ivr.prompts.catalog import load_catalog


def dialplan_prompts() -> set[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in DIALPLAN_TEMPLATES.glob("*.j2"))
    return set(re.findall(r"Playback\(ivr120/(\w+)\)", text))


def named_prompts() -> set[str]:
    menu = load_menu(PROJECT_ROOT / "config" / "menu.toml")
    return set(REQUIRED_PROMPTS) | menu.prompt_ids() | dialplan_prompts()


def test_the_app_requires_what_the_flow_and_dialplan_play() -> None:
    assert FLOW_PROMPTS <= REQUIRED_PROMPTS
    assert speak_ko.all_piece_ids() <= REQUIRED_PROMPTS
    assert dialplan_prompts() <= REQUIRED_PROMPTS
    assert {"service_unavailable", "system_error", "feature_denied"} <= dialplan_prompts()


def test_every_named_prompt_is_in_the_catalog() -> None:
    load_catalog().require(sorted(named_prompts()))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sounds")
    build(load_catalog(), out, PROJECT_ROOT / "prompts" / "studio")
    return out


def test_every_named_prompt_has_audio(built: Path) -> None:
    missing = [
        pid
        for pid in sorted(named_prompts())
        if not all(p.exists() for p in prompt_paths(built, pid))
    ]
    assert missing == []
