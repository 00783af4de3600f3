"""What the rooms share: the call context, the calls in progress, and the adapter's inputs.

Every room (the inbound journey's effects, the staff driver, consent and recording capture,
callbacks, abuse flags) gets one `CallContext` in its constructor; the controller builds it.
Rooms never touch the input queue directly: they `post` an input, which is handled in turn
with the ARI events, in its call's lane (ivr.lanes): one call's handlers never interleave, and
what calls share is changed by one lane at a time.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ivr.ari.client import AriClient, AriError, AriNotFound
from ivr.config import Settings
from ivr.crypto import Sealer
from ivr.flow import call as flow
from ivr.flow.commands import ConsentAnswer
from ivr.flow.record import CallRecord
from ivr.followup.events import FollowupEvent
from ivr.inputs import FlowInput, Input
from ivr.store import Store, WriteDeferred
from ivr.tap import Tap

log = logging.getLogger(__name__)


class Journey(Protocol):
    """A call's machine: the inbound journey (ivr.flow.call.CallFlow) or an outbound one
    (ivr.followup.journey.FollowupCall)."""

    record: CallRecord

    @property
    def state(self) -> enum.Enum: ...
    @property
    def ended(self) -> bool: ...
    @property
    def consent(self) -> ConsentAnswer | None: ...
    def handle(self, event: Any, now: float) -> list[Any]: ...


@dataclass
class ActiveCall:
    call_id: str  # = the caller's channel id
    flow: Journey
    caller: str  # hashed number, for logs and records
    number: str  # the clear number, in memory only: sealed when a callback needs it
    repeat: bool = False
    flag_level: int = 0
    holding_bridge: str | None = None
    talk_bridge: str | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    #: Last QueueStatus sent: (ahead, estimate bucket, anybody reachable).
    reported: tuple[int, int, bool] | None = None
    taps: dict[str, Tap] = field(default_factory=dict)  # party -> audio tap
    #: Taps opened so far, by party (a caller's closes while waiting and opens again).
    taps_opened: collections.Counter[str] = field(default_factory=collections.Counter)
    channel_name: str = ""
    #: Consent given and not withdrawn: the counseling is being recorded.
    recording: bool = False
    #: The consent row was written: only then may the call be recorded.
    consent_stored: bool = False
    recordings: dict[str, str] = field(default_factory=dict)  # party -> recording name
    #: Recordings of the call a previous run made (name -> party): a call taken back after a
    #: restart is recorded on in new segments, and all are collected at its end (ivr.resume).
    earlier_recordings: dict[str, str] = field(default_factory=dict)

    def all_recordings(self) -> dict[str, str]:
        """Every recording of the call, this run's and earlier runs' (name -> party)."""
        return {**self.earlier_recordings, **{n: p for p, n in self.recordings.items()}}

    def view(self, now: float) -> dict[str, Any]:
        """The call as /status shows it (the caller's hash, never the number)."""
        rec = self.flow.record
        return {
            "call_id": self.call_id,
            "caller": self.caller,
            "state": self.flow.state.value,
            "queue": rec.queue,
            "member": rec.member,
            "seconds": round(now - rec.started_at, 1),
        }

    def cancel_timer(self, name: str) -> None:
        handle = self.timers.pop(name, None)
        if handle is not None:
            handle.cancel()


class Observer(Protocol):
    """Sees each command carried out and its outcome (None: done, else the error). Wired from
    `ivr.app.Options(observer=...)`; production passes none."""

    def __call__(self, command: flow.Command, error: BaseException | None) -> None: ...


@dataclass
class CallContext:
    ari: AriClient
    store: Store
    settings: Settings
    clock: Callable[[], float]
    sealer: Sealer
    hash_key: str
    #: The calls in progress, by the caller's channel id.
    calls: dict[str, ActiveCall]
    #: Put an input on the queue (from timers, taps and background tasks).
    post: Callable[[Input], None]
    #: Hand a flow event to a call now (inside the loop) and carry out its commands.
    feed: Callable[[str, flow.FlowEvent | FollowupEvent], Awaitable[None]]
    #: A prefix for the channel ids this run creates (staff and crisis legs).
    leg_prefix: str
    observer: Observer | None = None
    #: Prompt id -> Korean text, and the catalog's version (for the consent record).
    prompt_texts: dict[str, str] = field(default_factory=dict)
    catalog_version: int = 0
    #: Counts served on /metrics (ivr.metrics): unexpected errors by where they were handled,
    #: and `speech_fallback` (recognition capacity ran out: the key menu instead).
    tallies: collections.Counter[str] = field(default_factory=collections.Counter)
    #: Told (member, body) of every SIP MESSAGE to a staff phone, before it is sent: the web
    #: desk shows the same notices (ivr.desk). Listeners only take note; they never fail.
    message_listeners: list[Callable[[str, str], None]] = field(default_factory=list)
    #: Told (call, command) of every command of a call before it is carried out (not again
    #: on a retry): the wallboard shows silence notices and abuse endings as they happen
    #: (ivr.wallboard.alerts). Listeners only take note; one that fails is logged and ignored.
    command_listeners: list[Callable[[ActiveCall, Any], None]] = field(default_factory=list)

    def post_flow(self, call_id: str, event: flow.FlowEvent | FollowupEvent) -> None:
        self.post(FlowInput(call_id, event))

    def tell_listeners(self, call: ActiveCall, command: Any) -> None:
        for listener in self.command_listeners:
            try:
                listener(call, command)
            except Exception:
                log.exception("call %s: a command listener failed", call.call_id)

    async def hangup(self, channel_id: str) -> None:
        try:
            await self.ari.delete(f"channels/{channel_id}")
        except AriNotFound:
            pass
        except AriError:
            log.exception("cannot hang up %s", channel_id)

    async def send_message(self, member: str, body: str) -> bool:
        """A SIP MESSAGE to a staff phone (the softphone shows it); False if it failed."""
        for listener in self.message_listeners:
            listener(member, body)
        try:
            await self.ari.request(
                "PUT",
                "endpoints/sendMessage",
                params={
                    "to": f"pjsip:{member}",
                    "from": self.settings.message_from,
                    "body": body,
                },
            )
        except AriError as exc:
            log.warning("cannot send a message to %s: %s", member, exc)
            return False
        return True


async def safe_store(op: Awaitable[Any]) -> bool:
    """A record that cannot be written (full disk, ...) is logged; the call goes on.
    True when it was written (not just kept in memory for later)."""
    try:
        await op
    except WriteDeferred as exc:
        log.warning("record not written yet: %s", exc)
        return False
    except Exception:
        log.exception("could not write a record")
        return False
    return True
