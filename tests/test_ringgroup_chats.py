"""The ring group's chat offers (ivr.staff.chatoffers): chats wait with calls, are offered on
the desk to one eligible member at a time, count against the member's chat capacity, and never
hold a call back."""

from __future__ import annotations

from ivr.staff.ringgroup import Channel, RingGroup
from tests.ringgroup_support import ALL, MEMBERS, group, make_config, take_call


def offered(g: RingGroup, now: float = 0.0, present: set[str] = ALL) -> dict[str, str]:
    """chat id -> member of the new offers of one plan."""
    return {o.chat_id: o.member for o in g.plan_chats(present, "offer-", now).offers}


def take_chat(g: RingGroup, chat_id: str, now: float, present: set[str] = ALL) -> str:
    g.enqueue(chat_id, now, Channel.CHAT)
    offers = [o for o in g.plan_chats(present, "offer-", now).offers if o.chat_id == chat_id]
    assert len(offers) == 1, offers
    assert g.chat_accepted(offers[0].offer_id, now) is not None
    return offers[0].member


def test_a_waiting_chat_is_offered_to_one_member_on_the_desk() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    assert offered(g, present={"c3"}) == {"chat-1": "c3"}


def test_nobody_on_the_desk_no_offer() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    assert offered(g, present=set()) == {}


def test_a_chat_is_not_a_waiting_call_and_is_never_rung_to_a_phone() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    assert g.waiting == [] and g.waiting_chats == ["chat-1"]
    assert g.plan(ALL, "leg-", 0.0) == []


def test_chats_are_offered_first_come_first_served_across_channels() -> None:
    g = group()
    g.enqueue("chat-late", 5.0, Channel.CHAT)
    g.enqueue("chat-early", 1.0, Channel.CHAT)
    assert offered(g, present={"c1"}) == {"chat-early": "c1"}


def test_a_member_takes_at_most_chats_per_member() -> None:
    g = group(make_config(chats_per_member=2))
    take_chat(g, "chat-1", 0.0, {"c1"})
    take_chat(g, "chat-2", 1.0, {"c1"})
    g.enqueue("chat-3", 2.0, Channel.CHAT)
    assert offered(g, 2.0, {"c1"}) == {}
    assert g.chats_of("c1") == {"chat-1", "chat-2"}


def test_a_member_with_fewer_chats_is_offered_first() -> None:
    g = group()
    take_chat(g, "chat-1", 0.0, {"c1"})
    g.enqueue("chat-2", 1.0, Channel.CHAT)
    assert offered(g, 1.0, {"c1", "c2"}) == {"chat-2": "c2"}


def test_a_member_on_a_call_is_not_offered_chats() -> None:
    g = group()
    member = take_call(g, "call-1", 0.0)
    g.enqueue("chat-1", 1.0, Channel.CHAT)
    assert offered(g, 1.0, {member}) == {}


def test_a_member_on_a_call_is_offered_chats_when_configured() -> None:
    g = group(make_config(chat_during_call=True))
    member = take_call(g, "call-1", 0.0)
    g.enqueue("chat-1", 1.0, Channel.CHAT)
    assert offered(g, 1.0, {member}) == {"chat-1": member}


def test_a_member_in_a_chat_is_still_rung_for_a_call() -> None:
    g = RingGroup("loneliness", ("c1",), make_config())
    take_chat(g, "chat-1", 0.0, {"c1"})
    g.enqueue("call-1", 1.0)
    assert [r.member for r in g.plan({"c1"}, "leg-", 1.0)] == ["c1"]


def test_a_pending_chat_offer_does_not_hold_a_call_back() -> None:
    g = RingGroup("loneliness", ("c1",), make_config())
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    assert offered(g, present={"c1"}) == {"chat-1": "c1"}
    g.enqueue("call-1", 1.0)
    assert [r.member for r in g.plan({"c1"}, "leg-", 1.0)] == ["c1"]


