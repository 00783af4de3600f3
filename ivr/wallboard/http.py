"""The wallboard's desk routes: the page and its live stream (server-sent events).

    GET /wallboard          the board (supervisors, administrators and the wall screens'
                            accounts, `wallboard_screens`, which see no live calls to
                            monitor; others get 403)
    GET /wallboard/events   text/event-stream: the board as JSON whenever it changes
    POST /wallboard/monitor[/stop]  listen, whisper, barge (ivr/wallboard/monitoring.py)

The stream reads the controller's own views (`members()`, `status()` and each waiting call's
record) every `TICK` seconds and sends the board when it differs from the last one sent;
today's figures come from the store, read at most every `FIGURES_TTL` seconds for all screens.
Silence alerts and abuse endings (ivr/wallboard/alerts.py) are heard as the controller carries
them out (`CallContext.command_listeners`), from the desk's start, whether a screen is open or
not; the members' states are looked at every `LOOK` seconds by the desk itself too, so the
wellbeing mark (ivr/wallboard/wellbeing.py) counts from the desk's start, not from the first
screen. What came before is seeded from the store (ivr/wallboard/records.py) by the desk's
first look or view, up to the moment the controller was first heard (or the seed's own moment
without one), and again when a controller is first heard by a desk that started without one
(a standby taking over in the same process): the rows from the last seed to that moment, so
nothing is read twice and nothing heard live is. A controller replacing another one within a
process (not done in production: a take-over is a new process, whose desk seeds afresh) reads
nothing more: the old one's listeners heard everything up to it. The chat service's commands
are heard from the desk's start (before any seed, so no abuse ending falls between). A seed
that fails (the database locked, a bad row) is logged, the board shows what it hears live,
and it is tried again after SEED_RETRY seconds.
The stream ends as soon as its session no longer holds (signed out elsewhere, idle past
IDLE_SECONDS: the stream itself is not activity, except a wall screen's) or no longer has a
role that sees the board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.chat import http as chat_http
from ivr.chat.service import ChatService, LiveChat
from ivr.context import ActiveCall
from ivr.controller import Controller
from ivr.flow.states import QUEUED_STATES, State
from ivr.keys import CONTROLLER
from ivr.store import Store
from ivr.timezone import SEOUL
from ivr.wallboard import alerts, board, monitor, monitoring, records, wellbeing
from ivr.web.auth import BOARD_VIEWERS, WATCHERS
from ivr.web.sessions import Session
from ivr.web.site import DESK, SESSION, Desk, desk_of, requires
from ivr.web.streams import view_stream

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
#: Seconds between two looks at the controller's state (a change is on the wall within this).
TICK = 0.25
#: Seconds a built board is handed to every screen that asks (fifty screens ticking on their own
#: share about one build per SHARED instead of building two hundred a second).
SHARED = 0.1
#: Seconds today's figures are reused before the store is read again.
FIGURES_TTL = 5.0
#: A comment line at least this often keeps proxies from closing an idle stream.
KEEPALIVE = 15.0
#: Seconds between the desk's own looks at the members' states (for the wellbeing mark).
LOOK = 1.0
#: Seconds before a failed seed is tried again (not at every tick: the store may be busy).
SEED_RETRY = 30.0
#: Call states that are waiting for staff: in the queue (from the intro on: the ring group may
#: ring for them while they hear it and the consent question, and their wait counts from it),
#: or a member's phone ringing.
WAITING_STATES = frozenset(s.value for s in QUEUED_STATES | {State.CONNECTING})


def _today(now: float) -> float:
    """The start of today in Seoul."""
    day = datetime.fromtimestamp(now, SEOUL).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


@dataclass
class Feed:
    """What every wallboard screen of the desk shares: the state clock, today's figures, the
    recent alerts (heard from the controller and the chat service) and the wellbeing stretches
    (fed by every look)."""

    desk: Desk
    clock: board.StateClock = field(default_factory=board.StateClock)
    _figures: board.Figures | None = None
    _figures_at: float = -1e18
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The desk's application (its chat service, ivr.chat.http.SERVICE, is read at each look).
    app: web.Application | None = None
    _chat_figures: board.ChatFigures | None = None
    _chat_figures_at: float = -1e18
    #: Silence alerts and abuse endings of the last hour.
    alert_log: alerts.Alerts = field(default_factory=alerts.Alerts)
    stretches: wellbeing.Wellbeing = field(init=False)
    _attached: object = None
    #: When the controller's commands were first heard (the seed reads what came before).
    _attached_at: float = 0.0
    #: The controller context the board was last seeded for, and up to when.
    _seeded_for: object = None
    _seeded_to: float | None = None
    #: Held while seeding: a view waits for the seed under way rather than show the board bare.
    _seeding: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: When a failed seed may be tried again, and whether the failure was logged in full.
    _retry_at: float = -1e18
    _seed_failed: bool = False
    _chats_attached: object = None
    #: The last board built and when (shared by the screens for SHARED seconds).
    _built: tuple[float, dict[str, Any]] | None = None
    _building: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.stretches = wellbeing.Wellbeing(self.desk.settings.wallboard_wellbeing_minutes * 60)

    def controller(self) -> Controller | None:
        """The running controller, its calls' commands heard by `heard` (from the first look),
        and the chat service's by `heard_chat`."""
        self.chat_service()
        c = self.desk.main.get(CONTROLLER)
        if c is not None and c.ctx is not self._attached:
            c.ctx.command_listeners.append(self.heard)
            if self._attached is None:  # a replaced one heard up to now (module docstring)
                self._attached_at = time.time()
            self._attached = c.ctx
        return c

    def chat_service(self) -> ChatService | None:
        """The desk's chat service (built after the board), its commands heard by `heard_chat`."""
        service = self.app.get(chat_http.SERVICE) if self.app is not None else None
        if service is not None and service is not self._chats_attached:
            service.command_listeners.append(self.heard_chat)
            self._chats_attached = service
        return service

    async def seed(self, now: float) -> None:
        """At the start and once a controller is first heard: the alerts and wellbeing spans
        stored since the last seed, within the longest of the alert window and the wellbeing
        limit + a break (module docstring). Never raises: a failure is logged and the seed
        tried again at a look SEED_RETRY seconds on."""
        async with self._seeding:
            if self.desk.store is None or now < self._retry_at:
                return
            if self._seeded_to is not None and self._seeded_for is self._attached:
                return
            try:
                await self._seed(self.desk.store, now)
            except Exception:
                self._retry_at = now + SEED_RETRY
                if not self._seed_failed:
                    log.exception("wallboard: the stored alerts and calls could not be read")
                else:
                    log.warning("wallboard: the seed failed again; tried again later")
                self._seed_failed = True
                return
            if self._seed_failed:
                log.info("wallboard: the seed succeeded after a failure")
            self._seed_failed = False

    async def _seed(self, store: Store, now: float) -> None:
        end = self._attached_at if self._attached is not None else now
        window = self.alert_log.params.window
        start = end - max(window, self.stretches.limit + self.stretches.gap * 60)
        if self._seeded_to is not None:
            start = max(start, self._seeded_to)
        if start < end:
            rows = await records.read(store, start, end)
            since = max(start, end - window)
            found = alerts.from_rows(rows.silences, rows.abuses, since, end)
            spans = wellbeing.from_rows(rows.calls, rows.events, start)
            self.alert_log.seed(found)
            self.stretches.seed(spans, now)
            log.info(
                "wallboard: seeded %d alerts and %d calls from the store",
                len(found),
                len(rows.calls),
            )
        self._seeded_for, self._seeded_to = self._attached, max(end, self._seeded_to or end)

    def heard(self, call: ActiveCall, command: object) -> None:
        """A command of a call, before it is carried out: kept when it is an alert."""
        rec = call.flow.record
        alert = alerts.from_command(call.call_id, rec.queue, rec.member, command, time.time())
        if alert is not None:
            self.alert_log.add(alert)

    def heard_chat(self, chat: LiveChat, command: object) -> None:
        """A command of a chat, before it is carried out: kept when it is an alert."""
        alert = alerts.from_chat_command(chat.chat_id, command, time.time())
        if alert is not None:
            self.alert_log.add(alert)

    def look(self, now: float) -> list[board.MemberLine] | None:
        """The counselors' states now (None: no controller), seen by the wellbeing mark too;
        the chat service's commands heard from the first look (it is built after the board)."""
        controller = self.controller()
        if controller is None:
            return None
        counselors = set(self.desk.settings.counselors)
        lines = self.clock.lines(
            (m for m in controller.members() if m["member"] in counselors), now
        )
        self.stretches.observe(lines, now)
        return lines

    async def figures(self, now: float) -> board.Figures | None:
        store = self.desk.store
        if store is None:
            return None
        async with self._lock:
            if now - self._figures_at >= FIGURES_TTL:
                start = _today(now)
                rows = await store.fetch(records.TODAY_CALLS, (start,))
                opened = await store.fetch(records.OPEN_CALLBACKS)
                closed = await store.fetch(records.CLOSED_CALLBACKS_SINCE, (start,))
                self._figures = board.figures(
                    (board.CallRow(bool(a), w, o) for a, w, o in rows),
                    int(opened[0][0]),
                    int(closed[0][0]),
                )
                self._figures_at = now
            return self._figures

    async def chat_figures(self, now: float) -> board.ChatFigures | None:
        """Today's chats (read with the call figures' period, at most every FIGURES_TTL s)."""
        store = self.desk.store
        if store is None:
            return None
        async with self._lock:
            if now - self._chat_figures_at >= FIGURES_TTL:
                rows = await store.fetch(
                    "SELECT answered_at IS NOT NULL, outcome FROM chats WHERE started_at >= ?",
                    (_today(now),),
                )
                self._chat_figures = board.chat_figures((bool(a), o) for a, o in rows)
                self._chat_figures_at = now
            return self._chat_figures

    def chats(self, now: float) -> board.ChatsNow:
        """The chats held now by the chat service (none when it is not part of the desk)."""
        service = self.app.get(chat_http.SERVICE) if self.app is not None else None
        live = () if service is None else list(service.chats.values())
        return board.chats_now(
            (board.LiveChat(c.journey.step.value, c.queued_at, c.journey.member) for c in live),
            now,
        )

    async def view(self, now: float) -> dict[str, Any]:
        """The board now: the one built less than SHARED seconds ago, or a new one."""
        async with self._building:
            if self._built is not None and 0 <= now - self._built[0] < SHARED:
                return self._built[1]
            out = await self._build(now)
            self._built = (now, out)
            return out

    async def _build(self, now: float) -> dict[str, Any]:
        controller = self.controller()
        await self.seed(now)
        lines = self.look(now) or []
        if controller is None:
            wait = board.waiting((), now)
        else:
            queued = []
            for c in controller.status()["calls"]:
                if c["state"] not in WAITING_STATES:
                    continue
                call = controller.calls.get(c["call_id"])
                # Waiting again after a lost counselor: the wait since then, not since the
                # first arrival (which keeps their place in the queue).
                rec = call.flow.record if call is not None else None
                at = (rec.requeued_at or rec.queued_at) if rec is not None else None
                queued.append(at if at is not None else now - float(c["seconds"]))
            wait = board.waiting(queued, now)
        figs = await self.figures(now)
        out = board.view(
            wait,
            lines,
            figs,
            self.chats(now),
            await self.chat_figures(now),
            self.stretches.marks(now),
        )
        out["alerts"] = alerts.view(self.alert_log.recent(now))
        live = [] if controller is None else monitoring.live_calls(controller)
        out["calls"] = [{"call_id": t.call_id, "member": t.member} for t in live]
        out["connected"] = controller is not None
        return out


