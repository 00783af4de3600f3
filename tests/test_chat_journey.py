"""The chat journey (ivr.chat.journey): the guided start, consent, the queue, messages with
their limits, and the ends — each test one event and one assertion."""

from __future__ import annotations

import pytest

from ivr.chat.journey import (
    MAX_PATH,
    MSG_BAD_NUMBER,
    MSG_CALLBACK_AGAIN,
    MSG_CHAT_FULL,
    MSG_EMPTY,
    MSG_TOO_FAST,
    MSG_WAIT_FULL,
    NOTICE_ABUSE_POLICY,
    NOTICE_COUNSELOR_GONE,
    NOTICE_NO_COUNSELOR,
    NOTICE_WAITED_TOO_LONG,
    Accepted,
    CallbackAsked,
    ChatJourney,
    ChatParams,
    ChatStateError,
    Choose,
    Closed,
    ConsentAnswered,
    CounselorEnded,
    CounselorGone,
    Deliver,
    Dequeue,
    Enqueue,
    FlagIdentity,
    ForgetTranscript,
    Guide,
    Left,
    NoCounselor,
    NoCounselorReason,
    Notice,
    Outcome,
    Refused,
    Release,
    RequestCallback,
    Step,
    Typed,
    WithdrawConsent,
)

PARAMS = ChatParams(max_chars=20, burst=3, window_seconds=10.0, max_waiting=4, max_lines=6)


def guide(flagged: bool = False) -> ChatJourney:
    return ChatJourney("chat-1", PARAMS, 0.0, flagged=flagged)


def consenting(flagged: bool = False) -> ChatJourney:
    j = guide(flagged)
    j.handle(Choose("chat"), 1.0)
    return j


def waiting(consent: bool = True) -> ChatJourney:
    j = consenting()
    j.handle(ConsentAnswered(consent), 2.0)
    return j


def connected(consent: bool = True) -> ChatJourney:
    j = waiting(consent)
    j.handle(Accepted("counselor01"), 3.0)
    return j


def test_the_info_button_shows_the_programmes_then_back() -> None:
    j = guide()
    j.handle(Choose("info"), 1.0)
    j.handle(Choose("category:주거"), 1.5)
    assert (j.step, j.category) == (Step.INFO, "주거")


def test_back_returns_to_the_guide() -> None:
    j = guide()
    j.handle(Choose("info"), 1.0)
    j.handle(Choose("back"), 2.0)
    assert j.step is Step.GUIDE and j.path == ["info", "back"]


def test_asking_for_a_counselor_asks_consent_first() -> None:
    assert consenting().step is Step.CONSENT


def test_an_unknown_option_is_refused_naming_the_step() -> None:
    with pytest.raises(ChatStateError, match='"guide"'):
        guide().handle(Choose("nothing"), 1.0)


def test_consent_queues_the_chat() -> None:
    out = consenting().handle(ConsentAnswered(True), 2.0)
    assert Enqueue(2.0) in out


def test_no_consent_still_queues_the_chat() -> None:
    out = consenting().handle(ConsentAnswered(False), 2.0)
    assert Enqueue(2.0) in out


def test_a_flagged_identity_is_told_the_policy_when_it_queues() -> None:
    out = consenting(flagged=True).handle(ConsentAnswered(True), 2.0)
    assert Notice(NOTICE_ABUSE_POLICY) in out


def test_a_counselor_accepting_connects() -> None:
    assert connected().member == "counselor01"


def test_a_chat_whose_counselor_is_gone_queues_again_at_its_first_place() -> None:
    j = connected()
    assert j.handle(CounselorGone(2.0), 9.0) == [Enqueue(2.0), Notice(NOTICE_COUNSELOR_GONE)]
    assert j.step is Step.WAITING and j.member is None
    j.handle(Accepted("counselor02"), 10.0)
    assert j.member == "counselor02"
    with pytest.raises(ChatStateError):
        waiting().handle(CounselorGone(2.0), 9.0)


def test_the_citizen_may_type_while_waiting() -> None:
    out = waiting().handle(Typed("citizen", "안녕하세요"), 2.5)
    assert out == [Deliver("citizen", "안녕하세요", 2.5, keep=True)]


def test_without_consent_messages_are_not_kept() -> None:
    out = connected(consent=False).handle(Typed("counselor", "네, 말씀하세요"), 4.0)
    assert out == [Deliver("counselor", "네, 말씀하세요", 4.0, keep=False)]


