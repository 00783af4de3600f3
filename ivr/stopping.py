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

SIGUSR2 is the stop for an update (a hand-over): once every call is one the next run can take
back (a crisis transfer, a goodbye or a follow-up call is waited for, up to `shutdown_grace`;
still up, nothing is handed over), the same orderly close, except that no call is ended and
Asterisk is left running with every call on it (the watchdog too leaves it); the next
`ivr-run` of the instance adopts it and takes the calls back (ivr.resume), as after a crash
but with every input already taken carried out, phones still ringing stopped, the summary
worker stopped, the database closed and, with `ha_enabled`, the lease released at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

from aiohttp import web

from ivr.keys import CONTROLLER, HANDOVER, PBX, SUMMARY_WORKER
from ivr.supervise import WORKER

log = logging.getLogger(__name__)

#: Seconds beyond shutdown_grace that a stop may take before the watchdog ends it.
STOP_MARGIN = 4.0
#: Exit status of a stop the watchdog had to end.
FORCED_EXIT = 1
#: The stop for an update: the calls stay in Asterisk, which keeps running, and the next run
#: takes them back (`systemctl kill --kill-whom=main -s USR2 ivr120`: to ivr-run alone, never
#: to Asterisk, which SIGUSR2 would end; then systemd starts it again).
HANDOVER_SIGNAL = signal.SIGUSR2


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
    for long): the summary worker and a managed (or adopted) Asterisk — not Asterisk when
    the stop hands over (its calls are the next run's)."""
    supervised = app.get(WORKER)
    worker = supervised.proc if supervised is not None else app.get(SUMMARY_WORKER)
    if worker is not None and worker.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)
    pbx = app.get(PBX)
    if pbx is not None and not app[HANDOVER].is_set():
        pbx.kill_now()


def leave(status: int = 0) -> NoReturn:
    """End the process at once after a hand-over, with the logs flushed. Not a normal exit:
    at interpreter exit asyncio would kill the Asterisk child left running (its process
    object is collected, and with it its transport, which kills a child still running)."""
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(status)


#: Seconds between two looks at the calls a hand-over waits for.
HANDOVER_LOOK = 0.2


async def hand_over(
    app: web.Application, grace: float, stop: asyncio.Event, watchdog: Watchdog
) -> None:
    """SIGUSR2: the hand-over starts once every call is one the next run can take back; a
    call that is not (a crisis transfer, a goodbye, a follow-up call) is waited for up to
    `grace` seconds; still there, nothing is handed over and the product runs on (logged:
    send SIGUSR2 again later). Nobody is cut off by an update."""
    log.warning("%s: handing over - the calls stay in Asterisk for the next run", "SIGUSR2")
    controller = app.get(CONTROLLER)

    def not_taken_back() -> list[str]:
        return controller.not_taken_back() if controller is not None else []

    deadline = asyncio.get_running_loop().time() + grace
    left = not_taken_back()
    while left and asyncio.get_running_loop().time() < deadline and not stop.is_set():
        await asyncio.sleep(HANDOVER_LOOK)
        left = not_taken_back()
    if stop.is_set():
        return  # a SIGTERM meanwhile: the usual stop
    if left:
        log.error(
            "SIGUSR2: NOT handing over - %d call(s) the next run could not take back are still "
            "up (a crisis transfer, a goodbye or a follow-up call); still running: send SIGUSR2 "
            "again when they have ended (인계하지 않았습니다: 이어받을 수 없는 통화가 있습니다)",
            len(left),
        )
        return
    app[HANDOVER].set()
    watchdog.arm()
    stop.set()


async def serve(app: web.Application, port: int, grace: float) -> None:
    """Serve the status page on loopback `port` until the first SIGINT/SIGTERM, then stop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    watchdog = Watchdog(grace + STOP_MARGIN, lambda: kill_children(app))

    waiting: list[asyncio.Task[None]] = []

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s: already stopping (within %.0f s)", sig.name, watchdog.budget)
            return
        if sig is HANDOVER_SIGNAL:
            if waiting and not waiting[0].done():
                log.warning("%s: already handing over", sig.name)
            else:
                waiting[:] = [asyncio.create_task(hand_over(app, grace, stop, watchdog))]
            return
        log.info("%s: stopping", sig.name)
        watchdog.arm()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, HANDOVER_SIGNAL):
        loop.add_signal_handler(sig, on_signal, sig)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=min(5.0, grace))
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        await stop.wait()
    finally:
        await runner.cleanup()
