"""The connected phase (ivr.flow.conversation) on its own: events and the time in, commands out.

No menus, no queues, no event loop: a conversation between the caller and a counselor, driven
to a state by the helpers below; each test is one event and one assertion.
"""

from __future__ import annotations

from typing import TypeVar

import pytest

from ivr.flow.commands import (
    CallbackConsent,
    CallbackReason,
    Command,
    Connect,
    ConsentAnswer,
    FlagCaller,
    HangupLeg,
    JoinTalk,
    NoticeKind,
    NotifyStaff,
    Outcome,
    Play,
    RecordSilence,
    RequestCallback,
    RingCrisis,
    SilenceAction,
    SilenceOf,
    StartListening,
    StartRecording,
    Target,
    WithdrawConsent,
)
from ivr.flow.conversation import (
    Conversation,
    ConversationParams,
    Ending,
    PlaybackIds,
    State,
)
from ivr.flow.events import (
    CallerHungUp,
    CrisisAnswered,
    CrisisEnded,
    Party,
    Silence,
    SpeechHeard,
    StaffDigit,
    StaffHungUp,
)
from ivr.flow.record import CallEndReason

T = TypeVar("T")

PARAMS = ConversationParams(both_silence_notify=20.0, caller_silence_notify=45.0)
LEG = "leg-1"
MEMBER = "counselor01"
CRISIS = "crisis-1"


def of(cmds: list[Command], kind: type[T]) -> list[T]:
    return [c for c in cmds if isinstance(c, kind)]


def one(cmds: list[Command], kind: type[T]) -> T:
    found = of(cmds, kind)
    assert len(found) == 1, f"expected one {kind.__name__} in {cmds}"
    return found[0]


# --- helpers that drive a conversation to a given state -----------------------------------


def new(consent: ConsentAnswer | None = ConsentAnswer.NO) -> Conversation:
    return Conversation("c1", PARAMS, PlaybackIds("c1"), LEG, MEMBER, consent)


def talking(consent: ConsentAnswer | None = ConsentAnswer.NO) -> Conversation:
    conv = new(consent)
    conv.start()
    assert conv.state is State.TALKING
    return conv


def recorded() -> Conversation:
    return talking(ConsentAnswer.YES)


def feature(conv: Conversation, key: str, now: float = 50.0) -> list[Command]:
    """The counselor presses `*` and then `key`."""
    assert conv.handle(StaffDigit("*"), now) == []
    return conv.handle(StaffDigit(key), now + 0.2)


def crisis_ringing() -> Conversation:
    conv = talking()
    feature(conv, "7")
    assert conv.state is State.CRISIS_RINGING
    return conv


def three_way() -> Conversation:
    conv = crisis_ringing()
    conv.handle(CrisisAnswered(CRISIS), 60.0)
    assert conv.state is State.THREE_WAY
    return conv


def handed_over() -> Conversation:
    conv = three_way()
    conv.handle(StaffHungUp(), 70.0)
    assert conv.state is State.HANDED_OVER
    return conv


def ended() -> Conversation:
    conv = talking()
    conv.handle(StaffHungUp(), 80.0)
    assert conv.ended
    return conv


def caller_silent_told() -> Conversation:
    """The caller silent 45 s while the counselor talks: caller_silent was told."""
    conv = talking()
    assert one(conv.handle(Silence(Party.CALLER, 45.0), 100.0), NotifyStaff).kind == (
        NoticeKind.CALLER_SILENT
    )
    return conv


def both_silent_told() -> Conversation:
    conv = talking()
    conv.handle(Silence(Party.CALLER, 20.0), 70.0)
    assert one(conv.handle(Silence(Party.STAFF, 20.0), 75.0), NotifyStaff).kind == (
        NoticeKind.BOTH_SILENT
    )
    return conv


# --- the start ----------------------------------------------------------------------------


def test_start_bridges_the_counselor_and_listens_to_them() -> None:
    assert new().start() == [Connect(LEG), StartListening(Party.STAFF)]


def test_the_counselors_tap_names_their_leg() -> None:
    assert one(new().start(), StartListening).leg_id == LEG


def test_start_records_with_consent() -> None:
    assert StartRecording() in new(ConsentAnswer.YES).start()


@pytest.mark.parametrize("consent", [ConsentAnswer.NO, ConsentAnswer.NONE, None])
def test_start_does_not_record_without_consent(consent: ConsentAnswer | None) -> None:
    assert of(new(consent).start(), StartRecording) == []


def test_params_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ConversationParams(both_silence_notify=0.0, caller_silence_notify=45.0)


# --- either side hangs up -----------------------------------------------------------------


def test_counselor_hangup_ends_completed_for_the_owner_to_hang_up() -> None:
    conv = talking()
    conv.handle(StaffHungUp(), 80.0)
    assert conv.ending == Ending(Outcome.COMPLETED)


def test_caller_hangup_hangs_up_the_counselor() -> None:
    assert talking().handle(CallerHungUp(), 80.0) == [HangupLeg(LEG)]


