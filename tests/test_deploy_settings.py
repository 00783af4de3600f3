"""Running the controller away from Asterisk's host (issue 14, "Deploy"): the settings that
replace the addresses that were hard-coded to loopback, with today's behaviour as default."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ivr.config import ConfigError, Settings, load_settings
from ivr.context import CallContext
from ivr.tap import Tap, TapConfig

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_keep_everything_on_this_host(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path)
    assert s.ari_url == "http://127.0.0.1:8088/ari"
    assert s.tap_rtp_bind == "127.0.0.1"
    assert s.tap_rtp_target == "127.0.0.1"
    assert s.message_from == "sip:ivr120@127.0.0.1"
    assert s.secrets_path == tmp_path / "secrets.json"
    assert s.summary_worker_managed is True


def test_controller_elsewhere_settings(tmp_path: Path) -> None:
    s = load_settings(
        None,
        env={
            "IVR120_STATE_DIR": str(tmp_path),
            "IVR120_ARI_HOST": "10.0.0.5",
            "IVR120_TAP_RTP_BIND": "0.0.0.0",
            "IVR120_TAP_RTP_ADDRESS": "10.0.0.7",
            "IVR120_MESSAGE_FROM": "sip:ivr120@pbx.example",
            "IVR120_SECRETS_FILE": "/run/secrets/ivr120_secrets",
            "IVR120_SUMMARY_WORKER_MANAGED": "false",
        },
    )
    assert s.ari_url == "http://10.0.0.5:8088/ari"
    assert (s.tap_rtp_bind, s.tap_rtp_target) == ("0.0.0.0", "10.0.0.7")
    assert s.message_from == "sip:ivr120@pbx.example"
    assert s.secrets_path == Path("/run/secrets/ivr120_secrets")
    assert s.summary_worker_managed is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("IVR120_TAP_RTP_BIND", "controller"),
        ("IVR120_TAP_RTP_ADDRESS", "10.0.0"),
        ("IVR120_MESSAGE_FROM", "ivr120"),
    ],
)
def test_bad_addresses_are_refused_naming_the_setting(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, env={"IVR120_STATE_DIR": str(tmp_path), key: value})
    assert key.removeprefix("IVR120_").lower() in str(err.value)


def test_external_host_brackets_ipv6() -> None:
    assert TapConfig("a", (20.0,)).external_host(4000) == "127.0.0.1:4000"
    v6 = TapConfig("a", (20.0,), rtp_bind="::", rtp_address="fd00::7")
    assert v6.external_host(4000) == "[fd00::7]:4000"


class RecordingAri:
    """Keeps what the tap asks of ARI (the real exchange is in tests/test_e2e_containers.py)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        self.posts.append((path, params))
        return {}

    async def delete(self, path: str, **params: Any) -> Any:
        return None

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        self.requests.append((method, path, kw))
        return None


async def test_tap_binds_its_address_and_tells_asterisk_the_other() -> None:
    ari = RecordingAri()
    config = TapConfig("ivr120", (20.0,), rtp_bind="127.0.0.1", rtp_address="192.0.2.9")
    tap = Tap(ari, config, "chan1", "caller", lambda ev: None)  # type: ignore[arg-type]
    await tap.open()
    try:
        assert tap.receiver is not None
        assert tap.receiver.address[0] == "127.0.0.1"
        media = [p for path, p in ari.posts if path == "channels/externalMedia"]
        assert media[0]["external_host"] == f"192.0.2.9:{tap.receiver.port}"
    finally:
        await tap.close()


async def test_staff_messages_are_sent_from_the_configured_uri(tmp_path: Path) -> None:
    ari = RecordingAri()
    settings = Settings(state_dir=tmp_path, message_from="sip:ivr120@pbx.example")
    ctx = CallContext(
        ari=ari,  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        settings=settings,
        clock=lambda: 0.0,
        sealer=None,  # type: ignore[arg-type]
        hash_key="",
        calls={},
        post=lambda _: None,
        feed=None,  # type: ignore[arg-type]
        leg_prefix="t",
    )
    assert await ctx.send_message("counselor01", "침묵")
    ((method, path, kw),) = ari.requests
    assert (method, path) == ("PUT", "endpoints/sendMessage")
    assert kw["params"]["from"] == "sip:ivr120@pbx.example"


def test_summary_worker_has_its_own_entry_points() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ivr-summary-worker"] == "ivr.summary.worker:main"
    out = subprocess.run(
        [sys.executable, "-m", "ivr.summary", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--once" in out.stdout
