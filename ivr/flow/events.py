"""What happens to a call, as the journey machine (ivr.flow.call) is told: small frozen events.

The adapter (ivr.controller) builds them from ARI events, timers and the audio taps.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Started:
    """The caller's channel entered the application."""

    #: The caller's number has an active abuse flag: a policy notice precedes queueing.
    flagged: bool = False


@dataclass(frozen=True)
class Digit:
    """The caller pressed a key."""

    digit: str


@dataclass(frozen=True)
class PlaybackDone:
    """A playback this flow started has finished (or was stopped)."""

    playback_id: str


@dataclass(frozen=True)
class TimerFired:
    """A timer this flow started has fired."""

    name: str


@dataclass(frozen=True)
class StaffAnswered:
    """A ring group member answered; `leg_id` is their channel."""

    leg_id: str
    member: str


@dataclass(frozen=True)
class CallerHungUp:
    """The caller's channel is gone."""


@dataclass(frozen=True)
class StaffHungUp:
    """The connected staff member's channel is gone."""


@dataclass(frozen=True)
class QueueStatus:
    """Where the waiting caller stands: callers ahead, and the estimated wait (None: unknown)."""

    ahead: int
    estimate: float | None
    #: Members of the line who could answer at all (on shift, logged in, not paused,
    #: registered; busy or in wrap-up counts). 0: nobody, the caller is told so. None: unknown.
    reachable: int | None = None


@dataclass(frozen=True)
class StaffDigit:
    """The connected counselor pressed a key (`*9` abuse, `*7` crisis, `*8` callback)."""

    digit: str


@dataclass(frozen=True)
class CrisisAnswered:
    """The crisis line answered the warm transfer on `leg_id`."""

    leg_id: str


@dataclass(frozen=True)
class CrisisEnded:
    """The crisis leg is gone: it never answered, or it hung up."""


@dataclass(frozen=True)
class Silence:
    """A party has been silent for `seconds` (from the call's audio tap)."""

    party: str  # "caller" or "staff"
    seconds: float


@dataclass(frozen=True)
class SpeechHeard:
    """A party started speaking (again) after `after_seconds` of silence."""

    party: str
    after_seconds: float


@dataclass(frozen=True)
class Heard:
    """The recognizer heard one of the phrases the flow is listening for."""

    phrase: str


@dataclass(frozen=True)
class Failed:
    """The adapter could not carry out a command; `reason` is for the log."""

    reason: str


FlowEvent = (
    Started
    | Digit
    | PlaybackDone
    | TimerFired
    | StaffAnswered
    | CallerHungUp
    | StaffHungUp
    | Failed
    | QueueStatus
    | StaffDigit
    | CrisisAnswered
    | CrisisEnded
    | Silence
    | SpeechHeard
    | Heard
)
