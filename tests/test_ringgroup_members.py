"""The ring group model (ivr.staff.ringgroup), its members: eligibility, wrap-up, no
answer, login/pause state and its restore after a restart.

The shared helpers are in tests/ringgroup_support.py.
"""

from __future__ import annotations

import math

import pytest

from ivr.staff.ringgroup import (
    Activity,
    EndReason,
    LegOutcome,
    MemberStateChange,
    RingGroup,
    UnknownMemberError,
)
from tests.ringgroup_support import ALL, MEMBERS, NO_WRAPUP, group, make_config, take_call

# --------------------------------------------------------------------------- eligibility


@pytest.mark.parametrize("why", ["off-shift", "logged-out", "paused", "unreachable"])
def test_ineligible_members_are_skipped(why: str) -> None:
    g = group()
    on_shift = ALL - {"c1"} if why == "off-shift" else ALL
    reachable = ALL - {"c1"} if why == "unreachable" else ALL
    if why == "logged-out":
        g.logout("c1", 0.0)
    if why == "paused":
        g.pause("c1", "break", 0.0)
    for call in ("a", "b", "c", "d"):
        g.enqueue(call, 1.0)
    rings = g.plan(reachable, "leg-", 1.0, on_shift=on_shift)
    assert [r.member for r in rings] == ["c2", "c3", "c4"]


def test_eligibility_each_condition() -> None:
    g = group()
    g.enqueue("a", 1.0)
    assert g.plan(ALL, "leg-", 1.0, on_shift={"c4"})[0].member == "c4"  # only c4 on shift
    g.dequeue("a")
    g.enqueue("b", 2.0)
    assert g.plan({"c3"}, "leg-", 2.0)[0].member == "c3"  # only c3 registered
    g.dequeue("b")
    g.logout("c1", 3.0)
    g.pause("c2", "meal", 3.0)
    g.enqueue("c", 3.0)
    assert g.plan(ALL, "leg-", 3.0, on_shift={"c1", "c2", "c3"})[0].member == "c3"
    g.dequeue("c")
    g.login("c1", 4.0)
    g.enqueue("d", 4.0)
    assert g.plan(ALL, "leg-", 4.0, on_shift={"c1", "c2", "c3"})[0].member == "c1"
    g.dequeue("d")
    assert g.plan(ALL, "leg-", 5.0, on_shift=set()) == []  # nobody to ring, nobody waiting


def test_member_going_off_shift_keeps_the_call() -> None:
    g = group(NO_WRAPUP)
    assert take_call(g, "a", 0.0) == "c1"
    g.enqueue("b", 1.0)
    rings = g.plan(ALL, "leg-", 1.0, on_shift={"c2"})  # shift change: c1 off, c2 on
    assert [r.member for r in rings] == ["c2"]
    assert g.busy_members() == {"c1"}
    assert g.released("c1", 50.0) == 50.0
    g.enqueue("c", 60.0)
    assert g.plan(ALL, "leg-", 60.0, on_shift={"c2"}) == []  # c1 is not rung: off shift


def test_no_roster_means_everybody_is_on_shift() -> None:
    g = group()
    g.enqueue("a", 0.0)
    assert g.plan(ALL, "leg-", 0.0, on_shift=None)[0].member == "c1"


# --------------------------------------------------------------------------- wrap-up


