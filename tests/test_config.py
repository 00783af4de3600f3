"""Settings (ivr.config): defaults < TOML file < environment < overrides, and bad values.

Also the caller-number hash (ivr.privacy), which guards what settings-driven logs contain.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from ivr import config_example
from ivr.config import ConfigError, Settings, load_settings
from ivr.config_example import render_example
from ivr.paths import PROJECT_ROOT
from ivr.privacy import caller_hash


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr120.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- defaults and sources -----------------------------------------------------------------


def test_defaults_validate() -> None:
    s = Settings().validate()
    assert s.sip_port == 5060
    assert s.http_bind == "127.0.0.1"
    assert s.ari_url == "http://127.0.0.1:8088/ari"
    assert len(s.counselors) == 14 and s.counselors[0] == "counselor01"
    assert load_settings(env={}) == s


def test_example_config_file_loads_as_the_defaults() -> None:
    example = PROJECT_ROOT / "config" / "ivr120.example.toml"
    assert load_settings(example, env={}) == Settings()


def test_example_config_file_is_generated_from_the_settings() -> None:
    """The committed example is what `python -m ivr.config_example` renders: every key, its
    default and its documentation. Regenerate with
    `python -m ivr.config_example > config/ivr120.example.toml`."""
    example = PROJECT_ROOT / "config" / "ivr120.example.toml"
    assert example.read_text(encoding="utf-8") == render_example(), (
        "config/ivr120.example.toml is out of date: "
        "python -m ivr.config_example > config/ivr120.example.toml"
    )
    keys = {
        line.split("=")[0].strip()
        for line in example.read_text(encoding="utf-8").splitlines()
        if line and line[0].isalpha()
    }
    assert keys == {f.name for f in dataclasses.fields(Settings)}
    assert config_example.main(["--check"]) == 0


def test_file_values_are_typed(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        """
sip_port = 5070
menu_input_timeout = 4
state_dir = "/srv/ivr"
counselors = ["c1", "c2"]
log_level = "DEBUG"
""",
    )
    s = load_settings(path, env={})
    assert s.sip_port == 5070
    assert s.menu_input_timeout == 4.0 and isinstance(s.menu_input_timeout, float)
    assert s.state_dir == Path("/srv/ivr")
    assert s.counselors == ("c1", "c2")
    assert s.log_level == "DEBUG"


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    path = _toml(tmp_path, "sip_port = 5070\nhttp_port = 8090\nstatus_port = 8091\n")
    env = {"IVR120_SIP_PORT": "5080", "IVR120_HTTP_PORT": "8092", "UNRELATED": "x"}

    s = load_settings(path, env={})
    assert (s.sip_port, s.http_port, s.status_port) == (5070, 8090, 8091)

    s = load_settings(path, env=env)
    assert (s.sip_port, s.http_port, s.status_port) == (5080, 8092, 8091)

    s = load_settings(path, env=env, overrides={"sip_port": 5090, "http_port": None})
    assert (s.sip_port, s.http_port, s.status_port) == (5090, 8092, 8091)


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'instance = "test-1"\n')
    s = load_settings(env={"IVR120_CONFIG": str(path)})
    assert s.instance == "test-1"
    # An explicit file wins over IVR120_CONFIG.
    other = tmp_path / "other.toml"
    other.write_text('instance = "test-2"\n', encoding="utf-8")
    assert load_settings(other, env={"IVR120_CONFIG": str(path)}).instance == "test-2"


def test_environment_lists_are_comma_separated() -> None:
    s = load_settings(env={"IVR120_COUNSELORS": "a1, a2,,a3", "IVR120_AGENTS": "b1"})
    assert s.counselors == ("a1", "a2", "a3")
    assert s.agents == ("b1",)


# --- bad values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"overrides": {"sip_port": 70000}}, "sip_port"),
        ({"overrides": {"http_port": 0}}, "http_port"),
        ({"env": {"IVR120_SIP_PORT": "five"}}, "IVR120_SIP_PORT"),
        ({"env": {"IVR120_SIP_PORT": "five"}}, "sip_port"),
        ({"env": {"IVR120_RING_TIMEOUT": "soon"}}, "ring_timeout"),
        ({"env": {"IVR120_NOT_A_SETTING": "1"}}, "not_a_setting"),
        ({"overrides": {"sip_bind": "999.1.1.1"}}, "sip_bind"),
        ({"overrides": {"http_bind": "localhost"}}, "http_bind"),
        ({"overrides": {"carrier_addresses": ["10.0.0.0/33"]}}, "carrier_addresses"),
        ({"overrides": {"carrier_addresses": []}}, "carrier_addresses"),
        ({"overrides": {"http_port": 5060}}, "sip_port, http_port and status_port must differ"),
        ({"overrides": {"status_port": 8088}}, "must differ"),
        ({"overrides": {"rtp_port_start": 20000}}, "rtp_port_start"),
        ({"overrides": {"rtp_timeout": 5}}, "rtp_timeout"),
        ({"overrides": {"pbx_mode": "docker"}}, "pbx_mode"),
        ({"overrides": {"counselors": []}}, "counselors"),
        ({"overrides": {"counselors": ["bad name"]}}, "counselors/agents"),
        ({"overrides": {"agents": ["counselor01"]}}, "duplicate endpoints"),
        ({"overrides": {"menu_input_timeout": 0}}, "menu_input_timeout"),
        ({"overrides": {"menu_max_failures": 0}}, "menu_max_failures"),
        ({"overrides": {"log_level": "LOUD"}}, "log_level"),
        ({"overrides": {"instance": "a b"}}, "instance"),
        ({"overrides": {"sip_port": True}}, "sip_port"),
    ],
)
def test_bad_values_name_the_setting(kwargs: dict[str, Any], setting: str) -> None:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_settings(**kwargs)
    assert setting in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"http_bind": "0.0.0.0"}, "http_bind"),
        ({"http_bind": "192.168.1.10"}, "http_bind"),
        ({"http_bind": "::"}, "http_bind"),
        ({"carrier_addresses": ["0.0.0.0/0"]}, "carrier_addresses"),
        ({"carrier_addresses": ["203.0.113.7/32", "10.0.0.0/8"]}, "carrier_addresses"),
        ({"carrier_addresses": ["::/0"]}, "carrier_addresses"),
    ],
)
def test_public_exposure_is_refused_unless_allowed(overrides: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError, match="allow_public_exposure") as info:
        load_settings(env={}, overrides=overrides)
    assert setting in str(info.value)
    s = load_settings(env={}, overrides={**overrides, "allow_public_exposure": True})
    assert [name for name, _ in s.exposure()] == [setting]


def test_narrow_carrier_networks_and_loopback_are_not_exposure() -> None:
    s = load_settings(
        env={},
        overrides={
            "http_bind": "127.0.0.2",
            "carrier_addresses": ["203.0.113.0/24", "10.1.0.0/16"],
        },
    )
    assert s.exposure() == []
    assert Settings().exposure() == []


def test_public_exposure_from_a_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'http_bind = "0.0.0.0"\ncarrier_addresses = ["0.0.0.0/0"]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "http_bind" in str(info.value) and "0.0.0.0/0" in str(info.value)


@pytest.mark.parametrize("reasons", [[], ["a b"], [f"r{n}" for n in range(10)]])
def test_bad_pause_reasons(reasons: list[str]) -> None:
    with pytest.raises(ConfigError, match="pause_reasons"):
        load_settings(env={}, overrides={"pause_reasons": reasons})


def test_all_errors_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={}, overrides={"sip_port": 70000, "sip_bind": "nowhere"})
    assert "sip_port" in str(info.value) and "sip_bind" in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip_port = 70000\n", "sip_port"),
        ('sip_port = "fast"\n', "sip_port"),
        ("sip_prot = 5070\n", "unknown setting 'sip_prot'"),
        ('sip_bind = "300.0.0.1"\n', "sip_bind"),
        ("counselors = 5\n", "counselors"),
        ("log_level = 3\n", "log_level"),
        ("sip_port = 5060\nhttp_port = 5060\n", "must differ"),
        ("sip_port = \n", "not valid TOML"),
        ("[section\n", "not valid TOML"),
    ],
)
def test_bad_file_values(tmp_path: Path, text: str, message: str) -> None:
    path = _toml(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(path, env={})
    if "TOML" in message or "unknown" in message or "fast" in text:
        assert str(path) in str(info.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.toml", env={})


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# --- caller numbers -----------------------------------------------------------------------


def test_caller_hash_is_stable_and_normalised() -> None:
    a = caller_hash("010-1234-5678", "k1")
    assert a == caller_hash("010-1234-5678", "k1")
    assert a == caller_hash("01012345678", "k1")
    assert a == caller_hash(" 010 1234 5678 ", "k1")
    assert a != caller_hash("01012345679", "k1")
    assert len(a) == 20 and all(c in "0123456789abcdef" for c in a)


def test_caller_hash_is_keyed() -> None:
    assert caller_hash("01012345678", "k1") != caller_hash("01012345678", "k2")


@pytest.mark.parametrize("number", ["01012345678", "+821012345678", "120", "5678"])
def test_caller_hash_never_contains_the_number(number: str) -> None:
    for key in ("k1", "secret", ""):
        h = caller_hash(number, key)
        assert number.lstrip("+") not in h
        assert number[-4:] not in h


@pytest.mark.parametrize("number", ["", "   ", "anonymous", "Restricted", "-"])
def test_caller_hash_without_digits_is_anonymous(number: str) -> None:
    assert caller_hash(number, "k1") == "anonymous"


def test_a_relative_state_dir_is_resolved_once_at_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default `var` is made absolute from the working directory at start, so the worker
    (another process, told the absolute directory) finds what the controller stored."""
    monkeypatch.chdir(tmp_path)
    s = load_settings(env={})
    assert s.state_dir == tmp_path / "var" and s.state_dir.is_absolute()
    assert s.state_path(s.database) == tmp_path / "var" / "ivr120.sqlite3"
    monkeypatch.chdir("/")
    assert s.state_dir == tmp_path / "var"  # fixed at load, not re-read from the cwd


def test_a_retired_setting_is_ignored_with_a_warning_not_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _toml(tmp_path, "in_depth_within_hours = 24.0\nsip_port = 5070\n")
    caplog.set_level(logging.WARNING, logger="ivr.config")
    settings = load_settings(path, env={"IVR120_IN_DEPTH_WITHIN_HOURS": "12"})
    assert settings.sip_port == 5070 and not hasattr(settings, "in_depth_within_hours")
    assert caplog.text.count("'in_depth_within_hours' is no longer used") == 2  # file and env
    assert "one working day" in caplog.text
