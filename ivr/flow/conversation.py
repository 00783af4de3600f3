"""The connected phase of a call as a pure machine: a citizen and a counselor talking.

`Conversation` knows nothing of menus or queues. Its owner (the inbound journey,
ivr.flow.call, today; outbound journeys next) creates it once the citizen and the staff leg are
to be bridged, feeds it the connected-phase events with the time, carries out the commands it
returns, and, once it has ended, reads `ending` to finish the call its own way. No I/O, no
clock; the playback ids come from the owner's `PlaybackIds`, so they stay unique per call.
"The caller" is the citizen, whoever dialled.

    TALKING --*7--> CRISIS_RINGING --crisis line answered--> THREE_WAY
    CRISIS_RINGING --crisis line did not answer--> TALKING (the counselor is told)
    THREE_WAY --crisis line hung up--> TALKING
    THREE_WAY --counselor hung up--> HANDED_OVER (the crisis line stays with the caller)
    HANDED_OVER --crisis line hung up--> ENDED (transferred)
    TALKING/CRISIS_RINGING --counselor hung up--> ENDED (completed)
    TALKING/CRISIS_RINGING --counselor's phone lost--> ENDED (`staff_lost`: the owner finds the
        caller another counselor; a crisis line still ringing is hung up if it answers)
    any state with the counselor --*9--> ENDED (abuse: the owner plays the policy notice)
    any state --caller hung up--> ENDED (completed, or transferred once HANDED_OVER)
    any state --close() (the owner failed)--> ENDED (error)

What each event means here:
- `StaffDigit`: the counselor's keys; a feature code is `*` then one key: `*9` ends the call
  for abuse, `*7` rings the crisis line (warm transfer), `*8` requests a callback for the
  caller, `*6` marks the caller's consent withdrawn (recording stops and is discarded).
- `Silence` / `SpeechHeard`: from the audio taps. The product never hangs up on silence; it
  tells the counselor (`NotifyStaff`): "both_silent" after `both_silence_notify` seconds of
  both sides quiet, "caller_silent" after `caller_silence_notify` of the caller quiet. Each
  notice ends only when a party it is about speaks: "caller_silent" when the caller speaks,
  "both_silent" when either does. Only the caller's speech is announced ("resumed"): the
  counselor knows when they spoke themselves. A notice that ended can be told again after a
  new stretch of silence.
- `CrisisAnswered` / `CrisisEnded`: the crisis leg rung for `*7`.
- `StaffHungUp` / `CallerHungUp`: a side of the call is gone. `StaffHungUp(lost=True)`: the
  counselor did not hang up, their phone went away (no media for `rtp_timeout` seconds, a
  network failure): the caller was cut off from them, not helped to the end.

Recording is on from the start when the caller consented ("yes"), off otherwise, and off for
good once consent is withdrawn. An owner that asks the question after the bridging (an outbound
call) starts the conversation with consent "pending" and tells it the answer
(`consent_answered`): recording starts at a yes.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from ivr.flow.commands import (
    CallbackConsent,
    CallbackReason,
    Command,
    Connect,
    ConsentAnswer,
    FlagCaller,
    HangupLeg,
    JoinTalk,
    NoticeKind,
    NotifyStaff,
    Outcome,
    Play,
    RecordSilence,
    RequestCallback,
    RingCrisis,
    SilenceAction,
    SilenceOf,
    StartListening,
    StartRecording,
    Target,
    WithdrawConsent,
)
from ivr.flow.events import (
    CallerHungUp,
    ConversationEvent,
    CrisisAnswered,
    CrisisEnded,
    Party,
    Silence,
    SpeechHeard,
    StaffDigit,
    StaffHungUp,
)
from ivr.flow.record import CallEndReason

log = logging.getLogger(__name__)

#: Counselor keys during a call, after `*`.
STAFF_ARM = "*"
STAFF_ABUSE = "9"
STAFF_CRISIS = "7"
STAFF_CALLBACK = "8"
STAFF_WITHDRAW = "6"
#: What the counselor hears when the crisis line was not reached (also after a restart).
STAFF_CRISIS_UNREACHABLE = "staff_crisis_unreachable"

#: Every prompt id this module plays.
CONVERSATION_PROMPTS = frozenset(
    {
        "abuse_policy_end",
        "staff_callback_ack",
        STAFF_CRISIS_UNREACHABLE,
        "staff_consent_withdrawn",
    }
)

#: The notices that end when a party speaks.
ENDED_BY_SPEECH: dict[Party, frozenset[NoticeKind]] = {
    Party.CALLER: frozenset({NoticeKind.CALLER_SILENT, NoticeKind.BOTH_SILENT}),
    Party.STAFF: frozenset({NoticeKind.BOTH_SILENT}),
}


class State(enum.Enum):
    TALKING = "talking"
    CRISIS_RINGING = "crisis_ringing"  # `*7`: the crisis line rings, the counselor talks on
    THREE_WAY = "three_way"  # the crisis line joined the caller and the counselor
    HANDED_OVER = "handed_over"  # the counselor left; the crisis line stays with the caller
    ENDED = "ended"


END_STATES = frozenset({State.ENDED})
#: States with the counselor on the line (their keys count, they are told about silence).
WITH_STAFF = frozenset({State.TALKING, State.CRISIS_RINGING, State.THREE_WAY})


@dataclass(frozen=True)
class ConversationParams:
    """When the counselor is told about silence (the owner's config holds the defaults)."""

    #: Seconds both sides were silent before the counselor is told.
    both_silence_notify: float
    #: Seconds the caller alone was silent before the counselor is told.
    caller_silence_notify: float

    def __post_init__(self) -> None:
        if self.both_silence_notify <= 0 or self.caller_silence_notify <= 0:
            raise ValueError("silence notice thresholds must be positive")


class PlaybackIds:
    """Playback ids unique within one call, shared by a journey and its conversation."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"{self.call_id}-pb{self.count}"


@dataclass(frozen=True, slots=True)
class Ending:
    """How a conversation ended, for its owner to finish the call."""

    outcome: Outcome
    #: A prompt the caller hears before the owner hangs up (None: hang up at once).
    prompt: str | None = None
    #: The caller is gone already: nothing to play or hang up.
    caller_gone: bool = False
    #: The counselor's phone was lost mid-conversation: the caller is still there, cut off.
    staff_lost: bool = False


class Conversation:
    """The connected phase: `handle(event, now)` returns the commands to carry out."""

    def __init__(
        self,
        call_id: str,
        params: ConversationParams,
        ids: PlaybackIds,
        staff_leg: str,
        member: str,
        consent: ConsentAnswer | None,
    ) -> None:
        self.call_id = call_id
        self.params = params
        self.state = State.TALKING
        self.member = member
        #: The counselor's channel (None once they left).
        self.staff_leg: str | None = staff_leg
        #: The crisis line's channel while it is joined.
        self.crisis_leg: str | None = None
        self.consent = consent
        #: Set when the call ends (or will end) other than the usual way.
        self.end_reason: CallEndReason | None = None
        #: Set when the conversation has ended.
        self.ending: Ending | None = None
        self._ids = ids
        self._armed = False  # the counselor pressed `*`
        self._quiet_since: dict[Party, float | None] = {Party.CALLER: None, Party.STAFF: None}
        self._told: set[NoticeKind] = set()

    @property
    def ended(self) -> bool:
        return self.state in END_STATES

    @property
    def recording(self) -> bool:
        """The counseling is being recorded (consent given and not withdrawn)."""
        return self.consent is ConsentAnswer.YES and not self.ended

    def silent_since(self, party: Party) -> float | None:
        """When the party's current silence started, as last reported (None: speaking)."""
        return self._quiet_since[party]

    def start(self) -> list[Command]:
        """Bridge the caller with the counselor: the commands that begin the conversation."""
        assert self.staff_leg is not None
        cmds: list[Command] = [
            Connect(self.staff_leg),
            StartListening(Party.STAFF, leg_id=self.staff_leg),
        ]
        if self.consent is ConsentAnswer.YES:
            cmds.append(StartRecording())
        return cmds

    def consent_answered(self, answer: ConsentAnswer) -> list[Command]:
        """The caller answered the summary question after the bridging (an outbound call asks
        it once connected, ivr.followup.journey): a yes starts the recording now."""
        if self.ended or self.consent is not ConsentAnswer.PENDING:
            return []
        self.consent = answer
        return [StartRecording()] if answer is ConsentAnswer.YES else []

    # -- helpers -------------------------------------------------------------------------
    def _goto(self, new: State) -> None:
        if new is not self.state:
            log.info("call %s: conversation %s -> %s", self.call_id, self.state.value, new.value)
            self.state = new

    def _end(
        self, outcome: Outcome, prompt: str | None = None, gone: bool = False, lost: bool = False
    ) -> None:
        self.ending = Ending(outcome, prompt, gone, lost)
        self._goto(State.ENDED)

    def _hangup_legs(self) -> list[Command]:
        legs = [leg for leg in (self.staff_leg, self.crisis_leg) if leg is not None]
        self.staff_leg = self.crisis_leg = None
        return [HangupLeg(leg) for leg in legs]

    def _to_staff(self, prompt: str) -> Play:
        """A short prompt to the counselor's leg only (the caller does not hear it)."""
        assert self.staff_leg is not None
        return Play(self._ids.next(), (prompt,), Target.LEG, self.staff_leg)

    def _notify(self, kind: NoticeKind, seconds: float) -> NotifyStaff:
        return NotifyStaff(kind, seconds, member=self.member, leg_id=self.staff_leg)

    # -- the machine ---------------------------------------------------------------------
    def close(self) -> list[Command]:
        """The owner failed: hang up every leg still with the call (the owner recovers)."""
        if self.ended:
            return []
        cmds = self._hangup_legs()
        self._end(Outcome.ERROR)
        return cmds

    def handle(self, event: ConversationEvent, now: float) -> list[Command]:
        if self.ended:
            # A crisis line answering after the end is not left ringing into nothing.
            return [HangupLeg(event.leg_id)] if isinstance(event, CrisisAnswered) else []
        match event:
            case CallerHungUp():
                return self._caller_gone()
            case StaffHungUp(lost=lost):
                return self._staff_gone(lost)
            case StaffDigit(digit=digit):
                return self._staff_key(digit) if self.state in WITH_STAFF else []
            case Silence() | SpeechHeard():
                return self._silence(event, now)
            case CrisisAnswered(leg_id=leg):
                return self._crisis_answered(leg)
            case CrisisEnded():
                return self._crisis_ended()
        return []

    def _caller_gone(self) -> list[Command]:
        handed_over = self.state is State.HANDED_OVER
        cmds = self._hangup_legs()
        self._end(Outcome.TRANSFERRED if handed_over else Outcome.COMPLETED, gone=True)
        return cmds

    def _staff_gone(self, lost: bool) -> list[Command]:
        self.staff_leg = None
        if self.state is State.THREE_WAY:
            # Warm transfer done: the counselor dropped, the crisis line stays with the caller.
            self.end_reason = CallEndReason.CRISIS_TRANSFER
            self._goto(State.HANDED_OVER)
        elif self.state is not State.HANDED_OVER:
            # Lost: not an ending the counselor chose; the owner keeps the caller (a crisis
            # line still ringing is hung up if it answers: the conversation has ended).
            self._end(Outcome.COMPLETED, lost=lost)
        return []

    def _crisis_answered(self, leg: str) -> list[Command]:
        if self.state is not State.CRISIS_RINGING:
            return [HangupLeg(leg)]
        self.crisis_leg = leg
        self._goto(State.THREE_WAY)
        return [JoinTalk(leg)]

    def _crisis_ended(self) -> list[Command]:
        if self.state is State.CRISIS_RINGING:
            # The crisis line did not answer: tell the counselor, who is still on the line.
            self._goto(State.TALKING)
            return [self._to_staff(STAFF_CRISIS_UNREACHABLE)]
        self.crisis_leg = None
        if self.state is State.THREE_WAY:
            self._goto(State.TALKING)
        elif self.state is State.HANDED_OVER:
            self._end(Outcome.TRANSFERRED)
        return []

    def _staff_key(self, digit: str) -> list[Command]:
        if digit == STAFF_ARM:
            self._armed = True
            return []
        armed, self._armed = self._armed, False
        if not armed:
            return []
        if digit == STAFF_ABUSE:
            log.info("call %s: ended by %s for abuse", self.call_id, self.member)
            self.end_reason = CallEndReason.ABUSE
            flag = FlagCaller(member=self.member, leg_id=self.staff_leg)
            cmds: list[Command] = [flag, *self._hangup_legs()]
            self._end(Outcome.ABUSE_ENDED, prompt="abuse_policy_end")
            return cmds
        if digit == STAFF_CRISIS:
            if self.state is not State.TALKING:
                return []  # one warm transfer at a time
            self._goto(State.CRISIS_RINGING)
            return [RingCrisis()]
        if digit == STAFF_WITHDRAW:
            if self.consent is not ConsentAnswer.YES:
                return []
            self.consent = ConsentAnswer.WITHDRAWN
            return [WithdrawConsent(self.member), self._to_staff("staff_consent_withdrawn")]
        if digit == STAFF_CALLBACK:
            request = RequestCallback(
                CallbackReason.SOCIAL_WORKER, CallbackConsent.VERBAL_TO_COUNSELOR, self.member
            )
            return [request, self._to_staff("staff_callback_ack")]
        return []

    def _silence(self, event: Silence | SpeechHeard, now: float) -> list[Command]:
        """The counselor decides: the product only tells them (see the module docstring)."""
        if isinstance(event, SpeechHeard):
            self._quiet_since[event.party] = None
            ended = self._told & ENDED_BY_SPEECH[event.party]
            self._told -= ended
            if event.party is not Party.CALLER or not ended or self.state not in WITH_STAFF:
                return []
            return [self._notify(NoticeKind.RESUMED, event.after_seconds)]
        self._quiet_since[event.party] = now - event.seconds
        if self.state not in WITH_STAFF:
            return []
        cmds: list[Command] = []
        caller_q = self._quiet_since[Party.CALLER]
        staff_q = self._quiet_since[Party.STAFF]
        caller_for = now - caller_q if caller_q is not None else 0.0
        both_for = min(caller_for, now - staff_q) if staff_q is not None else 0.0
        told = self._told
        if both_for >= self.params.both_silence_notify and NoticeKind.BOTH_SILENT not in told:
            told.add(NoticeKind.BOTH_SILENT)
            cmds += [
                self._notify(NoticeKind.BOTH_SILENT, both_for),
                RecordSilence(SilenceOf.BOTH, both_for, SilenceAction.TOLD_COUNSELOR),
            ]
        if caller_for >= self.params.caller_silence_notify and NoticeKind.CALLER_SILENT not in told:
            told.add(NoticeKind.CALLER_SILENT)
            cmds += [
                self._notify(NoticeKind.CALLER_SILENT, caller_for),
                RecordSilence(SilenceOf.CALLER, caller_for, SilenceAction.TOLD_COUNSELOR),
            ]
        return cmds
