"""What a waiting caller is told: position, estimated wait, reassurance, the callback offer.

`WaitingRoom` is a small pure model owned by the journey (ivr.flow.call) while the caller is
queued: it keeps what the queue last said (`QueueStatus`) and where the callback offer stands,
and composes each announcement. No I/O, no clock: the time waited comes in. The journey plays
the announcements, runs the timers and carries out the caller's answer.

    offer: NOT_MADE --announced after `callback_offer_after` s of waiting, at the longest
           wait, or at once when nobody could answer--> OPEN
           OPEN --"아니요"--> DECLINED (not offered again) --the longest wait reached--> NOT_MADE
           OPEN --key 1 or "네"--> the caller leaves the queue asking to be called back

Nobody who could answer (`QueueStatus.reachable == 0`): the caller is told so honestly
("nobody_available") and offered the callback at once; one who declined keeps waiting and
hears "nobody_available_wait", never "soon".
"""

from __future__ import annotations

import enum

from ivr import speak_ko
from ivr.flow.events import QueueStatus

#: Queue positions above this are announced as this many (never happens with 14 counselors).
ANNOUNCE_MAX_AHEAD = 99
#: The caller's key that accepts the callback offer while waiting.
CALLBACK_KEY = "1"
#: Every prompt id this module composes (besides the queue's reassurance and speak_ko's).
WAITING_PROMPTS = frozenset({"callback_offer", "nobody_available", "nobody_available_wait"})


class Offer(enum.Enum):
    """The callback offer while waiting."""

    NOT_MADE = "not_made"  # not offered (again) yet
    OPEN = "open"  # offered: key 1 or "네" accepts, "아니요" declines
    DECLINED = "declined"  # declined: not offered again (until the longest wait is reached)


class WaitingRoom:
    """The queue's last word about one caller and the callback offer (see the docstring)."""

    def __init__(self, callback_offer_after: float, announce_position: bool) -> None:
        self.callback_offer_after = callback_offer_after
        self.announce_position = announce_position
        self.offer = Offer.NOT_MADE
        self.ahead: int | None = None
        self.estimate: float | None = None
        #: Members who could answer at all (0: nobody; None: not known yet).
        self.reachable: int | None = None
        self.max_wait_reached = False

    @property
    def nobody(self) -> bool:
        """Nobody of the line could answer."""
        return self.reachable == 0

    def update(self, status: QueueStatus) -> bool:
        """Take the queue's news; True when nobody can answer any more (somebody could)."""
        nobody_before = self.nobody
        self.ahead, self.estimate, self.reachable = status.ahead, status.estimate, status.reachable
        return self.nobody and not nobody_before

    def longest_wait(self) -> None:
        """The longest wait was reached: the callback is offered (once more)."""
        self.max_wait_reached = True
        if self.offer is Offer.DECLINED:
            self.offer = Offer.NOT_MADE

    def decline(self) -> None:
        self.offer = Offer.DECLINED

    def announcement(self, waited: float, reassurance: str) -> tuple[str, ...]:
        """Position, estimated wait, reassurance — and the callback offer after a long wait."""
        parts: list[str] = []
        offer = waited >= self.callback_offer_after or self.max_wait_reached
        if self.nobody:
            # Nobody could answer: say so, and offer the callback at once (never "soon").
            offer = True
            declined = self.offer is Offer.DECLINED
            parts.append("nobody_available_wait" if declined else "nobody_available")
        else:
            if self.announce_position and self.ahead is not None:
                parts += speak_ko.people_ahead(min(self.ahead, ANNOUNCE_MAX_AHEAD))
                if self.estimate is not None and self.ahead > 0:
                    parts += speak_ko.wait_announcement(self.estimate)
            parts.append(reassurance)
        if offer and self.offer is not Offer.DECLINED:
            self.offer = Offer.OPEN
            parts.append("callback_offer")
        return tuple(parts)
