"""The ring group model (ivr.staff.ringgroup), its external offers: follow-up calls ring the
same members as inbound callers, so a member ringing or busy for one is not rung for the other.

The shared helpers are in tests/ringgroup_support.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.staff.ringgroup import Activity, LegOutcome, RingGroup, Strategy
from tests.ringgroup_support import ALL, MEMBERS, NO_WRAPUP, group, make_config, take_call


def activity(g: RingGroup, member: str, now: float) -> Activity:
    return next(m.activity for m in g.snapshot(now) if m.member == member)


# --------------------------------------------------------------------------- free members


def test_free_members_are_the_eligible_ones_best_first() -> None:
    g = group(NO_WRAPUP)
    assert take_call(g, "a", 0.0) == "c1"
    g.released("c1", 10.0)  # c1 free since 10; the others never had a call: they come first
    g.pause("c3", "meal", 11.0)
    assert g.free_members(ALL, 12.0) == ["c2", "c4", "c1"]
    assert g.free_members(ALL - {"c2"}, 12.0, on_shift={"c1", "c2", "c3"}) == ["c1"]


def test_free_members_is_a_query_that_leaves_the_group_as_it_was() -> None:
    g = group(NO_WRAPUP)
    g.enqueue("a", 0.0)
    g.set_presence(ALL, on_shift={"c1", "c2", "c3"})
    before = (g.reachable(), g.estimated_wait("a", 1.0), g.snapshot(1.0))
    assert g.free_members({"c4"}, 1.0, on_shift={"c4"}) == ["c4"]
    assert g.free_members(set(), 1.0) == []
    assert (g.reachable(), g.estimated_wait("a", 1.0), g.snapshot(1.0)) == before
    assert before[0] == 3  # what set_presence recorded
    g.set_presence({"c4"}, on_shift=None)  # the explicit update
    assert g.reachable() == 1


def test_free_members_skip_wrapup_cooldown_ringing_and_busy() -> None:
    g = group(make_config(wrapup_seconds=30))
    assert take_call(g, "a", 0.0) == "c1"  # busy
    g.enqueue("b", 1.0)
    assert [r.member for r in g.plan(ALL, "leg-", 1.0)] == ["c2"]  # ringing inbound
    g.ring_external("c3", "fu-1", 1.0)
    assert g.free_members(ALL, 1.0) == ["c4"]
    assert g.external_ended("fu-1", LegOutcome.NO_ANSWER, 2.0) is None
    assert g.free_members(ALL, 2.0) == ["c4"]  # c3 in no-answer cooldown


def test_a_member_whose_phone_has_a_channel_up_is_not_offered_a_follow_up() -> None:
    # Issue 10: right after *51 the phone is still on the feature code's call; an offer then
    # met a busy phone and cost a no-answer cooldown.
    g = group(NO_WRAPUP)
    assert g.free_members(ALL, 0.0, occupied={"c1", "c3"}) == ["c2", "c4"]
    assert g.reachable() == 4  # on a channel is still there: it ends in a moment
    assert g.free_members(ALL, 1.0) == ["c1", "c2", "c3", "c4"]  # the channel ended


def test_a_member_whose_phone_has_a_channel_up_is_not_rung_for_a_caller() -> None:
    g = group(NO_WRAPUP)
    g.enqueue("a", 0.0)
    assert g.plan(ALL - {"c2", "c3", "c4"}, "leg-", 0.0, occupied={"c1"}) == []
    assert [r.member for r in g.plan(ALL, "leg-", 1.0, occupied={"c1"})] == ["c2"]
    ringall = RingGroup("loneliness", MEMBERS, make_config(strategy=Strategy.RINGALL))
    ringall.enqueue("b", 0.0)
    assert {r.member for r in ringall.plan(ALL, "leg-", 0.0, None, {"c4"})} == {"c1", "c2", "c3"}


# --------------------------------------------------------------------------- one state


def test_ringing_for_a_follow_up_is_not_rung_for_a_caller() -> None:
    g = group()
    g.ring_external("c1", "fu-1", 0.0)
    assert activity(g, "c1", 0.0) is Activity.RINGING
    g.enqueue("a", 1.0)
    assert [r.member for r in g.plan(ALL, "leg-", 1.0)] == ["c2"]


def test_busy_on_a_follow_up_is_not_rung_then_wraps_up() -> None:
    g = group(make_config(wrapup_seconds=30))
    g.ring_external("c1", "fu-1", 0.0)
    assert g.external_answered("fu-1", 1.0) == "c1"
    assert activity(g, "c1", 1.0) is Activity.BUSY
    assert g.busy_members() == {"c1"}
    assert g.counselor("c1").calls_taken == 1
    for call in ("a", "b", "c", "d"):
        g.enqueue(call, 2.0)
    assert "c1" not in {r.member for r in g.plan(ALL, "leg-", 2.0)}
    assert g.released("c1", 100.0) == 130.0
    assert activity(g, "c1", 100.0) is Activity.WRAPUP
    assert g.free_members(ALL, 131.0) == ["c1"]  # the others are ringing for the callers


def test_ringall_does_not_ring_a_member_busy_for_a_follow_up() -> None:
    g = RingGroup("loneliness", MEMBERS, make_config(strategy=Strategy.RINGALL))
    g.ring_external("c2", "fu-1", 0.0)
    g.enqueue("a", 0.0)
    assert {r.member for r in g.plan(ALL, "leg-", 0.0)} == {"c1", "c3", "c4"}


def test_a_member_ringing_inbound_cannot_be_offered_a_follow_up() -> None:
    g = group()
    g.enqueue("a", 0.0)
    (ring,) = g.plan({"c1"}, "leg-", 0.0)
    with pytest.raises(ValueError, match="already ringing or busy"):
        g.ring_external(ring.member, "fu-1", 0.0)


def test_a_leg_is_answered_once() -> None:
    g = group()
    g.ring_external("c1", "fu-1", 0.0)
    assert g.external_answered("fu-1", 1.0) == "c1"
    assert g.external_answered("fu-1", 2.0) is None
    assert g.external_answered("unknown", 2.0) is None


# --------------------------------------------------------------------------- no answer


def test_unanswered_follow_ups_count_toward_the_no_answer_pause() -> None:
    g = group(make_config(max_consecutive_no_answers=2, no_answer_cooldown_seconds=0))
    g.ring_external("c1", "fu-1", 0.0)
    assert g.external_ended("fu-1", LegOutcome.NO_ANSWER, 1.0) is None
    g.ring_external("c1", "fu-2", 2.0)
    change = g.external_ended("fu-2", LegOutcome.BUSY, 3.0)
    assert change is not None and change.field == "paused" and change.reason == "no_answer"
    assert activity(g, "c1", 3.0) is Activity.PAUSED


def test_a_failed_or_cancelled_follow_up_is_not_penalised() -> None:
    g = group(make_config(no_answer_cooldown_seconds=10))
    g.ring_external("c1", "fu-1", 0.0)
    assert g.external_ended("fu-1", LegOutcome.FAILED, 1.0) is None
    assert g.counselor("c1").consecutive_no_answers == 0
    assert g.free_members(ALL, 1.0) == ["c2", "c3", "c4"]  # cooldown still applies
    g.ring_external("c2", "fu-2", 1.0)
    assert g.external_cancelled("fu-2") == "c2"
    assert "c2" in g.free_members(ALL, 1.0)  # no cooldown at all
    assert g.external_ended("fu-2", LegOutcome.NO_ANSWER, 2.0) is None  # already forgotten


def test_logout_and_pause_withdraw_follow_up_legs() -> None:
    g = group()
    g.ring_external("c1", "fu-1", 0.0)
    g.ring_external("c2", "fu-2", 0.0)
    assert g.logout("c1", 1.0) == ["fu-1"]
    assert g.pause("c2", "meal", 1.0) == ["fu-2"]
    assert g.external_legs() == {}


def test_restore_refused_while_a_follow_up_rings() -> None:
    g = group()
    g.ring_external("c1", "fu-1", 0.0)
    with pytest.raises(RuntimeError):
        g.restore("c2", logged_in=False, paused=False)


# --------------------------------------------------------------------------- property

ops = st.lists(
    st.tuples(
        st.sampled_from(["enqueue", "plan", "answer", "ring_ext", "ext_answer", "end", "free"]),
        st.integers(0, 7),
    ),
    max_size=60,
)


@settings(deadline=None, max_examples=200)
@given(ops)
def test_no_member_is_ever_in_two_calls_at_once(steps: list[tuple[str, int]]) -> None:
    """Any interleaving of waiting callers and follow-up offers: a member rings for at most
    one thing, never rings while busy, and is busy with at most one call."""
    g = group(make_config(wrapup_seconds=5, no_answer_cooldown_seconds=3))
    now = 0.0
    inbound: dict[str, str] = {}  # leg -> member
    answered: list[str] = []  # members busy
    seq = 0
    for op, n in steps:
        now += 1.0
        if op == "enqueue":
            g.enqueue(f"call{n}", now)
        elif op == "plan":
            for r in g.plan(ALL, "leg-", now):
                inbound[r.leg_id] = r.member
        elif op == "answer" and inbound:
            leg = sorted(inbound)[n % len(inbound)]
            member = inbound.pop(leg)
            result = g.answered(leg, now)
            if result is not None:
                for other in result[2]:
                    inbound.pop(other, None)
                answered.append(member)
        elif op == "free" or op == "ring_ext":
            free = g.free_members(ALL, now)
            assert not set(free) & (g.ringing_members() | g.busy_members())
            if op == "ring_ext" and free:
                seq += 1
                g.ring_external(free[n % len(free)], f"fu-{seq}", now)
        elif op == "ext_answer" and g.external_legs():
            legs = sorted(g.external_legs())
            member = g.external_answered(legs[n % len(legs)], now)
            assert member is not None
            answered.append(member)
        elif op == "end" and answered:
            g.released(answered.pop(n % len(answered)), now)
        ringing = [m for w in g._waiting for m in w.legs.values()]  # a multiset, not a set
        ringing += list(g.external_legs().values())
        assert len(ringing) == len(set(ringing)), "a member rings for two calls"
        assert not set(ringing) & g.busy_members(), "a busy member rings"
        assert len(answered) == len(set(answered)), "a member is busy with two calls"
        assert set(answered) == g.busy_members()