def test_the_counselor_cannot_type_before_accepting() -> None:
    with pytest.raises(ChatStateError, match='"waiting"'):
        waiting().handle(Typed("counselor", "hi"), 3.0)


def test_an_empty_message_is_refused() -> None:
    assert connected().handle(Typed("citizen", "   "), 4.0) == [Refused("citizen", MSG_EMPTY)]


def test_a_message_too_long_is_refused_with_the_limit() -> None:
    (out,) = connected().handle(Typed("citizen", "가" * 21), 4.0)
    assert isinstance(out, Refused) and "20자" in out.reason


def test_messages_too_fast_are_refused_then_allowed_again() -> None:
    j = connected()
    for t in (4.0, 4.1, 4.2):
        j.handle(Typed("citizen", "a"), t)
    assert j.handle(Typed("citizen", "a"), 4.3) == [Refused("citizen", MSG_TOO_FAST)]
    assert isinstance(j.handle(Typed("citizen", "a"), 14.05)[0], Deliver)


def test_html_is_kept_as_text_not_altered() -> None:
    (out,) = connected().handle(Typed("citizen", "<script>x</script>"), 4.0)
    assert isinstance(out, Deliver) and out.text == "<script>x</script>"


def test_leaving_while_waiting_is_an_abandoned_chat_taken_out_of_the_queue() -> None:
    out = waiting().handle(Left(), 5.0)
    assert Dequeue() in out and Closed(Outcome.ABANDONED, 5.0, "citizen") in out


def test_leaving_a_connected_chat_releases_the_counselor() -> None:
    out = connected().handle(Left(), 5.0)
    assert Release("counselor01") in out and Closed(Outcome.COMPLETED, 5.0, "citizen") in out


def test_leaving_the_guide_is_a_guide_only_visit() -> None:
    out = guide().handle(Left(), 5.0)
    assert out[-1] == Closed(Outcome.GUIDE_ONLY, 5.0, "citizen")


def test_the_counselor_ends_the_chat() -> None:
    out = connected().handle(CounselorEnded(), 6.0)
    assert Closed(Outcome.COMPLETED, 6.0, "counselor01") in out and FlagIdentity not in map(
        type, out
    )


def test_an_abuse_end_flags_the_identity() -> None:
    out = connected().handle(CounselorEnded(abuse=True), 6.0)
    assert FlagIdentity("counselor01") in out and Closed(Outcome.ABUSE, 6.0, "counselor01") in out


def test_an_ended_chat_takes_no_more_messages() -> None:
    j = connected()
    j.handle(CounselorEnded(), 6.0)
    with pytest.raises(ChatStateError, match='"ended"'):
        j.handle(Typed("citizen", "여보세요"), 7.0)


def test_the_params_check_themselves() -> None:
    with pytest.raises(ValueError, match="positive"):
        ChatParams(burst=0)


def test_withdrawing_consent_forgets_what_was_kept() -> None:
    out = connected().handle(WithdrawConsent(), 5.0)
    assert ForgetTranscript(5.0) in out


def test_after_withdrawal_nothing_more_is_kept() -> None:
    j = connected()
    j.handle(WithdrawConsent(), 5.0)
    assert j.handle(Typed("citizen", "비밀이에요"), 6.0) == [
        Deliver("citizen", "비밀이에요", 6.0, keep=False)
    ]


def test_consent_can_be_withdrawn_after_the_end() -> None:
    j = connected()
    j.handle(CounselorEnded(), 6.0)
    assert ForgetTranscript(7.0) in j.handle(WithdrawConsent(), 7.0)


def test_without_consent_there_is_nothing_to_withdraw() -> None:
    with pytest.raises(ChatStateError, match="WithdrawConsent"):
        connected(consent=False).handle(WithdrawConsent(), 5.0)


def test_a_callback_is_requested_with_the_digits_of_the_number() -> None:
    out = waiting().handle(CallbackAsked("010-0000 1234"), 3.0)
    assert RequestCallback("01000001234", 3.0) in out


def test_a_callback_number_that_is_no_phone_number_is_refused() -> None:
    out = waiting().handle(CallbackAsked("<b>12</b>"), 3.0)
    assert out == [Refused("citizen", MSG_BAD_NUMBER)]


def test_a_callback_is_requested_once_a_chat() -> None:
    j = connected()
    j.handle(CallbackAsked("02-000-0000"), 4.0)
    assert j.handle(CallbackAsked("02-000-0000"), 5.0) == [Refused("citizen", MSG_CALLBACK_AGAIN)]


