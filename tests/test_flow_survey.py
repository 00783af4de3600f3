"""The post-call satisfaction survey (ivr.flow.survey) inside the pure call flow: each path from
the counselor's hang-up to the end, and the call with the survey off (as before). The times
follow tests/flow_support.py (line chosen at 2 s, consent answered at 10 s, a counselor
answering at 40 s); the counselor hangs up at 100 s.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ivr.flow.call import (
    CallerHungUp,
    CallFlow,
    CancelTimer,
    Command,
    Digit,
    Failed,
    Finish,
    HangupCaller,
    Heard,
    Hold,
    Listen,
    Outcome,
    Play,
    PlaybackDone,
    Recover,
    StaffAnswered,
    StaffDigit,
    StaffHungUp,
    Started,
    StartRecording,
    StartTimer,
    State,
    StopPlayback,
    StopRecording,
    Target,
    TimerFired,
)
from ivr.flow.commands import AnsweredBy, ConsentAnswer, RecordSurvey, SurveyKind
from ivr.flow.menu import MenuError, parse_menu
from ivr.flow.record import Stage
from ivr.flow.survey import SURVEY_TIMER, THANKS
from tests.flow_support import LEG, MENU, connected, make_config, of, one

LEFT = 100.0  # the counselor hangs up


def survey_config(kind: SurveyKind, consent_key: str = "2") -> CallFlow:
    """A flow on a loneliness line with the survey `kind`, connected to a counselor; the
    caller answered the consent question with `consent_key` (1 yes, 2 no)."""
    queues = dict(MENU.queues)
    queues["loneliness"] = dataclasses.replace(queues["loneliness"], survey=kind)
    config = make_config(menu=dataclasses.replace(MENU, queues=queues))
    flow = CallFlow("c1", config, 0.0)
    menu = one(flow.handle(Started(), 0.0), Play).playback_id
    flow.handle(PlaybackDone(menu), 1.0)
    flow.handle(Digit("5"), 2.0)
    flow.handle(Digit(consent_key), 10.0)
    whisper = one(flow.handle(StaffAnswered(LEG, "counselor01"), 40.0), Play).playback_id
    flow.handle(PlaybackDone(whisper), 40.0)
    assert flow.state is State.CONNECTED
    return flow


def asked(kind: SurveyKind = SurveyKind.SCORE) -> tuple[CallFlow, str]:
    """The counselor hung up: the question is playing."""
    flow = survey_config(kind)
    cmds = flow.handle(StaffHungUp(), LEFT)
    assert flow.state is State.SURVEY
    return flow, one(cmds, Play).playback_id


def answering(kind: SurveyKind = SurveyKind.SCORE) -> CallFlow:
    flow, question = asked(kind)
    flow.handle(PlaybackDone(question), LEFT + 6)
    return flow


def thanked(flow: CallFlow, cmds: list[Command]) -> str:
    play = one(cmds, Play)
    assert play.prompts == (THANKS,) and play.target is Target.CALLER
    return play.playback_id


def test_counselor_hangs_up_the_caller_hears_the_question_not_a_hangup() -> None:
    flow = survey_config(SurveyKind.SCORE)
    cmds = flow.handle(StaffHungUp(), LEFT)
    assert of(cmds, HangupCaller) == [] and of(cmds, Finish) == []
    play = one(cmds, Play)
    assert play.prompts == ("survey_question_score",) and play.target is Target.CALLER
    assert not flow.ended and flow.record.staff_left_at == LEFT
    # In a holding bridge with music for it (no dead air after it while no controller runs).
    assert cmds.index(Hold()) < cmds.index(play)


def test_a_consented_recording_stops_as_the_survey_begins_before_the_question() -> None:
    flow = survey_config(SurveyKind.SCORE, consent_key="1")
    assert flow.consent is ConsentAnswer.YES
    cmds = flow.handle(StaffHungUp(), LEFT)
    assert flow.state is State.SURVEY and cmds.count(StopRecording()) == 1
    assert cmds.index(StopRecording()) < cmds.index(one(cmds, Play))  # before the question
    flow.handle(PlaybackDone(one(cmds, Play).playback_id), LEFT + 6)
    later = flow.handle(Digit("4"), LEFT + 8)
    assert of(later, StopRecording) == [] and of(later, StartRecording) == []


def test_without_consent_there_is_no_recording_to_stop() -> None:
    cmds = survey_config(SurveyKind.SCORE).handle(StaffHungUp(), LEFT)
    assert of(cmds, StopRecording) == [] and one(cmds, Play)


def test_a_call_that_ends_with_the_counselor_needs_no_stop() -> None:
    flow = CallFlow("c1", make_config(), 0.0)  # no survey on the line
    menu = one(flow.handle(Started(), 0.0), Play).playback_id
    flow.handle(PlaybackDone(menu), 1.0)
    flow.handle(Digit("5"), 2.0)
    flow.handle(Digit("1"), 10.0)
    whisper = one(flow.handle(StaffAnswered(LEG, "counselor01"), 40.0), Play).playback_id
    assert StartRecording() in flow.handle(PlaybackDone(whisper), 40.0)
    cmds = flow.handle(StaffHungUp(), LEFT)
    assert flow.ended and of(cmds, StopRecording) == []  # the tap closes with the call


def test_the_answer_window_opens_when_the_question_was_played() -> None:
    flow, question = asked()
    cmds = flow.handle(PlaybackDone(question), LEFT + 6)
    assert cmds == [StartTimer(SURVEY_TIMER, 8.0)]


def test_a_key_answers_is_stored_once_then_thanks_and_hang_up() -> None:
    flow = answering()
    cmds = flow.handle(Digit("4"), LEFT + 8)
    assert one(cmds, RecordSurvey) == RecordSurvey(SurveyKind.SCORE, 4, AnsweredBy.KEY)
    assert CancelTimer(SURVEY_TIMER) in cmds
    thanks = thanked(flow, cmds)
    assert flow.handle(Digit("5"), LEFT + 9) == []  # one answer per call
    end = flow.handle(PlaybackDone(thanks), LEFT + 11)
    assert end == [HangupCaller(), Finish(Outcome.COMPLETED)]
    assert flow.survey is not None and flow.survey.answer == 4


def test_a_key_during_the_question_answers_it() -> None:
    flow, question = asked()
    cmds = flow.handle(Digit("5"), LEFT + 2)
    assert StopPlayback(question) in cmds
    assert one(cmds, RecordSurvey).answer == 5
    thanked(flow, cmds)


@pytest.mark.parametrize("key", ["0", "6", "9", "*", "#"])
def test_other_keys_are_no_answer(key: str) -> None:
    flow = answering()
    assert flow.handle(Digit(key), LEFT + 8) == []
    assert flow.state is State.SURVEY


def test_no_answer_thanks_and_hang_up_nothing_stored() -> None:
    flow = answering()
    cmds = flow.handle(TimerFired(SURVEY_TIMER), LEFT + 14)
    assert of(cmds, RecordSurvey) == []
    thanks = thanked(flow, cmds)
    end = flow.handle(PlaybackDone(thanks), LEFT + 17)
    assert end == [HangupCaller(), Finish(Outcome.COMPLETED)]


def test_the_call_stays_honest_completed_with_staff_talk_until_the_counselor_left() -> None:
    flow = answering()
    thanks = thanked(flow, flow.handle(Digit("3"), LEFT + 8))
    flow.handle(PlaybackDone(thanks), LEFT + 11)
    rec = flow.record
    assert rec.outcome is Outcome.COMPLETED and rec.ended_in is Stage.STAFF
    assert rec.talk_seconds == LEFT - 40.0
    assert rec.stage_seconds[Stage.STAFF] == LEFT - 40.0
    assert rec.stage_seconds[Stage.GOODBYE] == 11.0  # the survey counts as the closing part


def test_caller_hangs_up_during_the_survey_nothing_stored_completed() -> None:
    flow, _ = asked()
    cmds = flow.handle(CallerHungUp(), LEFT + 3)
    assert of(cmds, RecordSurvey) == [] and CancelTimer(SURVEY_TIMER) in cmds
    assert cmds[-1] == Finish(Outcome.COMPLETED) and flow.record.ended_in is Stage.STAFF


def test_a_failure_during_the_survey_recovers_but_the_call_completed() -> None:
    flow, _ = asked()
    cmds = flow.handle(Failed("play failed"), LEFT + 1)
    assert Recover() in cmds and cmds[-1] == Finish(Outcome.COMPLETED)


def test_helped_is_asked_with_the_words_listened_for() -> None:
    flow = survey_config(SurveyKind.HELPED)
    cmds = flow.handle(StaffHungUp(), LEFT)
    assert one(cmds, Listen).phrases == ("네", "예", "아니요", "아니오")
    assert one(cmds, Play).prompts == ("survey_question_helped",)


@pytest.mark.parametrize(
    ("event", "answer", "by"),
    [
        (Heard("네"), 1, AnsweredBy.VOICE),
        (Heard("아니요"), 0, AnsweredBy.VOICE),
        (Digit("1"), 1, AnsweredBy.KEY),
        (Digit("2"), 0, AnsweredBy.KEY),
    ],
)
def test_helped_answered_by_word_or_key(event: Heard | Digit, answer: int, by: AnsweredBy) -> None:
    flow = answering(SurveyKind.HELPED)
    cmds = flow.handle(event, LEFT + 8)
    assert one(cmds, RecordSurvey) == RecordSurvey(SurveyKind.HELPED, answer, by)
    assert Listen(()) in cmds  # recognition stops with the answer
    thanked(flow, cmds)


def test_a_score_survey_ignores_words_and_keys_above_two_answer_a_score_only() -> None:
    flow = answering(SurveyKind.SCORE)
    assert flow.handle(Heard("네"), LEFT + 8) == []
    helped = answering(SurveyKind.HELPED)
    assert helped.handle(Digit("4"), LEFT + 8) == []


def test_survey_off_the_caller_is_hung_up_as_before() -> None:
    flow = connected()
    assert flow.config.menu.queues["loneliness"].survey is None  # off by default
    cmds = flow.handle(StaffHungUp(), LEFT)
    assert cmds == [HangupCaller(), Finish(Outcome.COMPLETED)]
    assert flow.survey is None and flow.record.staff_left_at is None


def test_no_survey_after_an_abuse_ending() -> None:
    flow = survey_config(SurveyKind.SCORE)
    flow.handle(StaffDigit("*"), 50.0)
    cmds = flow.handle(StaffDigit("9"), 50.5)
    assert one(cmds, Play).prompts == ("abuse_policy_end",)
    assert flow.state is State.GOODBYE


def test_the_menu_file_names_the_survey_per_line() -> None:
    data: dict[str, Any] = {
        "queues": {"q": {"intro": "i", "members": "counselors", "survey": "helped"}},
        "option": [{"digit": "5", "prompt": "p", "queue": "q"}],
    }
    assert parse_menu(data).queues["q"].survey is SurveyKind.HELPED
    assert parse_menu(data).queues["q"].survey_timeout == 8.0
    data["queues"]["q"]["survey"] = "off"
    assert parse_menu(data).queues["q"].survey is None
    data["queues"]["q"]["survey_timeout"] = 0
    with pytest.raises(MenuError, match="survey_timeout must be"):
        parse_menu(data)
    data["queues"]["q"]["survey_timeout"] = 5
    data["queues"]["q"]["survey"] = "stars"
    with pytest.raises(MenuError, match="survey must be"):
        parse_menu(data)