def test_caller_hangup_ends_completed_with_the_caller_gone() -> None:
    conv = talking()
    conv.handle(CallerHungUp(), 80.0)
    assert conv.ending == Ending(Outcome.COMPLETED, caller_gone=True)


def test_close_hangs_up_every_leg_still_with_the_call() -> None:
    assert three_way().close() == [HangupLeg(LEG), HangupLeg(CRISIS)]


def test_events_after_the_end_do_nothing() -> None:
    assert feature(ended(), "9") == []


def test_a_crisis_line_answering_after_the_end_is_hung_up() -> None:
    assert ended().handle(CrisisAnswered(CRISIS), 90.0) == [HangupLeg(CRISIS)]


# --- *9: abuse ----------------------------------------------------------------------------


def test_a_key_without_star_does_nothing() -> None:
    assert talking().handle(StaffDigit("9"), 50.0) == []


def test_star_9_flags_the_caller_and_hangs_up_the_counselor() -> None:
    assert feature(talking(), "9") == [FlagCaller(), HangupLeg(LEG)]


def test_star_9_flag_names_the_counselor_and_their_leg() -> None:
    flag = one(feature(talking(), "9"), FlagCaller)
    assert (flag.member, flag.leg_id) == (MEMBER, LEG)


def test_star_9_ends_with_the_policy_notice_to_the_caller() -> None:
    conv = talking()
    feature(conv, "9")
    assert conv.ending == Ending(Outcome.ABUSE_ENDED, prompt="abuse_policy_end")


def test_star_9_records_the_reason() -> None:
    conv = talking()
    feature(conv, "9")
    assert conv.end_reason is CallEndReason.ABUSE


def test_star_9_during_the_warm_transfer_hangs_up_both_legs() -> None:
    assert feature(three_way(), "9") == [FlagCaller(), HangupLeg(LEG), HangupLeg(CRISIS)]


# --- *7: the warm transfer to the crisis line ---------------------------------------------


def test_star_7_rings_the_crisis_line() -> None:
    assert feature(talking(), "7") == [RingCrisis()]


def test_star_7_while_the_crisis_line_rings_rings_nothing_more() -> None:
    assert feature(crisis_ringing(), "7") == []


def test_star_7_in_the_three_way_call_rings_nothing_more() -> None:
    assert feature(three_way(), "7") == []


def test_the_crisis_line_answering_joins_the_talk() -> None:
    assert crisis_ringing().handle(CrisisAnswered(CRISIS), 60.0) == [JoinTalk(CRISIS)]


def test_a_crisis_line_that_was_not_rung_is_hung_up() -> None:
    assert talking().handle(CrisisAnswered("crisis-9"), 60.0) == [HangupLeg("crisis-9")]


def test_a_second_crisis_answer_is_hung_up() -> None:
    assert three_way().handle(CrisisAnswered("crisis-2"), 61.0) == [HangupLeg("crisis-2")]


def test_the_crisis_line_not_answering_is_told_to_the_counselor_only() -> None:
    play = one(crisis_ringing().handle(CrisisEnded(), 90.0), Play)
    assert (play.prompts, play.target, play.leg_id) == (
        ("staff_crisis_unreachable",),
        Target.LEG,
        LEG,
    )


def test_the_crisis_line_not_answering_goes_back_to_talking() -> None:
    conv = crisis_ringing()
    conv.handle(CrisisEnded(), 90.0)
    assert conv.state is State.TALKING


def test_the_crisis_line_hanging_up_in_the_three_way_call_goes_back_to_talking() -> None:
    conv = three_way()
    conv.handle(CrisisEnded(), 90.0)
    assert conv.state is State.TALKING


def test_a_stale_crisis_end_while_talking_is_ignored() -> None:
    assert talking().handle(CrisisEnded(), 90.0) == []


def test_the_counselor_leaving_the_three_way_call_hands_over_quietly() -> None:
    assert three_way().handle(StaffHungUp(), 70.0) == []


def test_handing_over_records_the_crisis_transfer() -> None:
    assert handed_over().end_reason is CallEndReason.CRISIS_TRANSFER


def test_the_crisis_line_hanging_up_after_the_handover_ends_transferred() -> None:
    conv = handed_over()
    conv.handle(CrisisEnded(), 90.0)
    assert conv.ending == Ending(Outcome.TRANSFERRED)


def test_the_caller_hanging_up_after_the_handover_hangs_up_the_crisis_line() -> None:
    assert handed_over().handle(CallerHungUp(), 90.0) == [HangupLeg(CRISIS)]


def test_the_caller_hanging_up_after_the_handover_is_a_transfer() -> None:
    conv = handed_over()
    conv.handle(CallerHungUp(), 90.0)
    assert conv.ending == Ending(Outcome.TRANSFERRED, caller_gone=True)


def test_the_counselor_leaving_while_the_crisis_line_rings_ends_completed() -> None:
    conv = crisis_ringing()
    conv.handle(StaffHungUp(), 70.0)
    assert conv.ending == Ending(Outcome.COMPLETED)


