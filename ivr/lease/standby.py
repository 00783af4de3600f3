"""`ivr-run` with ha_enabled: wait as a standby before anything of the controller starts.

The database is migrated first (the leases table), then the keeper looks every
ha_renew_seconds until the lease is free or lapsed and takes it; from then on it renews it in
its own thread while the controller starts as usual (adopting the running Asterisk, ivr.resume
taking the calls back). A SIGINT or SIGTERM while standing by ends the wait (nothing was
started); the active controller's clean stop releases the lease so the standby takes over at
its next look.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from pathlib import Path

from ivr.config import Settings
from ivr.lease.keeper import LeaseKeeper
from ivr.lease.model import LeaseParams
from ivr.store import Store

log = logging.getLogger(__name__)


async def _migrate(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


def wait_as_standby(settings: Settings) -> LeaseKeeper | None:
    """The keeper, holding and renewing the lease; None when a signal ended the wait."""
    path = settings.state_path(settings.database)
    asyncio.run(_migrate(path))
    keeper = LeaseKeeper(path, LeaseParams(settings.ha_lease_seconds, settings.ha_renew_seconds))
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        fence = keeper.wait_active(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if fence is None:
        keeper.stop(release=False)
        log.info("lease: stopped while standing by")
        return None
    keeper.start()
    return keeper
