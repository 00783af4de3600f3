"""The ring group model (ivr.staff.ringgroup): who rings for which waiting caller, with
ring all and with longest idle.

The shared helpers are in tests/ringgroup_support.py.
"""

from __future__ import annotations

import math

import pytest

from ivr.config import Settings
from ivr.configs import ring_group_config
from ivr.staff.ringgroup import LegOutcome, RingGroup, Strategy
from tests.ringgroup_support import (
    ALL,
    MEMBERS,
    NO_WRAPUP,
    group,
    legs_of,
    make_config,
    ringall,
    take_call,
)

# =========================================================================== ringall


def test_default_strategy_is_longest_idle() -> None:
    assert ring_group_config(Settings()).strategy is Strategy.LONGEST_IDLE
    assert group().config.strategy is Strategy.LONGEST_IDLE


def test_empty_group_plans_nothing() -> None:
    for g in (ringall(), group()):
        assert g.plan(ALL, "leg-", 0.0) == []
        assert g.waiting == []
        assert g.ringing_members() == set()


def test_ringall_rings_every_reachable_free_member_for_the_head() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    rings = g.plan(ALL, "leg-", 1.0)
    assert [r.member for r in rings] == list(MEMBERS)  # in roster order
    assert {r.call_id for r in rings} == {"call-a"}
    assert len({r.leg_id for r in rings}) == len(rings)
    assert all(r.leg_id.startswith("leg-") for r in rings)
    assert g.ringing_members() == ALL


@pytest.mark.parametrize(
    ("reachable", "expected"),
    [
        ({"c2", "c4"}, ["c2", "c4"]),
        (set(), []),
        ({"c1", "stranger"}, ["c1"]),  # not in the group: never rung
    ],
)
def test_unreachable_members_are_not_rung(reachable: set[str], expected: list[str]) -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    assert [r.member for r in g.plan(reachable, "leg-", 1.0)] == expected


@pytest.mark.parametrize("kind", [list, tuple, iter, lambda s: (m for m in sorted(s))])
def test_reachable_may_be_any_iterable(kind: object) -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    reachable = kind({"c1", "c3"})  # type: ignore[operator]
    assert sorted(r.member for r in g.plan(reachable, "leg-", 1.0)) == ["c1", "c3"]


def test_nothing_new_while_the_head_is_ringing() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    first = g.plan({"c1"}, "leg-", 1.0)
    assert [r.member for r in first] == ["c1"]
    # More members come online, and a second caller arrives: still nothing new.
    g.enqueue("call-b", 2.0)
    assert g.plan(ALL, "leg-", 2.0) == []
    assert g.ringing_members() == {"c1"}


def test_enqueue_twice_is_idempotent_and_position_counts_from_one() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    g.enqueue("call-a", 3.0)
    assert g.waiting == ["call-a", "call-b"]
    assert g.position("call-a") == 1
    assert g.position("call-b") == 2
    assert g.position("call-x") is None


def test_answer_returns_other_legs_and_makes_member_busy() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    legs = legs_of(g.plan(ALL, "leg-", 1.0))
    answering = next(leg for leg, m in legs.items() if m == "c2")
    result = g.answered(answering, 2.0)
    assert result is not None
    call_id, member, others = result
    assert (call_id, member) == ("call-a", "c2")
    assert sorted(others) == sorted(leg for leg in legs if leg != answering)
    assert g.busy_members() == {"c2"}
    assert g.ringing_members() == set()
    assert g.waiting == []
    assert g.position("call-a") is None
    # The cancelled legs end later: no penalty for anybody.
    for leg in others:
        assert g.leg_ended(leg, LegOutcome.NO_ANSWER, 3.0) is None
    assert all(s.consecutive_no_answers == 0 for s in map(g.counselor, MEMBERS))


def test_second_caller_is_rung_only_after_the_first_is_taken() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    rings_a = g.plan(ALL, "leg-", 2.0)
    assert {r.call_id for r in rings_a} == {"call-a"}
    assert g.plan(ALL, "leg-", 2.0) == []
    assert g.position("call-b") == 2

    leg_c3 = next(r.leg_id for r in rings_a if r.member == "c3")
    assert g.answered(leg_c3, 3.0) is not None
    assert g.position("call-b") == 1

    rings_b = g.plan(ALL, "leg-", 3.0)
    assert {r.call_id for r in rings_b} == {"call-b"}
    assert sorted(r.member for r in rings_b) == ["c1", "c2", "c4"]  # c3 is busy
    # New legs get new ids.
    assert not {r.leg_id for r in rings_b} & {r.leg_id for r in rings_a}