@pytest.mark.parametrize(
    ("talk", "reason", "wrapup"),
    [
        (60.0, EndReason.NORMAL, 30.0),
        (0.0, EndReason.NORMAL, 30.0),
        (60.0, EndReason.ABUSE, 300.0),
        (1799.0, EndReason.NORMAL, 30.0),
        (1800.0, EndReason.NORMAL, 120.0),  # a very long call
        (4000.0, EndReason.ABUSE, 300.0),  # the longest applicable wins
    ],
)
def test_wrapup_after_every_call(talk: float, reason: EndReason, wrapup: float) -> None:
    g = group(make_config(long_call_seconds=1800.0, long_call_wrapup_seconds=120.0))
    assert take_call(g, "a", 100.0) == "c1"
    end = 100.0 + talk
    assert g.released("c1", end, reason) == end + wrapup
    state = g.counselor("c1")
    assert state.wrapup_until == end + wrapup
    assert state.available_since == end + wrapup
    g.pause("c2", "x", end)
    g.pause("c3", "x", end)
    g.pause("c4", "x", end)
    g.enqueue("b", end)
    assert g.plan(ALL, "leg-", end + wrapup - 0.001) == []
    assert g.next_wakeup(end) == end + wrapup
    assert [r.member for r in g.plan(ALL, "leg-", end + wrapup)] == ["c1"]


def test_wrapup_is_configurable() -> None:
    cfg = make_config(
        wrapup_seconds=5,
        abuse_wrapup_seconds=600,
        long_call_seconds=60,
        long_call_wrapup_seconds=90,
    )
    g = group(cfg)
    take_call(g, "a", 0.0)
    assert g.released("c1", 10.0) == 15.0
    take_call(g, "b", 20.0)  # c2 (never called)
    assert g.released("c2", 80.0) == 170.0
    take_call(g, "c", 200.0)  # c3
    assert g.released("c3", 201.0, EndReason.ABUSE) == 801.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"wrapup_seconds": -1},
        {"no_answer_cooldown_seconds": -0.5},
        {"max_consecutive_no_answers": 0},
        {"long_call_seconds": 0},
        {"handle_time_window": 0},
    ],
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        make_config(**kwargs)


# --------------------------------------------------------------------------- no answer


def test_no_answer_cooldown_then_rung_again() -> None:
    g = group()
    for m in ("c2", "c3", "c4"):
        g.pause(m, "x", 0.0)
    g.enqueue("a", 0.0)
    (r1,) = g.plan(ALL, "leg-", 0.0)
    g.leg_ended(r1.leg_id, LegOutcome.NO_ANSWER, 20.0)
    assert g.plan(ALL, "leg-", 79.9) == []
    assert g.next_wakeup(20.0) == 80.0
    assert g.snapshot(50.0)[0].activity is Activity.COOLDOWN
    (r2,) = g.plan(ALL, "leg-", 80.0)
    assert r2.member == "c1"


def test_three_no_answers_in_a_row_pause_the_member() -> None:
    g = group(make_config(no_answer_cooldown_seconds=0))
    for m in ("c2", "c3", "c4"):
        g.pause(m, "x", 0.0)
    g.drain_changes()
    g.enqueue("a", 0.0)
    results = []
    outcomes = [LegOutcome.NO_ANSWER, LegOutcome.BUSY, LegOutcome.REJECTED]
    for n, outcome in enumerate(outcomes):
        (ring,) = g.plan(ALL, "leg-", 20.0 * n)
        results.append(g.leg_ended(ring.leg_id, outcome, 20.0 * n + 20))
    expected = MemberStateChange("c1", 60.0, "paused", False, True, "no_answer")
    assert results == [None, None, expected]
    assert g.drain_changes() == [expected]
    assert g.drain_changes() == []
    state = g.counselor("c1")
    assert state.paused and state.pause_reason == "no_answer"
    assert g.plan(ALL, "leg-", 100.0) == []
    g.unpause("c1", 200.0, "back at the desk")
    assert g.drain_changes() == [
        MemberStateChange("c1", 200.0, "paused", True, False, "back at the desk")
    ]
    assert g.counselor("c1").consecutive_no_answers == 0
    assert [r.member for r in g.plan(ALL, "leg-", 200.0)] == ["c1"]


