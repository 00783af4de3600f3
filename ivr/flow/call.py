"""A caller's journey as a pure state machine: events and the time in, commands out.

No I/O, no clock, no ids invented here: the adapter (ivr.controller) feeds events with `now`
and carries out the returned commands against ARI. Every transition is logged once as
`old -> new` with the call id.

    MENU_PLAYING --digit/playback done--> MENU_WAITING --digit--> INTRO --done--> WAITING
    (a key during the menu stops it and acts: barge-in)
    the line's key --> queued at once (holding bridge, the ring group rings), then
        INTRO (the line's intro plays) --done--> WAITING, or, for a line that asks consent,
        CONSENT (intro + consent question play while the phones ring; 1/2 or 네/아니요 at
        any moment answer it) --answer/timeout--> WAITING
    INTRO/CONSENT/WAITING --counselor answered--> CONNECTING (whisper to the counselor; the
    caller still hears music) --whisper done--> CONNECTED --the conversation ends--> ENDED
    (or GOODBYE first: the abuse policy notice), WAITING --callback accepted--> GOODBYE
    three failed choices --> GOODBYE --done--> ENDED
    CONNECTED --the counselor's phone lost--> WAITING (an apology, music, the first arrival kept)
    CONNECTED --counselor hung up, the line has a survey--> SURVEY (ivr.flow.survey) --> ENDED
    (a consented recording stops on entering SURVEY: the question and answer are not in it)
    an adapter failure in any live state --> ENDED via Recover (apology from the dialplan)

While WAITING, a `WaitingRoom` (ivr.flow.waiting) composes the announcements and keeps the
callback offer; while CONNECTED, a `Conversation` (ivr.flow.conversation) has the call.

Consent asked while waiting: a counselor who answers before the caller has answered gets the
call without recording. The question closes at that moment and is recorded as answer "none",
answered_by "counselor_first" (no answer is no consent); it is never asked again once
connected. While it is open the counselor's phone is told "pending" (X-IVR120-Consent).
"""

from __future__ import annotations

import logging

from ivr.flow.call_state import CallState
from ivr.flow.commands import (
    Answer,
    AnsweredBy,
    CallbackConsent,
    CallbackReason,
    CancelTimer,
    Command,
    Connect,
    ConsentAnswer,
    Dequeue,
    Enqueue,
    Finish,
    FlagCaller,
    HangupCaller,
    HangupLeg,
    Hold,
    JoinTalk,
    Listen,
    NoticeKind,
    NotifyStaff,
    Outcome,
    Play,
    RecordConsent,
    RecordSilence,
    Recover,
    RequestCallback,
    RingCrisis,
    SilenceAction,
    SilenceOf,
    StartListening,
    StartRecording,
    StartTimer,
    StopListening,
    StopPlayback,
    StopRecording,
    Target,
    WithdrawConsent,
)
from ivr.flow.conversation import (
    STAFF_ABUSE,
    STAFF_CALLBACK,
    STAFF_CRISIS,
    STAFF_WITHDRAW,
    Conversation,
    ConversationParams,
)
from ivr.flow.events import (
    CallerHungUp,
    ConversationEvent,
    CrisisAnswered,
    CrisisEnded,
    Digit,
    Failed,
    FlowEvent,
    Heard,
    Party,
    PlaybackDone,
    QueueStatus,
    Silence,
    SpeechHeard,
    StaffAnswered,
    StaffDigit,
    StaffHungUp,
    Started,
    TimerFired,
)
from ivr.flow.menu import Queue
from ivr.flow.record import CallEndReason, CallRecord
from ivr.flow.states import (
    CONSENT_NO_KEY,
    CONSENT_PROMPTS,
    CONSENT_TIMER,
    CONSENT_YES_KEY,
    CONSENTED_BY_NOBODY,
    END_STATES,
    INPUT_TIMER,
    MAX_WAIT_TIMER,
    NO_WORDS,
    QUEUED_STATES,
    REASSURE_TIMER,
    STAFF_LOST_PROMPT,
    YES_WORDS,
    FlowConfig,
    State,
)
from ivr.flow.survey import Survey
from ivr.flow.waiting import CALLBACK_KEY, Offer

