"""The ring group model (ivr.flow.ringgroup): who rings for which waiting caller."""

from __future__ import annotations

import pytest

from ivr.flow.ringgroup import Ring, RingGroup

MEMBERS = ("c1", "c2", "c3", "c4")
ALL = set(MEMBERS)


def group() -> RingGroup:
    return RingGroup("loneliness", MEMBERS)


def legs_of(rings: list[Ring]) -> dict[str, str]:
    """leg id -> member."""
    return {r.leg_id: r.member for r in rings}


def test_empty_group_plans_nothing() -> None:
    g = group()
    assert g.plan(ALL, "leg-") == []
    assert g.waiting == []
    assert g.ringing_members() == set()


def test_ringall_rings_every_reachable_free_member_for_the_head() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    rings = g.plan(ALL, "leg-")
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
    g = group()
    g.enqueue("call-a", 1.0)
    assert [r.member for r in g.plan(reachable, "leg-")] == expected


@pytest.mark.parametrize("kind", [list, tuple, iter, lambda s: (m for m in sorted(s))])
def test_reachable_may_be_any_iterable(kind: object) -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    reachable = kind({"c1", "c3"})  # type: ignore[operator]
    assert sorted(r.member for r in g.plan(reachable, "leg-")) == ["c1", "c3"]


def test_nothing_new_while_the_head_is_ringing() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    first = g.plan({"c1"}, "leg-")
    assert [r.member for r in first] == ["c1"]
    # More members come online, and a second caller arrives: still nothing new.
    g.enqueue("call-b", 2.0)
    assert g.plan(ALL, "leg-") == []
    assert g.ringing_members() == {"c1"}


def test_enqueue_twice_is_idempotent_and_position_counts_from_one() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    g.enqueue("call-a", 3.0)
    assert g.waiting == ["call-a", "call-b"]
    assert g.position("call-a") == 1
    assert g.position("call-b") == 2
    assert g.position("call-x") is None


def test_answer_returns_other_legs_and_makes_member_busy() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    legs = legs_of(g.plan(ALL, "leg-"))
    answering = next(leg for leg, m in legs.items() if m == "c2")
    result = g.answered(answering)
    assert result is not None
    call_id, member, others = result
    assert (call_id, member) == ("call-a", "c2")
    assert sorted(others) == sorted(leg for leg in legs if leg != answering)
    assert g.busy_members() == {"c2"}
    assert g.ringing_members() == set()
    assert g.waiting == []
    assert g.position("call-a") is None


def test_second_caller_is_rung_only_after_the_first_is_taken() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    rings_a = g.plan(ALL, "leg-")
    assert {r.call_id for r in rings_a} == {"call-a"}
    assert g.plan(ALL, "leg-") == []
    assert g.position("call-b") == 2

    leg_c3 = next(r.leg_id for r in rings_a if r.member == "c3")
    assert g.answered(leg_c3) is not None
    assert g.position("call-b") == 1

    rings_b = g.plan(ALL, "leg-")
    assert {r.call_id for r in rings_b} == {"call-b"}
    assert sorted(r.member for r in rings_b) == ["c1", "c2", "c4"]  # c3 is busy
    # New legs get new ids.
    assert not {r.leg_id for r in rings_b} & {r.leg_id for r in rings_a}


def test_busy_members_are_not_rung_until_released() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    (ring,) = g.plan({"c1"}, "leg-")
    assert g.answered(ring.leg_id) == ("call-a", "c1", [])
    g.enqueue("call-b", 2.0)
    assert g.plan({"c1"}, "leg-") == []
    g.released("c1")
    assert g.busy_members() == set()
    (ring_b,) = g.plan({"c1"}, "leg-")
    assert (ring_b.call_id, ring_b.member) == ("call-b", "c1")


def test_released_unknown_member_is_harmless() -> None:
    g = group()
    g.released("nobody")
    assert g.busy_members() == set()


def test_leg_ended_frees_the_member_and_head_is_rung_again_when_all_ended() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    legs = legs_of(g.plan({"c1", "c2"}, "leg-"))
    leg1, leg2 = sorted(legs, key=legs.__getitem__)
    g.leg_ended(leg1)
    assert g.ringing_members() == {"c2"}
    # One leg still rings for the head: nothing new.
    assert g.plan({"c1", "c2"}, "leg-") == []
    g.leg_ended(leg2)
    assert g.ringing_members() == set()
    again = g.plan({"c1", "c2"}, "leg-")
    assert sorted(r.member for r in again) == ["c1", "c2"]
    assert not set(legs_of(again)) & {leg1, leg2}
    # Unknown legs are ignored.
    g.leg_ended("leg-unknown")
    assert g.ringing_members() == {"c1", "c2"}


def test_dequeue_returns_the_legs_still_ringing() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    legs = legs_of(g.plan(ALL, "leg-"))
    assert sorted(g.dequeue("call-a")) == sorted(legs)
    assert g.waiting == ["call-b"]
    assert g.ringing_members() == set()
    # The next caller is now rung by everybody.
    assert {r.call_id for r in g.plan(ALL, "leg-")} == {"call-b"}


def test_dequeue_of_caller_not_ringing_or_unknown() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    g.enqueue("call-b", 2.0)
    assert g.dequeue("call-b") == []
    assert g.dequeue("call-b") == []
    assert g.dequeue("nobody") == []
    assert g.waiting == ["call-a"]


def test_late_answer_returns_none() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    legs = legs_of(g.plan({"c1", "c2"}, "leg-"))
    first, second = legs
    assert g.answered(first) is not None
    # The other leg answered just after: it was already returned for cancellation.
    assert g.answered(second) is None
    assert g.busy_members() == {legs[first]}
    assert g.answered("leg-unknown") is None


def test_answer_after_dequeue_returns_none() -> None:
    g = group()
    g.enqueue("call-a", 1.0)
    (ring,) = g.plan({"c1"}, "leg-")
    assert g.dequeue("call-a") == [ring.leg_id]
    assert g.answered(ring.leg_id) is None
    assert g.busy_members() == set()


def test_enqueue_keeps_order_of_waiting_since() -> None:
    g = RingGroup("q", ["m1"])
    g.enqueue("late", 20.0)
    g.enqueue("early", 10.0)  # came back after a counselor dropped out: keeps its place
    g.enqueue("later", 30.0)
    assert g.waiting == ["early", "late", "later"]
