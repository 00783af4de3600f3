"""The console softphone's pure parts: what it shows, which keys send what, where the password
comes from (tests/test_e2e_ringgroup_tools.py runs it against a real hotline)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ivr.phone import softphone


class Keypad:
    """Stands in for the pjsua2 phone: records the DTMF the console sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def dtmf(self, digits: str) -> None:
        self.sent.append(digits)


def console(lang: str = "ko") -> tuple[softphone.Console, Keypad]:
    pad = Keypad()
    c = softphone.Console(pad, argparse.Namespace(lang=lang, server="127.0.0.1"))  # type: ignore[arg-type]
    return c, pad


def incoming(c: softphone.Console, **headers: str) -> None:
    c.show({"event": "incoming", "headers": {f"X-IVR120-{k}": v for k, v in headers.items()}})


def test_hotline_values_are_shown_in_korean(capsys: pytest.CaptureFixture[str]) -> None:
    c, _ = console()
    incoming(c, Line="loneliness", Path="5", Wait="3", Repeat="yes", Consent="yes", Flag="abuse-1")
    out = capsys.readouterr().out
    assert "전화가 왔습니다 — 외로움안녕 상담" in out
    assert "요약 동의: 동의함" in out and "주의: 폭언 1단계" in out
    assert "loneliness" not in out and "yes" not in out and "abuse" not in out, out
    incoming(c, Line="loneliness", Path="5", Wait="0", Repeat="no", Consent="-")
    assert "요약 동의: 동의 전" in capsys.readouterr().out
    incoming(c, Line="general", Path="1", Wait="0", Repeat="no", Consent="no")
    out = capsys.readouterr().out
    assert "120 일반 상담" in out and "동의하지 않음" in out and "general" not in out, out


def test_english_console_keeps_english_values(capsys: pytest.CaptureFixture[str]) -> None:
    c, _ = console("en")
    incoming(c, Line="loneliness", Path="5", Wait="3", Repeat="no", Consent="yes")
    out = capsys.readouterr().out
    assert "incoming call — loneliness line" in out and "consent: yes" in out, out


async def test_w_sends_star_6_during_a_call(capsys: pytest.CaptureFixture[str]) -> None:
    c, pad = console()
    assert await c.command("w")
    assert pad.sent == [] and "진행 중인 통화가 없습니다" in capsys.readouterr().out
    c.in_call = True
    assert await c.command("w")
    assert pad.sent == ["*6"]
    assert "요약 동의 철회 요청을 보냈습니다" in capsys.readouterr().out


def test_password_is_not_a_command_line_option() -> None:
    with pytest.raises(SystemExit):
        softphone.main(["--user", "counselor01", "--password", "secret"])


def test_password_from_file_then_environment_then_prompt(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("from-file\n", encoding="utf-8")
    env = {softphone.PASSWORD_ENV: "from-env"}
    assert softphone.read_password(f, env, lambda _: "typed") == "from-file"
    assert softphone.read_password(None, env, lambda _: "typed") == "from-env"
    assert softphone.read_password(None, {}, lambda _: "typed") == "typed"
    with pytest.raises(softphone.PasswordError, match="--password-file"):
        softphone.read_password(None, {}, None)  # no terminal: never read stdin (the commands)
    with pytest.raises(softphone.PasswordError, match="cannot read"):
        softphone.read_password(tmp_path / "missing", env, None)


def test_missing_password_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(softphone.PASSWORD_ENV, raising=False)
    assert softphone.main(["--user", "counselor01", "--password-file", "/nonexistent/pw"]) == 2
    assert "cannot read /nonexistent/pw" in capsys.readouterr().err
