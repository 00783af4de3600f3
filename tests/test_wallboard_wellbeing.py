"""Counselor wellbeing on the wallboard (ivr.wallboard.wellbeing): the stretch on calls and
wrap-ups without a break, by the workload report's rule (a 10-minute gap or any pause breaks
it), seen from the board's looks at the members. Times are seconds from 0; limit 2 hours."""

from __future__ import annotations

import pytest

from ivr.report import workload
from ivr.wallboard import wellbeing
from ivr.wallboard.board import BoardState, MemberLine
from ivr.wallboard.wellbeing import Wellbeing, stretch_ko

M = "counselor02"
LIMIT = 2 * 3600.0
ON_CALL, WRAPUP, IDLE = BoardState.ON_CALL, BoardState.WRAPUP, BoardState.IDLE
PAUSED, OFFLINE = BoardState.PAUSED, BoardState.OFFLINE


def look(w: Wellbeing, now: float, state: BoardState, since: float) -> None:
    """One look of the board at `now`: the member in `state` since `since`."""
    w.observe([MemberLine(M, "loneliness", state, None, now - since)], now)


def board(*looks: tuple[float, BoardState, float]) -> Wellbeing:
    w = Wellbeing(LIMIT)
    for now, state, since in looks:
        look(w, now, state, since)
    return w


def test_on_a_call_for_2_hours_10_minutes_is_marked() -> None:
    w = board((0, ON_CALL, 0), (3600, ON_CALL, 0), (7800, ON_CALL, 0))
    assert w.stretch(M, 7800) == 7800
    assert w.marks(7800) == {M: "휴식 없이 2시간 10분"}


def test_under_the_limit_is_not_marked() -> None:
    w = board((0, ON_CALL, 0), (7200, ON_CALL, 0))
    assert w.stretch(M, 7200) == 7200 and w.marks(7200) == {}  # past the limit, not at it


def test_the_state_seen_first_counts_from_its_start() -> None:
    # First seen at 600 on a call since 0 (the clock's time in state): the stretch is from 0.
    assert board((600, ON_CALL, 0)).stretch(M, 600) == 600


def test_a_gap_of_5_minutes_joins_two_calls() -> None:
    # Calls 0-3600 and 3900-7500 with 5 idle minutes between: one stretch of 7500 s.
    w = board((3600, ON_CALL, 0), (3600, IDLE, 3600), (3900, ON_CALL, 3900), (7500, ON_CALL, 3900))
    assert w.marks(7500) == {M: "휴식 없이 2시간 5분"}


def test_the_wrapup_counts_as_busy() -> None:
    # On the call 0-6000, then the wrap-up 6000-7300: 7300 s without a break.
    w = board((6000, ON_CALL, 0), (6000, WRAPUP, 6000), (7300, WRAPUP, 6000))
    assert w.marks(7300) == {M: "휴식 없이 2시간 1분"}


def test_during_a_short_gap_the_mark_stays_until_it_is_a_break() -> None:
    # Calls 0-7500, then idle: marked with the 7500 s on calls until the gap reaches 10 min.
    w = board((7500, ON_CALL, 0), (7500, IDLE, 7500), (7800, IDLE, 7500))
    assert w.marks(7800) == {M: "휴식 없이 2시간 5분"}
    look(w, 8099, IDLE, 7500)
    assert w.stretch(M, 8099) == 7500
    look(w, 8100, IDLE, 7500)
    assert w.stretch(M, 8100) is None and w.marks(8100) == {}


def test_a_gap_of_10_minutes_starts_a_new_stretch() -> None:
    # Calls 0-3600 and 4200-8000: the 600 s gap is a break; the stretch is 3800 s.
    w = board((3600, ON_CALL, 0), (3600, IDLE, 3600), (4200, ON_CALL, 4200), (8000, ON_CALL, 4200))
    assert w.stretch(M, 8000) == 3800 and w.marks(8000) == {}


@pytest.mark.parametrize("away", [PAUSED, OFFLINE])
def test_a_one_minute_pause_or_log_out_is_a_break(away: BoardState) -> None:
    # Calls 0-3600, away 3600-3660, calls 3660-7500: the stretch is 3840 s.
    w = board((3600, ON_CALL, 0), (3600, away, 3600), (3660, IDLE, 3660), (3660, ON_CALL, 3660))
    look(w, 7500, ON_CALL, 3660)
    assert w.stretch(M, 7500) == 3840 and w.marks(7500) == {}


def test_a_pause_right_after_a_long_stretch_clears_the_mark_at_once() -> None:
    w = board((7500, ON_CALL, 0), (7500, PAUSED, 7500))
    assert w.stretch(M, 7560) is None and w.marks(7560) == {}


