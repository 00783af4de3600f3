"""An outbound follow-up call as a pure state machine: events and the time in, commands out.

The dialler (ivr.followup.dialler) has rung a staff member for a task and they answered; from
then on this machine has the call. Its `call_id` is the citizen's channel (dialled later on the
trunk), so the inbound commands (`Play`, `Connect`, `HangupCaller`, `Finish`, ...) mean the
same here as for an inbound call: "the caller" is the citizen.

    WHISPER (the staff member hears what the task is) --done--> DIALLING (DialCitizen; the
    staff member hears ringback) --citizen answered--> CONNECTED (bridged; the citizen hears
    the opt-out notice; the `Conversation` of ivr.flow.conversation runs unchanged)
    CONNECTED --citizen hung up--> OUTCOME (the staff member is asked for the outcome: 1
    reached, 2 not reached, 3 more help needed, and for a monitoring call 4 the referral did
    not work; a timer sets the default) --key/timer-->
    TELLING (the staff member hears it was saved) --done--> ENDED
    DIALLING --citizen's channel ended (no answer, busy, failure)--> TELLING ("연결되지
    않았습니다": the attempt is recorded, the task rescheduled or closed unreachable)
    WHISPER/DIALLING --staff hung up--> ENDED (the citizen's leg is cancelled; the attempt is
    `staff_left`, not counted against the citizen)
    CONNECTED --staff hung up--> ENDED (the citizen is hung up; the default outcome)
    CONNECTED --the staff member's phone lost--> GOODBYE (the citizen hears they will be called
    again; the attempt is `staff_lost`, not counted, the task due again soon) --done--> ENDED
    CONNECTED --*9 abuse--> GOODBYE (the citizen hears the policy) --done--> ENDED
    any live state --adapter failure--> ENDED via Recover (an answered citizen hears the
    apology from the dialplan)

The summary consent for this contact (`JourneyConfig.ask_consent`): ivr.followup.question.

The citizen's key 9, at any moment after answering, opts out of follow-up calls: recorded
(`RecordOptOut` closes every open task of theirs), confirmed to the citizen, told to the staff
member; the conversation goes on, and no outcome is asked (the task is closed `opted_out`).

Bookkeeping at the end: `RecordAttempt`, then `CloseTask` (reached, more help) or
`RescheduleTask` / `CloseTask(unreachable)` by the back-off (model.next_due), then
`EndFollowup` and `Finish`.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ivr.flow.commands import (
    CancelTimer,
    Command,
    ConsentAnswer,
    Finish,
    HangupCaller,
    HangupLeg,
    Outcome,
    Play,
    Recover,
    StartListening,
    StartTimer,
    StopPlayback,
    Target,
)
from ivr.flow.conversation import Conversation, ConversationParams, PlaybackIds
from ivr.flow.events import (
    CallerHungUp,
    CrisisAnswered,
    CrisisEnded,
    Digit,
    Failed,
    FlowEvent,
    Party,
    PlaybackDone,
    Silence,
    SpeechHeard,
    StaffAnswered,
    StaffDigit,
    StaffHungUp,
    TimerFired,
)
from ivr.flow.record import CallRecord, Stage
from ivr.followup import model
from ivr.followup.commands import (
    CloseTask,
    DialCitizen,
    EndFollowup,
    FollowupCommand,
    RecordAttempt,
    RecordOptOut,
    RescheduleTask,
    Ringback,
)
from ivr.followup.events import CitizenAnswered, CitizenGone, FollowupEvent
from ivr.followup.question import QUESTION_PROMPTS, SummaryQuestion
from ivr.staff.teams import Teams
from ivr.timezone import SEOUL

log = logging.getLogger(__name__)

#: The citizen's key that stops every future follow-up call.
OPT_OUT_KEY = "9"
#: The staff member's outcome keys after the citizen hung up (4: a monitoring call only).
OUTCOME_KEYS = {"1": "reached", "2": "not_reached", "3": "more_help", "4": "not_linked"}
OUTCOME_TIMER = "followup-outcome"

WHISPER = {t: f"followup_whisper_{t.value}" for t in model.TaskType}
#: The whisper's second part when the citizen has been in contact before.
WHISPER_AGAIN = "followup_whisper_again"
OPT_OUT_NOTICE = "followup_optout_notice"
OPT_OUT_CONFIRM = "followup_optout_confirm"
STAFF_OPT_OUT = "staff_followup_optout"
NOT_CONNECTED = "followup_not_connected"
RESCHEDULED = "followup_rescheduled"
CLOSED_UNREACHABLE = "followup_closed_unreachable"
OUTCOME_MENU = "followup_outcome_menu"
#: A monitoring call's menu names the referral: it worked (1) or did not (4).
OUTCOME_MENU_MONITORING = "followup_outcome_menu_monitoring"
OUTCOME_SAVED = "followup_outcome_saved"
#: The citizen's last words when the staff member's phone was lost mid-call.
STAFF_LOST_GOODBYE = "followup_staff_lost"
#: Every prompt id this module plays (the app checks the catalog).
FOLLOWUP_PROMPTS = frozenset(
    {*WHISPER.values(), WHISPER_AGAIN, OPT_OUT_NOTICE, OPT_OUT_CONFIRM, STAFF_OPT_OUT}
    | {NOT_CONNECTED, RESCHEDULED, CLOSED_UNREACHABLE, OUTCOME_MENU, OUTCOME_MENU_MONITORING}
    | {OUTCOME_SAVED, STAFF_LOST_GOODBYE}
    | QUESTION_PROMPTS
)

#: Q.850 causes of a citizen's leg that ended before answering.
BUSY_CAUSES = frozenset({17, 21})  # user busy, call rejected (603 Decline)
NO_ANSWER_CAUSES = frozenset({16, 18, 19, 31})  # cancelled at the ring timeout, no answer


def seoul_time(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, SEOUL)


def attempt_result(cause: int) -> model.AttemptResult:
    """What an unanswered citizen's leg came to, by its Q.850 cause."""
    if cause in BUSY_CAUSES:
        return model.AttemptResult.BUSY
    if cause in NO_ANSWER_CAUSES:
        return model.AttemptResult.NO_ANSWER
    return model.AttemptResult.FAILED


