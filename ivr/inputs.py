"""The adapter's inputs: one queue, taken in order, each handled in its call's lane or alone
(ivr.controller, ivr.lanes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivr.ari.events import Event
from ivr.flow import call as flow
from ivr.followup.events import FollowupEvent

if TYPE_CHECKING:
    from ivr.context import ActiveCall


@dataclass(frozen=True)
class AriInput:
    event: Event


@dataclass(frozen=True)
class FlowInput:
    """A flow event for one call (a timer fired, an audio tap heard something)."""

    call_id: str
    event: flow.FlowEvent | FollowupEvent


@dataclass(frozen=True)
class Tick:
    """Time to plan the ring groups again (members may have become free)."""


@dataclass(frozen=True)
class Submitted:
    """A coroutine function run in turn with the events (admin actions, reloads)."""

    func: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]


@dataclass(frozen=True)
class RetryBookkeeping:
    """A bookkeeping command that failed, carried out again (see ivr.effects)."""

    call: ActiveCall
    command: flow.Command
    attempt: int


Input = AriInput | FlowInput | Tick | Submitted | RetryBookkeeping