def test_an_offer_is_withdrawn_when_its_member_pauses() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    assert offered(g, present={"c1"}) == {"chat-1": "c1"}
    g.pause("c1", "break", 1.0)
    plan = g.plan_chats({"c1", "c2"}, "offer-", 1.0)
    assert [o.member for o in plan.withdrawn] == ["c1"]
    assert [(o.chat_id, o.member) for o in plan.offers] == [("chat-1", "c2")]


def test_a_declined_offer_goes_to_the_next_best_member_without_penalty() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    (offer,) = g.plan_chats({"c1"}, "offer-", 0.0).offers
    assert g.chat_declined(offer.offer_id) == offer
    assert g.counselor("c1").cooldown_until < 1.0
    assert offered(g, 1.0, {"c1"}) == {"chat-1": "c1"}


def test_an_offer_not_taken_goes_to_every_other_member_before_a_second_round() -> None:
    # The review's case: two idle members; the chat went to the same one at every timeout.
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    got = []
    for i in range(6):
        (offer,) = g.plan_chats({"c1", "c2"}, "offer-", 1.0 + 30 * i).offers
        got.append(offer.member)
        g.chat_declined(offer.offer_id)
    assert got == ["c1", "c2", "c1", "c2", "c1", "c2"]


def test_an_offer_not_taken_goes_back_to_the_only_member_left() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    (offer,) = g.plan_chats({"c1", "c2"}, "offer-", 0.0).offers
    g.chat_declined(offer.offer_id)
    assert offered(g, 1.0, {offer.member}) == {"chat-1": offer.member}


def test_an_ended_chat_frees_its_place() -> None:
    g = group(make_config(chats_per_member=1))
    take_chat(g, "chat-1", 0.0, {"c1"})
    assert g.chat_ended("c1", "chat-1")
    g.enqueue("chat-2", 1.0, Channel.CHAT)
    assert offered(g, 1.0, {"c1"}) == {"chat-2": "c1"}


def test_a_chat_that_leaves_the_queue_takes_its_offer_along() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    (offer,) = g.plan_chats({"c1"}, "offer-", 0.0).offers
    assert g.dequeue("chat-1") == [offer.offer_id]
    assert g.chat_accepted(offer.offer_id, 1.0) is None and g.chat_offers() == []


def test_no_chats_per_member_means_no_chat_offers() -> None:
    g = group(make_config(chats_per_member=0))
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    assert offered(g) == {}


def test_chats_are_shared_round_robin_among_equal_members() -> None:
    g = group(make_config(chats_per_member=100))
    takers = [take_chat(g, f"chat-{i}", float(i)) for i in range(8)]
    assert sorted(takers) == sorted(MEMBERS * 2)


def test_an_offer_taken_after_its_member_answered_a_call_is_refused_and_offered_again() -> None:
    # Between two plans (0.25 s apart) the member answered a call: taking the chat then would
    # break "no chats while on a call"; the offer is withdrawn and the chat offered again.
    g = RingGroup("loneliness", ("c1", "c2"), make_config())
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    [offer] = g.plan_chats({"c1"}, "offer-", 0.0).offers
    assert offer.member == "c1"
    assert take_call(g, "call-1", 1.0, {"c1"}) == "c1"
    assert g.chat_accepted(offer.offer_id, 1.1) is None
    assert g.waiting_chats == ["chat-1"] and g.chats_of("c1") == set()
    assert offered(g, 1.2, {"c1", "c2"}) == {"chat-1": "c2"}


def test_an_offer_taken_after_its_member_paused_is_refused() -> None:
    g = group()
    g.enqueue("chat-1", 0.0, Channel.CHAT)
    [offer] = g.plan_chats({"c1"}, "offer-", 0.0).offers
    g.pause(offer.member, "break", 0.5)
    assert g.chat_accepted(offer.offer_id, 0.6) is None
    assert g.waiting_chats == ["chat-1"]
