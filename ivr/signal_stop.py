"""A stop flag that a signal handler may set: no lock is taken, so no signal can deadlock it.

Why not `threading.Event`: its `set()` takes the event's lock, and a Python signal handler runs
in the main thread between two bytecodes — also while that thread is inside `Event.wait()`
holding the same lock, or inside another handler's `set()`. The handler then waits for a lock
its own thread holds, for ever. A SIGKILL of `ivr-run` sends its summary worker several
SIGTERMs at once (the parent-death signal is sent again as each thread of the dead parent goes),
and one worker in about 25 hung so, orphaned, holding its lock: the next worker was refused and
no summary was made until someone killed it by hand.

Here `set()` only assigns a flag and writes one byte to a pipe (both safe in a handler, and
calling it again is harmless); `wait(timeout)` waits on the pipe with `select`, so a signal
wakes it at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import time


class SignalStop:
    """`set()` (from a signal handler or anywhere in the main thread), `is_set()`,
    `wait(timeout)` — the part of `threading.Event` the summary worker uses."""

    def __init__(self) -> None:
        self._flag = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._w, False)
        os.set_blocking(self._r, False)

    def set(self) -> None:
        self._flag = True
        with contextlib.suppress(BlockingIOError):  # a full pipe already wakes the waiter
            os.write(self._w, b"x")

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Until set or `timeout` seconds passed; True when set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._flag:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._r, 512)
        return self._flag

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)
