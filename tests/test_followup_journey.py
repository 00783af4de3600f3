"""The outbound journey (ivr.followup.journey), pure: every path of a follow-up call with the
time passed in. Each test takes the call to a state with a helper, then one event. The summary
consent question's paths are in tests/test_followup_question.py."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ivr.flow import call as flow
from ivr.followup import model
from ivr.followup.commands import (
    CloseTask,
    DialCitizen,
    EndFollowup,
    RecordAttempt,
    RecordOptOut,
    RescheduleTask,
    Ringback,
)
from ivr.followup.events import CitizenAnswered, CitizenGone
from ivr.followup.journey import (
    FOLLOWUP_PROMPTS,
    OUTCOME_TIMER,
    FollowupCall,
    State,
    attempt_result,
)
from ivr.prompts.catalog import load_catalog
from ivr.staff.teams import parse_teams
from ivr.timezone import SEOUL
from tests.followup_journey_support import (
    AR,
    CONFIG,
    STAFF,
    T0,
    answered,
    connected,
    dialling,
    of,
    plays,
    task,
    whisper_done,
)

# --------------------------------------------------------------------------- before answer


def test_the_staff_member_hears_the_task_first() -> None:
    c = FollowupCall("fu-1", task(model.TaskType.WELFARE), STAFF, "c1", CONFIG, T0, contacts=2)
    cmds = c.start(T0)
    assert plays(cmds) == [
        (("followup_whisper_welfare", "followup_whisper_again"), flow.Target.LEG)
    ]
    assert cmds[0].leg_id == STAFF
    assert c.state is State.WHISPER and not of(cmds, DialCitizen)


def test_first_contact_has_no_again() -> None:
    cmds = FollowupCall("fu-1", task(), STAFF, "c1", CONFIG, T0).start(T0)
    assert plays(cmds) == [(("followup_whisper_callback",), flow.Target.LEG)]


def test_after_the_whisper_the_citizen_is_dialled_with_ringback() -> None:
    c = answered()
    cmds = whisper_done(c)
    assert of(cmds, DialCitizen) == [DialCitizen()]
    (ring,) = of(cmds, Ringback)
    assert ring.leg_id == STAFF
    assert c.state is State.DIALLING


def test_another_playback_does_not_end_the_whisper() -> None:
    c = answered()
    assert c.handle(flow.PlaybackDone("other"), T0 + 1) == []
    assert c.state is State.WHISPER


def test_citizen_answers_bridged_and_hears_the_opt_out_notice() -> None:
    c = dialling()
    ringback = c._ringback
    cmds = c.handle(CitizenAnswered(), T0 + 10)
    assert flow.StopPlayback(ringback or "") in cmds
    assert flow.Connect(STAFF) in cmds
    assert flow.StartListening(flow.Party.CALLER) in cmds
    assert (("followup_optout_notice",), flow.Target.CALLER) in plays(cmds)
    assert not of(cmds, flow.StartRecording)  # no consent recorded for this contact
    assert c.state is State.CONNECTED and c.record.answered_at == T0 + 10


def test_recording_only_where_consent_was_recorded() -> None:
    c = connected(consent=flow.ConsentAnswer.YES)
    assert c.consent is flow.ConsentAnswer.YES
    c2 = dialling()
    c2._consent = flow.ConsentAnswer.YES
    assert flow.StartRecording() in c2.handle(CitizenAnswered(), T0 + 10)


@pytest.mark.parametrize(
    ("cause", "result"),
    [(19, AR.NO_ANSWER), (18, AR.NO_ANSWER), (17, AR.BUSY), (21, AR.BUSY), (34, AR.FAILED)],
)
def test_causes_of_a_citizen_not_reached(cause: int, result: model.AttemptResult) -> None:
    assert attempt_result(cause) is result


def test_no_answer_is_recorded_rescheduled_and_told_to_the_staff() -> None:
    c = dialling()
    cmds = c.handle(CitizenGone(19), T0 + 40)
    assert of(cmds, RecordAttempt) == [RecordAttempt(AR.NO_ANSWER, 19, None, True)]
    assert of(cmds, RescheduleTask) == [RescheduleTask(T0 + 40 + 60)]
    assert plays(cmds) == [(("followup_not_connected", "followup_rescheduled"), flow.Target.LEG)]
    assert c.state is State.TELLING
    done = c.handle(flow.PlaybackDone(c._playback or ""), T0 + 45)
    assert done[:2] == [flow.HangupLeg(STAFF), EndFollowup()]
    assert done[-1] == flow.Finish(flow.Outcome.NOT_REACHED)
    assert c.ended


def test_the_second_failure_waits_longer() -> None:
    c = dialling(task(attempts=1))
    cmds = c.handle(CitizenGone(17), T0 + 40)
    assert of(cmds, RescheduleTask) == [RescheduleTask(T0 + 40 + 120)]


def test_after_the_last_attempt_the_task_closes_unreachable() -> None:
    c = dialling(task(attempts=2))
    cmds = c.handle(CitizenGone(19), T0 + 40)
    assert of(cmds, CloseTask) == [CloseTask(model.Status.UNREACHABLE, model.Outcome.UNREACHABLE)]
    assert not of(cmds, RescheduleTask)
    assert plays(cmds)[0][0] == ("followup_not_connected", "followup_closed_unreachable")


def test_staff_leaving_before_the_answer_cancels_the_citizen_not_counted() -> None:
    c = dialling()
    cmds = c.handle(flow.StaffHungUp(), T0 + 20)
    assert flow.HangupCaller() in cmds
    assert of(cmds, RecordAttempt) == [RecordAttempt(AR.STAFF_LEFT, None, None, False)]
    assert of(cmds, RescheduleTask) == [RescheduleTask(T0 + 20 + 60)]
    assert cmds[-1] == flow.Finish(flow.Outcome.NOT_REACHED) and c.ended


def test_staff_leaving_during_the_whisper_never_dials() -> None:
    c = answered()
    cmds = c.handle(flow.StaffHungUp(), T0 + 1)
    assert not of(cmds, DialCitizen) and c.ended
    assert of(cmds, RecordAttempt)[0].result is AR.STAFF_LEFT


def test_a_citizen_answering_after_the_end_is_let_go() -> None:
    c = dialling()
    c.handle(flow.StaffHungUp(), T0 + 20)
    assert c.handle(CitizenAnswered(), T0 + 21) == [flow.HangupCaller()]


# --------------------------------------------------------------------------- the conversation


def test_citizen_hangs_up_the_staff_member_is_asked_for_the_outcome() -> None:
    c = connected()
    cmds = c.handle(flow.CallerHungUp(), T0 + 100)
    assert flow.HangupLeg(STAFF) not in cmds  # the staff member stays for the outcome
    assert plays(cmds) == [(("followup_outcome_menu",), flow.Target.LEG)]
    assert flow.StartTimer(OUTCOME_TIMER, 15.0) in cmds
    assert c.state is State.OUTCOME and c.talk_seconds == 90


def test_the_citizen_channel_ending_is_the_same_as_hanging_up() -> None:
    c = connected()
    c.handle(CitizenGone(16), T0 + 100)
    assert c.state is State.OUTCOME


@pytest.mark.parametrize(
    ("key", "status", "outcome", "result"),
    [
        ("1", model.Status.DONE, model.Outcome.REACHED, AR.REACHED),
        ("3", model.Status.DONE, model.Outcome.MORE_HELP, AR.REACHED),
    ],
)
def test_outcome_keys_close_the_task(
    key: str, status: model.Status, outcome: model.Outcome, result: model.AttemptResult
) -> None:
    c = connected()
    c.handle(flow.CallerHungUp(), T0 + 20)
    cmds = c.handle(flow.StaffDigit(key), T0 + 22)
    assert of(cmds, RecordAttempt) == [RecordAttempt(result, None, 10.0, False)]
    assert of(cmds, CloseTask) == [CloseTask(status, outcome)]
    assert plays(cmds) == [(("followup_outcome_saved",), flow.Target.LEG)]
    assert not of(cmds, flow.RequestCallback)  # more help: the dialler's close makes it
    done = c.handle(flow.PlaybackDone(c._playback or ""), T0 + 25)
    assert flow.HangupLeg(STAFF) in done and done[-1] == flow.Finish(flow.Outcome.COMPLETED)


def test_outcome_not_reached_reschedules_counted() -> None:
    c = connected()
    c.handle(flow.CallerHungUp(), T0 + 100)
    cmds = c.handle(flow.StaffDigit("2"), T0 + 101)
    assert of(cmds, RecordAttempt) == [RecordAttempt(AR.NO_ANSWER, None, 90.0, True)]
    assert of(cmds, RescheduleTask) == [RescheduleTask(T0 + 101 + 60)]


@pytest.mark.parametrize(("talk", "closed"), [(31.0, True), (30.0, False)])
def test_default_outcome_reached_only_after_enough_talk(talk: float, closed: bool) -> None:
    c = connected()
    c.handle(flow.CallerHungUp(), T0 + 10 + talk)
    cmds = c.handle(flow.TimerFired(OUTCOME_TIMER), T0 + 60)
    assert bool(of(cmds, CloseTask)) is closed
    assert bool(of(cmds, RescheduleTask)) is not closed


def test_staff_hanging_up_at_the_outcome_question_takes_the_default() -> None:
    c = connected()
    c.handle(flow.CallerHungUp(), T0 + 100)
    cmds = c.handle(flow.StaffHungUp(), T0 + 101)
    assert of(cmds, CloseTask) == [CloseTask(model.Status.DONE, model.Outcome.REACHED)]
    assert c.ended and flow.CancelTimer(OUTCOME_TIMER) in cmds


def test_staff_hanging_up_lets_the_citizen_go_with_the_default() -> None:
    c = connected()
    cmds = c.handle(flow.StaffHungUp(), T0 + 100)
    assert flow.HangupCaller() in cmds
    assert of(cmds, RecordAttempt) == [RecordAttempt(AR.REACHED, None, 90.0, False)]
    assert cmds[-1] == flow.Finish(flow.Outcome.COMPLETED)


def test_a_lost_staff_phone_tells_the_citizen_and_calls_again_soon() -> None:
    c = connected()
    cmds = c.handle(flow.StaffHungUp(lost=True), T0 + 100)
    assert flow.HangupCaller() not in cmds and c.state is State.GOODBYE
    assert plays(cmds) == [(("followup_staff_lost",), flow.Target.CALLER)]
    assert of(cmds, RecordAttempt) == [RecordAttempt(AR.STAFF_LOST, None, 90.0, False)]
    assert not of(cmds, CloseTask)  # nobody keyed an outcome: the citizen is called again
    assert of(cmds, RescheduleTask) == [RescheduleTask(T0 + 100 + 60)]  # soon, as staff_left
    done = c.handle(flow.PlaybackDone(c._playback or ""), T0 + 106)
    assert done[0] == flow.HangupCaller() and done[-1] == flow.Finish(flow.Outcome.COMPLETED)


def test_silence_notices_run_as_on_inbound_calls() -> None:
    c = connected()
    cmds = c.handle(flow.Silence(flow.Party.CALLER, 41.0), T0 + 60)
    kinds = [n.kind for n in of(cmds, flow.NotifyStaff)]
    assert flow.NoticeKind.CALLER_SILENT in kinds
    assert of(cmds, flow.NotifyStaff)[0].member == "c1"


def test_abuse_end_flags_plays_the_policy_and_closes_reached() -> None:
    c = connected()
    c.handle(flow.StaffDigit("*"), T0 + 50)
    cmds = c.handle(flow.StaffDigit("9"), T0 + 51)
    assert of(cmds, flow.FlagCaller) and flow.HangupLeg(STAFF) in cmds
    assert plays(cmds) == [(("abuse_policy_end",), flow.Target.CALLER)]
    assert of(cmds, CloseTask) == [CloseTask(model.Status.DONE, model.Outcome.REACHED)]
    assert c.state is State.GOODBYE
    done = c.handle(flow.PlaybackDone(c._playback or ""), T0 + 55)
    assert done[0] == flow.HangupCaller() and done[-1] == flow.Finish(flow.Outcome.ABUSE_ENDED)


def test_crisis_transfer_rings_the_crisis_line() -> None:
    c = connected()
    c.handle(flow.StaffDigit("*"), T0 + 50)
    assert c.handle(flow.StaffDigit("7"), T0 + 51) == [flow.RingCrisis()]


def test_in_depth_request_during_the_call() -> None:
    c = connected()
    c.handle(flow.StaffDigit("*"), T0 + 50)
    cmds = c.handle(flow.StaffDigit("8"), T0 + 51)
    assert of(cmds, flow.RequestCallback)[0].reason is flow.CallbackReason.SOCIAL_WORKER


def test_handed_over_to_the_crisis_line_then_the_end() -> None:
    c = connected()
    c.handle(flow.StaffDigit("*"), T0 + 50)
    c.handle(flow.StaffDigit("7"), T0 + 51)
    c.handle(flow.CrisisAnswered("crisis-1"), T0 + 60)
    assert c.handle(flow.StaffHungUp(), T0 + 70) == [] and c.staff_leg is None
    cmds = c.handle(flow.CallerHungUp(), T0 + 200)
    assert of(cmds, CloseTask) == [CloseTask(model.Status.DONE, model.Outcome.REACHED)]
    assert cmds[-1] == flow.Finish(flow.Outcome.TRANSFERRED)


# --------------------------------------------------------------------------- opt-out


def test_opt_out_key_is_recorded_confirmed_and_told() -> None:
    c = connected()
    cmds = c.handle(flow.Digit("9"), T0 + 20)
    assert of(cmds, RecordOptOut) == [RecordOptOut()]
    assert plays(cmds) == [
        (("followup_optout_confirm",), flow.Target.CALLER),
        (("staff_followup_optout",), flow.Target.LEG),
    ]
    assert c.opted_out and c.state is State.CONNECTED  # the conversation goes on
    assert c.handle(flow.Digit("9"), T0 + 21) == []  # once


def test_other_citizen_keys_do_nothing() -> None:
    c = connected()
    assert c.handle(flow.Digit("1"), T0 + 20) == []


def test_after_opting_out_no_outcome_is_asked() -> None:
    c = connected()
    c.handle(flow.Digit("9"), T0 + 20)
    cmds = c.handle(flow.CallerHungUp(), T0 + 30)
    assert of(cmds, RecordAttempt) == [RecordAttempt(AR.OPTED_OUT, None, 20.0, False)]
    assert not of(cmds, CloseTask) and not of(cmds, RescheduleTask)
    assert plays(cmds) == [(("followup_outcome_saved",), flow.Target.LEG)]
    assert c.state is State.TELLING


def test_the_opt_out_key_before_the_answer_is_not_possible() -> None:
    c = dialling()
    assert c.handle(flow.Digit("9"), T0 + 5) == []


# --------------------------------------------------------------------------- failures


def test_a_failure_while_connected_recovers_the_citizen() -> None:
    c = connected()
    cmds = c.handle(flow.Failed("bridge"), T0 + 50)
    assert flow.Recover() in cmds and flow.HangupLeg(STAFF) in cmds
    assert of(cmds, RecordAttempt)[0].result is AR.REACHED
    assert cmds[-1] == flow.Finish(flow.Outcome.ERROR) and c.ended


def test_a_failure_while_dialling_counts_as_failed() -> None:
    c = dialling()
    cmds = c.handle(flow.Failed("originate"), T0 + 40)
    assert flow.HangupCaller() in cmds and flow.HangupLeg(STAFF) in cmds
    assert of(cmds, RecordAttempt) == [RecordAttempt(AR.FAILED, None, None, True)]
    assert of(cmds, RescheduleTask)


def test_nothing_after_the_end() -> None:
    c = dialling()
    c.handle(flow.StaffHungUp(), T0 + 20)
    assert c.handle(flow.CallerHungUp(), T0 + 21) == []
    assert c.handle(flow.Failed("late"), T0 + 21) == []


def test_every_prompt_is_in_the_catalog() -> None:
    load_catalog().require(sorted(FOLLOWUP_PROMPTS))


def test_the_abuse_end_is_kept_in_the_record() -> None:
    c = connected()
    c.handle(flow.StaffDigit("*"), T0 + 50)
    c.handle(flow.StaffDigit("9"), T0 + 51)
    assert c.record.end_reason is flow.CallEndReason.ABUSE


def test_a_monitoring_call_asks_whether_the_referral_worked() -> None:
    c = connected(task(model.TaskType.MONITORING))
    cmds = c.handle(flow.CallerHungUp(), T0 + 100)
    assert plays(cmds) == [(("followup_outcome_menu_monitoring",), flow.Target.LEG)]
    cmds = c.handle(flow.StaffDigit("4"), T0 + 101)
    assert of(cmds, CloseTask) == [CloseTask(model.Status.DONE, model.Outcome.NOT_LINKED)]


def test_not_linked_is_only_for_monitoring_calls() -> None:
    c = connected()
    c.handle(flow.CallerHungUp(), T0 + 100)
    assert c.handle(flow.StaffDigit("4"), T0 + 101) == []
    assert c.state is State.OUTCOME


# --------------------------------------------------------------------------- companions' retries


def _companion_retry(at: dt.datetime, attempts: int = 0, result_cause: int = 19) -> float:
    """The due time of a companion task's retry after the citizen did not answer at `at`,
    with the real calling hours (09:00-20:00) and companion07's hours from a teams file."""
    teams = parse_teams(
        {
            "member": {"companion07": ["sat 09:00-13:00", "sun 21:00-23:00"]},
            "away": [
                {
                    "member": "companion07",
                    "from": dt.datetime(2026, 12, 12, 12, 0),
                    "until": dt.datetime(2026, 12, 13, 0, 0),
                    "reason": "병원",
                }
            ],
        }
    )
    config = dataclasses.replace(
        CONFIG,
        followup=dataclasses.replace(
            CONFIG.followup, calling_start=9 * 60, calling_end=20 * 60, backoff=(1800.0, 7200.0)
        ),
        teams=teams,
    )
    t0 = at.timestamp()
    t = dataclasses.replace(task(model.TaskType.COMPANION, attempts), member="companion07")
    c = FollowupCall("fu-1", t, STAFF, "companion07", config, t0, contacts=1)
    c.start(t0)
    c.handle(flow.PlaybackDone(c._playback or ""), t0)
    (reschedule,) = of(c.handle(CitizenGone(result_cause), t0), RescheduleTask)
    return float(reschedule.due_at)


