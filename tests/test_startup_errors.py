"""Bad installations stop `ivr-run` with a clear message, no traceback: a corrupt secrets.json
(never overwritten), a missing roster, a roster naming an unknown counselor, settings that
expose the service. And the log files `ivr-run` writes (ivr.logs)."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.app import build_app
from ivr.config import Settings, load_settings
from ivr.logs import setup_logging
from ivr.paths import PROJECT_ROOT
from ivr.pbx.secrets import SecretsError, load_or_create
from ivr.staff.roster import RosterError
from tests.conftest import free_port, write_roster


# --------------------------------------------------------------------------- secrets.json
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"ari_password": "abc", "data_key": "truncat', "is not valid JSON"),
        ("", "is not valid JSON"),
        ('["not", "an", "object"]', "is not a JSON object"),
        ('{"data_key": 42, "sip_passwords": []}', "data_key, sip_passwords"),
    ],
)
def test_corrupt_secrets_file_is_refused_and_never_overwritten(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SecretsError, match=problem) as info:
        load_or_create(path, ["counselor01"])
    assert str(path) in str(info.value) and "never overwritten" in str(info.value)
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["secrets.json"]


def test_secrets_file_missing_entries_are_added_keeping_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"data_key": "K" * 43 + "=", "caller_hash_key": "h"}), "utf-8")
    s = load_or_create(path, ["counselor01"])
    assert s.data_key == "K" * 43 + "=" and s.caller_hash_key == "h"
    assert s.admin_token and s.sip_passwords["counselor01"]


# --------------------------------------------------------------------------- roster
def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(env={}, overrides={"state_dir": tmp_path / "state", **overrides})


def test_missing_roster_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-roster.toml"
    with pytest.raises(RosterError, match="roster not found") as info:
        build_app(_settings(tmp_path, roster_file=missing))
    assert str(missing) in str(info.value)


def test_roster_with_an_endpoint_not_in_the_settings(tmp_path: Path) -> None:
    roster = write_roster(tmp_path / "roster.toml", ("counselor01", "counselor77"))
    with pytest.raises(RosterError, match="counselor77") as info:
        build_app(_settings(tmp_path, roster_file=roster))
    assert str(roster) in str(info.value)


# --------------------------------------------------------------------------- ivr-run
def ivr_run(tmp_path: Path, config: str) -> subprocess.CompletedProcess[str]:
    """`ivr-run` from this checkout with free ports and a temporary state directory."""
    cfg = tmp_path / "ivr120.toml"
    cfg.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'instance = "errtest{os.getpid()}"\n'
        f"sip_port = {free_port(socket.SOCK_DGRAM)}\n"
        f"http_port = {free_port()}\n"
        f"status_port = {free_port()}\n" + config,
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR120_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "ivr.main", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=False,
    )


def test_ivr_run_with_corrupt_secrets_says_so_without_traceback(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    secrets = state / "secrets.json"
    secrets.write_text('{"data_key": "abc', encoding="utf-8")
    proc = ivr_run(tmp_path, "")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"secrets file {secrets} is not valid JSON" in proc.stderr, proc.stderr
    assert "Refusing to start" in proc.stderr
    assert secrets.read_text(encoding="utf-8") == '{"data_key": "abc'
    # The log files were set up before the failure, private to the service's user.
    for name in ("ivr.log", "ivr-audit.log"):
        assert stat.S_IMODE((state / "log" / name).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('roster_file = "/nonexistent/roster.toml"\n', "/nonexistent/roster.toml: roster not found"),  # noqa: E501
        ("ROSTER_UNKNOWN", "unknown counselor(s) nobody"),
        ('http_bind = "0.0.0.0"\n', "http_bind: 0.0.0.0 puts ARI (call control) on the network"),
        ('carrier_addresses = ["0.0.0.0/0"]\n', "carrier_addresses: 0.0.0.0/0"),
    ],
)  # fmt: skip
def test_ivr_run_bad_setup_gives_a_message_not_a_traceback(
    tmp_path: Path, config: str, expected: str
) -> None:
    if config == "ROSTER_UNKNOWN":
        roster = write_roster(tmp_path / "roster.toml", ("counselor01",))
        roster.write_text(
            roster.read_text(encoding="utf-8").replace(
                'A = ["counselor01"]', 'A = ["counselor01", "nobody"]'
            ),
            encoding="utf-8",
        )
        config = f'roster_file = "{roster}"\n'
        expected = f"{roster}: invalid roster:\n  [teams] A: unknown counselor(s) nobody"
    proc = ivr_run(tmp_path, config)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    assert expected in proc.stderr, proc.stderr
    message = proc.stderr[proc.stderr.index("ivr-run: ") :]
    assert expected in message, proc.stderr


# --------------------------------------------------------------------------- log files
@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, audit = logging.getLogger(), logging.getLogger("ivr.audit")
    saved = (root.level, list(root.handlers), audit.level, list(audit.handlers))
    try:
        yield
    finally:
        for logger in (root, audit):
            for h in list(logger.handlers):
                logger.removeHandler(h)
                h.close()
        root.setLevel(saved[0])
        for h in saved[1]:
            root.addHandler(h)
        audit.setLevel(saved[2])
        for h in saved[3]:
            audit.addHandler(h)


def test_logs_go_to_private_rotating_files_with_audit_apart(
    tmp_path: Path, restore_logging: None
) -> None:
    settings = _settings(tmp_path)
    main_log, audit_log = setup_logging(settings)
    assert main_log == (tmp_path / "state" / "log" / "ivr.log")
    assert audit_log == (tmp_path / "state" / "log" / "ivr-audit.log")
    logging.getLogger("ivr.controller").info("call c-1: menu_playing -> queued")
    logging.getLogger("ivr.audit").info("consent yes for call c-1 (caller 0a1b2c)")
    for h in logging.getLogger().handlers + logging.getLogger("ivr.audit").handlers:
        h.flush()
    main_text, audit_text = main_log.read_text("utf-8"), audit_log.read_text("utf-8")
    assert "menu_playing -> queued" in main_text and "menu_playing" not in audit_text
    assert "consent yes for call c-1" in audit_text
    assert "consent yes" not in main_text, "the audit line belongs in the audit file only"
    for path in (main_log, audit_log):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(main_log.parent.stat().st_mode) == 0o700


def test_rotated_log_files_stay_private(tmp_path: Path, restore_logging: None) -> None:
    main_log, _ = setup_logging(_settings(tmp_path))
    handler = next(h for h in logging.getLogger().handlers if hasattr(h, "doRollover"))
    logging.getLogger("ivr.x").warning("before rotation")
    handler.doRollover()  # type: ignore[attr-defined]
    logging.getLogger("ivr.x").warning("after rotation")
    rotated = main_log.with_name("ivr.log.1")
    assert "before rotation" in rotated.read_text("utf-8")
    for path in (main_log, rotated):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_allowed_public_exposure_is_warned_loudly(tmp_path: Path, restore_logging: None) -> None:
    settings = _settings(tmp_path, http_bind="0.0.0.0", allow_public_exposure=True)
    main_log, _ = setup_logging(settings)
    for h in logging.getLogger().handlers:
        h.flush()
    text = main_log.read_text("utf-8")
    assert "WARNING" in text and "PUBLIC EXPOSURE" in text and "http_bind" in text, text
