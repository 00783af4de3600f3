"""The wallboard's recent events (ivr.wallboard.alerts): which commands are alerts, what is
kept (the latest 20 of the last hour), and how they read on the wall."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.chat.journey import Enqueue, FlagIdentity
from ivr.flow import call as flow
from ivr.flow.commands import NoticeKind
from ivr.timezone import SEOUL
from ivr.wallboard import alerts
from ivr.wallboard.alerts import Alert, AlertKind, AlertParams, Alerts

T0 = dt.datetime(2026, 12, 2, 9, 30, 5, tzinfo=SEOUL).timestamp()


def alert(at: float, call_id: str = "1764635405.17") -> Alert:
    return Alert(AlertKind.ABUSE_END, at, call_id, "loneliness", "counselor02")


def test_a_both_silent_notice_to_the_phone_is_a_silence_alert() -> None:
    notice = flow.NotifyStaff(NoticeKind.BOTH_SILENT, 20.0, member="counselor02", leg_id="leg")
    got = alerts.from_command("c1", "loneliness", None, notice, T0)
    assert got == Alert(AlertKind.BOTH_SILENT, T0, "c1", "loneliness", "counselor02", 20.0)


def test_a_caller_silent_notice_is_a_silence_alert() -> None:
    notice = flow.NotifyStaff(NoticeKind.CALLER_SILENT, 45.0)
    got = alerts.from_command("c1", "general", "counselor03", notice, T0)
    assert got == Alert(AlertKind.CALLER_SILENT, T0, "c1", "general", "counselor03", 45.0)


def test_the_caller_speaking_again_is_no_alert() -> None:
    notice = flow.NotifyStaff(NoticeKind.RESUMED, 30.0, member="counselor02")
    assert alerts.from_command("c1", "loneliness", "counselor02", notice, T0) is None


def test_the_abuse_flag_is_an_abuse_ending() -> None:
    flag = flow.FlagCaller(member="counselor07", leg_id="leg")
    got = alerts.from_command("c1", "loneliness", "counselor02", flag, T0)
    assert got == Alert(AlertKind.ABUSE_END, T0, "c1", "loneliness", "counselor07")


def test_other_commands_are_no_alerts() -> None:
    assert alerts.from_command("c1", None, None, flow.Answer(), T0) is None
    assert alerts.from_chat_command("chat-1", Enqueue(T0), T0) is None


def test_a_chat_ended_for_abuse_is_an_abuse_ending() -> None:
    got = alerts.from_chat_command("chat-0123456789abcdef", FlagIdentity("counselor04"), T0)
    assert got == Alert(AlertKind.CHAT_ABUSE_END, T0, "chat-0123456789abcdef", None, "counselor04")
    (shown,) = alerts.view([got])
    assert (shown["text"], shown["line"], shown["member"], shown["call"]) == (
        "폭언으로 채팅 종료",
        "채팅 상담",
        "counselor04",
        "…abcdef",
    )


def test_the_newest_come_first() -> None:
    kept = Alerts()
    kept.add(alert(T0, "a"))
    kept.add(alert(T0 + 5, "b"))
    assert [a.call_id for a in kept.recent(T0 + 10)] == ["b", "a"]


def test_past_keep_the_oldest_drops() -> None:
    kept = Alerts(AlertParams(keep=20))
    for n in range(21):
        kept.add(alert(T0 + n, str(n)))
    recent = kept.recent(T0 + 21)
    assert len(recent) == 20 and recent[-1].call_id == "1" and recent[0].call_id == "20"


def test_an_alert_older_than_an_hour_drops() -> None:
    kept = Alerts()
    kept.add(alert(T0, "old"))
    kept.add(alert(T0 + 1800, "new"))
    assert [a.call_id for a in kept.recent(T0 + 3600)] == ["new", "old"]  # exactly an hour: kept
    assert [a.call_id for a in kept.recent(T0 + 3601)] == ["new"]


@pytest.mark.parametrize(("keep", "window"), [(0, 3600.0), (20, 0.0)])
def test_bad_params_are_refused(keep: int, window: float) -> None:
    with pytest.raises(ValueError, match="alerts"):
        AlertParams(keep, window)


def test_the_alerts_in_korean_never_with_a_number() -> None:
    silent = Alert(AlertKind.BOTH_SILENT, T0, "1764635405.17", "loneliness", "counselor02", 20.4)
    caller = Alert(AlertKind.CALLER_SILENT, T0 + 60, "x1", None, None, 45.0)
    shown = alerts.view([silent, caller, alert(T0 + 120)])
    assert shown[0] == {
        "kind": "both_silent",
        "time": "09:30:05",
        "text": "침묵 알림: 양쪽 모두 20초째 말이 없음",
        "line": "외로움 상담 (loneliness)",
        "member": "counselor02",
        "call_id": "1764635405.17",
        "call": "…405.17",
    }
    assert (shown[1]["text"], shown[1]["line"], shown[1]["member"], shown[1]["call"]) == (
        "침묵 알림: 발신자가 45초째 말이 없음",
        "–",
        "–",
        "x1",
    )
    assert (shown[2]["time"], shown[2]["text"]) == ("09:32:05", "폭언으로 통화 종료")


# -- seeded from the stored rows after a restart (alerts.from_rows, Alerts.seed) ------------
def test_stored_rows_make_the_same_alerts_as_the_live_commands() -> None:
    silences = [
        alerts.SilenceRow("c1", "both", T0, 20.0, "loneliness", "counselor02"),
        alerts.SilenceRow("c2", "caller", T0 + 5, 45.0, "general", "counselor03"),
    ]
    abuses = [
        alerts.AbuseRow("c3", T0 + 9, "loneliness", "counselor07"),
        alerts.AbuseRow("chat-1", T0 + 7, None, "counselor04", chat=True),
    ]
    got = alerts.from_rows(silences, abuses, T0 - 3600, T0 + 60)
    live_both = flow.NotifyStaff(NoticeKind.BOTH_SILENT, 20.0, member="counselor02")
    live_caller = flow.NotifyStaff(NoticeKind.CALLER_SILENT, 45.0)
    assert got == [
        alerts.from_command("c1", "loneliness", "counselor02", live_both, T0),
        alerts.from_command("c2", "general", "counselor03", live_caller, T0 + 5),
        alerts.from_chat_command("chat-1", FlagIdentity("counselor04"), T0 + 7),
        alerts.from_command("c3", "loneliness", None, flow.FlagCaller("counselor07"), T0 + 9),
    ]


def test_stored_rows_outside_the_window_and_staff_silences_are_left_out() -> None:
    silences = [
        alerts.SilenceRow("old", "both", T0 - 3601, 20.0, None, None),
        alerts.SilenceRow("staff", "staff", T0, 20.0, None, None),
        alerts.SilenceRow("after", "caller", T0 + 60, 20.0, None, None),  # heard live
    ]
    abuses = [alerts.AbuseRow("old-abuse", T0 - 3700, None, None)]
    assert alerts.from_rows(silences, abuses, T0 - 3600, T0 + 60) == []


def test_seeded_alerts_go_under_the_live_ones_without_doubling() -> None:
    log = Alerts()
    live = alert(T0 + 100, "c-live")
    log.add(live)
    again = Alert(live.kind, T0 + 101, "c-live", live.line, live.member)  # the same, stored
    log.seed([alert(T0, "c-old"), again])
    assert log.recent(T0 + 200) == [live, alert(T0, "c-old")]


def test_seeding_past_keep_drops_the_oldest() -> None:
    log = Alerts(AlertParams(keep=2))
    log.add(alert(T0 + 10, "c-live"))
    log.seed([alert(T0, "c-1"), alert(T0 + 5, "c-2")])
    assert [a.call_id for a in log.recent(T0 + 20)] == ["c-live", "c-2"]
