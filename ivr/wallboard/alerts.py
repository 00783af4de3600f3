"""The wallboard's recent events (pure: time passed in, no I/O): silence alerts on live calls
and abuse endings, as they happen.

Where they come from (the controller's `CallContext.command_listeners`, told of every command
of a call before it is carried out; `from_command` picks the two that matter here):

- a **silence alert** is the notice the counselor's phone gets as a SIP MESSAGE
  (`NotifyStaff` both_silent / caller_silent, raised by the conversation's silence detection,
  ivr.flow.conversation); "the caller spoke again" (`resumed`) is not an alert;
- an **abuse ending** is the counselor's `*9` or the desk's button: the conversation ends the
  call and flags the caller (`FlagCaller`, whose row is `caller_flags`); a chat ended for
  abuse from the desk flags the chat identity (`FlagIdentity`, told by the chat service's
  `command_listeners`; `from_chat_command`).

Each alert names the time, the line (queue), the counselor and the call by its id (the
caller's channel id: never the caller's number). `Alerts` keeps the latest `keep` of those
within the last `window` seconds; older ones drop off, the oldest first::

    add(alert) ──> kept (newest last) ──(more than keep, or older than window)──> dropped

After a restart (or on the standby taking over) the board is seeded from what is stored
(`from_rows`, the rows read by ivr/wallboard/records.py): the `silence_events` the product
told the counselor about (action told_counselor: party both → both_silent, caller →
caller_silent, at the notice's time = started_at + seconds), the calls that ended for abuse
(outcome abuse_ended; at the flag's time, else the call's end) and the chats that did
(outcome abuse). `Alerts.seed` merges them under the live ones; one already kept (same kind
and call, within SAME_SECONDS) is not added twice.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr.chat.journey import FlagIdentity
from ivr.desk.screen import line_ko
from ivr.flow.commands import FlagCaller, NoticeKind, NotifyStaff
from ivr.timezone import SEOUL

#: Alerts kept at most.
KEEP = 20
#: Seconds an alert stays on the board.
WINDOW = 3600.0
#: A seeded alert this close in time to a kept one of the same kind and call is that one.
SAME_SECONDS = 5.0
#: Characters of the call id shown (the whole id is in the row's data-call).
CALL_SHOWN = 6


class AlertKind(enum.StrEnum):
    BOTH_SILENT = "both_silent"
    CALLER_SILENT = "caller_silent"
    ABUSE_END = "abuse_end"
    CHAT_ABUSE_END = "chat_abuse_end"


_SILENCE = {
    NoticeKind.BOTH_SILENT: AlertKind.BOTH_SILENT,
    NoticeKind.CALLER_SILENT: AlertKind.CALLER_SILENT,
}


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    #: When it happened (epoch seconds).
    at: float
    #: The call (the caller's channel id).
    call_id: str
    #: The line (queue) the caller chose; None when not known.
    line: str | None
    #: The counselor on the call; None when not known.
    member: str | None
    #: A silence alert: how long it had been quiet (s); None for an abuse ending.
    seconds: float | None = None


def from_command(
    call_id: str, line: str | None, member: str | None, command: Any, now: float
) -> Alert | None:
    """The alert a call's command makes, if any (`line`, `member`: the call's record)."""
    match command:
        case NotifyStaff(kind=kind, seconds=seconds) if kind in _SILENCE:
            return Alert(_SILENCE[kind], now, call_id, line, command.member or member, seconds)
        case FlagCaller():
            return Alert(AlertKind.ABUSE_END, now, call_id, line, command.member or member)
    return None


def from_chat_command(chat_id: str, command: Any, now: float) -> Alert | None:
    """The alert a chat's command makes, if any: an abuse ending."""
    if isinstance(command, FlagIdentity):
        return Alert(AlertKind.CHAT_ABUSE_END, now, chat_id, None, command.member)
    return None


_PARTY = {"both": AlertKind.BOTH_SILENT, "caller": AlertKind.CALLER_SILENT}


