"""What the journey machine (ivr.flow.call) asks the adapter to do: small frozen commands.

String fields that are really enumerations are `StrEnum`s whose values are the strings the
database rows, SIP headers and SIP MESSAGE bodies have always held. Fields marked "adapter
routing" name the channel or member a command is about so the adapter never has to look it up;
they do not take part in comparing commands.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ivr.flow.events import Party


class Outcome(enum.Enum):
    """How a call ended, as recorded."""

    COMPLETED = "completed"  # talked with a counselor/agent
    ABANDONED_MENU = "abandoned_menu"  # caller hung up in the menu
    ABANDONED_QUEUE = "abandoned_queue"  # caller hung up while waiting (after the intro)
    ABANDONED_INTRO = "abandoned_intro"  # caller hung up during the line's intro
    ABANDONED_CONSENT = "abandoned_consent"  # caller hung up during the consent question
    NO_CHOICE = "no_choice"  # three failed choices, polite goodbye
    ERROR = "error"  # the controller failed; the caller heard an apology
    ABUSE_ENDED = "abuse_ended"  # the counselor ended the call for abuse (manual procedure)
    CALLBACK_REQUESTED = "callback_requested"  # left the queue asking to be called back
    TRANSFERRED = "transferred"  # handed over to the crisis line (warm transfer)
    NOT_REACHED = "not_reached"  # an outbound call: the citizen was not reached


class ConsentAnswer(enum.StrEnum):
    """The caller's answer to the summary question, as the flow knows it."""

    YES = "yes"
    NO = "no"
    NONE = "none"  # no answer (or a counselor answered first): no consent
    PENDING = "pending"  # being asked (told to the counselor's phone while it rings)
    WITHDRAWN = "withdrawn"  # was yes; withdrawn during the call (never stored as an answer)


class AnsweredBy(enum.StrEnum):
    """How the consent question was answered."""

    KEY = "key"
    VOICE = "voice"
    NONE = "none"  # not answered in time
    COUNSELOR_FIRST = "counselor_first"  # a counselor answered before the caller did


class CallbackReason(enum.StrEnum):
    """Why a callback was requested."""

    MAX_WAIT = "max_wait"  # the caller accepted the offer while waiting
    SOCIAL_WORKER = "social_worker"  # the counselor asked for it (`*8`)
    WELFARE_SILENCE = "welfare_silence"  # a silent line: a welfare check
    CHAT = "chat"  # a citizen in the text chat left their number to be called (ivr/chat)


class CallbackConsent(enum.StrEnum):
    """How the caller agreed to be called back."""

    CALLER_KEYPRESS = "caller_keypress"
    CALLER_VOICE = "caller_voice"
    VERBAL_TO_COUNSELOR = "verbal_to_counselor"
    NONE_WELFARE_CHECK = "none_welfare_check"  # not asked: the line was silent
    CITIZEN_CHAT = "citizen_chat"  # typed their own number in the chat, asking for a call


class NoticeKind(enum.StrEnum):
    """What the counselor's phone is told (the SIP MESSAGE body "ivr120:<kind>:<seconds>")."""

    BOTH_SILENT = "both_silent"
    CALLER_SILENT = "caller_silent"
    RESUMED = "resumed"  # the caller spoke again after a notice about them


class SilenceOf(enum.StrEnum):
    """Whose silence a silence event is about."""

    CALLER = "caller"
    STAFF = "staff"
    BOTH = "both"


class SilenceAction(enum.StrEnum):
    """What the product did about a silence."""

    GENTLE_PROMPT = "gentle_prompt"  # the menu's gentle word before it repeats
    TOLD_COUNSELOR = "told_counselor"  # a notice to the counselor's phone
    WELFARE_CALLBACK = "welfare_callback"  # a silent line flagged for a welfare callback


@dataclass(frozen=True, slots=True)
class Answer:
    pass


class Target(enum.Enum):
    """Who hears a playback."""

    CALLER = "caller"  # the caller's channel alone
    HOLDING = "holding"  # the caller waiting in the holding bridge (heard over the music)
    LEG = "leg"  # the answered staff leg, before it is bridged (the whisper)


@dataclass(frozen=True, slots=True)
class Play:
    """Play prompts in order to `target` (`leg_id` names the leg for Target.LEG)."""

    playback_id: str
    prompts: tuple[str, ...]
    target: Target = Target.CALLER
    leg_id: str | None = None


