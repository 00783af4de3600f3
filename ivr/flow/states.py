"""The inbound journey's vocabulary (ivr.flow.call): its states, the stage each counts to, its
timers and prompts, and its configuration. Pure constants and a frozen dataclass."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr.flow.commands import AnsweredBy
from ivr.flow.conversation import CONVERSATION_PROMPTS
from ivr.flow.menu import Menu
from ivr.flow.record import Stage
from ivr.flow.survey import SURVEY_PROMPTS
from ivr.flow.waiting import WAITING_PROMPTS


class State(enum.Enum):
    MENU_PLAYING = "menu_playing"
    MENU_WAITING = "menu_waiting"
    INTRO = "intro"
    CONSENT = "consent"  # asking whether a summary may be kept (the loneliness line)
    WAITING = "waiting"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SURVEY = "survey"  # the counselor hung up; the caller answers the line's survey
    GOODBYE = "goodbye"
    ENDED = "ended"


END_STATES = frozenset({State.ENDED})


#: What the caller hears before the consent question, and the question itself.
CONSENT_PROMPTS = ("consent_explain", "consent_question")
CONSENT_TIMER = "consent-answer"
CONSENT_YES_KEY = "1"
CONSENT_NO_KEY = "2"

#: What a caller hears when their counselor's phone was lost mid-call, before waiting again.
STAFF_LOST_PROMPT = "staff_lost_sorry"

#: Every prompt id this module plays (besides the menu's own); the app checks the catalog.
FLOW_PROMPTS = frozenset(
    {"invalid_choice", "gentle_prompt", "not_understood", "goodbye", "silent_goodbye"}
    | {"abuse_policy_notice", "callback_confirm", *CONSENT_PROMPTS}
    | {"thanks_for_waiting"}  # after a restart (ivr.flow.restore)
    | {STAFF_LOST_PROMPT}
    | WAITING_PROMPTS
    | CONVERSATION_PROMPTS
    | SURVEY_PROMPTS
)

YES_WORDS = ("네", "예")
NO_WORDS = ("아니요", "아니오")


INPUT_TIMER = "menu-input"
REASSURE_TIMER = "hold-reassure"
MAX_WAIT_TIMER = "max-wait"
#: States in which the caller is in the queue (the ring group may ring for them).
QUEUED_STATES = frozenset({State.INTRO, State.CONSENT, State.WAITING})
#: The stage each state's time counts to (ENDED: none).
STAGE_OF = {
    State.MENU_PLAYING: Stage.MENU,
    State.MENU_WAITING: Stage.MENU,
    State.INTRO: Stage.INTRO,
    State.CONSENT: Stage.CONSENT,
    State.WAITING: Stage.QUEUE,
    State.CONNECTING: Stage.QUEUE,
    State.CONNECTED: Stage.STAFF,
    State.GOODBYE: Stage.GOODBYE,
    State.SURVEY: Stage.GOODBYE,  # after the counselor: the call ended with staff
}
#: The consent row when a counselor answered before the caller answered the question.
CONSENTED_BY_NOBODY = AnsweredBy.COUNSELOR_FIRST


@dataclass(frozen=True, kw_only=True)
class FlowConfig:
    """The menu and the settings' values (built by ivr.configs.flow_config; no defaults here
    for what the settings own)."""

    menu: Menu
    input_timeout: float
    max_failures: int
    reassurance_interval: float
    #: Seconds of waiting after which the announcements offer a callback (key 1).
    callback_offer_after: float
    #: With a counselor on the line: tell the counselor when both sides were silent this long.
    both_silence_notify: float
    #: ... and when the caller alone was silent this long.
    caller_silence_notify: float
    #: Seconds to answer the consent question after it was played; no answer = no consent.
    consent_timeout: float
    #: Seconds of waiting after which the callback is offered at the latest.
    max_wait: float
    #: Speak position and estimated wait in the announcements.
    announce_position: bool = True
