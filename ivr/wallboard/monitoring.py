"""Listen, whisper, barge (the adapter of ivr.wallboard.monitor): ARI channels and bridges for a
supervisor monitoring a live call, and the wallboard's POST routes.

    POST /wallboard/monitor        call_id, mode (listen | whisper | barge): ring the
                                   supervisor's phone; once answered, connect it (monitor.Plan)
    POST /wallboard/monitor/stop   end the supervisor's monitoring

Supervisors and administrators only, with the session's CSRF token (the desk's middleware).
The supervisor's phone is rung with an id under the taps' prefix, so the controller's rooms
ignore its Stasis events; the monitorings watch the controller instead (`Controller.watchers`):
after each input it handled they look at the ARI event (the supervisor's leg answered or gone)
and at the call as it is now (still talking with the same counselor leg), and a monitoring
ends on that very event (monitor.call_over): a call ending while the supervisor's phone rings
cancels the ringing; the counselor hanging up ends a barge at once. Its own snoop, bridge and
phone leg are then removed (a barge leaves the call's bridge alone). After a reconnect of the
ARI websocket (events may have been missed) each monitoring looks at its phone leg once; its
objects are kept by the reconnect's reconcile. Each start and end is on `ivr.audit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ivr.ari import events
from ivr.ari.client import AriBadRequest, AriConflict, AriError, AriNotFound
from ivr.audit import audit
from ivr.flow.conversation import WITH_STAFF
from ivr.keys import CONTROLLER
from ivr.wallboard import monitor
from ivr.wallboard.monitor import Ended, PhoneEvent
from ivr.web.auth import WATCHERS
from ivr.web.sessions import Session
from ivr.web.site import DESK, SESSION, Desk, redirect, requires

if TYPE_CHECKING:
    from ivr.controller import Controller

log = logging.getLogger(__name__)

#: Seconds the supervisor's phone rings before the monitoring is given up.
RING_SECONDS = 30
#: Adding a new channel to a bridge: attempts and the pause between them (it enters Stasis
#: asynchronously; until then Asterisk answers 422).
ADD_ATTEMPTS = 20
ADD_RETRY_SECONDS = 0.05


def target_of(controller: Controller, call_id: str) -> monitor.Target | None:
    """The call if it is talking with a counselor now: its answered leg and talk bridge."""
    call = controller.calls.get(call_id)
    talk = getattr(call.flow, "conversation", None) if call is not None else None
    if call is None or talk is None or talk.state not in WITH_STAFF or not call.talk_bridge:
        return None
    legs = [lid for lid, leg in controller.legs.items() if leg.call_id == call_id and leg.answered]
    member = call.flow.record.member
    if not legs or member is None:
        return None
    return monitor.Target(call_id, member, legs[0], call.talk_bridge)


def live_calls(controller: Controller) -> list[monitor.Target]:
    """The calls a supervisor may monitor now (talking with a counselor)."""
    found = (target_of(controller, cid) for cid in list(controller.calls))
    return [t for t in found if t is not None]


class Signal(enum.Enum):
    """What the watcher tells a monitoring's task (besides an `Ended`)."""

    ANSWERED = "answered"
    RECHECK = "recheck"  # the websocket reconnected: events may have been missed


@dataclass(eq=False)
class Running:
    """One monitoring in progress: its plan and what the watcher has told its task."""

    plan: monitor.Plan
    signals: asyncio.Queue[Signal | Ended] = field(default_factory=asyncio.Queue)
    answered: bool = False
    #: Set once the end is decided (then nothing more is told).
    ended: Ended | None = None

    def end(self, why: Ended) -> None:
        if self.ended is None:
            self.ended = why
            self.signals.put_nowait(why)


