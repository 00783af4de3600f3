"""The digits after a counselor's feature code (ivr.staff.features), and the dialplan for them."""

from __future__ import annotations

import pytest

from ivr.config import Settings
from ivr.pbx.render import InstanceDirs, render_config
from ivr.pbx.secrets import Secrets
from ivr.staff.features import phone_pause_reason

REASONS = ("break", "training", "meeting", "admin")


@pytest.mark.parametrize(
    ("digits", "reason"),
    [
        ((), "phone"),
        (("",), "phone"),
        (("1",), "break"),
        (("2",), "training"),
        (("4",), "admin"),
        (("5",), None),
        (("0",), None),
        (("12",), None),
        (("x",), None),
    ],
)
def test_pause_reason_digit(digits: tuple[str, ...], reason: str | None) -> None:
    assert phone_pause_reason(digits, REASONS) == reason


def test_dialplan_routes_star_53_digit_to_the_controller() -> None:
    settings = Settings(pause_reasons=("break", "training"))
    secrets = Secrets("a", "h", {e: "p" for e in settings.staff_endpoints}, "k", "t")
    text = render_config(settings, secrets, InstanceDirs("/x"), "/mod")["extensions.conf"]
    assert "exten => _*53[1-2],1,Stasis(ivr120,feature,pause,${EXTEN:3})" in text
