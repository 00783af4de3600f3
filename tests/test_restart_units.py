"""The pieces of a restart that need no Asterisk: recognising our own Asterisk, closing what a
dead run left open (once), the stop watchdog, and committed rows surviving a kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from ivr import recovery, supervise
from ivr.ari.client import AriNotFound, AriServerError
from ivr.followup.model import AttemptResult, TaskType
from ivr.followup.records import FollowupRecords
from ivr.pbx import adopt
from ivr.store import Store

CONF = "/srv/ivr120/unit/etc/asterisk.conf"


@pytest.fixture
def fake_asterisk(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A process whose command line is an Asterisk's (`asterisk ... -C CONF`), and a pid file."""
    argv = ["/usr/sbin/asterisk", "-c", "import time; time.sleep(60)", "-f", "-C", CONF]
    proc = subprocess.Popen(argv, executable=sys.executable, start_new_session=True)
    pidfile = tmp_path / "asterisk.pid"
    pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 10
    while b"-C" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield proc, pidfile
    finally:
        proc.kill()
        proc.wait()


def test_our_own_asterisk_is_recognised_by_pid_file_command_line_and_root(
    fake_asterisk: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    proc, pidfile = fake_asterisk
    assert adopt.own_asterisk(pidfile, CONF, None) == proc.pid
    assert adopt.own_asterisk(pidfile, "/srv/ivr120/other/etc/asterisk.conf", None) is None
    assert adopt.own_asterisk(pidfile, CONF, tmp_path) is None  # runs in another root
    assert adopt.own_asterisk(pidfile, CONF, Path("/")) == proc.pid
    assert adopt.own_asterisk(tmp_path / "missing.pid", CONF, None) is None
    pidfile.write_text(f"{os.getpid()}\n")  # alive, but not an asterisk
    assert adopt.own_asterisk(pidfile, CONF, None) is None
    pidfile.write_text(f"{proc.pid}\n")
    adopt.stop(proc.pid, timeout=5)
    proc.wait()
    assert not adopt.alive(proc.pid)
    assert adopt.own_asterisk(pidfile, CONF, None) is None


async def test_records_a_dead_run_left_open_are_closed_once_with_the_downtime(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        await store.call_started("open-1", "h1", 100.0)
        await store.call_started("open-2", "h2", 101.0)
        await store.call_started("done", "h3", 90.0)
        await store._write("test", "UPDATE calls SET outcome='completed' WHERE call_id='done'", ())
        await store.ring_started("leg-1", "open-1", "counselor01", 100.5)
        (tmp_path / recovery.HEARTBEAT).touch()
        os.utime(tmp_path / recovery.HEARTBEAT, (180.0, 180.0))
        await recovery.close_left_open(store, tmp_path, 200.0)
        await recovery.close_left_open(store, tmp_path, 300.0)  # a second start: nothing more
    finally:
        await store.close()
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    try:
        rows = db.execute(
            "SELECT call_id, outcome, end_reason, ended_at, downtime_seconds FROM calls"
            " ORDER BY call_id"
        ).fetchall()
        rings = db.execute("SELECT outcome, ended_at FROM ring_attempts").fetchall()
        modes = db.execute("PRAGMA journal_mode").fetchone()
    finally:
        db.close()
    assert rows == [
        ("done", "completed", None, None, None),
        ("open-1", "error", "controller_restart", 200.0, 20.0),
        ("open-2", "error", "controller_restart", 200.0, 20.0),
    ]
    assert rings == [("controller_restart", 200.0)]
    assert modes == ("wal",)


def test_the_watchdog_ends_a_stop_stuck_in_interpreter_shutdown(tmp_path: Path) -> None:
    """A non-daemon thread that never ends (like the aiosqlite one) no longer hangs the exit."""
    marker = tmp_path / "last-words"
    code = textwrap.dedent(
        f"""
        import threading
        from pathlib import Path
        from ivr.stopping import Watchdog
        Watchdog(0.5, lambda: Path({str(marker)!r}).write_text("killed")).arm()
        threading.Thread(target=threading.Event().wait).start()  # never ends
        """
    )
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], timeout=20, check=False)
    assert proc.returncode == 1
    assert time.monotonic() - began < 10
    assert marker.read_text() == "killed"


