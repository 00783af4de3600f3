"""Listen, whisper, barge (the adapter of ivr.wallboard.monitor): ARI channels and bridges for a
supervisor monitoring a live call, and the wallboard's POST routes.

    POST /wallboard/monitor        call_id, mode (listen | whisper | barge): ring the
                                   supervisor's phone; once answered, connect it (monitor.Plan)
    POST /wallboard/monitor/stop   end the supervisor's monitoring

Supervisors and administrators only, with the session's CSRF token (the desk's middleware).
The supervisor's phone is rung with an id under the taps' prefix, so the controller ignores its
Stasis events; a watcher task per monitoring looks every `TICK` seconds at the call (still
talking with the same counselor leg) and at the supervisor's leg (still up), and ends the
monitoring when either is gone: its own snoop, bridge and phone leg are removed (a barge
leaves the call's bridge alone). Each start and end is on `ivr.audit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from ivr.ari.client import AriBadRequest, AriConflict, AriError, AriNotFound
from ivr.audit import audit
from ivr.flow.conversation import WITH_STAFF
from ivr.keys import CONTROLLER
from ivr.wallboard import monitor
from ivr.web.auth import WATCHERS
from ivr.web.sessions import Session
from ivr.web.site import DESK, SESSION, Desk, redirect, requires

if TYPE_CHECKING:
    from ivr.controller import Controller

log = logging.getLogger(__name__)

#: Seconds between two looks at the call and the supervisor's leg.
TICK = 0.25
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


@dataclass
class Monitors:
    """The monitorings in progress, one per supervisor."""

    desk: Desk
    active: dict[str, monitor.Plan] = field(default_factory=dict)
    _tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    #: The monitorings whose audio is connected (the supervisor answered).
    connected: set[str] = field(default_factory=set)

    def controller(self) -> Controller | None:
        return self.desk.main.get(CONTROLLER)

    def notice(self, member: str) -> str | None:
        """The counselor screen's line while their call is monitored (policy setting)."""
        live = [p for p in self.active.values() if p.id in self.connected]
        return monitor.notice_for(member, live, self.desk.settings.monitor_notice_counselor)

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
        p = monitor.plan(secrets.token_hex(4), mode, supervisor, target)
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
            return "failed"
        self.active[supervisor] = p
        task = asyncio.create_task(self._run(controller, p), name=f"monitor-{p.id}")
        self._tasks[supervisor] = task
        return None

    async def stop(self, supervisor: str) -> bool:
        task = self._tasks.get(supervisor)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    async def close(self) -> None:
        for supervisor in list(self._tasks):
            await self.stop(supervisor)

    async def _run(self, controller: Controller, p: monitor.Plan) -> None:
        ari = controller.ari
        started = False
        why = "stopped by the supervisor"
        try:
            if not await self._answered(controller, p):
                why = "the supervisor's phone did not answer"
                return
            if target_of(controller, p.target.call_id) != p.target:
                why = "the call ended before the supervisor answered"
                return
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
            started = True
            self.connected.add(p.id)
            audit.info(
                "monitor: %s started %s on call %s (counselor %s)",
                p.supervisor,
                p.mode.value,
                p.target.call_id,
                p.target.member,
            )
            why = await self._watch(controller, p)
        except AriError as exc:
            why = f"failed: {exc}"
            log.warning("monitor %s on call %s: %s", p.id, p.target.call_id, exc)
        finally:
            self.connected.discard(p.id)
            await self._remove(controller, p)
            if self.active.get(p.supervisor) is p:
                del self.active[p.supervisor]
                self._tasks.pop(p.supervisor, None)
            if started:
                audit.info(
                    "monitor: %s ended %s on call %s (%s)",
                    p.supervisor,
                    p.mode.value,
                    p.target.call_id,
                    why,
                )
            else:
                log.info("monitor %s on call %s not started: %s", p.id, p.target.call_id, why)

    async def _leg_state(self, controller: Controller, p: monitor.Plan) -> str | None:
        try:
            return str((await controller.ari.get(f"channels/{p.phone}"))["state"])
        except AriNotFound:
            return None

    async def _answered(self, controller: Controller, p: monitor.Plan) -> bool:
        deadline = time.monotonic() + RING_SECONDS + 5
        while time.monotonic() < deadline:
            state = await self._leg_state(controller, p)
            if state is None:
                return False
            if state == "Up":
                return True
            await asyncio.sleep(TICK)
        return False

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

    async def _watch(self, controller: Controller, p: monitor.Plan) -> str:
        while True:
            await asyncio.sleep(TICK)
            if self.controller() is not controller:
                return "the controller went away"
            if target_of(controller, p.target.call_id) != p.target:
                return "the call ended"
            if await self._leg_state(controller, p) is None:
                return "the supervisor hung up"

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
