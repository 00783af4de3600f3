"""Limits on what anonymous visitors can make the product do, per client address and in total
(the public chat's, ivr.chat.limits; the desk's event streams, ivr.web.site).

:class:`Window` counts events in a sliding window per key and overall, :class:`Slots` counts
what is held open at once per key and overall. The key is the client's address
(:func:`ivr.web.addresses.address_key`: an IPv6 client by its /64, which one subscriber
usually holds whole). Pure (the time is passed in); the state is in memory (a restart forgets
it, which only lets a little more through once). Written by hand: a few lines over a deque
and a Counter, where a rate-limit library would bring a store and a middleware we do not need.
"""

from __future__ import annotations

import enum
from collections import Counter, deque
from dataclasses import dataclass, field


class Refusal(enum.StrEnum):
    """Which limit refused."""

    KEY = "key"  # this key's (the client address's)
    TOTAL = "total"  # everybody's together


@dataclass
class Window:
    """At most `per_key` events per key and `total` events overall in `seconds`."""

    per_key: int
    total: int
    seconds: float
    _all: deque[float] = field(default_factory=deque)
    _by_key: dict[str, deque[float]] = field(default_factory=dict)

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.seconds:
            times.popleft()

    def check(self, key: str, now: float) -> Refusal | None:
        """Count an event of `key` at `now` if within both limits (None); if not, the limit
        that refused it (the event is not counted)."""
        self._trim(self._all, now)
        for k in [k for k, t in self._by_key.items() if not t or t[-1] <= now - self.seconds]:
            del self._by_key[k]  # nothing of theirs in the window: forget the key
        # A key is kept only while it has counted events: a refused newcomer leaves nothing
        # behind (else a flood of new addresses past the total would grow the dict forever).
        mine = self._by_key.get(key)
        if mine is not None:
            self._trim(mine, now)
            if len(mine) >= self.per_key:
                return Refusal.KEY
        if len(self._all) >= self.total:
            return Refusal.TOTAL
        if mine is None:
            mine = self._by_key[key] = deque()
        mine.append(now)
        self._all.append(now)
        return None

    def keys(self) -> int:
        """Addresses (keys) with events in the window, as last counted."""
        return len(self._by_key)

    def allow(self, key: str, now: float) -> bool:
        """Count an event of `key` at `now` if within both limits; False (not counted) if not."""
        return self.check(key, now) is None


@dataclass
class Slots:
    """At most `per_key` things held at once per key and `total` overall (no time: a slot is
    held from :meth:`take` until :meth:`give`)."""

    per_key: int
    total: int
    _held: Counter[str] = field(default_factory=Counter)

    def take(self, key: str) -> Refusal | None:
        """Hold a slot for `key` (None), or the limit that refused it (nothing held)."""
        if self._held[key] >= self.per_key:
            return Refusal.KEY
        if self._held.total() >= self.total:
            return Refusal.TOTAL
        self._held[key] += 1
        return None

    def give(self, key: str) -> None:
        """Give back a slot `key` took."""
        self._held[key] -= 1
        if self._held[key] <= 0:
            del self._held[key]

    def held(self, key: str | None = None) -> int:
        """Slots held by `key`, or by everybody."""
        return self._held.total() if key is None else self._held[key]
