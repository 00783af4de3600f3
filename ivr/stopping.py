"""Serving the app until Ctrl-C or SIGTERM, and a stop that always ends.

`aiohttp.web.run_app` turns *every* SIGINT/SIGTERM into an exception raised wherever the loop
is: a second signal during the graceful stop (Ctrl-C, then a service manager's SIGTERM) broke
off the cleanup half-way — the database's aiosqlite thread was never closed and the interpreter
hung at exit joining it, with Asterisk, in its own session, still running. Here the first
signal starts the graceful stop (calls end with an apology, then the resources close in
reverse order) and later ones are only logged. A watchdog thread, armed by the first signal,
bounds the whole stop: if the process has not ended `shutdown_grace + STOP_MARGIN` seconds
after the first signal — stuck in the cleanup, in a thread join at interpreter exit, anywhere —
it stops the managed Asterisk and the summary worker by signal and ends the process at once.
Committed records are safe then: every write is committed and synced (ivr/store.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable

from aiohttp import web

from ivr.keys import PBX, SUMMARY_WORKER
from ivr.supervise import WORKER

log = logging.getLogger(__name__)

#: Seconds beyond shutdown_grace that a stop may take before the watchdog ends it.
STOP_MARGIN = 4.0
#: Exit status of a stop the watchdog had to end.
FORCED_EXIT = 1


class Watchdog:
    """Ends the process `budget` seconds after `arm()`, whatever the main thread is doing."""

    def __init__(self, budget: float, last_words: Callable[[], None]) -> None:
        self.budget = budget
        self._last_words = last_words
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.budget, self._fire)
            self._timer.daemon = True  # never what keeps the process alive
            self._timer.start()

    def _fire(self) -> None:
        with contextlib.suppress(Exception):
            log.error("the stop did not end within %.0f s; ending it now", self.budget)
            self._last_words()
        with contextlib.suppress(Exception):
            logging.shutdown()
        os._exit(FORCED_EXIT)


def kill_children(app: web.Application) -> None:
    """Stop what the app started that would outlive it (from any thread, never blocking
    for long): the summary worker and a managed (or adopted) Asterisk."""
    supervised = app.get(WORKER)
    worker = supervised.proc if supervised is not None else app.get(SUMMARY_WORKER)
    if worker is not None and worker.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)
    pbx = app.get(PBX)
    if pbx is not None:
        pbx.kill_now()


async def serve(app: web.Application, port: int, grace: float) -> None:
    """Serve the status page on loopback `port` until the first SIGINT/SIGTERM, then stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    watchdog = Watchdog(grace + STOP_MARGIN, lambda: kill_children(app))

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s: already stopping (within %.0f s)", sig.name, watchdog.budget)
            return
        log.info("%s: stopping", sig.name)
        watchdog.arm()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=min(5.0, grace))
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        await stop.wait()
    finally:
        await runner.cleanup()
