"""Where chats queue: the counselors' ring group of the running controller (ivr.chat.service)."""

from __future__ import annotations

from typing import Any, Protocol

from ivr.keys import CONTROLLER
from ivr.staff.driver import COUNSELORS, StaffError
from ivr.staff.ringgroup import RingGroup


class Queue(Protocol):
    """Where chats are queued, and who is on shift for it."""

    def group(self) -> RingGroup | None: ...

    def on_shift(self, group: RingGroup, now: float) -> frozenset[str] | None: ...


class Counselors:
    """Where chats are queued: the counselors' ring group of the running controller (read at
    each use: the desk is built before the controller starts, and outlives a failed start)."""

    def __init__(self, main: Any) -> None:
        self.main = main

    def group(self) -> RingGroup | None:
        controller = self.main.get(CONTROLLER)
        if controller is None or not controller.staff.restored:
            return None  # not up, or its members' states not seeded yet (RingGroup.restore)
        try:
            return controller.staff.team_group(COUNSELORS)
        except StaffError:
            return None

    def on_shift(self, group: RingGroup, now: float) -> frozenset[str] | None:
        controller = self.main.get(CONTROLLER)
        return controller.staff.on_shift(group.name, now) if controller is not None else None
