"""Fencing: a controller that lost the lease writes nothing and commands nothing.

`Fence` holds the token this process won and how long its last renewal lasts. The store runs
every write transaction as ``BEGIN IMMEDIATE; SELECT token FROM leases`` first (`CHECK_SQL`):
with the write lock held, a token that is not ours any more means another controller took
over, and the write is rolled back, never committed. The ARI client calls `check(now)` before
every request: past the last renewal's expiry this process cannot know it is still the active
one (it may have been paused), so it stops. Either way `lost` is called once: it logs, calls
`on_lost` (in `ivr-run`: end the process at once, non-zero, so its supervisor starts it again
as a standby) and raises `LeaseLost` for the code that was about to act.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ivr.lease.model import CONTROLLER

log = logging.getLogger(__name__)

#: Run first in every write transaction of a fenced store (the lease's name as argument).
CHECK_SQL = "SELECT token FROM leases WHERE name=?"


class LeaseLost(RuntimeError):
    """Another controller holds the lease now: this one must not act."""


class Fence:
    def __init__(
        self,
        token: int,
        valid_until: float,
        on_lost: Callable[[str], None],
        name: str = CONTROLLER,
    ) -> None:
        self.token = token
        self.name = name
        #: Wall-clock end of the last renewal (set by the keeper on every renewal).
        self.valid_until = valid_until
        self._on_lost = on_lost
        self._lost: str | None = None
        self._once = threading.Lock()

    @property
    def is_lost(self) -> bool:
        return self._lost is not None

    def renewed(self, valid_until: float) -> None:
        self.valid_until = valid_until

    def lost(self, why: str) -> LeaseLost:
        """Record the loss (logged and `on_lost` called once) and return the exception to raise."""
        with self._once:
            first, self._lost = self._lost is None, self._lost or why
        if first:
            log.critical(
                "lease %s token %d lost: %s; this controller stops", self.name, self.token, why
            )
            self._on_lost(why)
        return LeaseLost(f"lease token {self.token} lost: {self._lost}")

    def check(self, now: float) -> None:
        """Raise LeaseLost unless the lease is surely still ours at `now`."""
        if self._lost is not None:
            raise LeaseLost(f"lease token {self.token} lost: {self._lost}")
        if now >= self.valid_until:
            raise self.lost(
                f"not renewed since it expired at {self.valid_until:.3f} (now {now:.3f})"
            )

    def verify(self, stored: int | None) -> None:
        """In a write transaction: raise LeaseLost unless `stored` (CHECK_SQL's answer) is ours."""
        if self._lost is not None:
            raise LeaseLost(f"lease token {self.token} lost: {self._lost}")
        if stored != self.token:
            raise self.lost(f"the database holds token {stored}, a write was refused")
