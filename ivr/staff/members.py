"""The ring group's vocabulary: its config, the members' state, what happens to a ring.

The machine that uses them is ivr.staff.ringgroup (which re-exports every name here).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

NEVER = float("-inf")

__all__ = [
    "NEVER",
    "Activity",
    "CounselorState",
    "EndReason",
    "LegOutcome",
    "MemberStateChange",
    "MemberStatus",
    "Ring",
    "RingGroupConfig",
    "Strategy",
    "UnknownMemberError",
]


class Strategy(enum.StrEnum):
    LONGEST_IDLE = "longest_idle"
    RINGALL = "ringall"


class LegOutcome(enum.Enum):
    """Why a ringing leg ended without being answered."""

    NO_ANSWER = "no_answer"  # rang until the ring timeout
    BUSY = "busy"
    REJECTED = "rejected"  # the member declined
    FAILED = "failed"  # could not be rung at all (adapter/PBX error): cooldown, no penalty


#: Outcomes that count toward `max_consecutive_no_answers`.
PENALISED = frozenset({LegOutcome.NO_ANSWER, LegOutcome.BUSY, LegOutcome.REJECTED})


class EndReason(enum.Enum):
    """How a member's call ended, as far as wrap-up is concerned."""

    NORMAL = "normal"
    ABUSE = "abuse"  # the counselor ended the call because of verbal abuse (per the manual)


class Activity(enum.Enum):
    """What a member is doing, for the status page."""

    LOGGED_OUT = "logged_out"
    PAUSED = "paused"
    BUSY = "busy"
    RINGING = "ringing"
    WRAPUP = "wrapup"
    COOLDOWN = "cooldown"
    IDLE = "idle"


@dataclass(frozen=True, kw_only=True)
class RingGroupConfig:
    """The settings' values (built by ivr.configs.ring_group_config; no defaults here)."""

    strategy: Strategy
    wrapup_seconds: float
    abuse_wrapup_seconds: float
    long_call_seconds: float
    long_call_wrapup_seconds: float
    no_answer_cooldown_seconds: float
    max_consecutive_no_answers: int
    #: Chats a member takes at once (ivr.staff.chatoffers); 0: no chats.
    chats_per_member: int
    #: Offer chats to a member on a call too.
    chat_during_call: bool
    handle_time_window: int = 20
    default_handle_seconds: float = 600.0

    def __post_init__(self) -> None:
        for name in (
            "wrapup_seconds",
            "abuse_wrapup_seconds",
            "long_call_wrapup_seconds",
            "no_answer_cooldown_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("long_call_seconds", "default_handle_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.chats_per_member < 0:
            raise ValueError(f"chats_per_member must be >= 0, got {self.chats_per_member}")
        if self.max_consecutive_no_answers < 1 or self.handle_time_window < 1:
            raise ValueError("max_consecutive_no_answers and handle_time_window must be >= 1")

    def wrapup_for(self, handle_seconds: float, reason: EndReason) -> float:
        wrapup = self.wrapup_seconds
        if reason is EndReason.ABUSE:
            wrapup = max(wrapup, self.abuse_wrapup_seconds)
        if handle_seconds >= self.long_call_seconds:
            wrapup = max(wrapup, self.long_call_wrapup_seconds)
        return wrapup


@dataclass(frozen=True)
class Ring:
    """Start ringing `member` for `call_id` on a new leg `leg_id`."""

    call_id: str
    member: str
    leg_id: str


@dataclass(frozen=True)
class MemberStateChange:
    """A change of a member's logged-in or paused state, with when and why."""

    member: str
    at: float
    field: Literal["logged_in", "paused"]
    old: bool
    new: bool
    reason: str | None = None


@dataclass
class CounselorState:
    """One member of the group. `logged_in` and `paused` are set by the counselor (or an
    administrator) and by the no-answer rule; the rest is bookkeeping for distribution."""

    member: str
    logged_in: bool = True
    paused: bool = False
    pause_reason: str | None = None
    #: When the member last became free to take a call (end of wrap-up); NEVER if no call yet.
    available_since: float = NEVER
    #: Not rung before this time (wrap-up end or no-answer cooldown end).
    wrapup_until: float = NEVER
    cooldown_until: float = NEVER
    consecutive_no_answers: int = 0
    calls_taken: int = 0
    #: When a call was last offered (rung) to the member; the second tie-breaker.
    last_offered: float = NEVER
    #: When the current call was answered (None: not on a call).
    answered_at: float | None = None
    #: When `logged_in` and `paused` last changed (None: not since the group started).
    logged_in_since: float | None = None
    paused_since: float | None = None


@dataclass(frozen=True)
class MemberStatus:
    """A snapshot of one member for the status page."""

    member: str
    activity: Activity
    logged_in: bool
    paused: bool
    pause_reason: str | None
    on_shift: bool
    calls_taken: int
    consecutive_no_answers: int
    available_since: float | None
    #: Seconds until wrap-up or cooldown ends (0 if neither).
    blocked_for: float
    #: When `logged_in` / `paused` last changed (None: unchanged since the start).
    logged_in_since: float | None = None
    paused_since: float | None = None


class UnknownMemberError(KeyError):
    """A member name that is not in this ring group."""
