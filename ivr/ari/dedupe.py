"""Drop the second copy of an ARI event Asterisk delivered twice.

The application subscribes to its callers' channels (Stasis does that) and to `endpoint:PJSIP`
(for counselors' registration states). A channel on a PJSIP endpoint is then covered by both
subscriptions, and Asterisk sends its channel events — `ChannelDtmfReceived` among them — once
per subscription: one key press arrived as two identical events and counted as two wrong
choices (issue 8, item 2). The copies are identical (same type, timestamp, channel and
payload), so a short memory of recent events recognises them exactly.
"""

from __future__ import annotations

import json
from collections import deque

from ivr.ari.events import ChannelDtmfReceived, Event

#: How many recent events are remembered (copies arrive right after the original).
MEMORY = 64
#: Event types a copy of which would be acted on twice.
DEDUPED = (ChannelDtmfReceived,)


class RecentEvents:
    """`seen(event)` is True when the same event was already delivered a moment ago."""

    def __init__(self, memory: int = MEMORY) -> None:
        self._order: deque[str] = deque()
        self._keys: set[str] = set()
        self._memory = memory

    def seen(self, event: Event) -> bool:
        if not isinstance(event, DEDUPED) or not event.raw.get("timestamp"):
            return False
        key = json.dumps(event.raw, sort_keys=True, default=str)
        if key in self._keys:
            return True
        self._order.append(key)
        self._keys.add(key)
        if len(self._order) > self._memory:
            self._keys.discard(self._order.popleft())
        return False
