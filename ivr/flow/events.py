"""What happens to a call, as the journey machine (ivr.flow.call) is told: small frozen events.

The adapter (ivr.controller) builds them from ARI events, timers and the audio taps. The events
of the connected phase (`StaffHungUp`, `StaffDigit`, `CrisisAnswered`, `CrisisEnded`, `Silence`,
`SpeechHeard`, `CallerHungUp`) are the ones the conversation machine (ivr.flow.conversation)
takes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Party(enum.StrEnum):
    """Who of a connected call is meant: the caller, or the staff member (counselor)."""

    CALLER = "caller"
    STAFF = "staff"


@dataclass(frozen=True, slots=True)
class Started:
    """The caller's channel entered the application."""

    #: The caller's number has an active abuse flag: a policy notice precedes queueing.
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class Digit:
    """The caller pressed a key."""

    #: "0".."9", "*" or "#".
    digit: str


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """A playback this flow started has finished (or was stopped)."""

    #: The id the flow gave it in `Play`.
    playback_id: str


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer this flow started has fired."""

    #: The name the flow gave it in `StartTimer`.
    name: str


@dataclass(frozen=True, slots=True)
class StaffAnswered:
    """A ring group member answered."""

    #: The member's channel.
    leg_id: str
    #: The member (their endpoint name).
    member: str


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller's channel is gone."""


@dataclass(frozen=True, slots=True)
class StaffHungUp:
    """The connected staff member's channel is gone."""

    #: Their phone was lost, not hung up: Asterisk ended the channel for lack of media from it
    #: (`rtp_timeout`) or for a network failure (ivr.staff.driver, `LOST_CAUSES`).
    lost: bool = False


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """Where the waiting caller stands."""

    #: Callers ahead in the queue.
    ahead: int
    #: The estimated wait in seconds (None: unknown).
    estimate: float | None
    #: Members of the line who could answer at all (on shift, logged in, not paused,
    #: registered; busy or in wrap-up counts). 0: nobody, the caller is told so. None: unknown.
    reachable: int | None = None


@dataclass(frozen=True, slots=True)
class StaffDigit:
    """The connected counselor pressed a key (`*9` abuse, `*7` crisis, `*8` callback, `*6`
    consent withdrawn)."""

    #: "0".."9", "*" or "#".
    digit: str


@dataclass(frozen=True, slots=True)
class CrisisAnswered:
    """The crisis line answered the warm transfer."""

    #: The crisis line's channel.
    leg_id: str


@dataclass(frozen=True, slots=True)
class CrisisEnded:
    """The crisis leg is gone: it never answered (or could not be rung), or it hung up."""


@dataclass(frozen=True, slots=True)
class Silence:
    """A party has been silent for `seconds` (from the call's audio tap)."""

    #: Who was silent (a plain "caller"/"staff" is taken as the `Party`).
    party: Party
    #: How long the current silent stretch is.
    seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "party", Party(self.party))


@dataclass(frozen=True, slots=True)
class SpeechHeard:
    """A party started speaking (again)."""

    #: Who spoke (a plain "caller"/"staff" is taken as the `Party`).
    party: Party
    #: The silence before it, in seconds (0: the silence was too short to count).
    after_seconds: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "party", Party(self.party))


@dataclass(frozen=True, slots=True)
class Heard:
    """The recognizer heard one of the phrases the flow is listening for."""

    #: The phrase, as given in `Listen`.
    phrase: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The adapter could not carry out a command."""

    #: What failed, for the log.
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

#: The events of the connected phase: what a `Conversation` takes.
ConversationEvent = (
    CallerHungUp | StaffHungUp | StaffDigit | CrisisAnswered | CrisisEnded | Silence | SpeechHeard
)
