"""A controller stand-in for the lease tests, run as its own process with the real lease
keeper and the real store on a shared SQLite file (python -m tests.lease_support ...).

    race DB             on each line "go" on stdin: one standby look (attempt), prints
                        "took <token>" or "standby"
    node DB NAME        wait as a standby ("standby" once, "active <token>" when it holds the
                        lease), then on each line "write" on stdin: store.call_started(NAME-n),
                        prints "wrote NAME-n"; a lost lease ends it with LEASE_LOST_EXIT (the
                        production `exit_now`); SIGTERM releases the lease and exits 0
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from ivr.lease import records
from ivr.lease.keeper import LeaseKeeper
from ivr.lease.model import Decision, LeaseParams
from ivr.store import Store

PARAMS = LeaseParams(lease_seconds=2.0, renew_seconds=0.5)


def say(line: str) -> None:
    print(line, flush=True)


async def prepare(path: Path) -> None:
    """The schema, as ivr-run's store creates it."""
    store = await Store.open(path)
    await store.close()


async def held_by_another(path: Path) -> None:
    """The database with the lease held for an hour by a controller that is not under test."""
    await prepare(path)
    conn = records.connect(path, 1.0)
    try:
        records.attempt(conn, "elsewhere", None, time.time(), LeaseParams(3600.0, 1.0))
    finally:
        conn.close()


def race(path: Path) -> None:
    conn = records.connect(path, timeout=5.0)
    me = f"racer-{id(conn)}"
    for line in sys.stdin:
        if line.strip() == "go":
            decision, row = records.attempt(conn, me, None, time.time(), PARAMS)
            if decision is Decision.TAKE_OVER and row is not None:
                say(f"took {row.token}")
            else:
                say("standby")


async def serve(path: Path, name: str, keeper: LeaseKeeper) -> None:
    store = await Store.open(path)
    store.fence = keeper.fence
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    n = 0
    try:
        while not stop.is_set():
            line = asyncio.ensure_future(reader.readline())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait({line, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not line.done():
                line.cancel()
                break
            if line.result().strip() == b"write":
                n += 1
                await store.call_started(f"{name}-{n}", "hash", time.time())
                say(f"wrote {name}-{n}")
            elif not line.result():
                break
    finally:
        await store.close()


def node(path: Path, name: str) -> int:
    asyncio.run(prepare(path))
    keeper = LeaseKeeper(path, PARAMS, me=name)
    waiting = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: waiting.set())
    say("standby")
    fence = keeper.wait_active(waiting)
    if fence is None:
        return 0
    keeper.start()
    say(f"active {fence.token}")
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        asyncio.run(serve(path, name, keeper))
    finally:
        keeper.stop(release=True)
    say("stopped")
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if argv[0] == "race":
        race(Path(argv[1]))
        return 0
    return node(Path(argv[1]), argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


class Process:
    """A lease_support process driven from a test: lines in on stdin, lines out read by a
    thread (so a wait has a deadline and never blocks the test forever)."""

    def __init__(self, *args: str) -> None:
        import queue
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.lease_support", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.errors: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _read_errors(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors.append(line.rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str, timeout: float = 15.0) -> str:
        """The next line starting with `prefix` (earlier other lines are kept in `seen`)."""
        import queue

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.0))
            except queue.Empty:
                raise AssertionError(
                    f"no {prefix!r} within {timeout} s; saw {self.seen}; stderr {self.errors}"
                ) from None
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def rest(self) -> list[str]:
        """The lines printed and not read yet (call after the process ended)."""
        self._reader.join(timeout=15)
        out = []
        while not self.lines.empty():
            out.append(self.lines.get())
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