def test_an_answer_resets_the_no_answer_count() -> None:
    g = group(make_config(no_answer_cooldown_seconds=0, wrapup_seconds=0))
    for m in ("c2", "c3", "c4"):
        g.pause(m, "x", 0.0)
    for n in range(5):  # no answer, answer, no answer, answer ... never paused
        g.enqueue(f"call{n}", 100.0 * n)
        (ring,) = g.plan(ALL, "leg-", 100.0 * n)
        g.leg_ended(ring.leg_id, LegOutcome.NO_ANSWER, 100.0 * n + 20)
        (ring,) = g.plan(ALL, "leg-", 100.0 * n + 20)
        assert g.answered(ring.leg_id, 100.0 * n + 25) is not None
        g.released("c1", 100.0 * n + 50)
    assert not g.counselor("c1").paused
    assert g.counselor("c1").consecutive_no_answers == 0


def test_failed_ring_cools_down_without_counting() -> None:
    g = group(make_config(max_consecutive_no_answers=1))
    g.enqueue("a", 0.0)
    (r1,) = g.plan(ALL, "leg-", 0.0)
    assert g.leg_ended(r1.leg_id, LegOutcome.FAILED, 0.0) is None
    state = g.counselor("c1")
    assert state.consecutive_no_answers == 0 and not state.paused
    assert state.cooldown_until == 60.0
    (r2,) = g.plan(ALL, "leg-", 0.0)
    assert r2.member == "c2"


def test_cancelled_leg_is_no_no_answer() -> None:
    g = group(make_config(max_consecutive_no_answers=1))
    g.enqueue("a", 0.0)
    (ring,) = g.plan(ALL, "leg-", 0.0)
    assert g.dequeue("a") == [ring.leg_id]  # the caller hung up
    assert g.leg_ended(ring.leg_id, LegOutcome.NO_ANSWER, 5.0) is None
    assert g.counselor("c1").consecutive_no_answers == 0
    assert g.counselor("c1").cooldown_until == -math.inf


# --------------------------------------------------------------------------- member state


def test_login_logout_pause_unpause_are_recorded_with_time_and_reason() -> None:
    g = RingGroup("q", MEMBERS, make_config(), logged_in=False)
    assert all(not s.logged_in for s in map(g.counselor, MEMBERS))
    g.enqueue("a", 0.0)
    assert g.plan(ALL, "leg-", 0.0) == []
    g.login("c2", 1.0)
    g.login("c2", 1.5)  # no change: not recorded
    g.pause("c2", "meal", 2.0)
    g.pause("c2", "meal", 2.5)  # no change
    g.pause("c2", "training", 3.0)  # another reason: recorded
    g.unpause("c2", 4.0)
    g.unpause("c2", 4.5)  # no change
    g.logout("c2", 5.0, "end of shift")
    assert g.drain_changes() == [
        MemberStateChange("c2", 1.0, "logged_in", False, True, None),
        MemberStateChange("c2", 2.0, "paused", False, True, "meal"),
        MemberStateChange("c2", 3.0, "paused", True, True, "training"),
        MemberStateChange("c2", 4.0, "paused", True, False, None),
        MemberStateChange("c2", 5.0, "logged_in", True, False, "end of shift"),
    ]


def test_logout_or_pause_while_ringing_returns_the_legs_to_cancel() -> None:
    g = group()
    g.enqueue("a", 0.0)
    g.enqueue("b", 0.0)
    r1, r2 = g.plan(ALL, "leg-", 0.0)
    assert g.logout("c1", 1.0) == [r1.leg_id]
    assert g.pause("c2", "x", 1.0) == [r2.leg_id]
    assert g.ringing_members() == set()
    # Both callers are rung again, by others.
    assert [(r.call_id, r.member) for r in g.plan(ALL, "leg-", 1.0)] == [("a", "c3"), ("b", "c4")]
    # The withdrawn legs end later: ignored.
    assert g.leg_ended(r1.leg_id, LegOutcome.NO_ANSWER, 2.0) is None


def test_logout_during_a_call_keeps_the_call() -> None:
    g = group()
    take_call(g, "a", 0.0)
    assert g.logout("c1", 5.0) == []
    assert g.busy_members() == {"c1"}
    assert g.snapshot(6.0)[0].activity is Activity.LOGGED_OUT
    assert g.released("c1", 10.0) == 40.0