@dataclass
class Monitors:
    """The monitorings in progress, one per supervisor; the controller's `Watcher`."""

    desk: Desk
    active: dict[str, monitor.Plan] = field(default_factory=dict)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _running: dict[str, Running] = field(default_factory=dict)  # by the plan's id
    #: The monitorings whose audio is connected (the supervisor answered, not yet ended).
    connected: set[str] = field(default_factory=set)
    _watched: Controller | None = None

    def controller(self) -> Controller | None:
        return self.desk.main.get(CONTROLLER)

    def notice(self, member: str) -> str | None:
        """The counselor screen's line while their call is monitored (policy setting)."""
        live = [p for p in self.active.values() if p.id in self.connected]
        return monitor.notice_for(member, live, self.desk.settings.monitor_notice_counselor)

    # -- the controller's Watcher ------------------------------------------------------
    def owned(self) -> set[str]:
        """The channels and bridges of the monitorings in progress (reconcile keeps them)."""
        ids: set[str] = set()
        for r in self._running.values():
            chans, bridges = r.plan.owned()
            ids.update(chans, bridges)
        return ids

    def handled(self, event: events.Event | None) -> None:
        controller = self._watched
        if controller is None:
            return
        for r in list(self._running.values()):
            if r.ended is not None:
                continue
            p = r.plan
            if isinstance(event, events.Connected):
                r.signals.put_nowait(Signal.RECHECK)
            elif isinstance(event, events.ChannelEvent):
                seen = monitor.phone_event(p, event.type, event.channel.id)
                if seen is PhoneEvent.ANSWERED and not r.answered:
                    r.answered = True
                    r.signals.put_nowait(Signal.ANSWERED)
                elif seen is PhoneEvent.GONE:
                    r.end(Ended.SUPERVISOR_HUNG_UP if r.answered else Ended.NOT_ANSWERED)
            now = target_of(controller, p.target.call_id)
            why = monitor.call_over(p, now, p.target.leg_id in controller.legs, r.answered)
            if why is not None:
                r.end(why)
            if r.ended is not None:
                self.connected.discard(p.id)  # over from this event on (the screen's notice)

    def _watch(self, controller: Controller) -> None:
        if self._watched is not controller:
            if self._watched is not None and self in self._watched.watchers:
                self._watched.watchers.remove(self)
            controller.watchers.append(self)
            self._watched = controller

    # -- starting and stopping ---------------------------------------------------------
    async def start(self, supervisor: str, call_id: str, mode: monitor.Mode) -> str | None:
        """Ring the supervisor's phone for `mode` on the call; an error key, or None."""
        controller = self.controller()
        if controller is None:
            return "no_controller"
        if supervisor in self.active:
            return "busy"
        target = target_of(controller, call_id)
        if target is None:
            return "no_call"
        self._watch(controller)
        p = monitor.plan(secrets.token_hex(4), mode, supervisor, target)
        # Watched before the phone rings: its answer may come before the origination returns.
        running = self._running[p.id] = Running(p)
        self.active[supervisor] = p
        settings = self.desk.settings
        try:
            await controller.ari.post(
                "channels",
                endpoint=f"PJSIP/{supervisor}",
                app=settings.ari_app,
                appArgs="monitor",
                channelId=p.phone,
                timeout=RING_SECONDS,
                callerId=f'"{monitor.MODE_KO[mode]}" <120>',
            )
        except AriError as exc:
            log.warning("could not ring %s to monitor call %s: %s", supervisor, call_id, exc)
            del self._running[p.id], self.active[supervisor]
            return "failed"
        audit.info(
            "monitor: %s rang for %s on call %s (counselor %s)",
            supervisor,
            mode.value,
            call_id,
            target.member,
        )
        task = asyncio.create_task(self._run(controller, running), name=f"monitor-{p.id}")
        self._tasks[supervisor] = task
        return None

    async def stop(self, supervisor: str, why: Ended = Ended.STOPPED) -> bool:
        task = self._tasks.get(supervisor)
        p = self.active.get(supervisor)
        if task is None or p is None:
            return False
        running = self._running.get(p.id)
        if running is not None:
            running.end(why)
            self.connected.discard(p.id)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def close(self) -> None:
        for supervisor in list(self._tasks):
            await self.stop(supervisor, Ended.PRODUCT_STOPPING)
        if self._watched is not None and self in self._watched.watchers:
            self._watched.watchers.remove(self)
        self._watched = None

    async def _run(self, controller: Controller, r: Running) -> None:
        ari, p = controller.ari, r.plan
        why: Ended | str = Ended.STOPPED
        try:
            rang = await self._ringing(controller, r)
            why = rang if isinstance(rang, Ended) else why
            if rang is Signal.ANSWERED:
                snoop = p.snoop_params()
                if snoop is not None:
                    channel, params = snoop
                    await ari.post(
                        f"channels/{channel}/snoop",
                        app=self.desk.settings.ari_app,
                        appArgs="monitor",
                        snoopId=str(p.snoop),
                        **params,
                    )
                    await ari.post("bridges", type="mixing", bridgeId=p.id, name=p.id)
                await self._add(controller, p)
                if r.ended is None:
                    self.connected.add(p.id)
                    audit.info(
                        "monitor: %s started %s on call %s (counselor %s)",
                        p.supervisor,
                        p.mode.value,
                        p.target.call_id,
                        p.target.member,
                    )
                why = await self._connected(controller, r)
        except AriError as exc:
            # Once the end is decided (the call ended while the snoop was being made), an
            # error is its consequence: the audit line keeps the end's own reason.
            why = r.ended or f"failed: {exc}"
            log.warning("monitor %s on call %s: %s", p.id, p.target.call_id, exc)
        finally:
            r.ended = r.ended or Ended.STOPPED  # the watcher tells it nothing more
            self.connected.discard(p.id)
            await self._remove(controller, p)
            self._running.pop(p.id, None)
            if self.active.get(p.supervisor) is p:
                del self.active[p.supervisor]
                self._tasks.pop(p.supervisor, None)
            audit.info(
                "monitor: %s ended %s on call %s (%s)",
                p.supervisor,
                p.mode.value,
                p.target.call_id,
                why,
            )

    async def _leg_state(self, controller: Controller, p: monitor.Plan) -> str | None:
        try:
            return str((await controller.ari.get(f"channels/{p.phone}"))["state"])
        except AriNotFound:
            return None

    async def _ringing(self, controller: Controller, r: Running) -> Signal | Ended:
        """Until the supervisor's phone answers (ANSWERED) or the monitoring ends (why)."""
        try:
            async with asyncio.timeout(RING_SECONDS + 5):  # Asterisk gives up at RING_SECONDS
                while True:
                    got = await r.signals.get()
                    if got is Signal.RECHECK:
                        state = await self._leg_state(controller, r.plan)
                        if state is None:
                            r.end(Ended.NOT_ANSWERED)
                        elif state == "Up":
                            r.answered = True
                            got = Signal.ANSWERED
                    if got is not Signal.RECHECK:
                        return got
        except TimeoutError:
            r.end(Ended.NOT_ANSWERED)
            return Ended.NOT_ANSWERED

    async def _connected(self, controller: Controller, r: Running) -> Ended:
        """Until the monitoring ends: why."""
        while True:
            got = await r.signals.get()
            if isinstance(got, Ended):
                return got
            if got is Signal.RECHECK and await self._leg_state(controller, r.plan) is None:
                r.end(Ended.SUPERVISOR_HUNG_UP)

    async def _add(self, controller: Controller, p: monitor.Plan) -> None:
        chans = p.phone if p.snoop is None else f"{p.phone},{p.snoop}"
        for attempt in range(ADD_ATTEMPTS):
            try:
                await controller.ari.post(f"bridges/{p.bridge}/addChannel", channel=chans)
                return
            except (AriBadRequest, AriConflict):
                if attempt == ADD_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(ADD_RETRY_SECONDS)

    async def _remove(self, controller: Controller, p: monitor.Plan) -> None:
        chans, bridges = p.owned()
        for bridge in bridges:
            with contextlib.suppress(AriError):
                await controller.ari.delete(f"bridges/{bridge}")
        for chan in chans:
            with contextlib.suppress(AriError):
                await controller.ari.delete(f"channels/{chan}")


MONITORS = web.AppKey("wallboard_monitors", Monitors)


def _supervisor(request: web.Request) -> str:
    s: Session = request[SESSION]
    assert s.member is not None  # @requires
    return s.member


def _back(error: str | None = None, done: str | None = None) -> web.Response:
    return redirect(f"/wallboard?error={error}" if error else f"/wallboard?done={done or ''}")


@requires(WATCHERS)
async def start(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    mode = monitor.mode_of(str(form.get("mode", "")))
    if mode is None:
        return _back(error="bad_mode")
    error = await request.app[MONITORS].start(
        _supervisor(request), str(form.get("call_id", "")), mode
    )
    return _back(error=error) if error else _back(done=mode.value)


@requires(WATCHERS)
async def stop(request: web.Request) -> web.StreamResponse:
    await request.app[MONITORS].stop(_supervisor(request))
    return _back(done="stopped")


def add_routes(app: web.Application) -> None:
    monitors = app[MONITORS] = Monitors(app[DESK])
    app.on_cleanup.append(lambda _: monitors.close())
    app.router.add_post("/wallboard/monitor", start)
    app.router.add_post("/wallboard/monitor/stop", stop)