WRITER = """
import asyncio, sys
from pathlib import Path
from ivr.store import Store

async def main() -> None:
    store = await Store.open(Path(sys.argv[1]))
    n = 0
    while True:
        n += 1
        await store.call_started(f"c{n}", "h", float(n))
        await store.record_consent(f"c{n}", "yes", "key", float(n), "p", "v", "ch")
        await store.add_callback(f"c{n}", "h", None, float(n), "requested", "yes", None)
        print(n, flush=True)  # all three rows of call n are committed

asyncio.run(main())
"""


async def test_kill_9_during_writes_loses_no_committed_row(tmp_path: Path) -> None:
    db_path = tmp_path / "ivr120.sqlite3"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(db_path), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    committed = 0
    async with asyncio.timeout(60):
        while committed < 200:
            committed = int(await proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)  # in the middle of the next writes
    await proc.wait()
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        counts = [
            db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608
            for t in ("calls", "consents", "callbacks")
        ]
    finally:
        db.close()
    assert all(c >= committed for c in counts), (committed, counts)


def test_ari_reconnects_with_a_back_off_capped_at_2_s_and_jitter() -> None:
    from ivr.ari.client import AriClient, _jitter

    assert AriClient("http://127.0.0.1:1/ari", "u", "p", "app").backoff_max == 2.0
    waits = {_jitter(2.0) for _ in range(50)}
    assert all(1.0 <= w <= 2.0 for w in waits) and len(waits) > 1


async def test_follow_up_attempts_and_locks_a_dead_run_left_are_closed_at_start(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        records = FollowupRecords(store)
        task_id, _ = await records.add_or_merge(TaskType.CALLBACK, "h1", None, None, 100.0, 100.0)
        mine, _ = await records.add_or_merge(TaskType.IN_DEPTH, "h2", None, None, 100.0, 100.0)
        assert await records.lock(task_id, "ivr-dead-", 150.0, 600)
        assert await records.lock(mine, "ivr-new-", 199.0, 600)
        open_attempt = await records.attempt_started(task_id, "counselor01", "call-x", 150.0)
        done = await records.attempt_started(task_id, "counselor01", "call-y", 120.0)
        await records.attempt_ended(done, task_id, AttemptResult.BUSY, 130.0, counted=True)
        await recovery.close_left_open(store, tmp_path, 200.0, "ivr-new-")
        task = await records.task(task_id)
        assert task is not None and task.locked_by is None and task.attempts == 1
        other = await records.task(mine)
        assert other is not None and other.locked_by == "ivr-new-"  # this run's own lock
        by_id = {a["id"]: a for a in await records.attempts(task_id)}
        assert by_id[open_attempt]["result"] == "controller_restart"
        assert by_id[open_attempt]["ended_at"] == 200.0
        assert by_id[done]["result"] == "busy"
    finally:
        await store.close()


async def test_a_summary_worker_that_cannot_be_started_is_tried_again() -> None:
    procs: list[asyncio.subprocess.Process] = []
    tries = 0

    async def spawn() -> asyncio.subprocess.Process:
        nonlocal tries
        tries += 1
        if tries <= 2:
            raise OSError(24, "Too many open files")
        proc = await asyncio.create_subprocess_exec("sleep", "30")
        procs.append(proc)
        return proc

    first = await asyncio.create_subprocess_exec("true")  # a worker that ends at once
    worker = supervise.Worker(spawn, first, supervise.Backoff(first=0.01, cap=0.05))
    watch = asyncio.create_task(supervise.supervise_worker(worker, supervise.Metrics()))
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not procs:
            assert not watch.done(), watch.exception()
            assert asyncio.get_running_loop().time() < deadline, "never started again"
            await asyncio.sleep(0.01)
        assert worker.proc is procs[0] and tries == 3
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        for proc in procs:
            proc.kill()
            await proc.wait()


async def test_reconcile_deletes_ignore_what_is_gone_and_log_other_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a real Asterisk won't refuse on demand: a delete failing with a 500."""
    deleted: list[str] = []

    async def delete(path: str) -> None:
        if path.endswith("gone"):
            raise AriNotFound("DELETE", path, 404, "not found")
        if path.endswith("broken"):
            raise AriServerError("DELETE", path, 500, "oops")
        deleted.append(path)

    ctrl = cast(Any, SimpleNamespace(ari=SimpleNamespace(delete=delete)))
    for path in ("bridges/gone", "bridges/broken", "recordings/stored/ok"):
        await recovery._delete(ctrl, path)
    assert deleted == ["recordings/stored/ok"]
    failures = [r.getMessage() for r in caplog.records if r.name == "ivr.recovery"]
    assert failures == ["cannot delete bridges/broken: ARI DELETE bridges/broken -> 500: oops"], (
        failures
    )