@dataclass(frozen=True, slots=True)
class StopPlayback:
    playback_id: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class Hold:
    """Put the caller in their own holding bridge with music on hold."""


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Ask the queue's ring group for a member; `since` orders the queue (longest wait first)."""

    queue: str
    since: float


@dataclass(frozen=True, slots=True)
class Dequeue:
    """Withdraw from the ring group and stop ringing anyone for this call."""

    queue: str


@dataclass(frozen=True, slots=True)
class Connect:
    """Bridge the caller with the answered leg (and leave the holding bridge)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class HangupLeg:
    """Hang up a staff leg (the call is over, or someone else answered first)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class HangupCaller:
    pass


@dataclass(frozen=True, slots=True)
class Recover:
    """Hand the caller to the dialplan's recovery context: an apology, then hangup."""


@dataclass(frozen=True, slots=True)
class FlagCaller:
    """Flag the caller's number for abuse (graduated, time-limited)."""

    #: Adapter routing: the counselor who ended the call.
    member: str | None = field(default=None, compare=False)
    #: Adapter routing: the counselor's leg (it gets the longer wrap-up).
    leg_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RequestCallback:
    """Store a callback request for this caller."""

    reason: CallbackReason
    consent: CallbackConsent  # how consent was given
    requested_by: str | None  # the counselor, or None for the caller themselves


@dataclass(frozen=True, slots=True)
class RingCrisis:
    """Ring the crisis line for a warm transfer (the counselor stays on the line)."""


@dataclass(frozen=True, slots=True)
class JoinTalk:
    """Add a leg to the caller's talk bridge (three-way during the warm transfer)."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class StartListening:
    """Open the audio tap on a party (the caller at once; the staff leg when connected)."""

    party: Party
    #: Adapter routing: the channel to listen to (the staff leg; None for the caller's own).
    leg_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StopListening:
    """Close the party's audio tap (a caller waiting in the queue with no question open: the
    tap costs Asterisk a snoop, a bridge and an RTP stream per caller, issue 13)."""

    party: Party


@dataclass(frozen=True, slots=True)
class Listen:
    """Recognise these phrases from the caller from now on (empty: stop recognising)."""

    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotifyStaff:
    """Tell the counselor's phone (a SIP MESSAGE) about the call's silence."""

    kind: NoticeKind
    seconds: float
    #: Adapter routing: the counselor to tell.
    member: str | None = field(default=None, compare=False)
    #: Adapter routing: the counselor's leg.
    leg_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RecordSilence:
    """Keep a silence event with the call: who, how long, what the product did."""

    party: SilenceOf
    seconds: float
    action: SilenceAction


@dataclass(frozen=True, slots=True)
class RecordConsent:
    """Store the caller's answer to the summary question (yes, no or none)."""

    answer: ConsentAnswer
    answered_by: AnsweredBy
    prompts: tuple[str, ...]  # exactly what was played


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Record the counseling part of the call (consent given), each party separately."""


@dataclass(frozen=True, slots=True)
class StopRecording:
    """The counseling is over (the caller stays on for the survey): stop the recordings and
    keep what was recorded; nothing said after this is recorded."""


@dataclass(frozen=True, slots=True)
class WithdrawConsent:
    """The caller withdrew consent during the call: stop and delete what was recorded."""

    by: str | None


class SurveyKind(enum.StrEnum):
    """The post-call survey a line asks (the `survey_answers.kind` column)."""

    SCORE = "score"  # 1-5 by key
    HELPED = "helped"  # "did this help?": 네/아니요 spoken, or keys 1/2


@dataclass(frozen=True, slots=True)
class RecordSurvey:
    """Store the caller's one answer to the post-call survey (no caller number, no hash)."""

    kind: SurveyKind
    #: SCORE: 1-5; HELPED: 1 yes, 0 no.
    answer: int
    #: "key" or "voice".
    answered_by: AnsweredBy


@dataclass(frozen=True, slots=True)
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
    | StopListening
    | Listen
    | NotifyStaff
    | RecordSilence
    | RecordConsent
    | StartRecording
    | StopRecording
    | WithdrawConsent
    | RecordSurvey
    | Finish
)
