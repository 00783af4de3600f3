"""The ARI adapter: turns ARI events into flow events and flow commands into ARI requests.

All decisions live in the pure machines (ivr.flow.call, ivr.flow.ringgroup); this module only
moves data between them and Asterisk. Inputs (websocket events and timer firings) go through one
queue and are handled one at a time, so no two handlers ever interleave on the same call.

Safety rule: when carrying out a command fails unexpectedly, the error is logged and the flow is
told (`Failed`), which sends the caller to the dialplan's recovery context (an apology, then a
clean hangup). If even that fails, the caller's channel is hung up. A caller is never left in
silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.ari.client import AriClient, AriError, AriNotFound
from ivr.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Connected,
    EndpointStateChange,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from ivr.config import Settings
from ivr.flow import call as flow
from ivr.flow.menu import Menu
from ivr.flow.ringgroup import RingGroup
from ivr.privacy import caller_hash
from ivr.store import Store

log = logging.getLogger(__name__)

LEG_ARG = "leg"
SOUND_PREFIX = "sound:ivr120/"
MOH_CLASS = "default"


@dataclass
class ActiveCall:
    call_id: str  # = the caller's channel id
    flow: flow.CallFlow
    caller: str  # hashed number, for logs
    holding_bridge: str | None = None
    talk_bridge: str | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)


@dataclass
class Leg:
    call_id: str
    queue: str
    member: str
    answered: bool = False


Input = tuple[str, Any]  # ("ari", Event) or ("flow", (call_id, FlowEvent)) or ("tick", None)


class Controller:
    def __init__(
        self,
        ari: AriClient,
        store: Store,
        settings: Settings,
        menu: Menu,
        hash_key: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ari = ari
        self.store = store
        self.settings = settings
        self.menu = menu
        self.hash_key = hash_key
        self.clock = clock
        self.flow_config = flow.FlowConfig(
            menu=menu,
            input_timeout=settings.menu_input_timeout,
            max_failures=settings.menu_max_failures,
            reassurance_interval=settings.hold_reassurance_interval,
        )
        members = {"counselors": settings.counselors, "agents": settings.agents}
        self.groups = {name: RingGroup(name, members[q.members]) for name, q in menu.queues.items()}
        self._staff = frozenset((*settings.counselors, *settings.agents))
        self.calls: dict[str, ActiveCall] = {}
        self.legs: dict[str, Leg] = {}
        self.playbacks: dict[str, str] = {}
        self._inputs: asyncio.Queue[Input] = asyncio.Queue()
        self._leg_prefix = f"ivr-{secrets.token_hex(3)}-"
        self.connected = asyncio.Event()
        self.fault_hook: Callable[[flow.Command], None] | None = None  # tests inject faults

    # -- main loops ----------------------------------------------------------------------
    async def run(self) -> None:
        """Read ARI events and timer firings until cancelled."""
        reader = asyncio.create_task(self._read_events(), name="ari-events")
        ticker = asyncio.create_task(self._tick(), name="ring-retry")
        try:
            while True:
                kind, payload = await self._inputs.get()
                try:
                    if kind == "ari":
                        await self._on_ari(payload)
                    elif kind == "flow":
                        call_id, event = payload
                        await self._feed(call_id, event)
                    elif kind == "tick":
                        await self._plan_all()
                except Exception:
                    log.exception("unexpected error handling %s input", kind)
        finally:
            for t in (reader, ticker):
                t.cancel()
            for t in (reader, ticker):
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _read_events(self) -> None:
        async for event in self.ari.events():
            await self._inputs.put(("ari", event))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ring_retry_interval)
            await self._inputs.put(("tick", None))

    # -- ARI events ----------------------------------------------------------------------
    async def _on_ari(self, ev: Event) -> None:
        if isinstance(ev, Connected):
            await self._resync()
            self.connected.set()
        elif isinstance(ev, StasisStart):
            if ev.args[:1] == (LEG_ARG,):
                await self._leg_answered(ev.channel.id)
            elif ev.channel.id not in self.calls:
                await self._new_call(ev)
        elif isinstance(ev, ChannelDtmfReceived):
            if ev.channel.id in self.calls:
                await self._feed(ev.channel.id, flow.Digit(ev.digit))
        elif isinstance(ev, PlaybackFinished):
            call_id = self.playbacks.pop(ev.playback_id, None)
            if call_id is not None:
                await self._feed(call_id, flow.PlaybackDone(ev.playback_id))
        elif isinstance(ev, StasisEnd | ChannelDestroyed):
            cid = ev.channel.id
            if cid in self.legs:
                await self._leg_gone(cid)
            elif cid in self.calls:
                await self._feed(cid, flow.CallerHungUp())
        elif isinstance(ev, EndpointStateChange):
            if ev.resource in self._staff:
                log.info("endpoint %s is %s", ev.resource, ev.state)
            await self._plan_all()

    async def _resync(self) -> None:
        """After (re)connecting: subscribe to endpoint states and reconcile channels."""
        with contextlib.suppress(AriError):
            await self.ari.post(
                f"applications/{self.settings.ari_app}/subscription", eventSource="endpoint:PJSIP"
            )
        try:
            channels = await self.ari.get("channels")
        except AriError as exc:
            log.warning("could not list channels after connecting: %s", exc)
            return
        present = {c.get("id") for c in channels}
        for call_id in [c for c in self.calls if c not in present]:
            await self._feed(call_id, flow.CallerHungUp())
        for leg_id in [leg for leg in self.legs if leg not in present]:
            await self._leg_gone(leg_id)
        for c in channels:
            cid = c.get("id", "")
            dp = c.get("dialplan") or {}
            in_app = dp.get("app_name") == "Stasis" and str(dp.get("app_data", "")).startswith(
                self.settings.ari_app
            )
            if cid in self.calls or cid in self.legs or not in_app:
                continue
            # A caller we lost track of (the controller restarted): apologise and let go.
            log.warning("recovering orphaned channel %s", cid)
            await self._recover(cid)

    async def _new_call(self, ev: StasisStart) -> None:
        now = self.clock()
        call = ActiveCall(
            call_id=ev.channel.id,
            flow=flow.CallFlow(ev.channel.id, self.flow_config, now),
            caller=caller_hash(ev.channel.caller_number, self.hash_key),
        )
        self.calls[call.call_id] = call
        log.info("call %s: new call from caller %s", call.call_id, call.caller)
        try:
            await self.store.call_started(call.call_id, call.caller, now)
        except Exception:
            log.exception("call %s: could not store the call start", call.call_id)
        await self._feed(call.call_id, flow.Started())

    # -- ring group legs -----------------------------------------------------------------
    async def _leg_answered(self, leg_id: str) -> None:
        leg = self.legs.get(leg_id)
        result = self.groups[leg.queue].answered(leg_id) if leg else None
        if leg is None or result is None:
            log.info("leg %s answered too late; hanging it up", leg_id)
            await self._hangup(leg_id)
            return
        call_id, member, others = result
        leg.answered = True
        log.info("call %s: %s answered", call_id, member)
        for other in others:
            await self._hangup(other)
        await self._feed(call_id, flow.StaffAnswered(leg_id, member))

    async def _leg_gone(self, leg_id: str) -> None:
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return
        group = self.groups[leg.queue]
        if leg.answered:
            group.released(leg.member)
            call = self.calls.get(leg.call_id)
            if call is not None and call.flow.state in (
                flow.State.CONNECTING,
                flow.State.CONNECTED,
            ):
                await self._feed(leg.call_id, flow.StaffHungUp())
        else:
            group.leg_ended(leg_id)
            log.info("call %s: %s did not answer", leg.call_id, leg.member)
        await self._plan(leg.queue)

    async def _reachable(self) -> set[str]:
        try:
            endpoints = await self.ari.get("endpoints/PJSIP")
        except AriError as exc:
            log.warning("cannot list endpoints: %s", exc)
            return set()
        return {e["resource"] for e in endpoints if e.get("state") == "online"}

    async def _plan_all(self) -> None:
        for name in self.groups:
            await self._plan(name)

    async def _plan(self, queue: str) -> None:
        group = self.groups[queue]
        if not group.waiting:
            return
        rings = group.plan(await self._reachable(), self._leg_prefix)
        for ring in rings:
            self.legs[ring.leg_id] = Leg(ring.call_id, queue, ring.member)
            log.info("call %s: ringing %s", ring.call_id, ring.member)
            try:
                await self.ari.post(
                    "channels",
                    endpoint=f"PJSIP/{ring.member}",
                    app=self.settings.ari_app,
                    appArgs=f"{LEG_ARG},{ring.call_id}",
                    channelId=ring.leg_id,
                    timeout=int(self.settings.ring_timeout),
                    callerId=f'"{queue}" <120>',
                )
            except AriError as exc:
                log.warning("call %s: could not ring %s: %s", ring.call_id, ring.member, exc)
                self.legs.pop(ring.leg_id, None)
                group.leg_ended(ring.leg_id)

    # -- flow ----------------------------------------------------------------------------
    async def _feed(self, call_id: str, event: flow.FlowEvent) -> None:
        call = self.calls.get(call_id)
        if call is None:
            return
        commands = call.flow.handle(event, self.clock())
        await self._run(call, commands)

    async def _run(self, call: ActiveCall, commands: list[flow.Command]) -> None:
        for cmd in commands:
            try:
                if self.fault_hook is not None:
                    self.fault_hook(cmd)
                await self._execute(call, cmd)
            except AriNotFound as exc:
                # The channel went away under us; its hangup event is on its way.
                log.info("call %s: %s skipped, object gone (%s)", call.call_id, cmd, exc.path)
            except Exception as exc:
                log.exception("call %s: %s failed", call.call_id, type(cmd).__name__)
                if call.flow.ended:
                    # Already ending: just make sure nothing of the call is left behind.
                    self.calls.pop(call.call_id, None)
                    await self._hangup(call.call_id)
                    continue
                more = call.flow.handle(flow.Failed(f"{type(cmd).__name__}: {exc}"), self.clock())
                await self._run(call, more)
                return

    async def _execute(self, call: ActiveCall, cmd: flow.Command) -> None:
        cid = call.call_id
        if isinstance(cmd, flow.Answer):
            await self.ari.post(f"channels/{cid}/answer")
        elif isinstance(cmd, flow.Play):
            media = ",".join(SOUND_PREFIX + p for p in cmd.prompts)
            self.playbacks[cmd.playback_id] = cid
            if cmd.target is flow.Target.HOLDING and call.holding_bridge:
                target = f"bridges/{call.holding_bridge}"
            elif cmd.target is flow.Target.LEG and cmd.leg_id:
                target = f"channels/{cmd.leg_id}"
            else:
                target = f"channels/{cid}"
            await self.ari.post(f"{target}/play/{cmd.playback_id}", media=media, lang="ko")
        elif isinstance(cmd, flow.StopPlayback):
            self.playbacks.pop(cmd.playback_id, None)
            with contextlib.suppress(AriNotFound):
                await self.ari.delete(f"playbacks/{cmd.playback_id}")
        elif isinstance(cmd, flow.StartTimer):
            self._cancel_timer(call, cmd.name)
            call.timers[cmd.name] = asyncio.get_running_loop().call_later(
                cmd.seconds, self._inputs.put_nowait, ("flow", (cid, flow.TimerFired(cmd.name)))
            )
        elif isinstance(cmd, flow.CancelTimer):
            self._cancel_timer(call, cmd.name)
        elif isinstance(cmd, flow.Hold):
            bridge = f"hold-{cid}"
            await self.ari.post("bridges", type="holding", bridgeId=bridge, name=bridge)
            call.holding_bridge = bridge
            await self.ari.post(f"bridges/{bridge}/addChannel", channel=cid, role="participant")
            await self.ari.post(f"bridges/{bridge}/moh", mohClass=MOH_CLASS)
        elif isinstance(cmd, flow.Enqueue):
            self.groups[cmd.queue].enqueue(cid, cmd.since)
            await self._plan(cmd.queue)
        elif isinstance(cmd, flow.Dequeue):
            for leg in self.groups[cmd.queue].dequeue(cid):
                self.legs.pop(leg, None)
                await self._hangup(leg)
        elif isinstance(cmd, flow.Connect):
            await self._connect(call, cmd)
        elif isinstance(cmd, flow.HangupLeg):
            await self._hangup(cmd.leg_id)
        elif isinstance(cmd, flow.HangupCaller):
            await self._hangup(cid)
        elif isinstance(cmd, flow.Recover):
            await self._destroy_bridges(call)
            await self._recover(cid)
        elif isinstance(cmd, flow.Finish):
            await self._finish(call, cmd.outcome)

    async def _connect(self, call: ActiveCall, cmd: flow.Connect) -> None:
        cid = call.call_id
        bridge = f"talk-{cid}"
        await self.ari.post("bridges", type="mixing", bridgeId=bridge, name=bridge)
        call.talk_bridge = bridge
        if call.holding_bridge:
            held, call.holding_bridge = call.holding_bridge, None
            with contextlib.suppress(AriNotFound):
                await self.ari.delete(f"bridges/{held}")
        await self.ari.post(f"bridges/{bridge}/addChannel", channel=f"{cid},{cmd.leg_id}")

    async def _finish(self, call: ActiveCall, outcome: flow.Outcome) -> None:
        for name in list(call.timers):
            self._cancel_timer(call, name)
        await self._destroy_bridges(call)
        for pb in [p for p, c in self.playbacks.items() if c == call.call_id]:
            del self.playbacks[pb]
        self.calls.pop(call.call_id, None)
        rec = call.flow.record
        log.info(
            "call %s: ended (%s), menu %s, queue %s, wait %s s, talk %s s",
            call.call_id,
            outcome.value,
            "".join(rec.menu_path) or "-",
            rec.queue or "-",
            _secs(rec.wait_seconds),
            _secs(rec.talk_seconds),
        )
        await self.store.call_ended(call.call_id, rec)

    async def _destroy_bridges(self, call: ActiveCall) -> None:
        for attr in ("holding_bridge", "talk_bridge"):
            bridge = getattr(call, attr)
            if bridge:
                setattr(call, attr, None)
                with contextlib.suppress(AriError):
                    await self.ari.delete(f"bridges/{bridge}")

    async def _recover(self, channel_id: str) -> None:
        try:
            await self.ari.post(
                f"channels/{channel_id}/continue",
                context="ivr120-recover",
                extension="s",
                priority=1,
            )
        except AriNotFound:
            return
        except AriError:
            log.exception("cannot hand %s to the recovery context; hanging up", channel_id)
            await self._hangup(channel_id)

    async def _hangup(self, channel_id: str) -> None:
        try:
            await self.ari.delete(f"channels/{channel_id}")
        except AriNotFound:
            pass
        except AriError:
            log.exception("cannot hang up %s", channel_id)

    @staticmethod
    def _cancel_timer(call: ActiveCall, name: str) -> None:
        handle = call.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    async def shutdown(self, grace: float) -> None:
        """End every call in progress as an error: the caller hears the apology from the
        dialplan and the record is completed. Waits up to `grace` seconds for the channels."""
        for call_id in list(self.calls):
            await self._feed(call_id, flow.Failed("the controller is stopping"))
        for leg_id in list(self.legs):
            await self._hangup(leg_id)
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            try:
                if not await self.ari.get("channels"):
                    return
            except AriError:
                return
            await asyncio.sleep(0.2)

    # -- status for administrators -------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "calls": [
                {
                    "call_id": c.call_id,
                    "caller": c.caller,
                    "state": c.flow.state.value,
                    "queue": c.flow.record.queue,
                    "member": c.flow.record.member,
                    "seconds": round(now - c.flow.record.started_at, 1),
                }
                for c in self.calls.values()
            ],
            "queues": {
                name: {
                    "waiting": len(g.waiting),
                    "ringing": sorted(g.ringing_members()),
                    "busy": sorted(g.busy_members()),
                }
                for name, g in self.groups.items()
            },
        }


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