def test_a_pause_since_before_the_look_counts_from_paused_since() -> None:
    # Seen paused at 4000 since 3700 (paused_since), idle 4100, on a call 4200-8000: the
    # pause broke the stretch even though the board saw it late.
    w = board((3600, ON_CALL, 0), (4000, PAUSED, 3700), (4100, IDLE, 4100))
    look(w, 4200, ON_CALL, 4200)
    look(w, 8000, ON_CALL, 4200)
    assert w.stretch(M, 8000) == 3800


def test_the_rule_is_the_reports() -> None:
    # The same spans and pause through the report's function give the same stretch.
    spans, away = [(0.0, 3600.0), (3900.0, 7500.0)], [(3700.0, 3760.0)]
    assert workload.stretches(spans, away) == [(0.0, 3600.0), (3900.0, 7500.0)]
    assert workload.stretches(spans, []) == [(0.0, 7500.0)]
    w = board((3600, ON_CALL, 0), (3700, PAUSED, 3700), (3760, IDLE, 3760))
    look(w, 3900, ON_CALL, 3900)
    look(w, 7500, ON_CALL, 3900)
    assert w.stretch(M, 7500) == 3600


def test_only_the_current_stretch_is_kept() -> None:
    w = board((3600, ON_CALL, 0), (3600, IDLE, 3600), (4200, IDLE, 3600))  # a break
    look(w, 4300, ON_CALL, 4300)
    look(w, 4400, ON_CALL, 4300)
    assert w._spans[M] == [(4300, 4400)]


def test_a_member_never_busy_has_no_stretch() -> None:
    w = board((0, IDLE, 0), (100, PAUSED, 100))
    assert w.stretch(M, 200) is None and w.stretch("nobody", 200) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (45 * 60 + 59, "휴식 없이 45분"),
        (2 * 3600, "휴식 없이 2시간"),
        (2 * 3600 + 10 * 60 + 30, "휴식 없이 2시간 10분"),
    ],
)
def test_the_mark_in_korean(seconds: float, text: str) -> None:
    assert stretch_ko(seconds) == text


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="wellbeing"):
        Wellbeing(0)


# -- seeded from the stored calls and member events after a restart ----------------------------
def busy(answered: float, ended: float, wrapup: float | None = None) -> wellbeing.BusyRow:
    return wellbeing.BusyRow(M, answered, ended, wrapup)


def test_stored_calls_and_wrapups_seed_the_stretch() -> None:
    # Calls 0-3000 (+300 wrap-up) and 3600-7000 stored; the desk starts at 7000 with the
    # member on a new call: 2 h 0 min already, marked once past the limit.
    w = Wellbeing(LIMIT)
    w.seed(wellbeing.from_rows([busy(0, 3000, 300), busy(3600, 7000)], [], 0), 7000)
    assert w.stretch(M, 7000) == 7000
    look(w, 7000, ON_CALL, 7000)
    look(w, 7300, ON_CALL, 7000)
    assert w.marks(7300) == {M: "휴식 없이 2시간 1분"}


def test_a_stored_pause_between_calls_is_a_break() -> None:
    pause = [
        workload.MemberEvent(M, 3100, "paused", "true"),
        workload.MemberEvent(M, 3200, "paused", "false"),
    ]
    w = Wellbeing(LIMIT)
    w.seed(wellbeing.from_rows([busy(0, 3000), busy(3300, 7000)], pause, 0), 7000)
    assert w.stretch(M, 7000) == 3700


def test_a_stored_open_pause_stays_until_a_look_ends_it() -> None:
    # Paused since 7100 (stored, not unpaused): no stretch; back on a call at 7300 counts anew.
    w = Wellbeing(LIMIT)
    w.seed(
        wellbeing.from_rows([busy(0, 7000)], [workload.MemberEvent(M, 7100, "paused", "true")], 0),
        7200,
    )
    assert w.stretch(M, 7200) is None
    look(w, 7300, ON_CALL, 7300)
    look(w, 7400, ON_CALL, 7300)
    assert w.stretch(M, 7400) == 100


def test_a_seed_does_not_disturb_the_span_a_look_is_growing() -> None:
    w = board((5000, ON_CALL, 4000))
    w.seed(wellbeing.from_rows([busy(0, 3500)], [], 0), 5000)
    look(w, 8000, ON_CALL, 4000)
    assert w.stretch(M, 8000) == 8000 and w.marks(8000) == {M: "휴식 없이 2시간 13분"}


def test_calls_that_ended_before_the_window_are_left_out() -> None:
    seed = wellbeing.from_rows([busy(0, 1000), busy(5000, 6000)], [], 2000)
    assert seed.spans == {M: [(5000, 6000)]}