log = logging.getLogger(__name__)

#: The vocabulary lives in its own modules; re-exported so `flow.Play` etc. keep working.
__all__ = ["Started", "Digit", "PlaybackDone", "TimerFired", "StaffAnswered", "CallerHungUp"]
__all__ += ["StaffHungUp", "QueueStatus", "StaffDigit", "CrisisAnswered", "CrisisEnded", "Silence"]
__all__ += ["SpeechHeard", "Heard", "Failed", "FlowEvent", "ConversationEvent", "Party", "Outcome"]
__all__ += ["Answer", "Target", "Play", "StopPlayback", "StartTimer", "CancelTimer", "Hold"]
__all__ += ["Enqueue", "Dequeue", "Connect", "HangupLeg", "HangupCaller", "Recover", "FlagCaller"]
__all__ += ["RequestCallback", "RingCrisis", "JoinTalk", "StartListening", "Listen", "NotifyStaff"]
__all__ += ["StopListening"]
__all__ += ["RecordSilence", "RecordConsent", "StartRecording", "WithdrawConsent", "Finish"]
__all__ += ["Command", "ConsentAnswer", "AnsweredBy", "CallbackReason", "CallbackConsent"]
__all__ += ["NoticeKind", "SilenceOf", "SilenceAction", "CallEndReason", "CallRecord"]
__all__ += ["STAFF_ABUSE", "STAFF_CALLBACK", "STAFF_CRISIS", "STAFF_WITHDRAW", "Conversation"]
__all__ += ["CallFlow", "FlowConfig", "State", "Offer", "StopRecording"]


