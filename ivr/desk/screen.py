"""The counselor screen's pure model (no I/O, time passed in).

What the screen shows comes from three places, read by ivr.desk.http:

- the member's current contact (`Contact`): the live call whose record names the member and
  whose counselor is on the line, with the same facts the phone's INVITE headers carry
  (ivr.staff.driver `_call_info`: line, menu path, wait, repeat/n-th contact, flag, consent);
- the notices sent to the member's phone as SIP MESSAGEs (`Notices`, fed by the controller's
  `message_listeners`): "ivr120:<kind>:<seconds>" bodies are shown in Korean, any other body
  (the off-shift message, "... 저장하지 못했습니다") as it is;
- the member's ring-group state (`Controller.members()`), in the wallboard's words.

The buttons are the phone's in-call feature codes (`ACTIONS`: `*9` abuse end, `*7` crisis
line, `*8` callback request, `*6` consent withdrawn), fed to the call as the same
`StaffDigit` events; the member buttons are the phone's `*51`-`*54` (`MEMBER_ACTIONS`).
The wrap-up form (`parse_wrapup`) is checked here: needs from config/needs_ko.toml, an agency
of the catalog, an outcome of `OUTCOMES`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.flow.commands import ConsentAnswer, NoticeKind
from ivr.flow.conversation import STAFF_ABUSE, STAFF_CALLBACK, STAFF_CRISIS, STAFF_WITHDRAW
from ivr.timezone import SEOUL
from ivr.wallboard.board import STATE_KO, BoardState, board_state, mmss

#: Desk button -> the feature-code key after `*` (ivr.flow.conversation).
ACTIONS = {
    "abuse": STAFF_ABUSE,
    "crisis": STAFF_CRISIS,
    "callback": STAFF_CALLBACK,
    "withdraw": STAFF_WITHDRAW,
}
ACTION_KO = {
    "abuse": "폭언·괴롭힘으로 통화 종료",
    "crisis": "위기 상담 전화로 연결",
    "callback": "콜백(심층 상담) 요청",
    "withdraw": "녹음·요약 동의 철회",
}
#: Desk button -> the member action of the phone's feature codes (*51-*54).
MEMBER_ACTIONS = {
    "login": "로그인",
    "logout": "로그아웃",
    "pause": "휴식 시작",
    "unpause": "휴식 끝",
}
#: Wrap-up outcomes the counselor picks (stored as the key).
OUTCOMES = {
    "counselled": "상담 완료",
    "referred": "기관 연계",
    "follow_up": "후속 연락 필요",
    "crisis": "위기 개입",
    "abuse": "폭언·괴롭힘",
    "silent": "무응답·끊김",
    "other": "기타",
}
CONSENT_KO = {
    ConsentAnswer.YES: "동의함 (녹음·요약)",
    ConsentAnswer.NO: "동의 안 함",
    ConsentAnswer.NONE: "응답 없음 (동의 없음)",
    ConsentAnswer.PENDING: "질문 중",
    ConsentAnswer.WITHDRAWN: "동의 철회됨",
}
#: The pause reasons in Korean (the defaults of `pause_reasons`, the phone's and the desk's
#: own); another configured reason is shown as it is written.
PAUSE_KO = {
    "break": "휴식",
    "training": "교육",
    "meeting": "회의",
    "admin": "행정 업무",
    "phone": "전화기에서",
    "desk": "상담 화면에서",
}
#: The longest note kept (a wrap-up note, not a transcript).
NOTE_MAX = 4000
#: Notices kept per member (the latest).
NOTICES_KEPT = 50


#: The menu's lines (config/menu.toml queue names) in Korean; another line shows its name.
LINE_KO = {"loneliness": "외로움 상담", "general": "120 일반 상담"}


def line_ko(line: str | None) -> str:
    if not line:
        return "–"
    return f"{LINE_KO[line]} ({line})" if line in LINE_KO else line


def pause_ko(reason: str) -> str:
    return PAUSE_KO.get(reason, reason)


def notice_ko(body: str) -> str:
    """A phone notice in the counselor's words."""
    prefix, _, rest = body.partition(":")
    if prefix != "ivr120":
        return body
    kind, _, value = rest.partition(":")
    seconds = int(value) if value.isdigit() else 0
    if kind == NoticeKind.CALLER_SILENT:
        return f"발신자가 {seconds}초째 말이 없습니다"
    if kind == NoticeKind.BOTH_SILENT:
        return f"양쪽 모두 {seconds}초째 말이 없습니다"
    if kind == NoticeKind.RESUMED:
        return f"발신자가 다시 말합니다 ({seconds}초 만에)"
    return body


@dataclass
class Notices:
    """The latest SIP MESSAGE bodies per member, with when they were sent."""

    clock: Any = time.time
    _by_member: dict[str, deque[tuple[float, str]]] = field(default_factory=dict)
    #: Bumped at every notice (streams send again when it changed).
    version: int = 0

    def __call__(self, member: str, body: str) -> None:
        kept = self._by_member.setdefault(member, deque(maxlen=NOTICES_KEPT))
        kept.append((float(self.clock()), body))
        self.version += 1

    def since(self, member: str, start: float) -> list[tuple[float, str]]:
        return [(at, b) for at, b in self._by_member.get(member, ()) if at >= start]


