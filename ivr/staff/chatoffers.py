"""The ring group's chat offers: a waiting chat (ivr.chat) offered on a counselor's desk.

Chats wait in the same list as calls (ivr.staff.waiting), first come first served across both
channels. :meth:`ChatOffers.plan_chats` offers each waiting chat, oldest first, to ONE member
at a time (whatever the call strategy: a chat is a conversation for one counselor):

* eligible = on shift, logged in, not paused (as for calls), with the desk's chat page open
  (`present`, the adapter's view), not being rung for a call or a follow-up, not in wrap-up or
  no-answer cooldown, fewer chats in progress than ``chats_per_member``, not on a call unless
  ``chat_during_call``, and no other chat offer pending;
* best first: fewest chats in progress, then the calls' fairness order (available longest,
  fewest taken — here chats taken — then member order);
* a member offered this chat already (timed out, or declined) comes after every eligible
  member not offered it yet; once all eligible members were offered it, a new round starts.

Calls are not held back by chats: a member in a chat (or with a chat offer showing) is still
rung for calls. A counselor can type between two sentences of a caller, not the other way
round, and the line is the scarcer channel. So the only link from chats to calls is that the
member count of each is its own; from calls to chats, an ongoing call blocks new chat offers
(unless ``chat_during_call``).

An offer not accepted (the adapter's offer timeout, or declined) is withdrawn without a
penalty (no cooldown: a chat offer does not ring anything), but the chat goes to the others
first. An offer whose member is no longer
eligible (paused, logged out, off the page, on a call) is withdrawn at the next plan. A chat
ending has no wrap-up in the ring group. Mixed into ivr.staff.ringgroup.RingGroup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.staff.members import CounselorState, RingGroupConfig
from ivr.staff.waiting import Channel, Waiting


@dataclass(frozen=True)
class ChatOffer:
    """`chat_id` is offered to `member` as `offer_id` (shown on their desk until answered)."""

    chat_id: str
    member: str
    offer_id: str


@dataclass(frozen=True)
class ChatPlan:
    """What :meth:`ChatOffers.plan_chats` decided."""

    offers: list[ChatOffer]
    """New offers to show."""
    withdrawn: list[ChatOffer]
    """Offers taken back: their member can no longer take a chat."""


class ChatOffers:
    # Provided by RingGroup.
    name: str
    config: RingGroupConfig
    _waiting: list[Waiting]
    _busy: dict[str, str]
    _on_shift: frozenset[str] | None
    _state: dict[str, CounselorState]
    _order: dict[str, int]
    _leg_seq: int
    #: member -> chats in progress; offer id -> offer; member -> chats taken so far.
    _chats: dict[str, set[str]]
    _chat_offers: dict[str, ChatOffer]
    _chats_taken: dict[str, int]

    if TYPE_CHECKING:

        def _get(self, member: str) -> CounselorState: ...

        def ringing_members(self) -> set[str]: ...

        def _staffed(self, member: str, on_shift: frozenset[str] | None) -> bool: ...

    @property
    def waiting_chats(self) -> list[str]:
        return [w.call_id for w in self._waiting if w.channel is Channel.CHAT]

    def chats_of(self, member: str) -> frozenset[str]:
        """The chats `member` is in now."""
        self._get(member)
        return frozenset(self._chats.get(member, ()))

    def chat_offers(self) -> list[ChatOffer]:
        """The offers pending, oldest first."""
        return list(self._chat_offers.values())

    def _chat_eligible(
        self,
        member: str,
        present: frozenset[str],
        ringing: set[str],
        now: float,
        on_shift: frozenset[str] | None,
    ) -> bool:
        st = self._state[member]
        return (
            self._staffed(member, on_shift)
            and member in present
            and member not in ringing
            and st.wrapup_until <= now
            and st.cooldown_until <= now
            and len(self._chats.get(member, ())) < self.config.chats_per_member
            and (self.config.chat_during_call or member not in self._busy)
        )

    def chat_staffed(self, present: Iterable[str], on_shift: Iterable[str] | None) -> bool:
        """Someone can take chats at all: chats are on (``chats_per_member``) and a member
        on shift, logged in and not paused has the chat page open (busy or not)."""
        shown = frozenset(present)
        shift = None if on_shift is None else frozenset(on_shift)
        return self.config.chats_per_member > 0 and any(
            m in shown and self._staffed(m, shift) for m in self._state
        )

    def plan_chats(
        self,
        present: Iterable[str],
        offer_prefix: str,
        now: float,
        on_shift: Iterable[str] | None = None,
    ) -> ChatPlan:
        """Offers to show now, and offers to take back. `present`: members with the desk's
        chat page open; `on_shift` as for :meth:`plan` (None: everybody is)."""
        shown = frozenset(present)
        shift = None if on_shift is None else frozenset(on_shift)
        ringing = self.ringing_members()
        withdrawn = []
        for offer in list(self._chat_offers.values()):
            if not self._chat_eligible(offer.member, shown, ringing, now, shift):
                withdrawn.append(self._drop_offer(offer.offer_id))
        offered = {o.member for o in self._chat_offers.values()}
        free = [
            m
            for m in self._state
            if m not in offered and self._chat_eligible(m, shown, ringing, now, shift)
        ]
        free.sort(
            key=lambda m: (
                len(self._chats.get(m, ())),
                self._state[m].available_since,
                self._chats_taken.get(m, 0),
                self._order[m],
            )
        )
        offers = []
        for w in self._waiting:
            if not free:
                break
            if w.channel is Channel.CHAT and not w.legs:
                # Members not offered this chat yet first; all of them were: a new round.
                fresh = [m for m in free if m not in w.offered]
                if not fresh:
                    w.offered.clear()
                    fresh = free
                member = fresh[0]
                free.remove(member)
                self._leg_seq += 1
                offer = ChatOffer(w.call_id, member, f"{offer_prefix}{self._leg_seq}")
                w.legs[offer.offer_id] = offer.member
                w.offered.add(member)
                self._chat_offers[offer.offer_id] = offer
                offers.append(offer)
        return ChatPlan(offers, [o for o in withdrawn if o is not None])

    def _drop_offer(self, offer_id: str) -> ChatOffer | None:
        offer = self._chat_offers.pop(offer_id, None)
        for w in self._waiting:
            w.legs.pop(offer_id, None)
        return offer

    def chat_declined(self, offer_id: str) -> ChatOffer | None:
        """An offer not taken (timed out, or declined): withdrawn, no penalty; the chat keeps
        its place. None if the offer is unknown (withdrawn already)."""
        return self._drop_offer(offer_id)

    def chat_accepted(self, offer_id: str, now: float) -> ChatOffer | None:
        """The member took the offered chat: it leaves the waiting list and counts against
        their chats. None if the offer is unknown (withdrawn, or the citizen left), or if the
        member can no longer take it (paused, logged out, off shift, at their chat capacity, or
        on a call without ``chat_during_call``) since the last plan: the offer is then withdrawn
        and the chat keeps its place for the next plan."""
        offer = self._chat_offers.get(offer_id)
        if offer is None:
            return None
        m = offer.member
        if (
            not self._staffed(m, self._on_shift)
            or len(self._chats.get(m, ())) >= self.config.chats_per_member
            or (not self.config.chat_during_call and m in self._busy)
        ):
            self._drop_offer(offer_id)
            return None
        del self._chat_offers[offer_id]
        self._waiting[:] = [w for w in self._waiting if w.call_id != offer.chat_id]
        self._chats.setdefault(offer.member, set()).add(offer.chat_id)
        self._chats_taken[offer.member] = self._chats_taken.get(offer.member, 0) + 1
        return offer

    def chat_resumed(self, member: str, chat_id: str) -> bool:
        """A chat `member` was in before a restart (ivr.chat.restore) counts against their
        chats again, whatever their state now (they took it then). False if it already did;
        UnknownMemberError if `member` is no longer in the group."""
        self._get(member)
        chats = self._chats.setdefault(member, set())
        if chat_id in chats:
            return False
        chats.add(chat_id)
        return True

    def chat_ended(self, member: str, chat_id: str) -> bool:
        """A member's chat ended (either side). False if they were not in it."""
        chats = self._chats.get(member)
        if not chats or chat_id not in chats:
            return False
        chats.discard(chat_id)
        return True
