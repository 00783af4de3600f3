"""What the journey machine (ivr.flow.call) asks the adapter to do: small frozen commands."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    """How a call ended, as recorded."""

    COMPLETED = "completed"  # talked with a counselor/agent
    ABANDONED_MENU = "abandoned_menu"  # caller hung up in the menu
    ABANDONED_QUEUE = "abandoned_queue"  # caller hung up while waiting
    NO_CHOICE = "no_choice"  # three failed choices, polite goodbye
    ERROR = "error"  # the controller failed; the caller heard an apology
    ABUSE_ENDED = "abuse_ended"  # the counselor ended the call for abuse (manual procedure)
    CALLBACK_REQUESTED = "callback_requested"  # left the queue asking to be called back
    TRANSFERRED = "transferred"  # handed over to the crisis line (warm transfer)


@dataclass(frozen=True)
class Answer:
    pass


class Target(enum.Enum):
    """Who hears a playback."""

    CALLER = "caller"  # the caller's channel alone
    HOLDING = "holding"  # the caller waiting in the holding bridge (heard over the music)
    LEG = "leg"  # the answered staff leg, before it is bridged (the whisper)


@dataclass(frozen=True)
class Play:
    """Play prompts in order to `target` (`leg_id` names the leg for Target.LEG)."""

    playback_id: str
    prompts: tuple[str, ...]
    target: Target = Target.CALLER
    leg_id: str | None = None


@dataclass(frozen=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True)
class StartTimer:
    name: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    name: str


@dataclass(frozen=True)
class Hold:
    """Put the caller in their own holding bridge with music on hold."""


@dataclass(frozen=True)
class Enqueue:
    """Ask the queue's ring group for a member; `since` orders the queue (longest wait first)."""

    queue: str
    since: float


@dataclass(frozen=True)
class Dequeue:
    """Withdraw from the ring group and stop ringing anyone for this call."""

    queue: str


@dataclass(frozen=True)
class Connect:
    """Bridge the caller with the answered leg (and leave the holding bridge)."""

    leg_id: str


@dataclass(frozen=True)
class HangupLeg:
    """Hang up a staff leg (the call is over, or someone else answered first)."""

    leg_id: str


@dataclass(frozen=True)
class HangupCaller:
    pass


@dataclass(frozen=True)
class Recover:
    """Hand the caller to the dialplan's recovery context: an apology, then hangup."""


@dataclass(frozen=True)
class FlagCaller:
    """Flag the caller's number for abuse (graduated, time-limited)."""


@dataclass(frozen=True)
class RequestCallback:
    """Store a callback request for this caller."""

    reason: str  # "max_wait" (caller's key press) or "social_worker" (counselor's request)
    consent: str  # how consent was given
    requested_by: str | None  # the counselor, or None for the caller themselves


@dataclass(frozen=True)
class RingCrisis:
    """Ring the crisis line for a warm transfer (the counselor stays on the line)."""


@dataclass(frozen=True)
class JoinTalk:
    """Add a leg to the caller's talk bridge (three-way during the warm transfer)."""

    leg_id: str


@dataclass(frozen=True)
class StartListening:
    """Open the audio tap on a party (the caller at once; the staff leg when connected)."""

    party: str


@dataclass(frozen=True)
class Listen:
    """Recognise these phrases from the caller from now on (empty: stop recognising)."""

    phrases: tuple[str, ...]


@dataclass(frozen=True)
class NotifyStaff:
    """Tell the counselor's phone (a SIP MESSAGE): "both_silent", "caller_silent", "resumed"."""

    kind: str
    seconds: float


@dataclass(frozen=True)
class RecordSilence:
    """Keep a silence event with the call: who, how long, what the product did."""

    party: str
    seconds: float
    action: str


@dataclass(frozen=True)
class RecordConsent:
    """Store the caller's answer to the summary question ("yes", "no" or "none")."""

    answer: str
    answered_by: str  # key | voice | none
    prompts: tuple[str, ...]  # exactly what was played


@dataclass(frozen=True)
class StartRecording:
    """Record the counseling part of the call (consent given), each party separately."""


@dataclass(frozen=True)
class WithdrawConsent:
    """The caller withdrew consent during the call: stop and delete what was recorded."""

    by: str | None


@dataclass(frozen=True)
class Finish:
    """The call is over: write the final record."""

    outcome: Outcome


Command = (
    Answer
    | Play
    | StopPlayback
    | StartTimer
    | CancelTimer
    | Hold
    | Enqueue
    | Dequeue
    | Connect
    | HangupLeg
    | HangupCaller
    | Recover
    | FlagCaller
    | RequestCallback
    | RingCrisis
    | JoinTalk
    | StartListening
    | Listen
    | NotifyStaff
    | RecordSilence
    | RecordConsent
    | StartRecording
    | WithdrawConsent
    | Finish
)
