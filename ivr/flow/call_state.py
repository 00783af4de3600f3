"""The inbound journey's state (ivr.flow.call): what the machine holds between events, the
record it keeps, and the primitives every transition uses (go to a state, play, stop, end,
hang up the legs). Pure, as the machine: no I/O, no clock."""

from __future__ import annotations

import logging

from ivr.flow.commands import (
    CancelTimer,
    Command,
    ConsentAnswer,
    Finish,
    HangupLeg,
    Outcome,
    Play,
    StopPlayback,
    Target,
)
from ivr.flow.conversation import Conversation, PlaybackIds
from ivr.flow.menu import Queue
from ivr.flow.record import CallRecord, Stage
from ivr.flow.states import (
    CONSENT_TIMER,
    END_STATES,
    INPUT_TIMER,
    MAX_WAIT_TIMER,
    REASSURE_TIMER,
    STAGE_OF,
    FlowConfig,
    State,
)
from ivr.flow.survey import SURVEY_TIMER, Survey
from ivr.flow.waiting import Offer, WaitingRoom

log = logging.getLogger("ivr.flow.call")  # one logger for the journey's lines


class CallState:
    """The inbound journey's state and the primitives its transitions (ivr.flow.call) use."""

    def __init__(self, call_id: str, config: FlowConfig, now: float) -> None:
        self.call_id = call_id
        self.config = config
        self.state = State.MENU_PLAYING
        self.record = CallRecord(started_at=now)
        self._now = self._stage_since = now  # the time of the event being handled
        self._where = Stage.MENU  # the last stage other than the goodbye
        self._playback: str | None = None
        self._ids = PlaybackIds(call_id)
        self._queue: Queue | None = None
        self._leg: str | None = None  # the answered staff leg until the conversation has it
        self._talked_with: str | None = None  # the last counselor connected with the caller
        self._flagged = False
        self.waiting = WaitingRoom(config.callback_offer_after, config.announce_position)
        self._closing = Outcome.NO_CHOICE  # what GOODBYE ends as
        self._spoke_this_round = False  # speech heard since the menu last started
        self._ever_spoke = False
        self._ever_pressed = False
        self._announce_due = False  # announce as soon as the current playback ends
        self._consent: ConsentAnswer | None = None
        #: The connected phase, from the moment the caller and the counselor are bridged.
        self.conversation: Conversation | None = None
        #: The post-call survey, once the counselor hung up on a line that asks one.
        self.survey: Survey | None = None

    @property
    def consent(self) -> ConsentAnswer | None:
        """The caller's answer to the summary question: yes, no, none, pending (being asked),
        withdrawn (during the call), or None (not asked)."""
        if self.conversation is not None:
            return self.conversation.consent
        return self._consent

    @property
    def offer(self) -> Offer:
        """The callback offer while waiting."""
        return self.waiting.offer

    @property
    def failures(self) -> int:
        """Failed choices counted so far in the menu."""
        return self.record.menu_failures

    # -- helpers -------------------------------------------------------------------------
    def _goto(self, new: State) -> None:
        if new is not self.state:
            log.info("call %s: %s -> %s", self.call_id, self.state.value, new.value)
            self._stage_changed(new)
            self.state = new

    def _stage_changed(self, new: State) -> None:
        """Count the time of the stage left; at the end, note where the caller was."""
        old_stage, new_stage = STAGE_OF[self.state], STAGE_OF.get(new)
        if new_stage is old_stage:
            return
        self.record.spent(old_stage, self._now - self._stage_since)
        self._stage_since = self._now
        if new_stage is None:
            self.record.ended_in = self._where
        elif new_stage is not Stage.GOODBYE:
            self._where = new_stage

    def _play(
        self, prompts: tuple[str, ...], target: Target = Target.CALLER, leg: str | None = None
    ) -> Play:
        self._playback = self._ids.next()
        return Play(self._playback, prompts, target, leg)

    def _stop_playback(self) -> list[Command]:
        pb, self._playback = self._playback, None
        return [StopPlayback(pb)] if pb else []

    def _menu(self, lead: tuple[str, ...] = ()) -> list[Command]:
        self._goto(State.MENU_PLAYING)
        return [self._play((*lead, *self.config.menu.option_prompts))]

    def _end(self, now: float, outcome: Outcome) -> list[Command]:
        self.record.ended_at = now
        self.record.outcome = outcome
        self._goto(State.ENDED)
        return [Finish(outcome)]

    @property
    def ended(self) -> bool:
        return self.state in END_STATES

    def _cancel_timers(self) -> list[Command]:
        timers: tuple[str, ...] = (INPUT_TIMER, REASSURE_TIMER, CONSENT_TIMER, MAX_WAIT_TIMER)
        timers += (SURVEY_TIMER,) if self.state is State.SURVEY else ()
        return [CancelTimer(name) for name in timers]

    def _hangup_legs(self) -> list[Command]:
        """Every leg still with the call: the one being whispered to, the conversation's."""
        cmds: list[Command] = [HangupLeg(self._leg)] if self._leg is not None else []
        self._leg = None
        if self.conversation is not None:
            cmds += self.conversation.close()
        return cmds
