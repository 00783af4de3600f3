"""`ivr-run` with ha_enabled: wait as a standby before anything of the controller starts.

The database is migrated first (the leases table), then the keeper looks every
ha_renew_seconds until the lease is free or lapsed and takes it; from then on it renews it in
its own thread while the controller starts as usual (adopting the running Asterisk, ivr.resume
taking the calls back). While it waits, the status port serves only /health, saying standby
(ivr/lease/http.py); it is closed before the controller starts and opens it again. It waits
warm: the speech model is loaded meanwhile (`warm_up`). A SIGINT or
SIGTERM while standing by ends the wait (nothing was started); the active controller's clean
stop releases the lease so the standby takes over at its next look.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from pathlib import Path

from aiohttp import web

from ivr.config import Settings
from ivr.lease.fence import Fence
from ivr.lease.http import standby_app
from ivr.lease.keeper import LeaseKeeper
from ivr.lease.model import LeaseParams
from ivr.store import Store
from speech.recognizer import load_model

log = logging.getLogger(__name__)


class StandbyError(Exception):
    """The standby cannot wait (its status port is taken)."""


async def _migrate(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


async def stand_by(keeper: LeaseKeeper, status_port: int) -> Fence | None:
    """Serve the standby's /health while the keeper waits (in a thread) for the lease."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(standby_app(lambda: keeper.seen), access_log=None)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", status_port).start()
        except OSError as exc:
            raise StandbyError(
                f"status port TCP 127.0.0.1:{status_port} is already in use ({exc.strerror}); "
                "set status_port (IVR120_STATUS_PORT) to a free one. (포트가 이미 사용 중입니다)"
            ) from exc
        return await asyncio.to_thread(keeper.wait_active, stop)
    finally:
        stop.set()  # cancelled while waiting: the thread ends too (asyncio.run waits for it)
        await runner.cleanup()
        for sig in signals:
            loop.remove_signal_handler(sig)


def warm_up(settings: Settings) -> threading.Thread | None:
    """A warm standby: the speech model (the slowest part of a start, about 1.4 s here) is
    loaded while it waits, so that a take-over resumes the calls sooner (`ivr-bench
    failover`). The controller's own load then finds it in the process (or waits for it)."""
    if not settings.voice_answers:
        return None

    def load() -> None:
        try:
            load_model()
        except Exception as exc:  # the controller's start reports it, as without a standby
            log.warning("standby: the speech model could not be loaded ahead (%s)", exc)

    thread = threading.Thread(target=load, name="standby-warm-up", daemon=True)
    thread.start()
    return thread


def wait_as_standby(settings: Settings) -> LeaseKeeper | None:
    """The keeper, holding and renewing the lease; None when a signal ended the wait."""
    path = settings.state_path(settings.database)
    asyncio.run(_migrate(path))
    warm_up(settings)
    keeper = LeaseKeeper(path, LeaseParams(settings.ha_lease_seconds, settings.ha_renew_seconds))
    try:
        fence = asyncio.run(stand_by(keeper, settings.status_port))
    except BaseException:
        keeper.stop(release=False)
        raise
    if fence is None:
        keeper.stop(release=False)
        log.info("lease: stopped while standing by")
        return None
    keeper.start()
    return keeper
