"""The rendered pjsip.conf (dialplan/templates/pjsip.conf.j2): every endpoint, the carrier's,
the trunk's and each staff phone's, hangs up a leg that sends no media for `rtp_timeout`."""

from __future__ import annotations

from ivr.config import Settings
from ivr.pbx.render import InstanceDirs, render_config
from ivr.pbx.secrets import Secrets


def endpoints(settings: Settings) -> dict[str, list[str]]:
    """Each `type = endpoint` section's lines, by section name."""
    secrets = Secrets("a", "h", {e: "p" for e in settings.staff_endpoints}, "k", "t")
    text = render_config(settings, secrets, InstanceDirs("/x"), "/mod")["pjsip.conf"]
    sections: dict[str, list[str]] = {}
    for block in text.split("\n["):
        name, _, body = block.partition("]\n")
        lines = [ln.strip() for ln in body.splitlines()]
        if "type = endpoint" in lines:
            sections[name.lstrip("[")] = lines
    return sections


def test_every_endpoint_times_out_a_leg_without_media() -> None:
    settings = Settings()
    found = endpoints(settings)
    assert {"carrier", "trunk", *settings.staff_endpoints} <= set(found)
    for name, lines in found.items():
        assert "rtp_timeout = 60" in lines, name


def test_no_timeout_when_set_to_zero() -> None:
    for name, lines in endpoints(Settings(rtp_timeout=0)).items():
        assert not any(ln.startswith("rtp_timeout") for ln in lines), name
