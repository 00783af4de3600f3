"""A live chat as the chat service holds it (ivr.chat.service): its pure journey, its lines on
both screens, and where it is in the counselors' queue."""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.chat.journey import ChatJourney
from ivr.staff.chatoffers import ChatOffer


@dataclass
class Line:
    seq: int
    sender: str  # "citizen", "counselor" or "system"
    text: str
    at: float


@dataclass
class LiveChat:
    journey: ChatJourney
    identity: str
    """The keyed hash of the chat identity (the abuse flags' caller_hash)."""
    flag_level: int = 0
    lines: list[Line] = field(default_factory=list)
    queued: bool = False
    """In the ring group's waiting list (False while waiting: not queued yet)."""
    queued_at: float | None = None
    """When the citizen asked for a counselor (its Enqueue): the wait shown on the wallboard and
    timed against `chat_max_wait`."""
    requeued_at: float | None = None
    """When a chat that had a counselor queued again (ivr.chat.restore's CounselorGone): its
    place stays `queued_at`, its wait against `chat_max_wait` counts from here."""
    stored: bool = False
    offer: ChatOffer | None = None
    offered_at: float = 0.0
    ended_at: float | None = None
    watchers: int = 0
    """The citizen's pages open on it (their event streams)."""
    last_seen: float = 0.0
    """The last request from the citizen, or the last moment a page of theirs was open."""
    recount: bool = False
    """Taken up after a restart while connected: to count against its counselor again once
    the ring group is up (ivr.chat.restore)."""
    seq: int = 0
    """The last line's number (a chat taken up after a restart goes on after its kept ones)."""

    def add(self, sender: str, text: str, at: float) -> Line:
        """A new line on both screens."""
        self.seq += 1
        line = Line(self.seq, sender, text, at)
        self.lines.append(line)
        return line

    @property
    def chat_id(self) -> str:
        return self.journey.chat_id