class State(enum.Enum):
    WHISPER = "whisper"
    DIALLING = "dialling"
    CONNECTED = "connected"
    OUTCOME = "outcome"  # the citizen hung up; the staff member sets the outcome
    TELLING = "telling"  # the staff member hears the last word, then is hung up
    GOODBYE = "goodbye"  # the citizen hears why the call ends (abuse policy)
    ENDED = "ended"


END_STATES = frozenset({State.ENDED})
#: What the conversation takes (ivr.flow.events.ConversationEvent).
CONVERSATION_EVENTS = (
    CallerHungUp,
    StaffHungUp,
    StaffDigit,
    CrisisAnswered,
    CrisisEnded,
    Silence,
    SpeechHeard,
)
BEFORE_ANSWER = frozenset({State.WHISPER, State.DIALLING})
#: The stage each state's time counts to (ivr.flow.record.Stage: `calls.ended_in` and the stage
#: columns); the closing words (TELLING, GOODBYE) are `goodbye`, never where the call ended.
STAGE_OF = {
    State.WHISPER: Stage.WHISPER,
    State.DIALLING: Stage.DIALLING,
    State.CONNECTED: Stage.STAFF,
    State.OUTCOME: Stage.OUTCOME,
    State.TELLING: Stage.GOODBYE,
    State.GOODBYE: Stage.GOODBYE,
}


@dataclass(frozen=True, kw_only=True)
class JourneyConfig:
    """The settings' values for outbound calls."""

    followup: model.FollowupConfig
    conversation: ConversationParams
    #: Seconds the staff member has to press an outcome key before the default applies.
    outcome_timeout: float = 20.0
    #: The follow-up teams' hours (config/teams.toml): a companion's retry lands within the
    #: companion's own hours. None: every retry keeps to the calling hours.
    teams: Teams | None = None
    #: Ask the citizen, once bridged, whether a summary may be kept for this contact.
    ask_consent: bool = False
    #: Seconds to answer it once it has been played (the inbound `consent_timeout`).
    consent_timeout: float = 8.0

    def __post_init__(self) -> None:
        if self.outcome_timeout <= 0 or self.consent_timeout <= 0:
            raise ValueError("outcome_timeout and consent_timeout must be positive")