def test_busy_members_are_not_rung_until_released_and_wrapped_up() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    (ring,) = g.plan({"c1"}, "leg-", 1.0)
    assert g.answered(ring.leg_id, 1.0) == ("call-a", "c1", [])
    g.enqueue("call-b", 2.0)
    assert g.plan({"c1"}, "leg-", 2.0) == []
    assert g.released("c1", 10.0) == 40.0  # end of the 30 s wrap-up
    assert g.busy_members() == set()
    assert g.plan({"c1"}, "leg-", 39.9) == []
    (ring_b,) = g.plan({"c1"}, "leg-", 40.0)
    assert (ring_b.call_id, ring_b.member) == ("call-b", "c1")


def test_released_unknown_member_is_harmless() -> None:
    g = ringall()
    assert g.released("nobody", 1.0) is None
    assert g.released("c1", 1.0) is None  # not on a call
    assert g.busy_members() == set()
    assert g.counselor("c1").wrapup_until == -math.inf


def test_leg_ended_frees_the_member_and_head_is_rung_again_when_all_ended() -> None:
    g = RingGroup(
        "q", MEMBERS, make_config(strategy=Strategy.RINGALL, no_answer_cooldown_seconds=0)
    )
    g.enqueue("call-a", 1.0)
    legs = legs_of(g.plan({"c1", "c2"}, "leg-", 1.0))
    leg1, leg2 = sorted(legs, key=legs.__getitem__)
    g.leg_ended(leg1, LegOutcome.NO_ANSWER, 21.0)
    assert g.ringing_members() == {"c2"}
    # One leg still rings for the head: nothing new.
    assert g.plan({"c1", "c2"}, "leg-", 21.0) == []
    g.leg_ended(leg2, LegOutcome.REJECTED, 21.0)
    assert g.ringing_members() == set()
    again = g.plan({"c1", "c2"}, "leg-", 21.0)
    assert sorted(r.member for r in again) == ["c1", "c2"]
    assert not set(legs_of(again)) & {leg1, leg2}
    # Unknown legs are ignored.
    assert g.leg_ended("leg-unknown", LegOutcome.NO_ANSWER, 22.0) is None
    assert g.ringing_members() == {"c1", "c2"}


def test_dequeue_returns_the_legs_still_ringing() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    legs = legs_of(g.plan(ALL, "leg-", 2.0))
    assert sorted(g.dequeue("call-a")) == sorted(legs)
    assert g.waiting == ["call-b"]
    assert g.ringing_members() == set()
    # The next caller is now rung by everybody (cancelled legs are no "no answer").
    assert {r.call_id for r in g.plan(ALL, "leg-", 3.0)} == {"call-b"}
    assert g.ringing_members() == ALL


def test_dequeue_of_caller_not_ringing_or_unknown() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    assert g.dequeue("call-b") == []
    assert g.dequeue("call-b") == []
    assert g.dequeue("nobody") == []
    assert g.waiting == ["call-a"]


def test_late_answer_returns_none() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    legs = legs_of(g.plan({"c1", "c2"}, "leg-", 1.0))
    first, second = legs
    assert g.answered(first, 2.0) is not None
    # The other leg answered just after: it was already returned for cancellation.
    assert g.answered(second, 2.0) is None
    assert g.busy_members() == {legs[first]}
    assert g.answered("leg-unknown", 2.0) is None


def test_answer_after_dequeue_returns_none() -> None:
    g = ringall()
    g.enqueue("call-a", 1.0)
    (ring,) = g.plan({"c1"}, "leg-", 1.0)
    assert g.dequeue("call-a") == [ring.leg_id]
    assert g.answered(ring.leg_id, 2.0) is None
    assert g.busy_members() == set()


def test_enqueue_keeps_order_of_waiting_since() -> None:
    g = RingGroup("q", ["m1"], make_config())
    g.enqueue("late", 20.0)
    g.enqueue("early", 10.0)  # came back after a counselor dropped out: keeps its place
    g.enqueue("later", 30.0)
    assert g.waiting == ["early", "late", "later"]


def test_ringall_skips_ineligible_members() -> None:
    g = ringall()
    g.pause("c2", "break", 0.0)
    g.enqueue("call-a", 1.0)
    rings = g.plan(ALL, "leg-", 1.0, on_shift={"c1", "c2", "c3"})
    assert [r.member for r in rings] == ["c1", "c3"]


# =========================================================================== longest idle


def test_longest_idle_rings_one_member_at_a_time() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    (ring,) = g.plan(ALL, "leg-", 1.0)
    assert (ring.call_id, ring.member) == ("call-a", "c1")  # never called, member order
    assert g.plan(ALL, "leg-", 2.0) == []  # still ringing: nothing new for this caller
    assert g.ringing_members() == {"c1"}


