"""Which staff phones are registered, and since when: a pure tracker the adapter feeds.

The adapter seeds it from ARI's endpoint list when it (re)connects (:meth:`Registrations.seed`)
and then feeds every ``EndpointStateChange`` (:meth:`Registrations.update`). Time comes in; no
clock. A state seen at a (re)connect is dated by when it was seen: the real moment the phone
registered is not known then (``Registration.observed`` says so).

A phone that goes offline -> online is a :class:`Transition`; the adapter tells a counselor
who registers while off shift that they are off shift (:data:`OFF_SHIFT_MESSAGE`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OFF_SHIFT_MESSAGE", "Presence", "Registration", "Registrations", "Transition"]

#: The SIP MESSAGE a counselor's phone gets on registering while not on shift.
OFF_SHIFT_MESSAGE = (
    "지금은 근무 시간이 아닙니다. 근무 시간에만 상담 전화가 연결됩니다. "
    "근무표가 잘못되었다면 관리자에게 알려 주세요."
)


@dataclass(frozen=True, slots=True)
class Presence:
    """Staff phones as ARI's endpoint list shows them at one moment."""

    #: Registered (endpoint state "online").
    online: frozenset[str]
    #: With a channel up: on a call the ring groups may not know of (a feature code such as
    #: `*51`, a call of their own) or one being torn down. Not to be offered a call (issue 10:
    #: an offer right after `*51` met a busy phone and cost a no-answer cooldown).
    on_a_channel: frozenset[str]

    @classmethod
    def of(cls, endpoints: Iterable[Mapping[str, Any]]) -> Presence:
        """From ARI's `GET endpoints/PJSIP` (each with `resource`, `state`, `channel_ids`)."""
        listed = list(endpoints)
        return cls(
            frozenset(str(e["resource"]) for e in listed if e.get("state") == "online"),
            frozenset(str(e["resource"]) for e in listed if e.get("channel_ids")),
        )


@dataclass(frozen=True, slots=True)
class Registration:
    """One phone's registration as far as the controller knows."""

    member: str
    #: Registered (ARI endpoint state "online").
    online: bool
    #: Since when (None: nothing known yet, before the first seed).
    since: float | None
    #: True: the state was found at a (re)connect, so `since` is when it was seen, not when it
    #: happened.
    observed: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """A phone's registration changed while the controller was watching."""

    member: str
    online: bool
    at: float


class Registrations:
    def __init__(self, members: Iterable[str]) -> None:
        self._regs = {m: Registration(m, False, None) for m in dict.fromkeys(members)}

    def get(self, member: str) -> Registration:
        return self._regs.get(member, Registration(member, False, None))

    def online(self) -> frozenset[str]:
        return frozenset(m for m, r in self._regs.items() if r.online)

    def seed(self, online: Iterable[str], now: float) -> None:
        """The registered members as listed at a (re)connect; the others are offline. A member
        whose state is unchanged keeps their date."""
        up = set(online)
        for m, reg in self._regs.items():
            state = m in up
            if reg.since is None or reg.online != state:
                self._regs[m] = Registration(m, state, now, observed=True)

    def update(self, member: str, state: str, now: float) -> Transition | None:
        """An endpoint state change ("online", "offline", ...); returns the transition, or
        None if the member is not tracked or nothing changed."""
        reg = self._regs.get(member)
        online = state == "online"
        if reg is None or (reg.since is not None and reg.online == online):
            return None
        self._regs[member] = Registration(member, online, now)
        return Transition(member, online, now)