class FollowupCall:
    """One outbound call for one task. `start(now)` (or the `StaffAnswered` event) once the
    staff leg answered, then `handle(event, now)`; both return the commands to carry out."""

    def __init__(
        self,
        call_id: str,
        task: model.Task,
        staff_leg: str,
        member: str,
        config: JourneyConfig,
        now: float,
        *,
        contacts: int = 0,
        consent: ConsentAnswer | None = None,
    ) -> None:
        self.call_id = call_id
        self.task = task
        self.member = member
        self.config = config
        self.contacts = contacts
        self.state = State.WHISPER
        self.record = CallRecord(started_at=now, member=member)
        #: The time of the event being handled, and when the current state began (the stages).
        self._clock = self._stage_since = now
        #: The staff member's channel while they are on the line.
        self.staff_leg: str | None = staff_leg
        #: The citizen's consent to a summary for this contact (None: not recorded).
        self._consent = consent
        self.conversation: Conversation | None = None
        #: The citizen pressed the opt-out key.
        self.opted_out = False
        #: What the attempt came to, once known.
        self.result: model.AttemptResult | None = None
        self._ids = PlaybackIds(call_id)
        self._playback: str | None = None  # the prompt we wait for (whisper, goodbye, ...)
        self._ringback: str | None = None
        self._talk_end: float | None = None
        self._closing = Outcome.COMPLETED
        self._started = False
        self._notice: str | None = None  # the opt-out notice (the question follows it)
        #: The summary question, while it is open (asked on this call, not answered yet).
        self._question: SummaryQuestion | None = None

    # -- what the rooms read -------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self.state in END_STATES

    @property
    def consent(self) -> ConsentAnswer | None:
        if self.conversation is not None:
            return self.conversation.consent
        return self._consent

    @property
    def talk_seconds(self) -> float | None:
        answered = self.record.answered_at
        if answered is None or self._talk_end is None:
            return None
        return max(0.0, self._talk_end - answered)

    # -- helpers -------------------------------------------------------------------------
    def _goto(self, new: State) -> None:
        if new is not self.state:
            log.info("follow-up %s: %s -> %s", self.call_id, self.state.value, new.value)
            stage = STAGE_OF.get(self.state)
            if stage is not None:
                self.record.spent(stage, self._clock - self._stage_since)
                if stage is not Stage.GOODBYE:
                    self.record.ended_in = stage
            self._stage_since = self._clock
            self.state = new

    def _play(self, prompts: tuple[str, ...], target: Target, leg: str | None = None) -> Play:
        self._playback = self._ids.next()
        return Play(self._playback, prompts, target, leg)

    def _to_staff(self, *prompts: str) -> list[Command | FollowupCommand]:
        if self.staff_leg is None:
            return []
        return [self._play(prompts, Target.LEG, self.staff_leg)]

    def _stop_ringback(self) -> list[Command]:
        pb, self._ringback = self._ringback, None
        return [StopPlayback(pb)] if pb else []

    def _end(self, now: float, outcome: Outcome) -> list[Command | FollowupCommand]:
        self.record.ended_at = now
        self.record.outcome = outcome
        self._goto(State.ENDED)
        return [EndFollowup(), Finish(outcome)]

    def _settle(
        self, result: model.AttemptResult, now: float, cause: int | None = None
    ) -> tuple[list[Command | FollowupCommand], bool]:
        """The attempt's records; returns them and whether the task is due again."""
        self.result = result
        counted = result in model.COUNTED
        talk = self.talk_seconds
        cmds: list[Command | FollowupCommand] = [RecordAttempt(result, cause, talk, counted)]
        if self.opted_out or result is model.AttemptResult.OPTED_OUT:
            return cmds, False  # RecordOptOut closed every open task of the citizen
        if result is model.AttemptResult.REACHED:
            return cmds, False
        attempts = self.task.attempts + (1 if counted else 0)
        due = model.next_due(attempts, result, now, self.config.followup, self._opens())
        if due is None:
            cmds.append(CloseTask(model.Status.UNREACHABLE, model.Outcome.UNREACHABLE))
            return cmds, False
        cmds.append(RescheduleTask(due))
        return cmds, True

    def _opens(self) -> Callable[[float], float] | None:
        """When a retry may be dialled: companions are exempt from the calling hours and call
        within their own (the task's companion's, as the planner offers it to them only)."""
        teams = self.config.teams
        if teams is None or self.task.team is not model.Team.COMPANIONS:
            return None
        member = self.task.member or self.member

        def opens(t: float) -> float:
            on = teams.next_on_duty(model.Team.COMPANIONS.value, member, seoul_time(t))
            return t if on is None else max(t, on.timestamp())

        return opens

    def _settle_talked(self, choice: str, now: float) -> list[Command | FollowupCommand]:
        """The citizen answered and talked: the staff member's choice (or the default)."""
        if self.opted_out:
            return self._settle(model.AttemptResult.OPTED_OUT, now)[0]
        if choice == "not_reached":
            # Someone else, or an answering machine: the citizen still needs a call.
            return self._settle(model.AttemptResult.NO_ANSWER, now)[0]
        cmds, _ = self._settle(model.AttemptResult.REACHED, now)
        # What follows the close (the referral's status, the in-depth task for more help, the
        # companion series' next call) is the dialler's (ivr.followup.closing).
        outcome = {
            "more_help": model.Outcome.MORE_HELP,
            "not_linked": model.Outcome.NOT_LINKED,
        }.get(choice, model.Outcome.REACHED)
        cmds.append(CloseTask(model.Status.DONE, outcome))
        return cmds

    def _default_choice(self) -> str:
        cfg = self.config.followup
        return "reached" if model.reached_by_default(self.talk_seconds, cfg) else "not_reached"

    # -- the machine ---------------------------------------------------------------------
    def start(self, now: float) -> list[Command | FollowupCommand]:
        """The staff member answered: they hear what the task is."""
        self._started = True
        prompts = (WHISPER[self.task.type],) + ((WHISPER_AGAIN,) if self.contacts else ())
        return self._to_staff(*prompts)

    def handle(
        self, event: FlowEvent | FollowupEvent, now: float
    ) -> list[Command | FollowupCommand]:
        self._clock = now
        if isinstance(event, StaffAnswered):
            if self._started:
                return [] if event.leg_id == self.staff_leg else [HangupLeg(event.leg_id)]
            return self.start(now)
        if self.ended:
            if isinstance(event, CitizenAnswered):
                return [HangupCaller()]  # a citizen answering after the end is let go
            return []
        if isinstance(event, Failed):
            return self._fail(event.reason, now)
        if isinstance(event, CallerHungUp):
            event = CitizenGone(0)
        if self.state in BEFORE_ANSWER:
            return self._before_answer(event, now)
        if self.state is State.CONNECTED:
            return self._connected(event, now)
        if self.state is State.OUTCOME:
            return self._outcome(event, now)
        return self._closing_words(event, now)

    def _before_answer(
        self, event: FlowEvent | FollowupEvent, now: float
    ) -> list[Command | FollowupCommand]:
        if isinstance(event, StaffHungUp):
            log.info("follow-up %s: %s left before the citizen answered", self.call_id, self.member)
            self.staff_leg = None
            cmds: list[Command | FollowupCommand] = [*self._stop_ringback(), HangupCaller()]
            cmds += self._settle(model.AttemptResult.STAFF_LEFT, now)[0]
            return cmds + self._end(now, Outcome.NOT_REACHED)
        if self.state is State.WHISPER:
            if isinstance(event, PlaybackDone) and event.playback_id == self._playback:
                self._playback = None
                self._goto(State.DIALLING)
                assert self.staff_leg is not None
                self._ringback = self._ids.next()
                return [DialCitizen(), Ringback(self._ringback, self.staff_leg)]
            return []  # nothing else before the citizen is dialled
        if isinstance(event, CitizenAnswered):
            return self._citizen_answered(now)
        if isinstance(event, CitizenGone):
            result = (
                model.AttemptResult.SERVICE_FAILED if event.service else attempt_result(event.cause)
            )
            log.info(
                "follow-up %s: citizen not reached (%s, cause %d)",
                self.call_id,
                result.value,
                event.cause,
            )
            self._talk_end = now
            settled, again = self._settle(result, now, event.cause)
            self._goto(State.TELLING)
            self._closing = Outcome.NOT_REACHED
            told = (NOT_CONNECTED, RESCHEDULED if again else CLOSED_UNREACHABLE)
            return [*self._stop_ringback(), *settled, *self._to_staff(*told)]
        return []

    def _citizen_answered(self, now: float) -> list[Command | FollowupCommand]:
        assert self.staff_leg is not None
        self.record.answered_at = now
        self._goto(State.CONNECTED)
        consent = self._consent
        if consent is None and self.config.ask_consent:
            consent = ConsentAnswer.PENDING
        self.conversation = Conversation(
            self.call_id,
            self.config.conversation,
            self._ids,
            self.staff_leg,
            self.member,
            consent,
        )
        notice = Play(self._ids.next(), (OPT_OUT_NOTICE,), Target.CALLER)
        self._notice = notice.playback_id
        if consent is ConsentAnswer.PENDING:
            self._question = SummaryQuestion(
                self.call_id, self._ids, notice.playback_id, self.config.consent_timeout
            )
        return [
            *self._stop_ringback(),
            StartListening(Party.CALLER),
            *self.conversation.start(),
            notice,
        ]

    def _connected(
        self, event: FlowEvent | FollowupEvent, now: float
    ) -> list[Command | FollowupCommand]:
        conv = self.conversation
        assert conv is not None
        if self._question is not None:
            asked = self._question.handle(event, conv)
            if asked is not None:
                if not self._question.open:
                    self._question = None
                return list(asked)
        if isinstance(event, Digit):
            return self._citizen_key(event.digit)
        if isinstance(event, CitizenGone):
            event = CallerHungUp()
        if not isinstance(event, CONVERSATION_EVENTS):
            return []
        cmds: list[Command | FollowupCommand] = list(conv.handle(event, now))
        if conv.ended and self._question is not None:
            # The call ends before an answer: no consent row, no consent.
            cmds += self._question.abandoned()
            self._question = None
        if isinstance(event, StaffHungUp):
            self.staff_leg = None
        if conv.end_reason is not None:
            self.record.end_reason = conv.end_reason
        ending = conv.ending
        if ending is None:
            return cmds
        self._talk_end = now
        self._closing = ending.outcome
        if ending.caller_gone:
            if self.staff_leg is not None:
                # The conversation hangs up every leg; the staff member stays for the outcome.
                cmds = [c for c in cmds if c != HangupLeg(self.staff_leg)]
                return cmds + self._ask_outcome(now)
            cmds += self._settle_talked(self._default_choice(), now)
            return cmds + self._end(now, ending.outcome)
        self.staff_leg = None
        if ending.staff_lost:
            # The staff member's phone was lost, nobody chose to end: the citizen hears that
            # they will be called again, and the task is due again soon (not counted).
            self._goto(State.GOODBYE)
            cmds += self._settle(model.AttemptResult.STAFF_LOST, now)[0]
            return [*cmds, self._play((STAFF_LOST_GOODBYE,), Target.CALLER)]
        if ending.prompt is not None:
            # Abuse: the citizen hears the policy, then is hung up.
            self._goto(State.GOODBYE)
            cmds += self._settle_talked("reached", now)
            return [*cmds, self._play((ending.prompt,), Target.CALLER)]
        # The staff member hung up (or the crisis line, after the hand-over): the citizen is
        # let go, as on an inbound call.
        cmds += [HangupCaller(), *self._settle_talked(self._default_choice(), now)]
        return cmds + self._end(now, ending.outcome)

    def _citizen_key(self, digit: str) -> list[Command | FollowupCommand]:
        if digit != OPT_OUT_KEY or self.opted_out:
            return []
        log.info("follow-up %s: the citizen opted out of follow-up calls", self.call_id)
        self.opted_out = True
        confirm = Play(self._ids.next(), (OPT_OUT_CONFIRM,), Target.CALLER)
        told: list[Command | FollowupCommand] = []
        if self.staff_leg is not None:
            told.append(Play(self._ids.next(), (STAFF_OPT_OUT,), Target.LEG, self.staff_leg))
        return [RecordOptOut(), confirm, *told]

    def _ask_outcome(self, now: float) -> list[Command | FollowupCommand]:
        if self.opted_out:
            # Nothing to ask: the task is closed `opted_out`.
            self._goto(State.TELLING)
            return [*self._settle_talked("opted_out", now), *self._to_staff(OUTCOME_SAVED)]
        self._goto(State.OUTCOME)
        monitoring = self.task.type is model.TaskType.MONITORING
        return [
            *self._to_staff(OUTCOME_MENU_MONITORING if monitoring else OUTCOME_MENU),
            StartTimer(OUTCOME_TIMER, self.config.outcome_timeout),
        ]

    def _outcome(
        self, event: FlowEvent | FollowupEvent, now: float
    ) -> list[Command | FollowupCommand]:
        choice: str | None = None
        if isinstance(event, StaffDigit) and event.digit in OUTCOME_KEYS:
            choice = OUTCOME_KEYS[event.digit]
            if choice == "not_linked" and self.task.type is not model.TaskType.MONITORING:
                choice = None
        elif isinstance(event, TimerFired) and event.name == OUTCOME_TIMER:
            choice = self._default_choice()
        elif isinstance(event, StaffHungUp):
            self.staff_leg = None
            cmds = [CancelTimer(OUTCOME_TIMER), *self._settle_talked(self._default_choice(), now)]
            return cmds + self._end(now, Outcome.COMPLETED)
        if choice is None:
            return []
        log.info("follow-up %s: outcome %s", self.call_id, choice)
        pb, self._playback = self._playback, None
        cmds = [CancelTimer(OUTCOME_TIMER), *([StopPlayback(pb)] if pb else [])]
        cmds += self._settle_talked(choice, now)
        self._goto(State.TELLING)
        return cmds + self._to_staff(OUTCOME_SAVED)

    def _closing_words(
        self, event: FlowEvent | FollowupEvent, now: float
    ) -> list[Command | FollowupCommand]:
        """TELLING (the staff member hears the last word) and GOODBYE (the citizen does)."""
        if isinstance(event, StaffHungUp):
            self.staff_leg = None
            if self.state is State.TELLING:
                return self._end(now, self._closing)
            return []
        if isinstance(event, PlaybackDone) and event.playback_id == self._playback:
            self._playback = None
            if self.state is State.GOODBYE:
                return [HangupCaller(), *self._end(now, self._closing)]
            legs = [HangupLeg(self.staff_leg)] if self.staff_leg is not None else []
            self.staff_leg = None
            return [*legs, *self._end(now, self._closing)]
        if isinstance(event, CitizenGone) and self.state is State.GOODBYE:
            return self._end(now, self._closing)
        return []

    def _fail(self, reason: str, now: float) -> list[Command | FollowupCommand]:
        log.error("follow-up %s: failure in state %s: %s", self.call_id, self.state.value, reason)
        answered = self.record.answered_at is not None
        cmds: list[Command | FollowupCommand] = [CancelTimer(OUTCOME_TIMER), *self._stop_ringback()]
        if self.conversation is not None:
            cmds += self.conversation.close()
            self.staff_leg = None
        if self.staff_leg is not None:
            cmds.append(HangupLeg(self.staff_leg))
            self.staff_leg = None
        if self.result is None:
            self._talk_end = now
            if answered:
                cmds += self._settle_talked(self._default_choice(), now)
            else:
                cmds += self._settle(model.AttemptResult.FAILED, now)[0]
        citizen_on = self.state in (State.CONNECTED, State.GOODBYE)
        cmds.append(Recover() if citizen_on else HangupCaller())
        return cmds + self._end(now, Outcome.ERROR)
