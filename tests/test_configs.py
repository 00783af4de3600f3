"""One source for every default: the settings build the pure machines' configurations
(ivr.configs), enumerations are enums, and the audit logger and the Seoul time zone are
declared once."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ivr.config import ConfigError, PbxMode, Settings, load_settings
from ivr.configs import ban_params, flow_config, ring_group_config
from ivr.flow.call import CONSENT_TIMER, CallFlow, FlowConfig, Play, StartTimer
from ivr.flow.events import Digit, PlaybackDone, Started
from ivr.flow.menu import load_menu
from ivr.paths import PROJECT_ROOT
from ivr.security.bans import BanParams
from ivr.staff.ringgroup import RingGroupConfig, Strategy

MENU = load_menu(PROJECT_ROOT / "config" / "menu.toml")


def _defaulted(cls: type) -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


def test_the_configs_have_no_defaults_for_what_the_settings_own() -> None:
    # Only parameters that are not settings keep a default in the pure modules.
    assert _defaulted(FlowConfig) == {"announce_position"}
    assert _defaulted(RingGroupConfig) == {"handle_time_window", "default_handle_seconds"}
    assert _defaulted(BanParams) == set()


def test_the_ring_group_takes_the_settings_defaults() -> None:
    s = Settings()
    cfg = ring_group_config(s)
    assert (cfg.long_call_seconds, cfg.long_call_wrapup_seconds) == (3600.0, 600.0)
    assert cfg.long_call_seconds == s.long_call_seconds
    assert cfg.strategy is Strategy.LONGEST_IDLE


def test_every_setting_reaches_its_config() -> None:
    s = load_settings(
        env={},
        overrides={
            "menu_input_timeout": 4,
            "menu_max_failures": 5,
            "hold_reassurance_interval": 11,
            "callback_offer_after": 12,
            "both_silence_notify": 13,
            "caller_silence_notify": 14,
            "consent_timeout": 15,
            "max_wait": 16,
            "ring_strategy": "ringall",
            "wrapup_seconds": 21,
            "abuse_wrapup_seconds": 22,
            "long_call_seconds": 23,
            "long_call_wrapup_seconds": 24,
            "no_answer_cooldown_seconds": 25,
            "max_consecutive_no_answers": 7,
            "chats_per_counselor": 3,
            "chat_during_call": True,
            "auth_ban_failures": 8,
            "auth_ban_window": 31,
            "auth_ban_seconds": 32,
            "auth_ban_exempt": ["10.1.0.0/16"],
        },
    )
    assert flow_config(s, MENU) == FlowConfig(
        menu=MENU,
        input_timeout=4.0,
        max_failures=5,
        reassurance_interval=11.0,
        callback_offer_after=12.0,
        both_silence_notify=13.0,
        caller_silence_notify=14.0,
        consent_timeout=15.0,
        max_wait=16.0,
    )
    assert ring_group_config(s) == RingGroupConfig(
        strategy=Strategy.RINGALL,
        wrapup_seconds=21.0,
        abuse_wrapup_seconds=22.0,
        long_call_seconds=23.0,
        long_call_wrapup_seconds=24.0,
        no_answer_cooldown_seconds=25.0,
        max_consecutive_no_answers=7,
        chats_per_member=3,
        chat_during_call=True,
    )
    assert ban_params(s) == BanParams(
        failures=8, window=31.0, ban_seconds=32.0, exempt=("127.0.0.1/32", "10.1.0.0/16")
    )


def test_the_consent_timeout_is_a_setting() -> None:
    s = load_settings(env={"IVR120_CONSENT_TIMEOUT": "12"})
    flow = CallFlow("c1", flow_config(s, MENU), 0.0)
    (menu,) = [c for c in flow.handle(Started(), 0.0) if isinstance(c, Play)]
    flow.handle(PlaybackDone(menu.playback_id), 1.0)
    (question,) = [c for c in flow.handle(Digit("5"), 2.0) if isinstance(c, Play)]
    assert flow.handle(PlaybackDone(question.playback_id), 20.0) == [
        StartTimer(CONSENT_TIMER, 12.0)
    ]
    assert Settings().consent_timeout == 8.0  # as before it was a setting


@pytest.mark.parametrize("value", [0, -1])
def test_a_bad_consent_timeout_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="consent_timeout: must be positive"):
        load_settings(env={}, overrides={"consent_timeout": value})


# --- enumerations -------------------------------------------------------------------------


def test_enumerations_are_enums_from_every_source(tmp_path: Path) -> None:
    assert Settings().pbx_mode is PbxMode.AUTO
    assert Settings().ring_strategy is Strategy.LONGEST_IDLE
    path = tmp_path / "ivr120.toml"
    path.write_text('pbx_mode = "root"\nring_strategy = "ringall"\n', encoding="utf-8")
    s = load_settings(path, env={})
    assert s.pbx_mode is PbxMode.ROOT and s.ring_strategy is Strategy.RINGALL
    s = load_settings(env={"IVR120_PBX_MODE": "system", "IVR120_RING_STRATEGY": "longest_idle"})
    assert s.pbx_mode is PbxMode.SYSTEM and s.ring_strategy is Strategy.LONGEST_IDLE
    assert s.pbx_mode == "system"  # a StrEnum: still equal to its text


def test_bad_enumerations_name_the_choices() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={"pbx_mode": "docker", "ring_strategy": "random"})
    assert "pbx_mode: auto, system or root" in str(info.value)
    assert "ring_strategy: longest_idle or ringall" in str(info.value)


# --- declared once ------------------------------------------------------------------------


def _sources() -> list[Path]:
    return sorted(p for d in ("ivr", "speech") for p in (PROJECT_ROOT / d).rglob("*.py"))


@pytest.mark.parametrize(
    ("pattern", "home"),
    [
        (r"getLogger\(\s*[\"']ivr\.audit[\"']", "ivr/audit.py"),
        (r"ZoneInfo\(", "ivr/timezone.py"),
    ],
)
def test_declared_in_one_module(pattern: str, home: str) -> None:
    found = [
        str(p.relative_to(PROJECT_ROOT))
        for p in _sources()
        if re.search(pattern, p.read_text(encoding="utf-8"))
    ]
    assert found in ([], [home]), found