FEED = web.AppKey("wallboard_feed", Feed)


def _board_of(s: Session, board: dict[str, Any]) -> dict[str, Any]:
    """The board as `s` may see it: a wall screen gets no live calls (nothing to monitor)."""
    if s.role in WATCHERS:
        return board
    return {**board, "calls": []}


@requires(BOARD_VIEWERS)
async def page(request: web.Request) -> web.StreamResponse:
    feed = request.app[FEED]
    monitors = request.app[monitoring.MONITORS]
    s: Session = request[SESSION]
    q = request.query
    return desk_of(request).render(
        request,
        "wallboard.html",
        board=_board_of(s, await feed.view(time.time())),
        supervises=s.role in WATCHERS,
        mine=monitors.active.get(s.member or ""),
        modes=list(monitor.MODE_KO.items()),
        mode_ko=monitor.MODE_KO,
        error=monitor.ERROR_KO.get(q.get("error", "")),
    )


@requires(BOARD_VIEWERS)
async def events(request: web.Request) -> web.StreamResponse:
    feed = request.app[FEED]
    s: Session = request[SESSION]

    async def view(now: float) -> dict[str, Any]:
        return _board_of(s, await feed.view(now))

    return await view_stream(request, BOARD_VIEWERS, view, tick=TICK, keepalive=KEEPALIVE)


async def _looking(app: web.Application) -> AsyncIterator[None]:
    """The desk's own look at the members every LOOK seconds, while it runs."""
    feed = app[FEED]
    feed.controller()  # the chat service is built after the board's routes: heard from here

    async def run() -> None:
        while not feed.desk.stopping.is_set():
            try:
                feed.controller()
                await feed.seed(time.time())
                feed.look(time.time())
            except Exception:
                log.exception("wallboard: the look at the members failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(feed.desk.stopping.wait(), LOOK)

    task = asyncio.create_task(run(), name="wallboard-look")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def add_routes(app: web.Application) -> None:
    desk = app[DESK]
    app[FEED] = Feed(desk, app=app)
    app[FEED].controller()  # the alerts are heard from the desk's start
    app.cleanup_ctx.append(_looking)
    desk.add_templates(HERE / "templates")
    desk.pages.append(("/wallboard", "상황판 (슈퍼바이저)", BOARD_VIEWERS))
    app.router.add_get("/wallboard", page)
    app.router.add_get("/wallboard/events", events)
    desk.background.add("/wallboard/events")
    app.router.add_static("/wallboard/static", HERE / "static")
    monitoring.add_routes(app)  # listen, whisper, barge