def test_no_feature_codes_after_the_counselor_left() -> None:
    assert feature(handed_over(), "9") == []


# --- *8: callback, *6: consent withdrawn ----------------------------------------------------


def test_star_8_requests_a_callback_on_the_counselors_word() -> None:
    assert one(feature(talking(), "8"), RequestCallback) == RequestCallback(
        CallbackReason.SOCIAL_WORKER, CallbackConsent.VERBAL_TO_COUNSELOR, MEMBER
    )


def test_star_8_is_acknowledged_to_the_counselor_only() -> None:
    play = one(feature(talking(), "8"), Play)
    assert (play.prompts, play.target, play.leg_id) == (("staff_callback_ack",), Target.LEG, LEG)


def test_star_6_withdraws_consent() -> None:
    assert one(feature(recorded(), "6"), WithdrawConsent) == WithdrawConsent(MEMBER)


def test_star_6_stops_the_recording() -> None:
    conv = recorded()
    feature(conv, "6")
    assert not conv.recording


def test_star_6_marks_the_consent_withdrawn() -> None:
    conv = recorded()
    feature(conv, "6")
    assert conv.consent is ConsentAnswer.WITHDRAWN


def test_star_6_without_consent_does_nothing() -> None:
    assert feature(talking(ConsentAnswer.NO), "6") == []


def test_star_6_works_once() -> None:
    conv = recorded()
    feature(conv, "6")
    assert feature(conv, "6", 60.0) == []


def test_side_prompts_take_ids_from_the_owners_counter() -> None:
    ids = PlaybackIds("c1")
    assert ids.next() == "c1-pb1"  # the owner's own playback
    conv = Conversation("c1", PARAMS, ids, LEG, MEMBER, ConsentAnswer.NO)
    assert one(feature(conv, "8"), Play).playback_id == "c1-pb2"


# --- silence: the counselor is told, never the caller cut off --------------------------------


def test_the_caller_silent_while_the_counselor_talks_is_not_both_silent() -> None:
    assert talking().handle(Silence(Party.CALLER, 20.0), 70.0) == []


def test_both_silent_is_told_to_the_counselor_and_recorded() -> None:
    conv = talking()
    conv.handle(Silence(Party.CALLER, 20.0), 70.0)
    assert conv.handle(Silence(Party.STAFF, 20.0), 75.0) == [
        NotifyStaff(NoticeKind.BOTH_SILENT, 20.0),
        RecordSilence(SilenceOf.BOTH, 20.0, SilenceAction.TOLD_COUNSELOR),
    ]


def test_a_notice_names_the_counselor_and_their_leg() -> None:
    note = one(talking().handle(Silence(Party.CALLER, 45.0), 100.0), NotifyStaff)
    assert (note.member, note.leg_id) == (MEMBER, LEG)


def test_the_caller_silent_long_is_told() -> None:
    cmds = talking().handle(Silence(Party.CALLER, 45.0), 100.0)
    assert one(cmds, NotifyStaff) == NotifyStaff(NoticeKind.CALLER_SILENT, 45.0)


def test_a_notice_is_told_once_per_stretch() -> None:
    conv = caller_silent_told()
    assert conv.handle(Silence(Party.CALLER, 60.0), 115.0) == []


def test_the_caller_speaking_ends_the_caller_silent_notice() -> None:
    conv = caller_silent_told()
    assert conv.handle(SpeechHeard(Party.CALLER, 45.0), 101.0) == [
        NotifyStaff(NoticeKind.RESUMED, 45.0)
    ]


def test_the_counselor_speaking_does_not_end_the_caller_silent_notice() -> None:
    conv = caller_silent_told()
    assert conv.handle(SpeechHeard(Party.STAFF, 2.0), 100.8) == []


def test_the_counselor_speaking_ends_both_silent_without_a_resumed_notice() -> None:
    conv = both_silent_told()
    assert conv.handle(SpeechHeard(Party.STAFF, 20.0), 76.0) == []


def test_the_counselors_speech_is_seen() -> None:
    conv = both_silent_told()
    conv.handle(SpeechHeard(Party.STAFF, 20.0), 76.0)
    assert conv.silent_since(Party.STAFF) is None


def test_both_silent_is_told_again_after_the_counselor_broke_it() -> None:
    conv = both_silent_told()
    conv.handle(SpeechHeard(Party.STAFF, 20.0), 76.0)
    kinds = [n.kind for n in of(conv.handle(Silence(Party.STAFF, 20.0), 97.0), NotifyStaff)]
    assert NoticeKind.BOTH_SILENT in kinds


def test_no_notices_once_the_counselor_left() -> None:
    assert handed_over().handle(Silence(Party.CALLER, 60.0), 140.0) == []


def test_silence_never_ends_the_conversation() -> None:
    conv = talking()
    conv.handle(Silence(Party.CALLER, 600.0), 700.0)
    assert conv.state is State.TALKING
