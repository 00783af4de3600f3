"""Listen, whisper, barge: the pure model of a supervisor monitoring a live call.

    listen   (듣기)     snoop spy=both on the caller's channel ─┐ mixing bridge "tap-mon-…"
                                   supervisor's phone leg ─┘  hears both, heard by nobody
    whisper  (귓속말)   snoop spy=both whisper=out on the counselor's leg ─┐ bridge "tap-mon-…"
                                   supervisor's phone leg ─┘  hears both, heard by the counselor
    barge    (끼어들기) the supervisor's phone leg joins the call's own talk bridge: all hear all

A supervisor has at most one monitoring at a time:

    RINGING --phone answered (StasisStart)--> CONNECTED --stop / hang-up / call over--> ENDED
       └──── call over / no answer / stop ─────────────────────────────────────────────┘

It is decided on the controller's events, never on a poll (`call_over`, `phone_event`): the
call ending (or the counselor leaving it) while the supervisor's phone still rings cancels that
ringing at once; the counselor hanging up ends a barge on that very event, so the supervisor is
never left alone with the caller. Every id the adapter makes starts with `MONITOR_PREFIX`
(under the taps' prefix, so the controller ignores their events; a reconnect's reconcile keeps
a live monitoring's ids, see ivr/recovery.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr.tap import TAP_PREFIX

MONITOR_PREFIX = f"{TAP_PREFIX}mon-"


class Mode(enum.StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


MODE_KO = {Mode.LISTEN: "듣기", Mode.WHISPER: "귓속말", Mode.BARGE: "끼어들기"}

#: Why a start is refused, in Korean (the wallboard shows it).
ERROR_KO = {
    "no_call": "연결된 통화가 아닙니다 (이미 끝났거나 상담사가 아직 받지 않았습니다)",
    "busy": "이미 다른 통화를 감독하고 있습니다. 먼저 끝내 주세요",
    "bad_mode": "알 수 없는 감독 방식입니다",
    "no_controller": "제어기에 연결되어 있지 않습니다",
    "failed": "감독 전화를 걸지 못했습니다",
}


class Ended(enum.StrEnum):
    """Why a monitoring ended: the words of its audit line ("monitor: … ended … (<why>)")."""

    STOPPED = "stopped by the supervisor"
    NOT_ANSWERED = "the supervisor's phone did not answer"
    CALL_ENDED_RINGING = "the call ended before the supervisor answered"
    CALL_ENDED = "the call ended"
    COUNSELOR_LEFT = "the counselor left the call"
    SUPERVISOR_HUNG_UP = "the supervisor hung up"
    PRODUCT_STOPPING = "the product is stopping"


class PhoneEvent(enum.Enum):
    """What an ARI event says about the supervisor's phone leg."""

    ANSWERED = "answered"  # it entered Stasis: originated channels do so when answered
    GONE = "gone"


def phone_event(p: Plan, event_type: str, channel_id: str) -> PhoneEvent | None:
    """The ARI event `event_type` on `channel_id`, as seen by the monitoring `p`."""
    if channel_id != p.phone:
        return None
    if event_type == "StasisStart":
        return PhoneEvent.ANSWERED
    if event_type in ("StasisEnd", "ChannelDestroyed"):
        return PhoneEvent.GONE
    return None


def call_over(p: Plan, now: Target | None, leg_present: bool, answered: bool) -> Ended | None:
    """Whether the monitored call is over for `p`, given the call as the controller has it now
    (`now`: its target, None when it no longer talks with a counselor) and whether the
    counselor's leg is still there. None: it goes on."""
    if now == p.target:
        return None
    if not answered:
        return Ended.CALL_ENDED_RINGING
    return Ended.CALL_ENDED if leg_present else Ended.COUNSELOR_LEFT


def mode_of(value: str) -> Mode | None:
    try:
        return Mode(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Target:
    """The live call a supervisor may monitor: ids of its channels and its talk bridge."""

    call_id: str  # = the caller's channel
    member: str
    leg_id: str  # the counselor's answered leg
    bridge: str  # the call's talk bridge


@dataclass(frozen=True, slots=True)
class Plan:
    """The ARI objects one monitoring uses (ids fixed from the monitoring's id)."""

    id: str
    mode: Mode
    supervisor: str
    target: Target

    @property
    def phone(self) -> str:
        """The supervisor's phone leg (originated to their SIP account)."""
        return f"{self.id}-sup"

    @property
    def snoop(self) -> str | None:
        return None if self.mode is Mode.BARGE else f"{self.id}-snoop"

    @property
    def bridge(self) -> str:
        """The bridge the supervisor's leg is put in: its own, or the call's for a barge."""
        return self.target.bridge if self.mode is Mode.BARGE else self.id

    def snoop_params(self) -> tuple[str, dict[str, str]] | None:
        """(the channel snooped, the snoop's parameters), or None for a barge."""
        if self.mode is Mode.LISTEN:
            return self.target.call_id, {"spy": "both"}
        if self.mode is Mode.WHISPER:
            return self.target.leg_id, {"spy": "both", "whisper": "out"}
        return None

    def owned(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(channels, bridges) this monitoring made and removes when it ends; never the
        call's own bridge."""
        chans = (self.phone,) if self.snoop is None else (self.phone, self.snoop)
        return chans, (() if self.mode is Mode.BARGE else (self.id,))


def plan(monitor_id: str, mode: Mode, supervisor: str, target: Target) -> Plan:
    return Plan(f"{MONITOR_PREFIX}{monitor_id}", mode, supervisor, target)


def notice_for(member: str, watching: list[Plan], notify: bool) -> str | None:
    """What the counselor's screen shows while a supervisor monitors their call (policy
    `monitor_notice_counselor`): "상담 감독 중", or nothing."""
    if not notify:
        return None
    return "상담 감독 중" if any(p.target.member == member for p in watching) else None