def test_no_answer_moves_on_to_the_next_member() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    (r1,) = g.plan(ALL, "leg-", 1.0)
    assert g.leg_ended(r1.leg_id, LegOutcome.NO_ANSWER, 21.0) is None
    (r2,) = g.plan(ALL, "leg-", 21.0)
    assert (r2.call_id, r2.member) == ("call-a", "c2")
    assert r2.leg_id != r1.leg_id
    assert g.counselor("c1").consecutive_no_answers == 1


def test_each_waiting_caller_gets_their_own_member_in_fifo_order() -> None:
    g = group()
    for n, call in enumerate(["a", "b", "c", "d", "e"]):
        g.enqueue(call, float(n))
    rings = g.plan(ALL, "leg-", 5.0)
    assert [(r.call_id, r.member) for r in rings] == [
        ("a", "c1"),
        ("b", "c2"),
        ("c", "c3"),
        ("d", "c4"),
    ]
    # "a" is answered; "e" still waits: nobody is free.
    assert g.answered(rings[0].leg_id, 6.0) == ("a", "c1", [])
    assert g.plan(ALL, "leg-", 6.0) == []
    # c3 does not answer: "c" is next for a member; nobody is free, "e" keeps waiting too.
    g.leg_ended(rings[2].leg_id, LegOutcome.NO_ANSWER, 25.0)
    assert g.plan(ALL, "leg-", 25.0) == []
    assert g.waiting == ["b", "c", "d", "e"]
    # c1 finishes and wraps up; c3's cooldown is over. "c", the longest-waiting caller without
    # a leg, gets c3 (never had a call: a missed ring does not cost their place); "e" gets c1.
    g.released("c1", 100.0)
    rings = g.plan(ALL, "leg-", 130.0)
    assert [(r.call_id, r.member) for r in rings] == [("c", "c3"), ("e", "c1")]


def test_member_idle_longest_is_rung_not_the_one_rung_longest_ago() -> None:
    """The "leastrecent" trap: c1 was rung first but talked long; c2 was rung later but has
    been free for a long time. c2 is idle longest and gets the next call."""
    g = group(NO_WRAPUP)
    g.pause("c3", "break", 0.0)
    g.pause("c4", "break", 0.0)
    assert take_call(g, "long", 0.0) == "c1"
    assert take_call(g, "short", 10.0) == "c2"
    g.released("c2", 11.0)  # short call
    g.released("c1", 100.0)  # long call
    assert take_call(g, "next", 101.0) == "c2"
    assert take_call(g, "after", 102.0) == "c1"


def test_a_new_or_returning_member_never_called_comes_first() -> None:
    g = group(NO_WRAPUP)
    g.pause("c4", "late", 0.0)
    for n, member in enumerate(["c1", "c2", "c3"]):
        assert take_call(g, f"call{n}", float(n)) == member
        g.released(member, n + 0.5)
    g.unpause("c4", 10.0)
    assert take_call(g, "x", 11.0) == "c4"
    assert take_call(g, "y", 12.0) == "c1"


def test_ties_do_not_always_favour_the_first_member() -> None:
    """Members freed at the same instant tie on idle time; the one with fewer calls wins,
    then the one offered a call least recently."""
    g = group(NO_WRAPUP)
    g.pause("c4", "x", 0.0)
    # Round 1: two callers at once -> c1 and c2 (c3 is idle, never called).
    assert take_call(g, "a1", 0.0) == "c1"
    assert take_call(g, "a2", 0.0) == "c2"
    g.released("c1", 50.0)
    g.released("c2", 50.0)  # c1 and c2 tie on idle time
    assert take_call(g, "b1", 60.0) == "c3"  # never called: first
    assert take_call(g, "b2", 60.0) == "c1"  # tie with c2, member order
    g.released("c3", 70.0)
    g.released("c1", 70.0)
    # c2 idle since 50: first. c1 and c3 tie at 70 with 2 and 1 calls: c3.
    assert take_call(g, "c1", 80.0) == "c2"
    assert take_call(g, "c2", 80.0) == "c3"
    counts = [g.counselor(m).calls_taken for m in ("c1", "c2", "c3")]
    assert counts == [2, 2, 2]


def test_tie_on_idle_time_and_calls_goes_to_the_one_offered_least_recently() -> None:
    g = group(make_config(wrapup_seconds=0, no_answer_cooldown_seconds=0))
    g.pause("c3", "x", 0.0)
    g.pause("c4", "x", 0.0)
    g.enqueue("a", 0.0)
    (r1,) = g.plan(ALL, "leg-", 0.0)
    assert r1.member == "c1"
    g.leg_ended(r1.leg_id, LegOutcome.NO_ANSWER, 20.0)
    (r2,) = g.plan(ALL, "leg-", 20.0)
    assert r2.member == "c2"  # c1 was offered more recently
    g.leg_ended(r2.leg_id, LegOutcome.NO_ANSWER, 40.0)
    (r3,) = g.plan(ALL, "leg-", 40.0)
    assert r3.member == "c1"