def test_the_number_is_not_in_the_commands_repr() -> None:
    (cmd, _) = waiting().handle(CallbackAsked("010-0000-1234"), 3.0)
    assert "1234" not in repr(cmd)


def test_no_counselor_ends_the_wait_with_the_120_line_and_the_callback_form() -> None:
    j = waiting()
    out = j.handle(NoCounselor(NoCounselorReason.UNAVAILABLE), 5.0)
    assert Dequeue() in out and Closed(Outcome.UNANSWERED, 5.0, "system") in out
    assert Notice(NOTICE_NO_COUNSELOR) in out and "120" in NOTICE_NO_COUNSELOR
    assert j.step is Step.ENDED and j.callback_open
    assert RequestCallback("01000001234", 6.0) in j.handle(CallbackAsked("010-0000-1234"), 6.0)


def test_the_maximum_wait_says_so() -> None:
    out = waiting().handle(NoCounselor(NoCounselorReason.MAX_WAIT), 600.0)
    assert Notice(NOTICE_WAITED_TOO_LONG) in out and "120" in NOTICE_WAITED_TOO_LONG


def test_no_callback_after_an_ordinary_end() -> None:
    j = connected()
    j.handle(CounselorEnded(), 6.0)
    with pytest.raises(ChatStateError, match="CallbackAsked"):
        j.handle(CallbackAsked("010-0000-1234"), 7.0)


def test_the_option_typed_is_not_in_the_error_it_is_logged() -> None:
    with pytest.raises(ChatStateError) as err:
        guide().handle(Choose("private words"), 1.0)
    assert "private" not in str(err.value)


def test_a_category_not_in_the_catalog_is_refused() -> None:
    j = guide()
    j.handle(Choose("info"), 1.0)
    with pytest.raises(ChatStateError):
        j.handle(Choose("category:" + "x" * 90), 1.5)
    assert j.category is None and j.path == ["info"]


def test_the_path_is_capped() -> None:
    j = guide()
    for i in range(MAX_PATH + 20):
        j.handle(Choose("info" if i % 2 == 0 else "back"), float(i))
    assert len(j.path) == MAX_PATH


def test_a_waiting_citizen_s_messages_are_capped_until_a_counselor_takes_the_chat() -> None:
    # A chat nobody takes yet is held in memory: at most max_waiting of the citizen's lines.
    j = waiting()
    for n in range(4):
        assert isinstance(j.handle(Typed("citizen", f"m{n}"), 10.0 * n)[0], Deliver)
    assert j.handle(Typed("citizen", "more"), 50.0) == [Refused("citizen", MSG_WAIT_FULL)]
    j.handle(Accepted("counselor01"), 51.0)
    assert isinstance(j.handle(Typed("citizen", "now"), 52.0)[0], Deliver)


def test_a_chat_takes_at_most_max_lines_messages_from_both_sides() -> None:
    j = connected()
    for n in range(6):
        sender = "citizen" if n % 2 else "counselor"
        assert isinstance(j.handle(Typed(sender, f"m{n}"), 10.0 * n)[0], Deliver)
    assert j.handle(Typed("counselor", "x"), 70.0) == [Refused("counselor", MSG_CHAT_FULL)]
    assert j.handle(Typed("citizen", "y"), 80.0) == [Refused("citizen", MSG_CHAT_FULL)]


def test_a_guided_start_goes_on_from_its_snapshot() -> None:
    j = guide()
    j.handle(Choose("info"), 1.0)
    j.handle(Choose("category:주거"), 2.0)
    again = ChatJourney.resume("chat-2", PARAMS, j.guide())
    again.handle(Choose("chat"), 3.0)
    assert (again.step, again.started_at, again.path) == (
        Step.CONSENT,
        0.0,
        ["info", "category:주거", "chat"],
    )


def test_a_journey_resumed_at_the_consent_question_keeps_the_flag() -> None:
    j = ChatJourney.resume("chat-2", PARAMS, Guide(5.0, Step.CONSENT, None, ("chat",)), True)
    assert NOTICE_ABUSE_POLICY in [
        c.text for c in j.handle(ConsentAnswered(False), 6.0) if isinstance(c, Notice)
    ]


def test_no_guided_start_is_resumed_past_the_queue() -> None:
    with pytest.raises(ChatStateError, match='"waiting"'):
        ChatJourney.resume("chat-2", PARAMS, Guide(5.0, Step.WAITING))