class CallFlow(CallState):
    """One caller's journey. `handle(event, now)` returns the commands to carry out."""

    # -- the machine ---------------------------------------------------------------------
    def handle(self, event: FlowEvent, now: float) -> list[Command]:
        if self.state in END_STATES:
            # Late events after the end (a playback finishing after hangup, a racing answer).
            if isinstance(event, StaffAnswered | CrisisAnswered):
                return [HangupLeg(event.leg_id)]
            return []
        self._now = now
        if isinstance(event, CallerHungUp):
            return self._caller_gone(now)
        if isinstance(event, Failed):
            return self._fail(event.reason, now)
        if isinstance(event, StaffAnswered) and self.state not in QUEUED_STATES:
            return [HangupLeg(event.leg_id)]
        if isinstance(event, QueueStatus):
            return self._queue_status(event, now)
        if isinstance(event, CrisisAnswered) and self.state is not State.CONNECTED:
            return [HangupLeg(event.leg_id)]
        if self.state is State.CONNECTED:
            return self._in_connected(event, now)
        handler = {
            State.MENU_PLAYING: self._in_menu,
            State.MENU_WAITING: self._in_menu,
            State.INTRO: self._in_intro,
            State.CONSENT: self._in_consent,
            State.WAITING: self._in_waiting,
            State.CONNECTING: self._in_connecting,
            State.GOODBYE: self._in_goodbye,
            State.SURVEY: self._in_survey,
        }[self.state]
        return handler(event, now)

    def _in_menu(self, event: FlowEvent, now: float) -> list[Command]:
        if isinstance(event, Started):
            self._flagged = event.flagged
            return [
                Answer(),
                StartListening(Party.CALLER),
                Listen(self.config.menu.voice_phrases),
                *self._menu(self.config.menu.greeting),
            ]
        if isinstance(event, SpeechHeard) and event.party is Party.CALLER:
            self._spoke_this_round = self._ever_spoke = True
            return []
        if isinstance(event, Heard):
            option = self.config.menu.option_for_phrase(event.phrase)
            if option is None:
                return []
            log.info("call %s: caller said %r", self.call_id, event.phrase)
            event = Digit(option.digit)
        if isinstance(event, PlaybackDone):
            if event.playback_id != self._playback or self.state is not State.MENU_PLAYING:
                return []
            self._playback = None
            self._goto(State.MENU_WAITING)
            return [StartTimer(INPUT_TIMER, self.config.input_timeout)]
        if isinstance(event, TimerFired) and event.name == INPUT_TIMER:
            if self.state is not State.MENU_WAITING:
                return []
            if self._spoke_this_round:
                return self._failure(now, "not_understood", "speech not understood")
            # Silence is a signal, not a timeout: a gentle word before the menu repeats.
            out = self._failure(now, "gentle_prompt", "no key and no speech")
            if self.state is State.MENU_PLAYING:
                waited = now - self.record.started_at
                out.insert(0, RecordSilence(SilenceOf.CALLER, waited, SilenceAction.GENTLE_PROMPT))
            return out
        if isinstance(event, Digit):
            self._ever_pressed = True
            cmds: list[Command] = [*self._stop_playback(), CancelTimer(INPUT_TIMER)]
            if event.digit == "*":
                return cmds + self._menu()
            option = self.config.menu.option(event.digit)
            if option is None:
                return cmds + self._failure(now, "invalid_choice", f"key {event.digit}")
            self.record.menu_path.append(event.digit)
            return cmds + self._choose(self.config.menu.queues[option.queue], now)
        return []

    def _choose(self, queue: Queue, now: float) -> list[Command]:
        """The caller chose a line: queued at once, the intro (and the consent question) play
        to them while the phones ring."""
        self._queue = queue
        self.record.queue = queue.name
        self.record.queued_at = now
        notice = ("abuse_policy_notice",) if self._flagged else ()
        cmds: list[Command] = [Hold(), Enqueue(queue.name, now)]
        cmds.append(StartTimer(MAX_WAIT_TIMER, self.config.max_wait))
        if queue.consent:
            self._goto(State.CONSENT)
            self._consent = ConsentAnswer.PENDING
            listen = Listen((*YES_WORDS, *NO_WORDS))
            prompts = (*notice, queue.intro, *CONSENT_PROMPTS)
        else:
            self._goto(State.INTRO)
            listen, prompts = Listen(()), (*notice, queue.intro)
        return [listen, *cmds, self._play(prompts, Target.HOLDING)]

    def _failure(self, now: float, prompt: str, reason: str) -> list[Command]:
        """One failed choice: one per caller action (a key, or a round without any)."""
        self.record.menu_failures += 1
        log.info(
            "call %s: menu failure %d of %d in %s: %s",
            self.call_id,
            self.failures,
            self.config.max_failures,
            self.state.value,
            reason,
        )
        self._spoke_this_round = False
        if self.failures >= self.config.max_failures:
            self._goto(State.GOODBYE)
            if not self._ever_pressed and not self._ever_spoke:
                # A silent line: not dropped without trace, flagged for a welfare callback.
                self.record.end_reason = CallEndReason.SILENT
                silent_for = now - self.record.started_at
                welfare = CallbackReason.WELFARE_SILENCE, CallbackConsent.NONE_WELFARE_CHECK
                return [
                    Listen(()),
                    RecordSilence(SilenceOf.CALLER, silent_for, SilenceAction.WELFARE_CALLBACK),
                    RequestCallback(*welfare, None),
                    self._play(("silent_goodbye",)),
                ]
            # A wrong key is told as such before the goodbye (the caller hears why it ends).
            lead = ("invalid_choice",) if prompt == "invalid_choice" else ()
            return [Listen(()), self._play((*lead, "goodbye"))]
        return self._menu((prompt,))

    def _in_intro(self, event: FlowEvent, now: float) -> list[Command]:
        if isinstance(event, PlaybackDone) and event.playback_id == self._playback:
            self._playback = None
            return self._start_waiting(now)
        return self._in_waiting(event, now)

    def _in_consent(self, event: FlowEvent, now: float) -> list[Command]:
        """Only a clear yes is consent; no, silence or anything else is no. Asked while the
        phones ring: a counselor who answers first closes the question (no consent)."""
        if isinstance(event, PlaybackDone) and event.playback_id == self._playback:
            self._playback = None
            return [StartTimer(CONSENT_TIMER, self.config.consent_timeout)]
        if isinstance(event, StaffAnswered):
            self._consent = ConsentAnswer.NONE
            log.info("call %s: answered before the consent question was", self.call_id)
            closed: list[Command] = [
                CancelTimer(CONSENT_TIMER),
                RecordConsent(ConsentAnswer.NONE, CONSENTED_BY_NOBODY, CONSENT_PROMPTS),
            ]
            return closed + self._in_waiting(event, now)
        yes, no = ConsentAnswer.YES, ConsentAnswer.NO
        answer: tuple[ConsentAnswer, AnsweredBy] | None = None
        if isinstance(event, Digit) and event.digit in (CONSENT_YES_KEY, CONSENT_NO_KEY):
            answer = (yes if event.digit == CONSENT_YES_KEY else no, AnsweredBy.KEY)
        elif isinstance(event, Heard) and event.phrase in (*YES_WORDS, *NO_WORDS):
            answer = (yes if event.phrase in YES_WORDS else no, AnsweredBy.VOICE)
        elif isinstance(event, TimerFired) and event.name == CONSENT_TIMER:
            answer = (ConsentAnswer.NONE, AnsweredBy.NONE)
        if answer is None:
            return []
        self._consent = answer[0]
        log.info("call %s: summary consent %s (%s)", self.call_id, *answer)
        return [
            *self._stop_playback(),
            CancelTimer(CONSENT_TIMER),
            Listen(()),
            RecordConsent(answer[0], answer[1], CONSENT_PROMPTS),
            *self._start_waiting(now),
        ]

    def _start_waiting(self, now: float) -> list[Command]:
        """The intro (and question) are over: announcements from now on, at once if nobody
        could answer. No question is open while waiting: the caller's tap closes (it opens
        again for the callback offer and at the connect) unless the offer opens now."""
        self._goto(State.WAITING)
        if self.waiting.nobody:
            cmds = self._announce(now)
        else:
            cmds = [StartTimer(REASSURE_TIMER, self.config.reassurance_interval)]
        if any(isinstance(c, StartListening) for c in cmds):
            return [c for c in cmds if not isinstance(c, StartListening)]  # kept for the offer
        return [StopListening(Party.CALLER), *cmds]

    def _queue_status(self, event: QueueStatus, now: float) -> list[Command]:
        if self.waiting.update(event) and self.state is State.WAITING:
            return self._announce_soon(now)  # the truth at once, not at the next interval
        return []

    def _announce_soon(self, now: float) -> list[Command]:
        """Announce now, or right after the announcement that is playing (never cut off)."""
        if self._playback is not None:
            self._announce_due = True
            return []
        return [CancelTimer(REASSURE_TIMER), *self._announce(now)]

    def _announce(self, now: float) -> list[Command]:
        self._announce_due = False
        assert self._queue is not None
        offered_before = self.offer is Offer.OPEN
        rec = self.record  # waiting again after a lost counselor: counted from then
        waited = now - (rec.requeued_at or rec.queued_at or now)
        said = self.waiting.announcement(waited, self._queue.reassurance)
        announce: list[Command] = [self._play(said, Target.HOLDING)]
        if self.offer is Offer.OPEN and not offered_before:  # "네" answers the offer too
            announce += [StartListening(Party.CALLER), Listen((*YES_WORDS, *NO_WORDS))]
        return announce

    def _in_waiting(self, event: FlowEvent, now: float) -> list[Command]:
        assert self._queue is not None
        waiting = self.state is State.WAITING
        if isinstance(event, TimerFired) and event.name == MAX_WAIT_TIMER:
            self.waiting.longest_wait()  # offered once more
            return self._announce_soon(now) if waiting and self.offer is not Offer.OPEN else []
        if waiting and isinstance(event, TimerFired) and event.name == REASSURE_TIMER:
            return self._announce(now)
        if waiting and isinstance(event, PlaybackDone) and event.playback_id == self._playback:
            self._playback = None
            if self._announce_due:
                return self._announce(now)
            return [StartTimer(REASSURE_TIMER, self.config.reassurance_interval)]
        via = CallbackConsent.CALLER_KEYPRESS
        offered = self.offer is Offer.OPEN
        if isinstance(event, Heard) and offered:
            if event.phrase in NO_WORDS:
                self.waiting.decline()
                return [Listen(()), StopListening(Party.CALLER)]
            if event.phrase in YES_WORDS:
                event, via = Digit(CALLBACK_KEY), CallbackConsent.CALLER_VOICE
        if isinstance(event, Digit) and event.digit == CALLBACK_KEY and offered:
            self._closing = Outcome.CALLBACK_REQUESTED
            self._goto(State.GOODBYE)
            return [
                *self._leave_queue(),
                RequestCallback(CallbackReason.MAX_WAIT, via, None),
                Listen(()),
                self._play(("callback_confirm",), Target.HOLDING),
            ]
        if isinstance(event, StaffAnswered):
            self._leg = event.leg_id
            self.record.member = event.member
            cmds = self._leave_queue()
            if not self._queue.whisper:
                return cmds + self._connect(now)
            # The counselor hears which line this is; the caller keeps hearing music.
            self._goto(State.CONNECTING)
            return [*cmds, self._play((self._queue.whisper,), Target.LEG, event.leg_id)]
        return []

    def _leave_queue(self) -> list[Command]:
        assert self._queue is not None
        timers = [CancelTimer(REASSURE_TIMER), CancelTimer(MAX_WAIT_TIMER)]
        return [*timers, *self._stop_playback(), Dequeue(self._queue.name)]

    def _connect(self, now: float) -> list[Command]:
        """Bridged with the counselor: the conversation machine takes over."""
        assert self._leg is not None and self.record.member is not None
        if self.record.answered_at is None:  # a caller requeued keeps their first answer
            self.record.answered_at = now
        self._talked_with = self.record.member
        self._goto(State.CONNECTED)
        params = ConversationParams(
            self.config.both_silence_notify, self.config.caller_silence_notify
        )
        leg, self._leg = self._leg, None  # the conversation holds it from now on
        self.conversation = Conversation(
            self.call_id, params, self._ids, leg, self.record.member, self._consent
        )
        return [Listen(()), *self.conversation.start(), StartListening(Party.CALLER)]

    def _in_connected(self, event: FlowEvent, now: float) -> list[Command]:
        """Connected-phase events go to the conversation; when it ends, so does the call."""
        conv = self.conversation
        assert conv is not None
        if not isinstance(event, ConversationEvent):
            return []
        cmds = conv.handle(event, now)
        if conv.end_reason is not None:
            self.record.end_reason = conv.end_reason
        if conv.ending is None or conv.ending.caller_gone:
            return cmds
        if conv.ending.staff_lost:
            return [*cmds, *self._counselor_lost(conv)]
        if conv.ending.prompt is not None:
            # The caller hears why the call ends (abuse policy), then is hung up.
            self._closing = conv.ending.outcome
            self._goto(State.GOODBYE)
            return [*cmds, self._play((conv.ending.prompt,))]
        assert self._queue is not None
        if self._queue.survey and conv.ending.outcome is Outcome.COMPLETED and not conv.end_reason:
            # The counselor hung up: the caller stays on for the line's one question.
            self.record.staff_left_at = now
            self._goto(State.SURVEY)
            timeout = self._queue.survey_timeout
            self.survey = Survey(self.call_id, self._queue.survey, self._ids, timeout)
            # The recording is of the counseling: it ends with it, before the question.
            stop = [StopRecording()] if conv.consent is ConsentAnswer.YES else []
            # Music under the question (issue 14): no dead air should the controller die now.
            return [*cmds, *stop, Hold(), *self.survey.start()]
        return [*cmds, HangupCaller(), *self._end(now, conv.ending.outcome)]

    def _counselor_lost(self, conv: Conversation) -> list[Command]:
        """The counselor's phone went away mid-conversation: the caller hears an apology and
        music, and waits again by their first arrival (ahead of later callers) for the next
        counselor. A consented recording stops here (the next counselor's is a new segment);
        a withdrawal holds for the rest of the call."""
        assert self._queue is not None and self.record.queued_at is not None
        self.record.staff_lost += 1
        self.record.requeued_at = self._now
        self._consent, self.conversation = conv.consent, None
        self._goto(State.WAITING)
        stop: list[Command] = [StopRecording()] if conv.consent is ConsentAnswer.YES else []
        # A callback offer made before the talk is over: the announcements offer it again
        # when this wait is long (a "네" to the apology must not be taken as a yes).
        self.waiting.offer = Offer.NOT_MADE
        return [
            *stop,
            Hold(),
            StopListening(Party.STAFF),
            Listen(()),
            StopListening(Party.CALLER),
            Enqueue(self._queue.name, self.record.queued_at),
            StartTimer(MAX_WAIT_TIMER, self.config.max_wait),
            self._play((STAFF_LOST_PROMPT,), Target.HOLDING),
        ]

    def _in_survey(self, event: FlowEvent, now: float) -> list[Command]:
        assert self.survey is not None
        cmds = self.survey.handle(event)
        if self.survey.done:
            return [*cmds, HangupCaller(), *self._end(now, Outcome.COMPLETED)]
        return cmds

    def _in_connecting(self, event: FlowEvent, now: float) -> list[Command]:
        assert self._queue is not None
        if isinstance(event, PlaybackDone) and event.playback_id == self._playback:
            self._playback = None
            return self._connect(now)
        if isinstance(event, StaffHungUp):
            # The counselor hung up during the whisper: the caller waits on, keeping their place.
            self._leg = None
            self.record.member = self._talked_with  # after a lost counselor: who talked
            self._goto(State.WAITING)
            rec = self.record
            assert rec.queued_at is not None
            waited = now - (rec.requeued_at or rec.queued_at)
            # No question open: no tap (as in _start_waiting), unless the offer is.
            untap: list[Command] = [Listen(()), StopListening(Party.CALLER)]
            return [
                *(untap if self.offer is not Offer.OPEN else []),
                *self._stop_playback(),
                Enqueue(self._queue.name, rec.queued_at),
                StartTimer(REASSURE_TIMER, self.config.reassurance_interval),
                StartTimer(MAX_WAIT_TIMER, max(self.config.max_wait - waited, 0.0)),
            ]
        return []

    def _in_goodbye(self, event: FlowEvent, now: float) -> list[Command]:
        if isinstance(event, PlaybackDone) and event.playback_id == self._playback:
            self._playback = None
            return [HangupCaller(), *self._end(now, self._closing)]
        return []

    def _caller_gone(self, now: float) -> list[Command]:
        state = self.state
        cmds = [*self._cancel_timers(), *self._stop_playback()]
        if state in QUEUED_STATES and self._queue is not None:
            cmds.append(Dequeue(self._queue.name))
        outcome = {
            State.CONNECTING: Outcome.ABANDONED_QUEUE,
            State.WAITING: Outcome.ABANDONED_QUEUE,
            State.INTRO: Outcome.ABANDONED_INTRO,
            State.CONSENT: Outcome.ABANDONED_CONSENT,
            State.GOODBYE: self._closing,
            State.SURVEY: Outcome.COMPLETED,  # the counseling was over; no answer stored
        }.get(state, Outcome.ABANDONED_MENU)
        if state in (State.WAITING, State.CONNECTING) and self.record.staff_lost:
            # Counselled, then cut off by the counselor's lost phone: not a caller who gave up.
            outcome, self.record.end_reason = Outcome.COMPLETED, CallEndReason.STAFF_LOST
        if state is State.CONNECTED and self.conversation is not None:
            cmds += self.conversation.handle(CallerHungUp(), now)
            assert self.conversation.ending is not None
            outcome = self.conversation.ending.outcome  # completed, or transferred
        cmds += self._hangup_legs()
        return cmds + self._end(now, outcome)

    def _fail(self, reason: str, now: float) -> list[Command]:
        log.error("call %s: failure in state %s: %s", self.call_id, self.state.value, reason)
        cmds = self._cancel_timers()
        if self.state in QUEUED_STATES and self._queue is not None:
            cmds.append(Dequeue(self._queue.name))
        cmds += self._hangup_legs()
        self._playback = None
        done = self.state is State.SURVEY  # the counseling itself completed
        return [*cmds, Recover(), *self._end(now, Outcome.COMPLETED if done else Outcome.ERROR)]
