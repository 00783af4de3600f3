"""The pure model of listen / whisper / barge (ivr.wallboard.monitor)."""

from __future__ import annotations

from ivr.wallboard import monitor
from ivr.wallboard.monitor import Ended, Mode, PhoneEvent

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


def test_the_supervisors_leg_answered_is_its_stasis_start_and_gone_its_end() -> None:
    p = monitor.plan("ab12", Mode.LISTEN, "supervisor01", TARGET)
    assert monitor.phone_event(p, "StasisStart", "tap-mon-ab12-sup") is PhoneEvent.ANSWERED
    assert monitor.phone_event(p, "StasisEnd", "tap-mon-ab12-sup") is PhoneEvent.GONE
    assert monitor.phone_event(p, "ChannelDestroyed", "tap-mon-ab12-sup") is PhoneEvent.GONE
    assert monitor.phone_event(p, "ChannelStateChange", "tap-mon-ab12-sup") is None
    assert monitor.phone_event(p, "StasisStart", "tap-mon-ab12-snoop") is None  # its snoop


def test_a_call_going_on_with_the_same_counselor_leg_is_not_over() -> None:
    p = monitor.plan("ab12", Mode.BARGE, "supervisor01", TARGET)
    assert monitor.call_over(p, TARGET, leg_present=True, answered=True) is None


def test_a_call_over_while_the_supervisors_phone_rings_ends_the_ringing() -> None:
    p = monitor.plan("ab12", Mode.LISTEN, "supervisor01", TARGET)
    assert monitor.call_over(p, None, leg_present=True, answered=False) is Ended.CALL_ENDED_RINGING


def test_the_caller_gone_ends_it_as_the_call_ended() -> None:
    p = monitor.plan("ab12", Mode.LISTEN, "supervisor01", TARGET)
    assert monitor.call_over(p, None, leg_present=True, answered=True) is Ended.CALL_ENDED


def test_the_counselor_gone_ends_a_barge_as_the_counselor_left() -> None:
    p = monitor.plan("ab12", Mode.BARGE, "supervisor01", TARGET)
    assert monitor.call_over(p, None, leg_present=False, answered=True) is Ended.COUNSELOR_LEFT


def test_another_counselor_leg_on_the_call_is_another_call_to_monitor() -> None:
    p = monitor.plan("ab12", Mode.WHISPER, "supervisor01", TARGET)
    other = monitor.Target("1700.1", "counselor03", "ivr-abc-leg2", "talk-1700.1")
    assert monitor.call_over(p, other, leg_present=False, answered=True) is Ended.COUNSELOR_LEFT
