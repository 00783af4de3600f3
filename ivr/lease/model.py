"""The controller lease: which controller is active, decided from the stored row alone.

Pure: no clock, no database. The row (`Lease`) names the holder, a fencing token and when the
lease expires; `decide` says what a controller does with it, given who it is, the token it holds
(None while standby) and the time:

    standby ──row missing or expired──> TAKE_OVER (token + 1) ──won──> active
       ^  └──row held by another, not expired──> STAND_BY (look again in renew_seconds)
       │
    active ──row still has my token──> RENEW (expiry = now + lease_seconds)
       │   └──row has another token or holder──> LOST: stop acting at once, exit
       └── (the process is restarted by its supervisor, as a standby)

The token only grows (+1 on every take-over), so a write stamped with an old token is refused
(`ivr.lease.fence`) even when its controller was paused and does not know yet that it lost.
An active controller whose row was not taken over renews even past its expiry: no one else has
been active in between (the token is unchanged), so nothing conflicts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Seconds a lease lasts after its last renewal: a standby takes over this long after the
#: active one stopped renewing (plus at most one renew_seconds for it to look).
DEFAULT_LEASE_SECONDS = 2.0
#: Seconds between renewals by the active controller (and looks by a standby).
DEFAULT_RENEW_SECONDS = 0.5
#: The lease row's name (one active controller per database).
CONTROLLER = "controller"


class Decision(enum.Enum):
    RENEW = "renew"
    TAKE_OVER = "take over"
    STAND_BY = "stand by"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Lease:
    """The stored row."""

    #: Who holds it: "host:pid:random", unique per process start.
    holder: str
    #: The fencing token: 1 for the first holder, +1 on every take-over.
    token: int
    #: Wall-clock time (seconds since the epoch) when it lapses unless renewed.
    expires_at: float

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True, slots=True)
class LeaseParams:
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    renew_seconds: float = DEFAULT_RENEW_SECONDS

    def __post_init__(self) -> None:
        if self.renew_seconds <= 0:
            raise ValueError("renew_seconds must be positive")
        # Two renewals fit in a lease: one late or failed renewal does not lose it.
        if self.lease_seconds < 2 * self.renew_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must be at least twice renew_seconds "
                f"({self.renew_seconds})"
            )


def decide(row: Lease | None, me: str, my_token: int | None, now: float) -> Decision:
    """What controller `me`, holding `my_token` (None: standby), does with `row` at `now`."""
    if my_token is not None:
        if row is None or row.token != my_token or row.holder != me:
            return Decision.LOST
        return Decision.RENEW
    if row is None or row.expired(now):
        return Decision.TAKE_OVER
    return Decision.STAND_BY


def renewed(row: Lease, now: float, params: LeaseParams) -> Lease:
    """The row after a renewal by its holder."""
    return Lease(row.holder, row.token, now + params.lease_seconds)


def taken_over(row: Lease | None, me: str, now: float, params: LeaseParams) -> Lease:
    """The row after `me` took it over (or created it)."""
    return Lease(me, (row.token if row else 0) + 1, now + params.lease_seconds)