def seoul(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SEOUL)


def test_a_companions_retry_lands_in_the_companions_own_hours() -> None:
    # Sunday 21:10 (outside 09-20 calling hours, inside the companion's 21-23): 30 min later,
    # still inside their hours — not pushed to Monday 09:00.
    assert _companion_retry(seoul(2026, 12, 6, 21, 10)) == seoul(2026, 12, 6, 21, 40).timestamp()
    # Sunday 22:50 + 30 min is past their hours: the next Saturday 09:00, not Monday 09:00.
    assert _companion_retry(seoul(2026, 12, 6, 22, 50)) == seoul(2026, 12, 12, 9, 0).timestamp()
    # Saturday 11:00 + 2 h lands in their absence (from 12:00): their next hours, Sunday 21:00.
    retry = _companion_retry(seoul(2026, 12, 12, 11, 0), attempts=1, result_cause=17)
    assert retry == seoul(2026, 12, 13, 21, 0).timestamp()


def test_a_counselors_retry_still_keeps_to_the_calling_hours() -> None:
    config = dataclasses.replace(
        CONFIG,
        followup=dataclasses.replace(CONFIG.followup, calling_start=9 * 60, calling_end=20 * 60),
        teams=parse_teams({"member": {"c1": ["sun 00:00-24:00"]}}),
    )
    t0 = seoul(2026, 12, 6, 19, 59, 30).timestamp()
    c = FollowupCall("fu-1", task(), STAFF, "c1", config, t0)
    c.start(t0)
    c.handle(flow.PlaybackDone(c._playback or ""), t0)
    (reschedule,) = of(c.handle(CitizenGone(19), t0), RescheduleTask)
    assert reschedule.due_at == seoul(2026, 12, 7, 9, 0).timestamp()


def test_next_on_duty_skips_absences() -> None:
    teams = parse_teams(
        {
            "member": {"companion01": ["mon 10:00-13:00", "wed 10:00-13:00"]},
            "away": [
                {
                    "member": "companion01",
                    "from": dt.datetime(2026, 12, 7, 0, 0),
                    "until": dt.datetime(2026, 12, 9, 11, 30),
                    "reason": "휴가",
                }
            ],
        }
    )
    on = teams.next_on_duty("companions", "companion01", seoul(2026, 12, 6, 12, 0))
    assert on == seoul(2026, 12, 9, 11, 30)
    on = teams.next_on_duty("companions", "companion01", seoul(2026, 12, 9, 12, 0, 1))
    assert on == seoul(2026, 12, 9, 12, 0, 1)  # within their hours: at once
    on = teams.next_on_duty("companions", "companion01", seoul(2026, 12, 9, 13, 0))
    assert on == seoul(2026, 12, 14, 10, 0)  # 13:00 is the end: the next Monday
    assert teams.next_on_duty("companions", "nobody", seoul(2026, 12, 9, 12, 0)) is None
