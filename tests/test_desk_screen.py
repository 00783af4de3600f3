"""The counselor screen's pure model (ivr/desk/screen.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from multidict import MultiDict

from ivr.ari.client import AriError
from ivr.config import Settings
from ivr.context import CallContext
from ivr.desk import screen
from ivr.desk.screen import Contact, Notices, WrapupError, parse_wrapup
from ivr.flow.commands import ConsentAnswer, NoticeKind

NEEDS = ("crisis", "housing", "isolation")
AGENCIES = ("jongno-housing", "mapo-meals")


def contact(**kw: object) -> Contact:
    base: dict[str, object] = {
        "call_id": "c1",
        "line": "loneliness",
        "menu_path": ("5",),
        "queued_at": 100.0,
        "answered_at": 130.0,
        "nth": 3,
        "repeat": True,
        "flag_level": 0,
        "consent": ConsentAnswer.YES,
        "phase": "talking",
    }
    base.update(kw)
    return Contact(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (f"ivr120:{NoticeKind.BOTH_SILENT}:12", "양쪽 모두 12초째 말이 없습니다"),
        (f"ivr120:{NoticeKind.CALLER_SILENT}:30", "발신자가 30초째 말이 없습니다"),
        (f"ivr120:{NoticeKind.RESUMED}:31", "발신자가 다시 말합니다 (31초 만에)"),
        ("ivr120:unknown:1", "ivr120:unknown:1"),
        ("지금은 근무 시간이 아닙니다.", "지금은 근무 시간이 아닙니다."),
    ],
)
def test_phone_notices_read_in_korean(body: str, text: str) -> None:
    assert screen.notice_ko(body) == text


def test_notices_are_kept_per_member_with_their_time() -> None:
    now = [10.0]
    notices = Notices(clock=lambda: now[0])
    notices("counselor01", "ivr120:both_silent:4")
    now[0] = 20.0
    notices("counselor01", "ivr120:resumed:5")
    notices("counselor02", "ivr120:caller_silent:8")
    assert notices.since("counselor01", 15.0) == [(20.0, "ivr120:resumed:5")]
    assert [b for _, b in notices.since("counselor01", 0.0)] == [
        "ivr120:both_silent:4",
        "ivr120:resumed:5",
    ]
    assert notices.since("counselor03", 0.0) == []
    assert notices.version == 3
    for i in range(screen.NOTICES_KEPT + 5):
        notices("counselor01", f"n{i}")
    assert len(notices.since("counselor01", 0.0)) == screen.NOTICES_KEPT


def test_the_contact_in_the_counselors_words() -> None:
    view = screen.contact_view(contact(), [(140.0, "ivr120:both_silent:4")], now=195.0)
    assert view is not None
    assert view["line"] == "외로움 상담 (loneliness)" and view["menu_path"] == "5"
    assert view["wait"] == "0:30" and view["timer"] == "1:05"
    assert view["nth"] == "3번째 연락 (재연락)" and view["flag"] == "없음"
    assert view["consent"] == "동의함 (녹음·요약)" and view["consent_yes"]
    assert view["phase"] == "상담 중"
    assert [n["text"] for n in view["notices"]] == ["양쪽 모두 4초째 말이 없습니다"]
    flagged = screen.contact_view(
        contact(flag_level=2, nth=None, repeat=False, consent=None, phase="three_way"), [], 200.0
    )
    assert flagged is not None
    assert flagged["flag"] == "경고 기록 있음 (단계 2)" and flagged["flagged"]
    assert flagged["nth"] == "첫 연락" and flagged["consent"] == "–"
    assert flagged["phase"] == "위기 상담 전화와 3자 통화"
    assert screen.line_ko("seniors") == "seniors" and screen.line_ko(None) == "–"
    assert screen.contact_view(None, [], 0.0) is None


def test_the_members_own_state() -> None:
    paused = {
        "member": "counselor01",
        "registered": True,
        "logged_in": True,
        "state": "paused",
        "paused": True,
        "pause_reason": "break",
        "paused_since": 100.0,
        "on_shift": True,
        "blocked_for": 0.0,
    }
    view = screen.member_view(paused, now=160.0)
    assert view["state_ko"] == "휴식 (휴식)" and view["reason"] == "휴식 · 1:00"
    other = screen.member_view({**paused, "pause_reason": "lunch"}, now=160.0)
    assert other["state_ko"] == "휴식 (lunch)"
    assert view["on_shift"] == "근무 중" and view["wrapup"] == "–"
    wrapup = {**paused, "state": "wrapup", "paused": False, "blocked_for": 250.4}
    view = screen.member_view(wrapup, now=160.0)
    assert view["state_ko"] == "후처리" and view["wrapup"] == "4:10" and view["reason"] == "–"
    offline = screen.member_view({**paused, "registered": False}, now=160.0)
    assert offline["state_ko"] == "오프라인" and offline["registered"] == "연결 안 됨"
    assert screen.member_view(None, 0.0)["state_ko"].startswith("알 수 없음")


def test_the_buttons_are_the_feature_codes() -> None:
    from ivr.flow import conversation

    assert screen.ACTIONS == {
        "abuse": conversation.STAFF_ABUSE,
        "crisis": conversation.STAFF_CRISIS,
        "callback": conversation.STAFF_CALLBACK,
        "withdraw": conversation.STAFF_WITHDRAW,
    }
    from ivr.staff.features import FEATURE_PROMPTS

    assert set(screen.MEMBER_ACTIONS) == set(FEATURE_PROMPTS)


def form(**kw: object) -> MultiDict[str]:
    data = MultiDict[str]({"call_id": "c1", "outcome": "referred", "note": " 메모 \r\n둘째 줄 "})
    for key, value in kw.items():
        if isinstance(value, list):
            data.popall(key, None)
            for v in value:
                data.add(key, v)
        else:
            data[key] = str(value)
    return data


def test_a_wrapup_form_is_read_in_the_catalogs_order() -> None:
    w = parse_wrapup(form(needs=["isolation", "housing"], agency="mapo-meals"), NEEDS, AGENCIES)
    assert w.call_id == "c1" and w.outcome == "referred" and w.note == "메모 \n둘째 줄"
    assert w.needs == ("housing", "isolation") and w.agency == "mapo-meals"
    bare = parse_wrapup(form(note="", agency=""), NEEDS, AGENCIES)
    assert bare.needs == () and bare.agency is None and bare.note == ""


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"call_id": ""}, "후처리할 통화가 없습니다."),
        ({"outcome": "great"}, "상담 결과를 골라 주세요."),
        ({"needs": ["housing", "<script>"]}, "알 수 없는 필요 항목이 있습니다."),
        ({"agency": "nowhere"}, "기관 목록에 없는 기관입니다."),
        ({"note": "가" * (screen.NOTE_MAX + 1)}, f"메모가 너무 깁니다 ({screen.NOTE_MAX}자까지)."),
    ],
)
def test_a_wrong_wrapup_form_is_refused_in_korean(fields: dict[str, object], message: str) -> None:
    with pytest.raises(WrapupError) as err:
        parse_wrapup(form(**fields), NEEDS, AGENCIES)
    assert str(err.value) == message


async def test_the_desk_hears_each_phone_notice_even_when_the_phone_cannot_get_it(
    tmp_path: Path,
) -> None:
    """The controller's listeners are told every SIP MESSAGE body before it is sent (the real
    path is in tests/test_e2e_desk.py); an ARI that refuses it (a phone gone) changes nothing
    for the screen."""

    class RefusingAri:
        async def request(self, *args: Any, **kwargs: Any) -> Any:
            raise AriError("PUT", "endpoints/sendMessage", 404, "endpoint not found")

    ctx = CallContext(
        ari=RefusingAri(),  # type: ignore[arg-type]
        store=None,  # type: ignore[arg-type]
        settings=Settings(state_dir=tmp_path),
        clock=lambda: 0.0,
        sealer=None,  # type: ignore[arg-type]
        hash_key="",
        calls={},
        post=lambda _: None,
        feed=None,  # type: ignore[arg-type]
        leg_prefix="t",
    )
    notices = Notices(clock=lambda: 5.0)
    ctx.message_listeners.append(notices)
    assert not await ctx.send_message("counselor01", "ivr120:both_silent:4")
    assert notices.since("counselor01", 0.0) == [(5.0, "ivr120:both_silent:4")]