@dataclass(frozen=True, slots=True)
class Contact:
    """The member's current contact, as the controller knows it (never the number)."""

    call_id: str
    line: str | None
    menu_path: tuple[str, ...]
    queued_at: float | None
    answered_at: float | None
    #: The citizen's contacts with the service so far, this one included (None: not known).
    nth: int | None
    repeat: bool
    flag_level: int
    consent: ConsentAnswer | None
    #: Conversation state (talking, crisis_ringing, three_way, ...), when known.
    phase: str | None = None


PHASE_KO = {
    "crisis_ringing": "위기 상담 전화 연결 중",
    "three_way": "위기 상담 전화와 3자 통화",
}


def contact_view(
    c: Contact | None, notices: list[tuple[float, str]], now: float
) -> dict[str, Any] | None:
    if c is None:
        return None
    wait = None
    if c.queued_at is not None:
        wait = (c.answered_at if c.answered_at is not None else now) - c.queued_at
    if c.nth is not None:
        nth = f"{c.nth}번째 연락" + (" (재연락)" if c.nth > 1 else " (첫 연락)")
    else:
        nth = "재연락" if c.repeat else "첫 연락"
    return {
        "call_id": c.call_id,
        "line": line_ko(c.line),
        "menu_path": " → ".join(c.menu_path) if c.menu_path else "–",
        "wait": mmss(wait),
        "nth": nth,
        "flag": f"경고 기록 있음 (단계 {c.flag_level})" if c.flag_level else "없음",
        "flagged": bool(c.flag_level),
        "consent": CONSENT_KO.get(c.consent, "–") if c.consent is not None else "–",
        "consent_yes": c.consent is ConsentAnswer.YES,
        "timer": mmss(now - c.answered_at) if c.answered_at is not None else "–",
        "phase": PHASE_KO.get(c.phase or "", "상담 중"),
        "notices": [{"time": _clock(at), "text": notice_ko(body)} for at, body in notices],
    }


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, SEOUL).strftime("%H:%M:%S")


def member_view(m: Mapping[str, Any] | None, now: float) -> dict[str, Any]:
    """The member's own state (from `Controller.members()`), in Korean."""
    if m is None:
        return {
            "state": BoardState.OFFLINE.value,
            "state_ko": "알 수 없음 (제어기 연결 없음)",
            "logged_in": False,
            "paused": False,
            "login": "–",
            "on_shift": "–",
            "registered": "–",
            "reason": "–",
            "wrapup": "–",
        }
    state = board_state(m)
    raw = m.get("pause_reason") if m.get("paused") else None
    reason = pause_ko(str(raw)) if raw else None
    shown = reason and state is BoardState.PAUSED
    blocked = float(m.get("blocked_for") or 0.0)
    wrapup = mmss(blocked) if m.get("state") == "wrapup" and blocked > 0 else "–"
    paused_for = ""
    if m.get("paused") and m.get("paused_since") is not None:
        paused_for = f" · {mmss(max(0.0, now - float(m['paused_since'])))}"
    return {
        "state": state.value,
        "state_ko": STATE_KO[state] + (f" ({reason})" if shown else ""),
        "logged_in": bool(m.get("logged_in")),
        "paused": bool(m.get("paused")),
        "login": "로그인 (전화 받음)" if m.get("logged_in") else "로그아웃 (전화 안 받음)",
        "on_shift": "근무 중" if m.get("on_shift") else "근무 시간 아님",
        "registered": "연결됨" if m.get("registered") else "연결 안 됨",
        "reason": (f"{reason}{paused_for}" if reason else "–"),
        "wrapup": wrapup,
    }


@dataclass(frozen=True, slots=True)
class Wrapup:
    call_id: str
    note: str
    needs: tuple[str, ...]
    agency: str | None
    outcome: str


class WrapupError(ValueError):
    """The form cannot be stored as it is; the message is Korean, for the counselor."""


def parse_wrapup(
    form: Mapping[str, Any],
    needs: Collection[str],
    agencies: Collection[str],
) -> Wrapup:
    """The wrap-up form's fields checked (`needs` may repeat; everything else once)."""
    call_id = str(form.get("call_id", "")).strip()
    if not call_id:
        raise WrapupError("후처리할 통화가 없습니다.")
    outcome = str(form.get("outcome", "")).strip()
    if outcome not in OUTCOMES:
        raise WrapupError("상담 결과를 골라 주세요.")
    note = str(form.get("note", "")).replace("\r\n", "\n").strip()
    if len(note) > NOTE_MAX:
        raise WrapupError(f"메모가 너무 깁니다 ({NOTE_MAX}자까지).")
    raw = form.getall("needs", []) if hasattr(form, "getall") else form.get("needs", [])
    chosen = [raw] if isinstance(raw, str) else list(raw)
    unknown = [n for n in chosen if n not in needs]
    if unknown:
        raise WrapupError("알 수 없는 필요 항목이 있습니다.")
    agency = str(form.get("agency", "")).strip() or None
    if agency is not None and agency not in agencies:
        raise WrapupError("기관 목록에 없는 기관입니다.")
    ordered = tuple(n for n in needs if n in chosen)
    return Wrapup(call_id, note, ordered, agency, outcome)
