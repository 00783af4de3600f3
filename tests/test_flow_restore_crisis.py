"""A warm transfer (`*7`) taken back after a controller restart (ivr.flow.restore): the crisis
line ringing, joined (three-way), or left alone with the caller (handed over). One snapshot,
one restore, its commands; then the restored machine handles the next events as the
original would. Pure: events and the time in, commands out."""

from __future__ import annotations

import dataclasses
from typing import Any

from ivr.flow.call import (
    CallerHungUp,
    CallFlow,
    Finish,
    HangupCaller,
    HangupLeg,
    Outcome,
    Play,
    StaffDigit,
    StaffHungUp,
    StartListening,
    State,
    Target,
)
from ivr.flow.commands import RingCrisis
from ivr.flow.conversation import STAFF_CRISIS_UNREACHABLE
from ivr.flow.conversation import State as TalkState
from ivr.flow.events import CrisisAnswered, CrisisEnded, Party
from ivr.flow.record import CallEndReason
from ivr.flow.restore import restore, take
from ivr.resume import not_taken_back
from tests.flow_support import CONFIG, LEG, connected, of

CRISIS = "ivr-dead-crisis-1"
NOW = 100.0


def crisis_ringing() -> CallFlow:
    flow = connected()
    flow.handle(StaffDigit("*"), 50.0)
    assert of(flow.handle(StaffDigit("7"), 50.5), RingCrisis)
    return flow


def three_way() -> CallFlow:
    flow = crisis_ringing()
    flow.handle(CrisisAnswered(CRISIS), 55.0)
    assert flow.conversation is not None and flow.conversation.state is TalkState.THREE_WAY
    return flow


def handed_over() -> CallFlow:
    flow = three_way()
    flow.handle(StaffHungUp(), 60.0)
    assert flow.conversation is not None and flow.conversation.state is TalkState.HANDED_OVER
    return flow


def restored(flow: CallFlow, staff_gone: bool = False) -> tuple[CallFlow, list[Any]]:
    got = restore(take(flow), CONFIG, NOW, "r1", staff_gone=staff_gone)
    assert got is not None
    return got


def test_a_crisis_line_ringing_at_the_restart_the_counselor_hears_it_was_not_reached() -> None:
    back, cmds = restored(crisis_ringing())
    assert back.state is State.CONNECTED
    assert back.conversation is not None and back.conversation.state is TalkState.TALKING
    [told] = [c for c in cmds if isinstance(c, Play)]
    assert (told.prompts, told.target, told.leg_id) == (
        (STAFF_CRISIS_UNREACHABLE,),
        Target.LEG,
        LEG,
    )
    assert StartListening(Party.STAFF, leg_id=LEG) in cmds
    # The counselor can ring the crisis line again.
    back.handle(StaffDigit("*"), NOW + 1)
    assert of(back.handle(StaffDigit("7"), NOW + 1.5), RingCrisis)


def test_a_three_way_call_stays_three_way_and_hands_over_as_before() -> None:
    back, cmds = restored(three_way())
    conv = back.conversation
    assert conv is not None and conv.state is TalkState.THREE_WAY and conv.crisis_leg == CRISIS
    assert not [c for c in cmds if isinstance(c, Play)]  # nothing to tell anyone
    assert StartListening(Party.STAFF, leg_id=LEG) in cmds
    # The counselor leaves: the crisis line stays with the caller, to the end.
    assert back.handle(StaffHungUp(), NOW + 5) == []
    assert conv.state is TalkState.HANDED_OVER
    end = back.handle(CrisisEnded(), NOW + 60)
    assert HangupCaller() in end and end[-1] == Finish(Outcome.TRANSFERRED)
    assert back.record.end_reason is CallEndReason.CRISIS_TRANSFER


def test_a_three_way_call_whose_crisis_line_left_goes_back_to_the_counselor() -> None:
    back, _ = restored(three_way())
    assert back.handle(CrisisEnded(), NOW + 1) == []
    assert back.conversation is not None and back.conversation.state is TalkState.TALKING
    assert back.state is State.CONNECTED


def test_a_three_way_call_whose_counselor_left_meanwhile_is_handed_over() -> None:
    back, cmds = restored(three_way(), staff_gone=True)
    assert not [c for c in cmds if isinstance(c, StartListening) and c.party is Party.STAFF]
    back.handle(StaffHungUp(), NOW)  # what the adapter feeds for the leg gone
    assert back.conversation is not None and back.conversation.state is TalkState.HANDED_OVER


def test_a_caller_handed_over_to_the_crisis_line_stays_with_it() -> None:
    flow = handed_over()
    back, cmds = restored(flow)
    conv = back.conversation
    assert conv is not None and conv.state is TalkState.HANDED_OVER
    assert (conv.staff_leg, conv.crisis_leg) == (None, CRISIS)
    assert StartListening(Party.CALLER) in cmds
    assert not [c for c in cmds if isinstance(c, StartListening) and c.party is Party.STAFF]
    rec = back.record
    assert (rec.member, rec.answered_at) == (flow.record.member, flow.record.answered_at)
    end = back.handle(CallerHungUp(), NOW + 30)
    assert HangupLeg(CRISIS) in end and end[-1] == Finish(Outcome.TRANSFERRED)
    assert rec.end_reason is CallEndReason.CRISIS_TRANSFER


def test_a_handed_over_snapshot_without_its_crisis_leg_is_not_restored() -> None:
    snap = dataclasses.replace(take(handed_over()), crisis_leg=None)
    assert restore(snap, CONFIG, NOW, "r1") is None


def test_a_hand_over_waits_for_a_ringing_crisis_line_not_for_a_joined_one() -> None:
    journeys: dict[str, Any] = {
        "ringing": crisis_ringing(),
        "three_way": three_way(),
        "handed_over": handed_over(),
    }
    assert not_taken_back(journeys, CONFIG, NOW) == ["ringing"]
