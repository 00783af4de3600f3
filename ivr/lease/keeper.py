"""The lease's thread: wait as a standby until this process holds the lease, then renew it.

It is a thread, not an asyncio task, so a busy event loop (a start building prompts, a slow
callback) never delays a renewal, and so a standby waits before any of the controller exists.
A renewal that finds the lease taken over calls the fence's `lost` (the process ends); one
that fails on a locked or unreadable database is logged and tried again at the next tick — if
that lasts past the expiry, the fence's own check stops the controller at its next action.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ivr.lease import records
from ivr.lease.fence import Fence
from ivr.lease.model import CONTROLLER, Decision, Lease, LeaseParams

log = logging.getLogger(__name__)

#: Exit status of a controller that lost the lease (EX_TEMPFAIL: "start me again").
LEASE_LOST_EXIT = 75


def holder_id() -> str:
    """This process's name in the lease row: unique per start, readable in the log."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def exit_now(why: str) -> None:
    """`on_lost` for `ivr-run`: end the process at once, without a graceful stop — hanging up
    calls or stopping Asterisk would harm the calls the new active controller has taken."""
    with contextlib.suppress(Exception):
        logging.shutdown()  # flush what was logged (the fence logged why)
    os._exit(LEASE_LOST_EXIT)


class LeaseKeeper:
    def __init__(
        self,
        path: Path,
        params: LeaseParams,
        on_lost: Callable[[str], None] = exit_now,
        me: str | None = None,
        clock: Callable[[], float] = time.time,
        name: str = CONTROLLER,
    ) -> None:
        self.path = path
        self.params = params
        self.me = me or holder_id()
        self.name = name
        self._on_lost = on_lost
        self._clock = clock
        self._conn = records.connect(path, timeout=params.renew_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lease: Lease | None = None
        self.fence: Fence | None = None
        #: The row of the last look while standing by (another controller's lease, or None).
        self.seen: Lease | None = None

    def wait_active(self, stop: threading.Event | None = None) -> Fence | None:
        """Block as a standby until this process holds the lease (its fence), or `stop` is set
        (None)."""
        stop = stop or self._stop
        shown: str | None = None
        while not stop.is_set():
            try:
                decision, row = records.attempt(
                    self._conn, self.me, None, self._clock(), self.params, self.name
                )
            except sqlite3.Error as exc:
                log.warning("lease: cannot read it (%s); trying again", exc)
            else:
                self.seen = row
                if decision is Decision.TAKE_OVER and row is not None:
                    log.info("lease: standby -> active (token %d, holder %s)", row.token, self.me)
                    self.lease = row
                    self.fence = Fence(row.token, row.expires_at, self._on_lost, self.name)
                    return self.fence
                if row is not None and row.holder != shown:
                    shown = row.holder
                    log.info("lease: standby; %s is active (token %d)", row.holder, row.token)
            stop.wait(self.params.renew_seconds)
        return None

    def start(self) -> None:
        """Renew the lease every renew_seconds (after `wait_active` returned a fence)."""
        if self.fence is None:
            raise RuntimeError("the lease is not held: wait_active() first")
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def renew_once(self) -> Decision:
        """One renewal: RENEW (the fence now lasts longer), LOST (`lost` was called) or an
        sqlite3.Error raised (nothing changed)."""
        assert self.lease is not None and self.fence is not None
        decision, row = records.attempt(
            self._conn, self.me, self.lease, self._clock(), self.params, self.name
        )
        if decision is Decision.RENEW and row is not None:
            self.lease = row
            self.fence.renewed(row.expires_at)
        elif decision is Decision.LOST:
            holder = f"{row.holder} (token {row.token})" if row else "nobody"
            self.fence.lost(f"the lease is held by {holder}")
        return decision

    def _run(self) -> None:
        while not self._stop.wait(self.params.renew_seconds):
            try:
                if self.renew_once() is Decision.LOST:
                    return
            except sqlite3.Error as exc:
                log.warning("lease: renewal failed (%s); trying again", exc)

    def stop(self, release: bool = True) -> None:
        """Stop renewing; with `release`, let the lease lapse now so a standby takes over at
        its next look instead of after lease_seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if release and self.lease is not None and not (self.fence and self.fence.is_lost):
            try:
                if records.release(self._conn, self.lease, self._clock(), self.name):
                    log.info("lease: released (token %d)", self.lease.token)
            except sqlite3.Error as exc:
                log.warning("lease: could not release it (%s); it lapses by itself", exc)
        self._conn.close()
