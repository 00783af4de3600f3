"""Keeping the managed Asterisk and the summary worker running, and counting it on `/metrics`.

When either dies while `ivr-run` runs, it is started again after a back-off (doubling from
`FIRST_DELAY` up to `MAX_DELAY`, back to the start once a run lasted `HEALTHY_AFTER` seconds),
with a log line per restart; `/health` says unhealthy while Asterisk is down (ivr/health.py).
`/metrics` serves the counts in the Prometheus text format (`prometheus_client`, with a
registry of the app's own so several apps in one process — the tests — do not mix).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from ivr.keys import ARI, CONTROLLER, PBX
from ivr.metrics import LiveCollector
from ivr.pbx.install import PbxUnavailable
from ivr.pbx.lock import InstanceBusy
from ivr.pbx.runner import Pbx, PbxStartError

log = logging.getLogger(__name__)

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
HEALTHY_AFTER = 60.0


@dataclass
class Backoff:
    first: float = FIRST_DELAY
    cap: float = MAX_DELAY
    healthy_after: float = HEALTHY_AFTER
    _next: float = 0.0

    def delay(self, ran_for: float) -> float:
        """The wait before the next start, given how long the last run lasted."""
        if ran_for >= self.healthy_after or self._next == 0.0:
            self._next = self.first
        d, self._next = self._next, min(self.cap, self._next * 2)
        return d


class Metrics:
    """The app's Prometheus registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.restarts = Counter(
            "ivr120_process_restarts",
            "Starts of a supervised process after it died",
            ["process"],
            registry=self.registry,
        )
        self.up = Gauge(
            "ivr120_process_up", "1 while a supervised process runs", ["process"],
            registry=self.registry,
        )  # fmt: skip
        self.ari = Gauge(
            "ivr120_ari_connected", "1 while the ARI websocket is connected",
            registry=self.registry,
        )  # fmt: skip
        self.calls = Gauge("ivr120_calls_active", "Calls in progress", registry=self.registry)
        for name in ("asterisk", "summary_worker"):
            self.restarts.labels(name)
        #: The controller's live state, read at each scrape (ivr/metrics.py).
        self.live = LiveCollector()
        self.registry.register(self.live)


METRICS = web.AppKey("metrics", Metrics)


@dataclass
class Worker:
    """The summary worker process now running (replaced on each restart)."""

    spawn: Callable[[], Awaitable[asyncio.subprocess.Process]]
    proc: asyncio.subprocess.Process | None = None
    backoff: Backoff = field(default_factory=Backoff)


WORKER = web.AppKey("worker", Worker)


async def supervise_worker(worker: Worker, metrics: Metrics) -> None:
    """Start the worker again whenever it ends, until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        assert worker.proc is not None
        metrics.up.labels("summary_worker").set(1)
        began = loop.time()
        code = await worker.proc.wait()
        metrics.up.labels("summary_worker").set(0)
        delay = worker.backoff.delay(loop.time() - began)
        log.error("summary worker ended (exit code %s); starting it again in %.1f s", code, delay)
        await asyncio.sleep(delay)
        metrics.restarts.labels("summary_worker").inc()
        while True:
            try:
                worker.proc = await worker.spawn()
                break
            except OSError as exc:  # (as supervise_pbx): tried again, never given up silently
                delay = worker.backoff.delay(0.0)
                log.error("summary worker did not start: %s; trying again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        log.warning("summary worker started again (pid %d)", worker.proc.pid)


async def supervise_pbx(pbx: Pbx, metrics: Metrics, backoff: Backoff | None = None) -> None:
    """Start Asterisk again whenever it ends, until cancelled."""
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        if pbx.running:
            metrics.up.labels("asterisk").set(1)
            await pbx.wait_ended()
        metrics.up.labels("asterisk").set(0)
        delay = backoff.delay(loop.time() - began)
        log.error(
            "Asterisk ended (exit code %s): calls cannot be taken; starting it again in %.1f s",
            pbx.exit_code,
            delay,
        )
        await asyncio.sleep(delay)
        metrics.restarts.labels("asterisk").inc()
        pbx.restarts += 1
        try:
            await pbx.restart()
        except (PbxStartError, PbxUnavailable, InstanceBusy, OSError) as exc:
            log.error("Asterisk did not start again: %s", exc)
            continue
        log.warning("Asterisk started again (restart %d)", pbx.restarts)


async def _metrics(request: web.Request) -> web.Response:
    app = request.app
    metrics = app.get(METRICS)
    if metrics is None:
        raise web.HTTPNotFound()
    pbx, ari, controller = app.get(PBX), app.get(ARI), app.get(CONTROLLER)
    if pbx is not None:
        metrics.up.labels("asterisk").set(1 if pbx.running else 0)
    metrics.ari.set(1 if ari is not None and ari.ws_connected else 0)
    metrics.calls.set(len(controller.calls) if controller is not None else 0)
    now = controller.clock() if controller is not None else time.time()
    await metrics.live.refresh(controller, ari, now, _chat_steps(app))
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _chat_steps(app: web.Application) -> list[str]:
    """The step of each chat the desk's chat service holds (none without the desk)."""
    from ivr.chat.http import SERVICE
    from ivr.web.site import DESK_APP

    desk = app.get(DESK_APP)
    service = desk.get(SERVICE) if desk is not None else None
    return [] if service is None else [c.journey.step.value for c in service.chats.values()]


def add_routes(app: web.Application) -> None:
    app[METRICS] = Metrics()
    app.router.add_get("/metrics", _metrics)
