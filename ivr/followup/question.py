"""The summary question on an outbound follow-up call, a pure part of its journey
(ivr.followup.journey): events in, commands out.

The summary consent for this contact (`JourneyConfig.ask_consent`, the setting
`followup_summary_consent`): once bridged, after the opt-out notice, the citizen hears one
question (`followup_consent_question`, keys 1/2). Until they answer the conversation's consent is
"pending" (nothing is recorded; `*6` does nothing); a 1 is consent (`RecordConsent` with the
prompt heard, then `StartRecording`: each party from that moment), a 2 or no key within
`consent_timeout` after the question is none; the staff member hears the answer in one short
word on their leg (a channel playback does not reach the other side of the bridge, so they did
not hear the question). Only keys answer it, not 네/아니요 as inbound: "네" is how a Korean
answers the phone and how they acknowledge the staff member talking, so on a call that is
already a conversation a spoken "네" is no clear yes. A key before the question has started
(during the notice) does not answer it. A citizen who hangs up before answering leaves no
consent row (no consent). A consent passed in (recorded for this contact already) is not asked
again.
"""

from __future__ import annotations

import logging

from ivr.flow.commands import (
    AnsweredBy,
    CancelTimer,
    Command,
    ConsentAnswer,
    Play,
    RecordConsent,
    StartTimer,
    StopPlayback,
    Target,
)
from ivr.flow.conversation import Conversation, PlaybackIds
from ivr.flow.events import Digit, FlowEvent, PlaybackDone, TimerFired
from ivr.followup.events import FollowupEvent

log = logging.getLogger(__name__)

#: Exactly what the citizen hears (the consent row's prompts), the timer and the keys, and what
#: the staff member is told of the answer.
CONSENT_QUESTION = "followup_consent_question"
CONSENT_PROMPTS = (CONSENT_QUESTION,)
CONSENT_TIMER = "followup-consent"
CONSENT_KEYS = {"1": ConsentAnswer.YES, "2": ConsentAnswer.NO}
STAFF_CONSENT_YES = "staff_followup_consent_yes"
STAFF_CONSENT_NO = "staff_followup_consent_no"
QUESTION_PROMPTS = frozenset({CONSENT_QUESTION, STAFF_CONSENT_YES, STAFF_CONSENT_NO})


class SummaryQuestion:
    """The question on one call, from the opt-out notice (`notice`: its playback) until an
    answer; `open` until then."""

    def __init__(self, call_id: str, ids: PlaybackIds, notice: str, timeout: float) -> None:
        self.call_id = call_id
        self._ids = ids
        self._timeout = timeout
        self._notice: str | None = notice
        self._playing: str | None = None  # the question's playback while it plays
        self._started = False
        self.open = True

    def handle(self, event: FlowEvent | FollowupEvent, conv: Conversation) -> list[Command] | None:
        """The question while it is open; None: the event is not about it."""
        if isinstance(event, PlaybackDone):
            if event.playback_id == self._notice:
                # The notice is over: the question follows, on the citizen's channel.
                self._notice = None
                self._started = True
                self._playing = self._ids.next()
                return [Play(self._playing, CONSENT_PROMPTS, Target.CALLER)]
            if event.playback_id == self._playing and self._playing is not None:
                self._playing = None
                return [StartTimer(CONSENT_TIMER, self._timeout)]
            return None
        answer: tuple[ConsentAnswer, AnsweredBy] | None = None
        if isinstance(event, Digit) and event.digit in CONSENT_KEYS and self._started:
            answer = (CONSENT_KEYS[event.digit], AnsweredBy.KEY)
        elif isinstance(event, TimerFired) and event.name == CONSENT_TIMER:
            answer = (ConsentAnswer.NONE, AnsweredBy.NONE)
        if answer is None:
            return None
        self.open = False
        log.info("follow-up %s: summary consent %s (%s)", self.call_id, *answer)
        pb, self._playing = self._playing, None
        cmds: list[Command] = [*([StopPlayback(pb)] if pb else [])]
        cmds += [CancelTimer(CONSENT_TIMER), RecordConsent(answer[0], answer[1], CONSENT_PROMPTS)]
        cmds += conv.consent_answered(answer[0])
        if conv.staff_leg is not None:
            told = STAFF_CONSENT_YES if answer[0] is ConsentAnswer.YES else STAFF_CONSENT_NO
            cmds.append(Play(self._ids.next(), (told,), Target.LEG, conv.staff_leg))
        return cmds

    def abandoned(self) -> list[Command]:
        """The call ended before an answer: no consent row (no consent)."""
        self.open = False
        return [CancelTimer(CONSENT_TIMER)]
