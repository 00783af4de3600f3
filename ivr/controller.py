"""The ARI adapter loop. Inputs (ARI events, timers, audio taps, submitted admin actions) come
through one queue, in order, and go to lanes (ivr.lanes): one call's inputs are handled one at
a time, in order, while other calls' inputs run beside them, so no caller waits on another
caller's ARI replies; what is not one call's own business (staff legs, feature codes, the crisis
line, endpoints, the ring-group tick, admin actions, a reconnect) runs alone, after everything
before it. Each ARI event goes to the room that owns the channel, by its Stasis arguments:
none = an inbound call (ivr.flow.effects), ``leg`` = a staff leg (ivr.staff.driver),
``feature`` = a staff phone's feature code (ivr.staff.feature_codes), ``crisis`` = the crisis
line. The rooms' commands are carried out through one table with the two failure policies
(ivr.effects); a command that touches what calls share runs in one lane at a time. Decisions:
the pure machines (ivr.flow.call, ivr.staff.ringgroup, ivr.staff.roster)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ivr import configs, inputs, recovery, resume
from ivr.ari import events
from ivr.ari.client import AriClient, AriError
from ivr.ari.dedupe import RecentEvents
from ivr.callbacks.sealing import Callbacks
from ivr.config import Settings
from ivr.context import ActiveCall, CallContext, Observer
from ivr.crypto import Sealer
from ivr.effects import Effects
from ivr.flags.protection import Flags
from ivr.flow import call as flow
from ivr.flow.effects import CRISIS_ARG, CallEffects
from ivr.flow.menu import Menu
from ivr.flow.survey_records import SurveyRecords
from ivr.followup.dialler import CITIZEN_ARG, FOLLOWUP_ARG, Dialler
from ivr.followup.events import FollowupEvent
from ivr.lanes import GLOBAL, Lanes, Shared
from ivr.pbx.secrets import Secrets
from ivr.staff import roster as rosters
from ivr.staff.driver import LEG_ARG, Leg, StaffDriver
from ivr.staff.feature_codes import FEATURE_ARG, FeatureCodes
from ivr.staff.registration import Registrations
from ivr.store import Store
from ivr.summary.capture import Capture
from ivr.summary.consent import ConsentRecorder
from ivr.tap import TAP_PREFIX

log = logging.getLogger(__name__)

#: The lane of the ARI events the controller only passes to its watchers.
OTHER_EVENTS = "~events"


class Watcher(Protocol):
    """Another room with ARI objects of its own in our Stasis app (the wallboard's monitoring,
    ivr.wallboard.monitoring): told after each input the controller handled (the ARI event,
    or None for any other input), so it decides on the event and sees the calls as they are
    now; asked at each reconcile which channel and bridge ids are its own (they are kept).
    Watchers only take note; they never fail the loop."""

    def owned(self) -> set[str]: ...

    def handled(self, event: events.Event | None) -> None: ...


class Controller:
    def __init__(
        self,
        ari: AriClient,
        store: Store,
        settings: Settings,
        menu: Menu,
        secrets_: Secrets,
        roster: rosters.Roster,
        clock: Callable[[], float] = time.time,
        model: Any = None,
        prompt_texts: dict[str, str] | None = None,
        catalog_version: int = 0,
        observer: Observer | None = None,
    ) -> None:
        self.ari, self.store, self.settings, self.menu = ari, store, settings, menu
        self.clock = clock
        self.calls: dict[str, ActiveCall] = {}
        self._inputs: asyncio.Queue[inputs.Input] = asyncio.Queue()
        self.ctx = CallContext(
            ari=ari,
            store=store,
            settings=settings,
            clock=clock,
            sealer=Sealer(secrets_.data_key),
            hash_key=secrets_.caller_hash_key,
            calls=self.calls,
            post=self._inputs.put_nowait,
            feed=self._feed,
            leg_prefix=f"ivr-{secrets.token_hex(3)}-",
            observer=observer,
            prompt_texts=prompt_texts or {},
            catalog_version=catalog_version,
        )
        flow_config, group_config = (
            configs.flow_config(settings, menu),
            configs.ring_group_config(settings),
        )
        self.capture = Capture(ari, store, settings.state_dir / "audio", clock)
        self.staff = StaffDriver(self.ctx, menu, roster, group_config)
        self.consent = ConsentRecorder(self.ctx, self.capture)
        self.journey = CallEffects(self.ctx, flow_config, self.consent, model)
        self.features = FeatureCodes(self.ctx, self.staff)
        self.followup = Dialler(self.ctx, self.staff)
        more = (Callbacks(self.ctx), Flags(self.ctx, self.staff), self.followup.effects)
        rooms = (self.journey, self.staff, self.consent, *more, SurveyRecords(self.ctx))
        table = {kind: do for room in rooms for kind, do in room.handlers().items()}
        kept = tuple(k for room in rooms for k in getattr(room, "bookkeeping", ()))
        local = frozenset(k for room in rooms for k in getattr(room, "call_local", ()))
        self.effects = Effects(self.ctx, table, kept, local, Shared())
        self.lanes: Lanes[inputs.Input] = Lanes(self._handle_one, self._lane_of)
        self._running = False  # the input loop turns (run)
        #: What takes inputs while it runs: the ARI event reader and the ticker.
        self._takers: tuple[asyncio.Task[None], ...] = ()
        self.connected = asyncio.Event()
        self._recent = RecentEvents()  # drops events delivered twice (two subscriptions)
        self._pbx_started: str | None = None  # Asterisk's startup time, seen at the last connect
        #: Channels started by the controller itself, by their first Stasis argument.
        self._started: dict[str, Callable[[events.Channel, tuple[str, ...]], Awaitable[None]]] = {
            LEG_ARG: lambda ch, _: self.staff.leg_answered(ch.id),
            CRISIS_ARG: lambda ch, _: self.journey.crisis_answered(ch.id),
            FEATURE_ARG: lambda ch, args: self.features.start(ch.id, ch.endpoint, args),
            FOLLOWUP_ARG: lambda ch, _: self.followup.staff_answered(ch.id),
            CITIZEN_ARG: lambda ch, _: self.followup.citizen_answered(ch.id, ch.name),
        }
        self.legs: dict[str, Leg] = self.staff.legs
        #: Each live call's snapshot, and the calls a dead run left to take back.
        self.live = resume.LiveCalls(self)
        self.registrations: Registrations = self.staff.registrations
        #: Rooms outside the controller watching its calls (`Watcher`).
        self.watchers: list[Watcher] = []

    @property
    def flow_config(self) -> flow.FlowConfig:
        return self.journey.flow_config

    def backlog(self) -> tuple[int, int]:
        """(inputs not started yet, calls with an input in progress) (for /metrics)."""
        return self._inputs.qsize() + self.lanes.waiting, self.lanes.busy

    @property
    def catalog_version(self) -> int:
        return self.ctx.catalog_version

    # -- the loop --------------------------------------------------------------------------
    async def run(self) -> None:
        """Read ARI events and timer firings until cancelled."""
        await self.staff.restore()
        await self.followup.control.load(self.clock())
        await self.live.load()
        await recovery.close_left_open(
            self.store, self.settings.state_dir, self.clock(), self.ctx.leg_prefix
        )
        reader = asyncio.create_task(self._read_events(), name="ari-events")
        ticker = asyncio.create_task(self._tick(), name="ring-retry")
        self._takers = (reader, ticker)
        alive = asyncio.create_task(recovery.heartbeat(self.settings.state_dir), name="alive")
        self._running = True
        try:
            while True:
                await self.lanes.dispatch(await self._inputs.get())
        finally:
            self._running = False
            for t in (reader, ticker, alive):
                t.cancel()
            await self.lanes.close()
            await asyncio.gather(reader, ticker, alive, return_exceptions=True)

    async def _handle_one(self, item: inputs.Input) -> None:
        try:
            await self._handle(item)
        except Exception:
            self.ctx.tallies["controller"] += 1
            log.exception("unexpected error handling %s", type(item).__name__)
        self._tell_watchers(item)

    def _lane_of(self, item: inputs.Input) -> str | None:
        """The call whose lane `item` goes to, or GLOBAL (run alone). Decided when the input is
        taken, from what is known then; when in doubt GLOBAL, which is always safe."""
        match item:
            case inputs.FlowInput(call_id=call_id):
                return call_id
            case inputs.RetryBookkeeping(call=call):
                return call.call_id
            case inputs.AriInput(event=ev):
                return self._lane_of_event(ev)
        return GLOBAL

    def _lane_of_event(self, ev: events.Event) -> str | None:
        match ev:
            case events.StasisStart(args=(kind, *_)) if kind in self._started:
                return GLOBAL
            case events.StasisStart():
                return ev.channel.id  # a new call (or an audio tap's own channel)
            case events.ChannelDtmfReceived(channel=ch):
                return ch.id if ch.id in self.calls else GLOBAL
            case events.PlaybackFinished(playback_id=pid):
                return self.journey.playbacks.get(pid, GLOBAL)
            case events.StasisEnd() | events.ChannelDestroyed():
                cid = ev.channel.id
                if cid.startswith(TAP_PREFIX):
                    return cid
                return cid if self._only_a_call(cid) else GLOBAL
            case events.ChannelHangupRequest(channel=ch) if self._staff_channel(ch.id):
                return GLOBAL  # what it says is kept for the StasisEnd (GLOBAL) that follows
            case events.ChannelEvent():
                return ev.channel.id  # nothing to do but tell the watchers
            case events.Connected() | events.Disconnected():
                return GLOBAL
            case events.EndpointStateChange(resource=endpoint):
                # The trunk's and other endpoints' changes (with every call) are not staff's.
                return GLOBAL if self.staff.is_staff(endpoint) else OTHER_EVENTS
            case events.RecordingFinished():
                return GLOBAL
        return OTHER_EVENTS

    def _staff_channel(self, cid: str) -> bool:
        return cid in self.staff.legs or self.followup.owns(cid)

    def _only_a_call(self, cid: str) -> bool:
        """`cid` is a call's channel and nothing else's (as `_channel_gone` asks, in order)."""
        if cid in self.journey.crisis_legs or cid in self.staff.legs or self.followup.owns(cid):
            return False
        return cid in self.calls

    async def _handle(self, item: inputs.Input) -> None:
        match item:
            case inputs.AriInput(event):
                await self._on_ari(event)
            case inputs.FlowInput(call_id, event):
                await self._feed(call_id, event)
            case inputs.Tick():
                await self.staff.plan_all()
                await self.followup.cycle()
            case inputs.RetryBookkeeping():
                await self.effects.retry(item)
            case inputs.Submitted(func, fut):
                try:
                    fut.set_result(await func())
                except Exception as exc:
                    fut.set_exception(exc)

    def _tell_watchers(self, item: inputs.Input) -> None:
        event = item.event if isinstance(item, inputs.AriInput) else None
        for watcher in list(self.watchers):
            try:
                watcher.handled(event)
            except Exception:
                self.ctx.tallies["controller"] += 1
                log.exception("a watcher failed on %s", type(item).__name__)

    async def _read_events(self) -> None:
        async for event in self.ari.events():
            await self._inputs.put(inputs.AriInput(event))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ring_retry_interval)
            await self._inputs.put(inputs.Tick())

    async def submit(self, func: Callable[[], Any]) -> Any:
        """Run `func` (a coroutine function) inside the input loop, in turn with the events."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._inputs.put(inputs.Submitted(func, fut))
        return await fut

    async def _feed(self, call_id: str, event: flow.FlowEvent | FollowupEvent) -> None:
        lane = Lanes.current()
        if lane is not None and lane != call_id:
            # Another call's event, from a call's lane: in turn in that call's lane (carried
            # out here it would interleave with that call's own commands).
            self._inputs.put_nowait(inputs.FlowInput(call_id, event))
            return
        call = self.calls.get(call_id)
        if call is not None:
            await self.effects.run(call, call.flow.handle(event, self.clock()))
            await self.live.save(call)

    # -- routing ARI events to the room that owns the channel -----------------------------
    async def _on_ari(self, ev: events.Event) -> None:
        if self._recent.seen(ev):
            log.debug("dropped a second copy of %s", ev.type)
            return
        staff, journey = self.staff, self.journey
        match ev:
            case events.StasisStart() | events.StasisEnd() | events.ChannelDestroyed() if (
                ev.channel.id.startswith(TAP_PREFIX)
            ):
                return  # the audio taps' own channels
            case events.Connected():
                await self._resync()
                self.connected.set()
            case events.StasisStart(args=(kind, *rest)) if kind in self._started:
                await self._started[kind](ev.channel, tuple(rest))
            case events.StasisStart() if ev.channel.id not in self.calls:
                await journey.new_call(ev)
            case events.ChannelDtmfReceived(channel=ch, digit=digit):
                if ch.id in self.calls:
                    await self._feed(ch.id, flow.Digit(digit))
                elif ch.id in staff.legs and staff.legs[ch.id].answered:
                    await self._feed(staff.legs[ch.id].call_id, flow.StaffDigit(digit))
                elif (followup_call := self.followup.staff_call(ch.id)) is not None:
                    await self._feed(followup_call, flow.StaffDigit(digit))
            case events.PlaybackFinished(playback_id=pid):
                if not await self.features.playback_finished(pid):
                    call_id = journey.playback_finished(pid)
                    if call_id is not None:
                        await self._feed(call_id, flow.PlaybackDone(pid))
            case events.ChannelHangupRequest():
                staff.hangup_requested(ev)
                self.followup.hangup_requested(ev)
            case events.StasisEnd() | events.ChannelDestroyed():
                await self._channel_gone(ev.channel.id, getattr(ev, "cause", 0))
            case events.RecordingFinished(name=name):
                self.capture.finished(name)
            case events.EndpointStateChange(resource=endpoint, state=state):
                await staff.endpoint_changed(endpoint, state)

    async def _channel_gone(self, cid: str, cause: int) -> None:
        if cid in self.journey.crisis_legs:
            await self.journey.crisis_gone(cid)
        elif cid in self.staff.legs:
            await self.staff.leg_gone(cid, cause)
        elif self.followup.owns(cid):
            await self.followup.channel_gone(cid, cause)
        elif cid in self.calls:
            await self._feed(cid, flow.CallerHungUp())

    async def _resync(self) -> None:
        """After (re)connecting: subscribe to endpoint states, reconcile channels, and collect
        recordings a previous run left in Asterisk."""
        app = self.settings.ari_app
        with contextlib.suppress(AriError):
            await self.ari.post(f"applications/{app}/subscription", eventSource="endpoint:PJSIP")
        with contextlib.suppress(AriError):
            await self.staff.seed_registrations()
        try:
            channels = await self.ari.get("channels")
        except AriError as exc:
            log.warning("could not list channels after connecting: %s", exc)
            return
        present = {c.get("id") for c in channels}
        started, self._pbx_started = self._pbx_started, await recovery.pbx_started_at(self)
        gone = [c for c in self.calls if c not in present]
        if started is not None and started != self._pbx_started:
            recovery.mark_pbx_lost(self, gone)  # Asterisk itself restarted
        for call_id in gone:
            await self._feed(call_id, flow.CallerHungUp())
        ours = (*self.staff.legs, *self.journey.crisis_legs, *self.followup.offers)
        for leg in [x for x in ours if x not in present]:
            await self._channel_gone(leg, 0)
        taken = await self.live.adopt(channels)  # the calls a dead run left, before reconcile
        await recovery.reconcile(self, [c for c in channels if c.get("id") not in taken])
        # After the take-back: a call taken back collects its earlier recordings at its end.
        await self.consent.collect_left_over()

    # -- administration (staff actions go to self.staff) ----------------------------------
    async def apply_config(
        self, menu: Menu, roster: rosters.Roster, prompt_texts: dict[str, str], version: int
    ) -> None:
        """A reloaded menu, roster and catalog (ivr.reload): for new calls; calls in progress
        keep the FlowConfig (and so the menu) they started with."""
        self.staff.apply_menu(menu, roster)
        self.menu = menu
        self.journey.flow_config = dataclasses.replace(self.journey.flow_config, menu=menu)
        self.ctx.prompt_texts, self.ctx.catalog_version = prompt_texts, version
        log.info("menu, roster and prompts reloaded (catalog v%d)", version)
        await self.staff.plan_all()

    async def shutdown(self, grace: float) -> None:
        """End every call in progress as an error: the caller hears the apology from the
        dialplan and the record is completed. Waits up to `grace` seconds for the channels."""

        async def end_all() -> None:
            for call_id in list(self.calls):
                await self._feed(call_id, flow.Failed("the controller is stopping"))
            for leg_id in [*self.staff.legs, *self.journey.crisis_legs, *self.followup.offers]:
                await self.ctx.hangup(leg_id)

        # In turn with the inputs, alone (GLOBAL): not between a call's own commands in its lane.
        await (self.submit(end_all) if self._running else end_all())
        # Recordings being fetched: finish, or they are fetched at the next start.
        await self.capture.wait(grace)
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            try:
                if not await self.ari.get("channels"):
                    return
            except AriError:
                return
            await asyncio.sleep(0.2)

    def not_taken_back(self) -> list[str]:
        """The calls a next run could not take back now (ivr.resume.not_taken_back)."""
        journeys = {cid: c.flow for cid, c in self.calls.items()}
        return resume.not_taken_back(journeys, self.journey.flow_config, self.clock())

    async def hand_over(self, grace: float) -> int:
        """A stop that keeps the calls (an update: SIGUSR2, ivr/stopping.py): no more events
        or ticks are taken, those taken are carried out (each call's snapshot in live_calls is
        then as its journey is), and recordings being fetched finish (up to `grace` s). Every
        channel and bridge stays in Asterisk for the next run to take back (ivr.resume), as
        after a crash but with nothing half done. Returns the calls left to it."""
        for task in self._takers:
            task.cancel()

        async def last() -> None:
            # Phones still ringing: stopped (no penalty); the next run offers those callers.
            for leg_id in [x for x, leg in self.staff.legs.items() if not leg.answered]:
                await self.staff.cancel_leg(leg_id)

        if self._running:
            await self.submit(last)  # in turn after every input already taken
        else:
            await last()
        await self.capture.wait(grace)
        return len(self.calls)

    def close(self) -> None:
        """Release what the controller holds besides its task (the speech threads)."""
        self.journey.close()

    def members(self) -> list[dict[str, Any]]:
        return self.staff.members()

    def status(self) -> dict[str, Any]:
        calls = [c.view(self.clock()) for c in self.calls.values()]
        return {
            "calls": calls,
            "queues": self.staff.queues(),
            "counselors": self.members(),
            "followup_dialling": self.followup.control.view(),
        }