def test_state_changes_keep_since_when() -> None:
    g = group()
    g.pause("c2", "meal", 2.0)
    g.pause("c2", "training", 3.0)  # another reason: still paused since 2.0
    g.logout("c3", 4.0)
    snap = {s.member: s for s in g.snapshot(5.0)}
    assert (snap["c2"].paused_since, snap["c3"].logged_in_since) == (2.0, 4.0)


def restored() -> RingGroup:
    """A fresh group seeded as a previous run left it: c1 paused for training, c2 logged out."""
    g = group(NO_WRAPUP)
    g.restore("c1", logged_in=True, paused=True, pause_reason="training", paused_since=10.0)
    g.restore("c2", logged_in=False, paused=False, logged_in_since=11.0)
    return g


def test_restore_seeds_paused_and_logged_out_members() -> None:
    snap = {s.member: s for s in restored().snapshot(20.0)}
    assert [(snap[m].activity, snap[m].pause_reason) for m in ("c1", "c2")] == [
        (Activity.PAUSED, "training"),
        (Activity.LOGGED_OUT, None),
    ]


def test_restore_keeps_since_when() -> None:
    snap = {s.member: s for s in restored().snapshot(20.0)}
    assert (snap["c1"].paused_since, snap["c2"].logged_in_since) == (10.0, 11.0)


def test_restore_is_not_a_change() -> None:
    assert restored().drain_changes() == []


def test_restored_members_are_not_rung() -> None:
    g = restored()
    g.enqueue("a", 20.0)
    g.enqueue("b", 20.0)
    assert {r.member for r in g.plan(ALL, "leg-", 20.0)} == {"c3", "c4"}


def test_restore_after_the_first_call_is_refused() -> None:
    g = group()
    g.enqueue("a", 0.0)
    with pytest.raises(RuntimeError, match="before the first call"):
        g.restore("c1", logged_in=False, paused=False)


def test_restore_of_an_unknown_member_is_an_error() -> None:
    with pytest.raises(UnknownMemberError):
        group().restore("zz", logged_in=False, paused=False)


def test_unknown_member_is_an_error() -> None:
    g = group()
    for call in (
        lambda: g.login("zz", 0.0),
        lambda: g.logout("zz", 0.0),
        lambda: g.pause("zz", "x", 0.0),
        lambda: g.unpause("zz", 0.0),
        lambda: g.counselor("zz"),
    ):
        with pytest.raises(UnknownMemberError, match="not a member of ring group loneliness"):
            call()


def test_snapshot_shows_what_each_member_does() -> None:
    g = group()
    take_call(g, "a", 0.0)  # c1 busy
    g.enqueue("b", 1.0)
    g.plan(ALL, "leg-", 1.0, on_shift={"c1", "c2", "c3"})  # c2 ringing
    g.pause("c3", "meal", 1.0)
    g.logout("c4", 1.0)
    snap = {s.member: s for s in g.snapshot(2.0)}
    assert [s.member for s in g.snapshot(2.0)] == list(MEMBERS)
    assert snap["c1"].activity is Activity.BUSY and snap["c1"].calls_taken == 1
    assert snap["c2"].activity is Activity.RINGING
    assert snap["c3"].activity is Activity.PAUSED and snap["c3"].pause_reason == "meal"
    assert snap["c4"].activity is Activity.LOGGED_OUT and not snap["c4"].on_shift
    g.released("c1", 10.0)
    after = g.snapshot(20.0)[0]
    assert after.activity is Activity.WRAPUP
    assert after.blocked_for == 20.0 and after.available_since == 40.0
    assert g.snapshot(40.0)[0].activity is Activity.IDLE
    assert g.snapshot(40.0)[3].available_since is None
    # The snapshot is a copy, and so is counselor().
    g.counselor("c1").paused = True
    assert not g.counselor("c1").paused


def test_members_are_deduplicated_in_order() -> None:
    g = RingGroup("q", ["b", "a", "b"], make_config())
    assert g.members == ("b", "a")
