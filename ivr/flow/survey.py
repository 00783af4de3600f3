"""The post-call satisfaction survey, a pure part of the inbound journey (ivr.flow.call):
events in, commands out.

A line with `survey = "score"` or `survey = "helped"` in the menu file (config/menu.toml, per
`[queues.NAME]`; off when absent): once the counselor has hung up, a caller still on the line
hears one short question instead of being hung up at once. "score": 1 to 5 by key (5 = very
satisfied). "helped": "did this help?", answered 네/예 or 아니요/아니오 (the recognizer the menu
uses), or keys 1 (yes) / 2 (no). The caller is asked explicitly here, after the counselor left,
so a spoken 네 is a clear answer (unlike during a conversation, ivr.followup.question).

    ASKING --question played--> ANSWERING (answer timer, `survey_timeout`)
    ASKING/ANSWERING --a valid answer--> THANKS (RecordSurvey: one answer per call)
    ANSWERING --timer fired--> THANKS (nothing stored)
    THANKS --thank-you played--> DONE (the owner hangs up)
    the caller hangs up in any state --> the owner ends the call: nothing stored

A key during the question answers it (barge-in); other keys and words are ignored until the
timer. The caller always hears the thank-you before the line hangs up: never dead air beyond
the answer window. The answer row holds no caller number and no hash (ivr.store).
"""

from __future__ import annotations

import enum
import logging

from ivr.flow.commands import (
    AnsweredBy,
    CancelTimer,
    Command,
    Listen,
    Play,
    RecordSurvey,
    StartTimer,
    StopPlayback,
    SurveyKind,
    Target,
)
from ivr.flow.conversation import PlaybackIds
from ivr.flow.events import Digit, FlowEvent, Heard, PlaybackDone, TimerFired

log = logging.getLogger(__name__)

#: What the caller hears, per kind, and the thank-you that ends every survey.
QUESTION = {SurveyKind.SCORE: "survey_question_score", SurveyKind.HELPED: "survey_question_helped"}
THANKS = "survey_thanks"
SURVEY_PROMPTS = frozenset({*QUESTION.values(), THANKS})
SURVEY_TIMER = "survey-answer"
#: The answers: keys per kind, and the words of "helped" (1 yes, 0 no).
KEYS = {
    SurveyKind.SCORE: {str(n): n for n in range(1, 6)},
    SurveyKind.HELPED: {"1": 1, "2": 0},
}
HELPED_WORDS = {"네": 1, "예": 1, "아니요": 0, "아니오": 0}


class State(enum.Enum):
    ASKING = "asking"
    ANSWERING = "answering"
    THANKS = "thanks"
    DONE = "done"


class Survey:
    """The survey on one call, from the counselor's hang-up to the thank-you."""

    def __init__(self, call_id: str, kind: SurveyKind, ids: PlaybackIds, timeout: float) -> None:
        self.call_id = call_id
        self.kind = kind
        self.state = State.ASKING
        #: The answer given (None: none yet, or none at all).
        self.answer: int | None = None
        self._ids = ids
        self._timeout = timeout
        self._playing: str | None = None

    @property
    def done(self) -> bool:
        """The thank-you has been played: the owner hangs up."""
        return self.state is State.DONE

    def _goto(self, new: State) -> None:
        log.info("call %s: survey %s -> %s", self.call_id, self.state.value, new.value)
        self.state = new

    def _play(self, prompt: str) -> Play:
        self._playing = self._ids.next()
        return Play(self._playing, (prompt,), Target.CALLER)

    def start(self) -> list[Command]:
        """The counselor is gone: ask the question on the caller's channel."""
        words = tuple(HELPED_WORDS) if self.kind is SurveyKind.HELPED else ()
        return [Listen(words), self._play(QUESTION[self.kind])]

    def handle(self, event: FlowEvent) -> list[Command]:
        if self.state is State.DONE:
            return []
        if isinstance(event, PlaybackDone):
            if event.playback_id != self._playing:
                return []
            self._playing = None
            if self.state is State.THANKS:
                self._goto(State.DONE)
                return []
            self._goto(State.ANSWERING)
            return [StartTimer(SURVEY_TIMER, self._timeout)]
        if self.state is State.THANKS:
            return []
        if isinstance(event, TimerFired) and event.name == SURVEY_TIMER:
            log.info("call %s: survey not answered", self.call_id)
            return self._thank()
        given: tuple[int, AnsweredBy] | None = None
        if isinstance(event, Digit) and event.digit in KEYS[self.kind]:
            given = KEYS[self.kind][event.digit], AnsweredBy.KEY
        elif isinstance(event, Heard) and self.kind is SurveyKind.HELPED:
            if event.phrase in HELPED_WORDS:
                given = HELPED_WORDS[event.phrase], AnsweredBy.VOICE
        if given is None:
            return []
        self.answer = given[0]
        log.info("call %s: survey %s answered %d (%s)", self.call_id, self.kind, *given)
        return [RecordSurvey(self.kind, *given), *self._thank()]

    def _thank(self) -> list[Command]:
        pb, self._playing = self._playing, None
        cmds: list[Command] = [StopPlayback(pb)] if pb else []
        self._goto(State.THANKS)
        return [*cmds, CancelTimer(SURVEY_TIMER), Listen(()), self._play(THANKS)]
