"""The pure model of listen / whisper / barge (ivr.wallboard.monitor)."""

from __future__ import annotations

from ivr.wallboard import monitor
from ivr.wallboard.monitor import Mode

TARGET = monitor.Target("1700.1", "counselor02", "ivr-abc-leg1", "talk-1700.1")


def test_listen_snoops_the_callers_channel_both_ways_into_its_own_bridge() -> None:
    p = monitor.plan("ab12", Mode.LISTEN, "supervisor01", TARGET)
    assert p.id == "tap-mon-ab12" and p.id.startswith(monitor.TAP_PREFIX)
    assert p.snoop_params() == ("1700.1", {"spy": "both"})
    assert p.bridge == p.id
    assert p.owned() == (("tap-mon-ab12-sup", "tap-mon-ab12-snoop"), ("tap-mon-ab12",))


def test_whisper_snoops_the_counselors_leg_and_whispers_toward_it_only() -> None:
    p = monitor.plan("ab12", Mode.WHISPER, "supervisor01", TARGET)
    assert p.snoop_params() == ("ivr-abc-leg1", {"spy": "both", "whisper": "out"})
    assert p.bridge == p.id


def test_barge_joins_the_calls_bridge_and_never_removes_it() -> None:
    p = monitor.plan("ab12", Mode.BARGE, "supervisor01", TARGET)
    assert p.snoop_params() is None and p.snoop is None
    assert p.bridge == "talk-1700.1"
    assert p.owned() == (("tap-mon-ab12-sup",), ())


def test_the_counselor_is_told_only_where_the_policy_says_so() -> None:
    watching = [monitor.plan("x", Mode.LISTEN, "supervisor01", TARGET)]
    assert monitor.notice_for("counselor02", watching, True) == "상담 감독 중"
    assert monitor.notice_for("counselor02", watching, False) is None
    assert monitor.notice_for("counselor03", watching, True) is None
    assert monitor.notice_for("counselor02", [], True) is None


def test_modes_from_the_form() -> None:
    assert monitor.mode_of("barge") is Mode.BARGE
    assert monitor.mode_of("spy") is None
    assert set(monitor.MODE_KO) == set(Mode)
