"""The wallboard's pure model.

A member's board state comes from the ring group's view (`Controller.members()`)::

    not registered or logged out ──> OFFLINE
    busy ──> ON_CALL      ringing ──> RINGING      paused ──> PAUSED (+ reason)
    wrapup ──> WRAPUP     cooldown ──> COOLDOWN    idle ──> IDLE

The ring group does not keep since when a member is busy or in wrap-up, so `StateClock`
remembers when it first saw each member in their current state (a pause from `paused_since`);
time in state is `now - since`.

Today's figures (`figures`) count the calls that queued for staff today (Seoul time) and have
ended: offered = queued, answered = a member answered, abandoned = hung up before an answer
(ended in the queue, the intro or the consent question); the waits (average, 90th percentile by
nearest rank) are the answered calls' queue waits; service level = answered within 60 s of
offered. Callbacks: open requests and those dealt with today.

Chats (ivr/chat) beside the calls: waiting now (count, longest wait since each was queued),
each counselor's open chats (connected, not ended), and today's chat figures (`chat_figures`):
offered = chats queued today (a chat still waiting counts: chats last long, so an open one is
offered already), answered = a counselor took it, abandoned = the citizen left while waiting.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: Answered within this many seconds counts towards the service level.
SERVICE_LEVEL_SECONDS = 60.0


class BoardState(enum.StrEnum):
    ON_CALL = "on_call"
    RINGING = "ringing"
    WRAPUP = "wrapup"
    COOLDOWN = "cooldown"
    PAUSED = "paused"
    IDLE = "idle"
    OFFLINE = "offline"


STATE_KO = {
    BoardState.ON_CALL: "통화 중",
    BoardState.RINGING: "호출 중",
    BoardState.WRAPUP: "후처리",
    BoardState.COOLDOWN: "응답 없음 후 대기",
    BoardState.PAUSED: "휴식",
    BoardState.IDLE: "대기",
    BoardState.OFFLINE: "오프라인",
}

_ACTIVITY = {
    "busy": BoardState.ON_CALL,
    "ringing": BoardState.RINGING,
    "wrapup": BoardState.WRAPUP,
    "cooldown": BoardState.COOLDOWN,
    "paused": BoardState.PAUSED,
    "idle": BoardState.IDLE,
    "logged_out": BoardState.OFFLINE,
}


def board_state(member: Mapping[str, Any]) -> BoardState:
    if not member.get("registered") or not member.get("logged_in"):
        return BoardState.OFFLINE
    return _ACTIVITY.get(str(member.get("state")), BoardState.IDLE)


@dataclass(frozen=True, slots=True)
class MemberLine:
    member: str
    #: The member's queue (ring group), or None for the follow-up teams.
    queue: str | None
    state: BoardState
    #: The pause reason (a pause only).
    reason: str | None
    #: Seconds in the current state.
    seconds: float


@dataclass
class StateClock:
    """Since when each member has been in their current board state."""

    _seen: dict[str, tuple[BoardState, str | None, float]] = field(default_factory=dict)

    def lines(self, members: Iterable[Mapping[str, Any]], now: float) -> list[MemberLine]:
        out = []
        for m in members:
            name = str(m["member"])
            state = board_state(m)
            reason = m.get("pause_reason") if state is BoardState.PAUSED else None
            seen = self._seen.get(name)
            if seen is None or seen[0] is not state or seen[1] != reason:
                since = now
                if state is BoardState.PAUSED and m.get("paused_since") is not None:
                    since = min(now, float(m["paused_since"]))
                self._seen[name] = (state, reason, since)
            since = self._seen[name][2]
            out.append(MemberLine(name, m.get("queue"), state, reason, max(0.0, now - since)))
        return out


@dataclass(frozen=True, slots=True)
class Waiting:
    count: int
    #: Seconds the longest-waiting caller has waited (0 with nobody waiting).
    longest: float


def waiting(queued_at: Iterable[float], now: float) -> Waiting:
    times = list(queued_at)
    return Waiting(len(times), max(0.0, now - min(times)) if times else 0.0)


@dataclass(frozen=True, slots=True)
class CallRow:
    """A stored call of today that queued for staff (the calls table's columns)."""

    answered: bool
    wait_seconds: float | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class Figures:
    offered: int
    answered: int
    abandoned: int
    average_wait: float | None
    p90_wait: float | None
    #: Share (0-1) of offered calls answered within SERVICE_LEVEL_SECONDS; None with none offered.
    service_level: float | None
    callbacks_open: int
    callbacks_done: int


ABANDONED = frozenset({"abandoned_queue", "abandoned_intro", "abandoned_consent"})


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0-100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def figures(rows: Iterable[CallRow], callbacks_open: int, callbacks_done: int) -> Figures:
    rows = list(rows)
    answered = [r for r in rows if r.answered]
    waits = [r.wait_seconds or 0.0 for r in answered]
    fast = sum(1 for w in waits if w <= SERVICE_LEVEL_SECONDS)
    return Figures(
        offered=len(rows),
        answered=len(answered),
        abandoned=sum(1 for r in rows if not r.answered and r.outcome in ABANDONED),
        average_wait=sum(waits) / len(waits) if waits else None,
        p90_wait=percentile(waits, 90),
        service_level=fast / len(rows) if rows else None,
        callbacks_open=callbacks_open,
        callbacks_done=callbacks_done,
    )


def mmss(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@dataclass(frozen=True, slots=True)
class LiveChat:
    """A chat the chat service holds now (ivr.chat.service.LiveChat, its step's value)."""

    step: str
    #: When it was queued (None: not queued yet).
    queued_at: float | None
    member: str | None


@dataclass(frozen=True, slots=True)
class ChatsNow:
    waiting: Waiting
    #: Open chats (connected) per counselor.
    open: Mapping[str, int]


def chats_now(chats: Iterable[LiveChat], now: float) -> ChatsNow:
    chats = list(chats)
    queued = [c.queued_at for c in chats if c.step == "waiting" and c.queued_at is not None]
    open_: dict[str, int] = {}
    for c in chats:
        if c.step == "connected" and c.member is not None:
            open_[c.member] = open_.get(c.member, 0) + 1
    return ChatsNow(waiting(queued, now), open_)


@dataclass(frozen=True, slots=True)
class ChatFigures:
    offered: int
    answered: int
    abandoned: int


def chat_figures(rows: Iterable[tuple[bool, str | None]]) -> ChatFigures:
    """Today's chats from (answered, outcome) of each chat queued today."""
    rows = list(rows)
    return ChatFigures(
        offered=len(rows),
        answered=sum(1 for a, _ in rows if a),
        abandoned=sum(1 for a, o in rows if not a and o == "abandoned"),
    )


def view(
    wait: Waiting,
    lines: Sequence[MemberLine],
    figs: Figures | None,
    chats: ChatsNow | None = None,
    chat_figs: ChatFigures | None = None,
    wellbeing: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What the page shows and the event stream sends, in words (Korean) and numbers;
    `wellbeing`: the members past the limit without a break, with their mark
    (ivr.wallboard.wellbeing)."""
    chats = chats or ChatsNow(Waiting(0, 0.0), {})
    wellbeing = wellbeing or {}
    return {
        "waiting": wait.count,
        "longest": mmss(wait.longest) if wait.count else "–",
        "chats_waiting": chats.waiting.count,
        "chats_longest": mmss(chats.waiting.longest) if chats.waiting.count else "–",
        "members": [
            {
                "member": m.member,
                "state": m.state.value,
                "state_ko": STATE_KO[m.state] + (f" ({m.reason})" if m.reason else ""),
                "time": mmss(m.seconds),
                "chats": chats.open.get(m.member, 0),
                "wellbeing": wellbeing.get(m.member),
            }
            for m in lines
        ],
        "chat_figures": None if chat_figs is None else asdict(chat_figs),
        "figures": None
        if figs is None
        else {
            **asdict(figs),
            "average_wait": mmss(figs.average_wait),
            "p90_wait": mmss(figs.p90_wait),
            "service_level": "–"
            if figs.service_level is None
            else f"{round(figs.service_level * 100)}%",
        },
    }
