"""Never two active controllers: two processes share one SQLite file through the real lease
keeper and store (tests/lease_support.py). The active one is paused with SIGSTOP past its
lease, the standby takes over, and when the first resumes its next write is refused and it
ends with LEASE_LOST_EXIT; the new active one's writes stand."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

from ivr.lease.keeper import LEASE_LOST_EXIT
from tests.lease_support import PARAMS, Process, prepare


def _call_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT call_id FROM calls ORDER BY started_at")]


async def test_a_paused_active_controller_is_fenced_after_the_take_over(tmp_path: Path) -> None:
    path = tmp_path / "ivr.sqlite3"
    await prepare(path)
    a = Process("node", str(path), "a")
    b: Process | None = None
    try:
        assert a.expect("active") == "active 1"
        a.send("write")
        a.expect("wrote a-1")
        b = Process("node", str(path), "b")
        b.expect("standby")
        os.kill(a.proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        assert b.expect("active") == "active 2"
        # within the lease and one look (plus a start of Python, under load)
        assert time.monotonic() - stopped < PARAMS.lease_seconds + 3 * PARAMS.renew_seconds + 2
        b.send("write")
        b.expect("wrote b-1")
        a.send("write")  # waits in the pipe for a's resumption
        os.kill(a.proc.pid, signal.SIGCONT)
        assert a.proc.wait(timeout=15) == LEASE_LOST_EXIT
        assert not any(line.startswith("wrote") for line in a.rest())
        b.send("write")
        b.expect("wrote b-2")
        assert _call_ids(path) == ["a-1", "b-1", "b-2"]
        assert any("lost" in line for line in a.errors)
    finally:
        a.stop()
        if b is not None:
            b.stop()


async def test_a_cleanly_stopped_active_controller_hands_over_at_once(tmp_path: Path) -> None:
    path = tmp_path / "ivr.sqlite3"
    await prepare(path)
    a = Process("node", str(path), "a")
    b: Process | None = None
    try:
        a.expect("active 1")
        b = Process("node", str(path), "b")
        b.expect("standby")
        a.proc.terminate()
        assert a.proc.wait(timeout=15) == 0
        released = time.monotonic()
        assert b.expect("active") == "active 2"
        # the lease was released: one look, not a whole lease
        assert time.monotonic() - released < PARAMS.lease_seconds
    finally:
        a.stop()
        if b is not None:
            b.stop()
