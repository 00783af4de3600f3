"""The wallboard's pure model: member states and time in them, waiting callers, figures."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.wallboard import board
from ivr.wallboard.board import BoardState, CallRow, StateClock


def member(name: str = "counselor01", **kw: Any) -> dict[str, Any]:
    m = {
        "member": name,
        "queue": "loneliness",
        "state": "idle",
        "registered": True,
        "logged_in": True,
        "paused": False,
        "pause_reason": None,
        "paused_since": None,
    }
    m.update(kw)
    return m


@pytest.mark.parametrize(
    ("kw", "state"),
    [
        ({"state": "busy"}, BoardState.ON_CALL),
        ({"state": "ringing"}, BoardState.RINGING),
        ({"state": "wrapup"}, BoardState.WRAPUP),
        ({"state": "cooldown"}, BoardState.COOLDOWN),
        ({"state": "paused"}, BoardState.PAUSED),
        ({"state": "idle"}, BoardState.IDLE),
        ({"state": "logged_out", "logged_in": False}, BoardState.OFFLINE),
        ({"state": "idle", "registered": False}, BoardState.OFFLINE),
    ],
)
def test_board_state_of_a_member(kw: dict[str, Any], state: BoardState) -> None:
    assert board.board_state(member(**kw)) is state


def test_time_in_state_counts_from_the_change() -> None:
    clock = StateClock()
    assert clock.lines([member()], 100.0)[0].seconds == 0
    assert clock.lines([member()], 130.0)[0].seconds == 30
    on_call = clock.lines([member(state="busy")], 140.0)[0]
    assert (on_call.state, on_call.seconds) == (BoardState.ON_CALL, 0)
    assert clock.lines([member(state="busy")], 205.0)[0].seconds == 65


def test_a_pause_counts_from_paused_since_and_a_new_reason_restarts() -> None:
    clock = StateClock()
    paused = member(state="paused", paused=True, pause_reason="break", paused_since=40.0)
    line = clock.lines([paused], 100.0)[0]
    assert (line.state, line.reason, line.seconds) == (BoardState.PAUSED, "break", 60.0)
    other = dict(paused, pause_reason="training", paused_since=110.0)
    assert clock.lines([other], 120.0)[0].seconds == 10.0


def test_waiting_callers_and_the_longest_wait() -> None:
    assert board.waiting([], 100.0) == board.Waiting(0, 0.0)
    assert board.waiting([90.0, 40.0, 70.0], 100.0) == board.Waiting(3, 60.0)


def test_percentile_by_nearest_rank() -> None:
    assert board.percentile([], 90) is None
    assert board.percentile([5.0], 90) == 5.0
    assert board.percentile([float(n) for n in range(1, 11)], 90) == 9.0
    assert board.percentile([float(n) for n in range(1, 12)], 90) == 10.0


def test_todays_figures() -> None:
    rows = [
        CallRow(True, 10.0, "completed"),
        CallRow(True, 50.0, "completed"),
        CallRow(True, 90.0, "transferred"),
        CallRow(False, None, "abandoned_queue"),
        CallRow(False, None, "callback_requested"),
    ]
    f = board.figures(rows, callbacks_open=2, callbacks_done=1)
    assert (f.offered, f.answered, f.abandoned) == (5, 3, 1)
    assert f.average_wait == 50.0
    assert f.p90_wait == 90.0
    assert f.service_level == pytest.approx(2 / 5)
    assert (f.callbacks_open, f.callbacks_done) == (2, 1)


def test_no_calls_no_figures_but_no_division_by_zero() -> None:
    f = board.figures([], 0, 0)
    assert (f.offered, f.average_wait, f.p90_wait, f.service_level) == (0, None, None, None)
    shown = board.view(board.Waiting(0, 0.0), [], f)["figures"]
    assert shown["average_wait"] == "–" and shown["service_level"] == "–"


def test_the_view_in_korean() -> None:
    lines = StateClock().lines(
        [member(state="paused", paused=True, pause_reason="break", paused_since=0.0)], 75.0
    )
    v = board.view(board.Waiting(2, 125.0), lines, board.figures([CallRow(True, 3.0, "c")], 0, 0))
    assert v["waiting"] == 2 and v["longest"] == "2:05"
    assert v["members"] == [
        {
            "member": "counselor01",
            "state": "paused",
            "state_ko": "휴식 (break)",
            "time": "1:15",
            "chats": 0,
            "wellbeing": None,
        }
    ]
    assert v["chats_waiting"] == 0 and v["chats_longest"] == "–"
    assert v["chat_figures"] is None
    assert v["figures"]["service_level"] == "100%"
    assert board.mmss(3725) == "1:02:05"


def test_a_member_past_the_wellbeing_limit_carries_the_mark() -> None:
    lines = StateClock().lines([member("counselor01"), member("counselor02")], 10.0)
    marks = {"counselor02": "휴식 없이 2시간 10분"}
    v = board.view(board.Waiting(0, 0.0), lines, None, wellbeing=marks)
    assert [(m["member"], m["wellbeing"]) for m in v["members"]] == [
        ("counselor01", None),
        ("counselor02", "휴식 없이 2시간 10분"),
    ]


def test_chats_waiting_and_open_per_counselor() -> None:
    chats = [
        board.LiveChat("waiting", 100.0, None),
        board.LiveChat("waiting", 160.0, None),
        board.LiveChat("waiting", None, None),  # not queued yet: not counted
        board.LiveChat("consent", None, None),  # still in the guided start
        board.LiveChat("connected", 50.0, "counselor01"),
        board.LiveChat("connected", 70.0, "counselor01"),
        board.LiveChat("connected", 80.0, "counselor02"),
        board.LiveChat("ended", 10.0, "counselor02"),  # ended: no longer open
    ]
    now = board.chats_now(chats, 230.0)
    assert now.waiting == board.Waiting(2, 130.0)
    assert now.open == {"counselor01": 2, "counselor02": 1}
    lines = StateClock().lines([member("counselor01"), member("counselor03")], 230.0)
    v = board.view(board.Waiting(0, 0.0), lines, None, now, None)
    assert v["chats_waiting"] == 2 and v["chats_longest"] == "2:10"
    assert [(m["member"], m["chats"]) for m in v["members"]] == [
        ("counselor01", 2),
        ("counselor03", 0),
    ]
    assert board.chats_now([], 5.0) == board.ChatsNow(board.Waiting(0, 0.0), {})


def test_todays_chat_figures() -> None:
    rows = [(True, "completed"), (True, "abuse"), (True, None), (False, "abandoned"), (False, None)]
    figs = board.chat_figures(rows)
    assert figs == board.ChatFigures(offered=5, answered=3, abandoned=1)
    v = board.view(board.Waiting(0, 0.0), [], None, None, figs)
    assert v["chat_figures"] == {"offered": 5, "answered": 3, "abandoned": 1}
    assert board.chat_figures([]) == board.ChatFigures(0, 0, 0)
