"""Typed ARI events: the ones the hotline uses get their own class, the rest stay `Event`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Channel:
    """The parts of an ARI channel object the controller reads."""

    id: str
    name: str = ""
    state: str = ""
    #: Caller number as Asterisk saw it; personal data, never logged (see ivr.privacy).
    caller_number: str = ""
    #: The extension dialled.
    exten: str = ""
    language: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Channel:
        caller = d.get("caller") or {}
        dialplan = d.get("dialplan") or {}
        return cls(
            id=str(d.get("id", "")),
            name=str(d.get("name", "")),
            state=str(d.get("state", "")),
            caller_number=str(caller.get("number", "")),
            exten=str(dialplan.get("exten", "")),
            language=str(d.get("language", "")),
        )

    @property
    def endpoint(self) -> str:
        """`PJSIP/counselor01-0000002a` -> `counselor01`."""
        tech_res = self.name.split("/", 1)[-1]
        return tech_res.rsplit("-", 1)[0]


@dataclass(frozen=True)
class Event:
    """Any ARI event; `type` is ARI's event name, `raw` the decoded JSON."""

    type: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Connected(Event):
    """Synthetic: the websocket is (re)connected; state may have to be resynchronised."""

    type: str = "Connected"


@dataclass(frozen=True)
class Disconnected(Event):
    """Synthetic: the websocket dropped; a reconnect follows."""

    type: str = "Disconnected"


@dataclass(frozen=True)
class ChannelEvent(Event):
    channel: Channel = field(default_factory=lambda: Channel(""))


@dataclass(frozen=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str = ""


@dataclass(frozen=True)
class ChannelDestroyed(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""


#: The soft-hangup reason of a hang-up a channel driver requested itself (AST_SOFTHANGUP_DEV).
SOFTHANGUP_DEV = 1


@dataclass(frozen=True)
class ChannelHangupRequest(ChannelEvent):
    #: The Q.850 cause; for a soft hangup (`soft`), Asterisk's soft-hangup reason instead:
    #: 1 (AST_SOFTHANGUP_DEV) is the channel driver's own, as for `rtp_timeout`.
    cause: int = 0
    soft: bool = False

    @property
    def by_channel_driver(self) -> bool:
        """Asterisk's channel driver asked for it (`rtp_timeout`: no media came; a SIP session
        that failed): the phone at the other end was lost, nobody hung up. The StasisEnd that
        follows carries no cause, and the ChannelDestroyed with Q.850 cause 44 comes after it;
        measured on Asterisk 22 (`soft: true, cause: 1`; a BYE's request has neither)."""
        return self.soft and self.cause == SOFTHANGUP_DEV


@dataclass(frozen=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True)
class PlaybackFinished(Event):
    playback_id: str = ""
    state: str = ""


@dataclass(frozen=True)
class RecordingFinished(Event):
    """A live recording ended and Asterisk has closed its file (``RecordingFailed`` too, with
    state "failed"): only now is the stored recording complete."""

    name: str = ""
    state: str = ""


@dataclass(frozen=True)
class EndpointStateChange(Event):
    resource: str = ""
    state: str = ""


def parse_event(d: dict[str, Any]) -> Event:
    """Turn one websocket message into a typed event (unknown types stay plain `Event`)."""
    kind = str(d.get("type", ""))
    chan = Channel.from_json(d["channel"]) if isinstance(d.get("channel"), dict) else Channel("")
    if kind == "StasisStart":
        return StasisStart(kind, d, chan, tuple(str(a) for a in d.get("args", ())))
    if kind == "StasisEnd":
        return StasisEnd(kind, d, chan)
    if kind == "ChannelDtmfReceived":
        return ChannelDtmfReceived(kind, d, chan, str(d.get("digit", "")))
    if kind == "ChannelDestroyed":
        return ChannelDestroyed(kind, d, chan, int(d.get("cause", 0)), str(d.get("cause_txt", "")))
    if kind == "ChannelHangupRequest":
        cause = int(d.get("cause", 0) or 0)
        return ChannelHangupRequest(kind, d, chan, cause, bool(d.get("soft", False)))
    if kind == "ChannelStateChange":
        return ChannelStateChange(kind, d, chan)
    if kind == "PlaybackFinished":
        pb = d.get("playback") or {}
        return PlaybackFinished(kind, d, str(pb.get("id", "")), str(pb.get("state", "")))
    if kind in ("RecordingFinished", "RecordingFailed"):
        rec = d.get("recording") or {}
        return RecordingFinished(kind, d, str(rec.get("name", "")), str(rec.get("state", "")))
    if kind == "EndpointStateChange":
        ep = d.get("endpoint") or {}
        return EndpointStateChange(kind, d, str(ep.get("resource", "")), str(ep.get("state", "")))
    return Event(kind, d)
