"""Who to ring for waiting callers: a pure model of one queue's ring group.

The adapter tells it who is waiting, which members are reachable (registered) and what happened
to each ring attempt; it answers with the attempts to start and the legs to cancel. Strategy:
`ringall` — every free reachable member rings for the caller who has waited longest; the first
to answer is bridged and the other legs are cancelled. (Longest-idle-first distribution comes
with the roster work.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ring:
    """Start ringing `member` for `call_id` on a new leg `leg_id`."""

    call_id: str
    member: str
    leg_id: str


@dataclass
class _Waiting:
    call_id: str
    since: float
    legs: dict[str, str] = field(default_factory=dict)  # leg id -> member


class RingGroup:
    def __init__(self, name: str, members: Iterable[str]) -> None:
        self.name = name
        self.members = tuple(members)
        self._waiting: list[_Waiting] = []
        self._busy: dict[str, str] = {}  # member -> call id (connected)
        self._leg_seq = 0

    # -- queries -------------------------------------------------------------------------
    @property
    def waiting(self) -> list[str]:
        return [w.call_id for w in self._waiting]

    def position(self, call_id: str) -> int | None:
        ids = self.waiting
        return ids.index(call_id) + 1 if call_id in ids else None

    def ringing_members(self) -> set[str]:
        return {m for w in self._waiting for m in w.legs.values()}

    def busy_members(self) -> set[str]:
        return set(self._busy)

    def _find(self, call_id: str) -> _Waiting | None:
        return next((w for w in self._waiting if w.call_id == call_id), None)

    # -- changes -------------------------------------------------------------------------
    def enqueue(self, call_id: str, since: float) -> None:
        """Add a caller, ordered by the time they started waiting (a caller whose counselor
        dropped out before the bridge keeps their place)."""
        if self._find(call_id) is None:
            i = len(self._waiting)
            while i > 0 and self._waiting[i - 1].since > since:
                i -= 1
            self._waiting.insert(i, _Waiting(call_id, since))

    def dequeue(self, call_id: str) -> list[str]:
        """Remove a caller; return the legs still ringing for them (to cancel)."""
        w = self._find(call_id)
        if w is None:
            return []
        self._waiting.remove(w)
        return list(w.legs)

    def plan(self, reachable: Iterable[str], leg_prefix: str) -> list[Ring]:
        """Attempts to start now, given the members that are registered."""
        if not self._waiting:
            return []
        head = self._waiting[0]
        if head.legs:
            return []  # already ringing for the head of the queue
        online = set(reachable)  # once: `reachable` may be a one-shot iterator
        ringing = self.ringing_members()
        free = [m for m in self.members if m in online and m not in self._busy and m not in ringing]
        rings = []
        for member in free:
            self._leg_seq += 1
            leg = f"{leg_prefix}{self._leg_seq}"
            head.legs[leg] = member
            rings.append(Ring(head.call_id, member, leg))
        return rings

    def answered(self, leg_id: str) -> tuple[str, str, list[str]] | None:
        """A leg answered: (call id, member, other legs to cancel), or None if unknown/late."""
        for w in self._waiting:
            if leg_id in w.legs:
                member = w.legs.pop(leg_id)
                others = list(w.legs)
                w.legs.clear()
                self._waiting.remove(w)
                self._busy[member] = w.call_id
                return w.call_id, member, others
        return None

    def leg_ended(self, leg_id: str) -> None:
        """A ringing leg ended without being answered (no answer, busy, rejected)."""
        for w in self._waiting:
            if w.legs.pop(leg_id, None) is not None:
                return

    def released(self, member: str) -> None:
        """A member's call ended; they are free again."""
        self._busy.pop(member, None)
