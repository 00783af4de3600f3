"""Limits on what an anonymous visitor of /chat can make the desk do (ivr.chat.http).

A chat identity is free (a new cookie per visit), so limits that matter are per client address
and in total: :class:`Window` counts events in a sliding window per key and overall. Pure (the
time is passed in); the state is in memory (a restart forgets it, which only lets a little
more through once).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: A chat's callback requests (전화로 연락받기): per client address, and from everybody.
CALLBACKS_PER_ADDRESS = 3
CALLBACKS_TOTAL = 60
CALLBACK_WINDOW = 3600.0


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

    def allow(self, key: str, now: float) -> bool:
        """Count an event of `key` at `now` if within both limits; False (not counted) if not."""
        self._trim(self._all, now)
        for k in [k for k, t in self._by_key.items() if t and t[-1] <= now - self.seconds]:
            del self._by_key[k]  # nothing of theirs in the window: forget the key
        mine = self._by_key.setdefault(key, deque())
        self._trim(mine, now)
        if len(mine) >= self.per_key or len(self._all) >= self.total:
            return False
        mine.append(now)
        self._all.append(now)
        return True


def callback_window() -> Window:
    return Window(CALLBACKS_PER_ADDRESS, CALLBACKS_TOTAL, CALLBACK_WINDOW)
