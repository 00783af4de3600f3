"""The ring group's waiting list: who waits, since when, on which channel, and the offers
(ringing legs, chat offers) made for each.

Calls and chats wait in ONE list, ordered by the time they started waiting (a caller whose
counselor dropped out before the bridge keeps their place), so both channels are served by
the same first-come rule. A call's entry is only rung to phones (ivr.staff.ringgroup `plan`);
a chat's entry is only offered on the desk (ivr.staff.chatoffers `plan_chats`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Channel(enum.StrEnum):
    """How a citizen reached the hotline."""

    CALL = "call"
    CHAT = "chat"


@dataclass
class Waiting:
    """One waiting citizen (a call or a chat)."""

    call_id: str
    """The call's id, or the chat's id."""
    since: float
    """When they started waiting (the adapter's clock)."""
    channel: Channel = Channel.CALL
    legs: dict[str, str] = field(default_factory=dict)
    """Offers in progress: leg id (a ringing phone leg, or a chat offer id) -> member."""
    offered: set[str] = field(default_factory=set)
    """A chat's members offered it in this round (ivr.staff.chatoffers prefers the others)."""


def insert_in_order(waiting: list[Waiting], entry: Waiting) -> None:
    """Insert `entry` after everyone who has waited at least as long (FIFO by `since`)."""
    i = len(waiting)
    while i > 0 and waiting[i - 1].since > entry.since:
        i -= 1
    waiting.insert(i, entry)