@dataclass(frozen=True, slots=True)
class SilenceRow:
    """A stored silence notice (`silence_events` with its call's line and counselor)."""

    call_id: str
    #: ivr.flow.commands.SilenceOf: both | caller (staff is never a notice).
    party: str
    #: When the counselor was told (started_at + seconds).
    at: float
    seconds: float
    line: str | None
    member: str | None


@dataclass(frozen=True, slots=True)
class AbuseRow:
    """A stored abuse ending: a call (`calls`, line known) or a chat (`chats`, line None)."""

    call_id: str
    at: float
    line: str | None
    member: str | None
    chat: bool = False


def from_rows(
    silences: Iterable[SilenceRow], abuses: Iterable[AbuseRow], start: float, end: float
) -> list[Alert]:
    """The alerts the stored rows make, `start` <= at < `end`, oldest first (as `add` would
    have kept them)."""
    out = [
        Alert(_PARTY[r.party], r.at, r.call_id, r.line, r.member, r.seconds)
        for r in silences
        if r.party in _PARTY
    ]
    out += [
        Alert(
            AlertKind.CHAT_ABUSE_END if r.chat else AlertKind.ABUSE_END,
            r.at,
            r.call_id,
            None if r.chat else r.line,
            r.member,
        )
        for r in abuses
    ]
    return sorted((a for a in out if start <= a.at < end), key=lambda a: a.at)


@dataclass(frozen=True, slots=True)
class AlertParams:
    #: Alerts kept at most (the oldest drops first).
    keep: int = KEEP
    #: Seconds an alert is kept.
    window: float = WINDOW

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError("alerts: keep at least 1")
        if self.window <= 0:
            raise ValueError("alerts: the window must be positive")


@dataclass
class Alerts:
    """The recent alerts, oldest first."""

    params: AlertParams = field(default_factory=AlertParams)
    _kept: deque[Alert] = field(default_factory=deque)

    def add(self, alert: Alert) -> None:
        self._kept.append(alert)
        while len(self._kept) > self.params.keep:
            self._kept.popleft()

    def seed(self, alerts: Iterable[Alert]) -> None:
        """Stored alerts (from_rows) put in time order among the kept ones; one already kept
        (same kind and call, within SAME_SECONDS) is skipped; past `keep` the oldest drop."""
        kept = list(self._kept)
        new = [
            a
            for a in alerts
            if not any(
                k.kind is a.kind and k.call_id == a.call_id and abs(k.at - a.at) < SAME_SECONDS
                for k in kept
            )
        ]
        self._kept = deque(sorted(kept + new, key=lambda a: a.at)[-self.params.keep :])

    def recent(self, now: float) -> list[Alert]:
        """Those within the window at `now`, the newest first."""
        while self._kept and now - self._kept[0].at > self.params.window:
            self._kept.popleft()
        return list(reversed(self._kept))


def text_ko(alert: Alert) -> str:
    seconds = int(alert.seconds or 0)
    if alert.kind is AlertKind.BOTH_SILENT:
        return f"침묵 알림: 양쪽 모두 {seconds}초째 말이 없음"
    if alert.kind is AlertKind.CALLER_SILENT:
        return f"침묵 알림: 발신자가 {seconds}초째 말이 없음"
    if alert.kind is AlertKind.CHAT_ABUSE_END:
        return "폭언으로 채팅 종료"
    return "폭언으로 통화 종료"


def short_call(call_id: str) -> str:
    return call_id if len(call_id) <= CALL_SHOWN else "…" + call_id[-CALL_SHOWN:]


def view(alerts: Iterable[Alert]) -> list[dict[str, Any]]:
    """The alerts as the board shows them, in Korean."""
    return [
        {
            "kind": a.kind.value,
            "time": datetime.fromtimestamp(a.at, SEOUL).strftime("%H:%M:%S"),
            "text": text_ko(a),
            "line": "채팅 상담" if a.kind is AlertKind.CHAT_ABUSE_END else line_ko(a.line),
            "member": a.member or "–",
            "call_id": a.call_id,
            "call": short_call(a.call_id),
        }
        for a in alerts
    ]
