"""Writes the database could not take (a full disk, an I/O error), kept until it can.

The store hands every record it writes to `PendingWrites` when the write fails; from then on
new writes queue behind the pending ones (so a call's end never lands before its start), and
the queue is retried in order every `retry_seconds` until it is empty. The queue is bounded:
past `limit` writes the oldest is dropped, with an error in the log. While writes are pending
the store is *degraded*: `/health` says so with the reason, and the log said it at once.

    ok ──write fails──> degraded (writes queue, retried periodically) ──queue written──> ok
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Writes kept in memory at most (the oldest is dropped past this).
DEFAULT_LIMIT = 10_000
#: Seconds between attempts to write what is pending.
DEFAULT_RETRY_SECONDS = 5.0
#: Errors that mean "the database cannot take writes now", not "this write is wrong".
WRITE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.OperationalError, OSError)


class WriteDeferred(Exception):
    """The record could not be written now; it is kept in memory and written later."""


@dataclass(frozen=True)
class Write:
    """One record: what it is (for the log; never personal data) and its SQL."""

    what: str
    sql: str
    args: tuple[Any, ...]


class PendingWrites:
    """A bounded FIFO of writes that failed, with the reason the store is degraded."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._queue: deque[Write] = deque()
        #: Why writes are failing (None: the store is fine).
        self.problem: str | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._queue)

    def __bool__(self) -> bool:
        return bool(self._queue)

    def failed(self, write: Write, exc: BaseException) -> None:
        """`write` could not be written: keep it (dropping the oldest past the limit)."""
        reason = f"{type(exc).__name__}: {exc}"
        if self.problem is None:
            log.error(
                "cannot write the database (%s): records are kept in memory (up to %d) and "
                "written when it can take them again",
                reason,
                self.limit,
            )
        self.problem = reason
        self.queue(write)

    def queue(self, write: Write) -> None:
        self._queue.append(write)
        if len(self._queue) > self.limit:
            lost = self._queue.popleft()
            self.dropped += 1
            log.error(
                "database: %d records pending, the oldest (%s) is dropped (%d dropped so far)",
                self.limit,
                lost.what,
                self.dropped,
            )
        log.warning("database: %s kept in memory (%d pending)", write.what, len(self._queue))

    def peek(self) -> Write:
        return self._queue[0]

    def written(self) -> None:
        """The oldest pending write was written."""
        self._queue.popleft()

    def recovered(self, count: int) -> None:
        if self.problem is not None:
            log.warning("database writable again: %d pending records written", count)
        self.problem = None

    def status(self) -> dict[str, Any]:
        """For /health."""
        return {
            "ok": self.problem is None,
            "pending_writes": len(self._queue),
            "dropped_writes": self.dropped,
            "error": self.problem,
        }
