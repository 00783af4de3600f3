"""The summary consent question on a follow-up call (ivr.followup.question, through the pure
outbound journey): asked after the opt-out notice, answered by key, withdrawn with *6."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ivr.flow import call as flow
from ivr.followup.commands import (
    RecordOptOut,
)
from ivr.followup.events import CitizenAnswered, CitizenGone
from ivr.followup.journey import (
    FollowupCall,
    State,
)
from tests.followup_journey_support import (
    CONFIG,
    STAFF,
    T0,
    connected,
    of,
    plays,
    task,
    whisper_done,
)

# --------------------------------------------------------------------- the summary consent

ASKING = dataclasses.replace(CONFIG, ask_consent=True, consent_timeout=8.0)
YES, NO, NONE = flow.ConsentAnswer.YES, flow.ConsentAnswer.NO, flow.ConsentAnswer.NONE
QUESTION = (("followup_consent_question",), flow.Target.CALLER)


def asking(**kw: Any) -> tuple[FollowupCall, list[Any]]:
    """Connected on a call that asks the summary question; returns it and the answer's commands."""
    c = FollowupCall("fu-1", task(), STAFF, "c1", ASKING, T0, **kw)
    c.start(T0)
    whisper_done(c)
    return c, c.handle(CitizenAnswered(), T0 + 10)


def question_played(c: FollowupCall) -> list[Any]:
    """The opt-out notice ended: the question plays."""
    return c.handle(flow.PlaybackDone(c._notice or ""), T0 + 16)


def test_the_question_follows_the_opt_out_notice_nothing_recorded_meanwhile() -> None:
    c, cmds = asking()
    assert plays(cmds) == [(("followup_optout_notice",), flow.Target.CALLER)]
    assert flow.Connect(STAFF) in cmds and not of(cmds, flow.StartRecording)
    assert c.consent is flow.ConsentAnswer.PENDING
    asked = question_played(c)
    assert plays(asked) == [QUESTION]
    (question,) = of(asked, flow.Play)
    assert c.handle(flow.PlaybackDone(question.playback_id), T0 + 24) == [
        flow.StartTimer("followup-consent", 8.0)
    ]
    assert c.consent is flow.ConsentAnswer.PENDING


def test_key_1_is_consent_recording_starts_the_staff_member_is_told_and_can_withdraw() -> None:
    c, _ = asking()
    (question,) = of(question_played(c), flow.Play)
    cmds = c.handle(flow.Digit("1"), T0 + 18)  # during the question: it stops
    assert cmds[:4] == [
        flow.StopPlayback(question.playback_id),
        flow.CancelTimer("followup-consent"),
        flow.RecordConsent(YES, flow.AnsweredBy.KEY, ("followup_consent_question",)),
        flow.StartRecording(),
    ]
    assert plays(cmds) == [(("staff_followup_consent_yes",), flow.Target.LEG)]
    assert of(cmds, flow.Play)[0].leg_id == STAFF
    assert c.consent is YES
    assert c.handle(flow.Digit("1"), T0 + 19) == []  # asked once
    c.handle(flow.StaffDigit("*"), T0 + 30)
    withdrawn = c.handle(flow.StaffDigit("6"), T0 + 31)
    assert flow.WithdrawConsent("c1") in withdrawn
    assert c.consent is flow.ConsentAnswer.WITHDRAWN


@pytest.mark.parametrize("answer", ["2", None])
def test_key_2_or_no_key_in_time_is_no_consent(answer: str | None) -> None:
    c, _ = asking()
    (question,) = of(question_played(c), flow.Play)
    c.handle(flow.PlaybackDone(question.playback_id), T0 + 24)
    if answer is None:
        cmds = c.handle(flow.TimerFired("followup-consent"), T0 + 32)
        expected = flow.RecordConsent(NONE, flow.AnsweredBy.NONE, ("followup_consent_question",))
    else:
        cmds = c.handle(flow.Digit(answer), T0 + 26)
        expected = flow.RecordConsent(NO, flow.AnsweredBy.KEY, ("followup_consent_question",))
    assert of(cmds, flow.RecordConsent) == [expected]
    assert not of(cmds, flow.StartRecording) and not of(cmds, flow.StopPlayback)
    assert plays(cmds) == [(("staff_followup_consent_no",), flow.Target.LEG)]
    assert c.consent is (NONE if answer is None else NO)
    c.handle(flow.StaffDigit("*"), T0 + 40)
    assert c.handle(flow.StaffDigit("6"), T0 + 41) == []  # nothing to withdraw


def test_a_key_during_the_notice_does_not_answer_the_question() -> None:
    c, _ = asking()
    assert c.handle(flow.Digit("1"), T0 + 12) == []
    assert c.consent is flow.ConsentAnswer.PENDING
    assert plays(question_played(c)) == [QUESTION]


def test_the_opt_out_key_during_the_question_opts_out_and_the_question_stays_open() -> None:
    c, _ = asking()
    question_played(c)
    cmds = c.handle(flow.Digit("9"), T0 + 18)
    assert RecordOptOut() in cmds and not of(cmds, flow.RecordConsent)
    assert c.consent is flow.ConsentAnswer.PENDING
    assert of(c.handle(flow.Digit("1"), T0 + 25), flow.RecordConsent)[0].answer is YES


def test_hanging_up_before_an_answer_leaves_no_consent() -> None:
    c, _ = asking()
    question_played(c)
    cmds = c.handle(CitizenGone(16), T0 + 20)
    assert flow.CancelTimer("followup-consent") in cmds
    assert not of(cmds, flow.RecordConsent) and not of(cmds, flow.StartRecording)
    assert c.state is State.OUTCOME
    assert not of(c.handle(flow.TimerFired("followup-consent"), T0 + 30), flow.RecordConsent)
    assert not of(c.handle(flow.Digit("1"), T0 + 31), flow.RecordConsent)


def test_the_staff_member_leaving_during_the_question_ends_it_without_consent() -> None:
    c, _ = asking()
    question_played(c)
    cmds = c.handle(flow.StaffHungUp(), T0 + 20)
    assert flow.HangupCaller() in cmds and not of(cmds, flow.RecordConsent)
    assert c.ended


def test_a_consent_recorded_for_this_contact_is_not_asked_again() -> None:
    c, cmds = asking(consent=YES)
    assert flow.StartRecording() in cmds
    assert question_played(c) == []
    assert c.consent is YES


def test_not_asked_when_the_setting_is_off() -> None:
    c = connected()
    assert c.consent is None
    assert c.handle(flow.PlaybackDone(c._notice or ""), T0 + 16) == []
    assert c.handle(flow.Digit("1"), T0 + 20) == []
