"""The controller's inputs in lanes: in order per call, concurrently across calls (issue 13).

One queue in, one dispatcher taking the inputs in the order they came. An input with a key (a
call's id) goes to that key's lane: the lane's inputs are handled one after another, in
order, while other lanes' inputs are handled at the same time, so no caller waits on another
caller's slow ARI reply. An input without a key (`GLOBAL`: staff legs, the ring-group tick,
admin actions, a reconnect) waits until every input taken before it is done and runs alone;
no input taken after it starts before it ends. That is exactly the old one-at-a-time order for
everything that is not one call's own business.

Inside a lane, work that touches what calls share (the ring groups, staff legs, the follow-up
dialler) runs under `Shared.hold()`, one lane at a time, and a lane feeding *another* call
posts the event to that call's lane instead of running its commands (`Lanes.current()`).
Written by hand: asyncio has no keyed executor, and the barrier (`GLOBAL`) and the reentrant
hold are what make it safe for this controller.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The key of inputs that run alone, after everything before them.
GLOBAL = None

#: The lane the running task drains, with that task: a task started from a lane inherits the
#: variable but is not the lane (it runs beside the loop, as code outside the loop always has).
_LANE: contextvars.ContextVar[tuple[str, asyncio.Task[None]] | None] = contextvars.ContextVar(
    "ivr_lane", default=None
)
#: The task holding `Shared` (the hold is reentrant within that task).
_HOLDING: contextvars.ContextVar[asyncio.Task[None] | None] = contextvars.ContextVar(
    "ivr_holding", default=None
)


def _mine(task: asyncio.Task[None] | None) -> bool:
    return task is not None and task is asyncio.current_task()


class Lanes(Generic[T]):
    def __init__(
        self,
        handle: Callable[[T], Awaitable[None]],
        key: Callable[[T], str | None],
    ) -> None:
        self._handle, self._key = handle, key
        self._queued: dict[str, collections.deque[T]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: The most lanes running at once since the start (a figure for tests and profiling).
        self.most = 0

    @staticmethod
    def current() -> str | None:
        """The key of the lane this code runs in (None: not in a lane)."""
        lane = _LANE.get()
        return lane[0] if lane is not None and _mine(lane[1]) else None

    @property
    def busy(self) -> int:
        """Lanes with inputs in progress now."""
        return len(self._tasks)

    @property
    def waiting(self) -> int:
        """Inputs given to lanes and not started yet."""
        return sum(len(q) for q in self._queued.values())

    async def dispatch(self, item: T) -> None:
        """Hand `item` to its lane (returns at once), or, for a GLOBAL one, run it alone."""
        try:
            key = self._key(item)
        except Exception:  # a routing error must not stop the loop: alone is always safe
            log.exception("no lane for %s; handled alone", type(item).__name__)
            key = GLOBAL
        if key is GLOBAL:
            await self.idle()
            await self._handle(item)
            return
        queued = self._queued.get(key)
        if queued is not None:
            queued.append(item)
            return
        self._queued[key] = collections.deque((item,))
        self._tasks[key] = asyncio.create_task(self._drain(key), name=f"lane-{key}")
        self.most = max(self.most, len(self._tasks))

    async def idle(self) -> None:
        """Until every lane has handled everything it was given."""
        while self._tasks:
            await asyncio.wait(list(self._tasks.values()))

    async def close(self) -> None:
        """Cancel the lanes' work in progress (the controller is stopping)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, key: str) -> None:
        _LANE.set((key, self._tasks[key]))  # this task's own context: ends with the task
        queued = self._queued[key]
        try:
            while queued:
                item = queued.popleft()
                try:
                    await self._handle(item)
                except Exception:  # the handler's own errors are its business; the lane goes on
                    log.exception("lane %s: unexpected error handling %s", key, type(item).__name__)
        finally:
            # No await between the last `while queued` and here: an input dispatched for
            # this key from now on starts a new lane.
            del self._queued[key]
            del self._tasks[key]


class Shared:
    """What calls share, held by one lane at a time. Outside lanes holding is a no-op: a GLOBAL
    input runs alone; code outside the loop that changes calls (the stop's ending of every
    call) goes through `Controller.submit`, a GLOBAL input, and tests drive a loop of their own."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if Lanes.current() is None or _mine(_HOLDING.get()):
            yield
            return
        async with self._lock:
            token = _HOLDING.set(asyncio.current_task())
            try:
                yield
            finally:
                _HOLDING.reset(token)
