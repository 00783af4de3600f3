"""Helpers for the ring group model tests (tests/test_ringgroup_*.py): four members, the
config from the default settings, and a caller taken from enqueue to answer."""

from __future__ import annotations

import dataclasses
from typing import Any

from ivr.config import Settings
from ivr.configs import ring_group_config
from ivr.staff.ringgroup import Ring, RingGroup, RingGroupConfig, Strategy

MEMBERS = ("c1", "c2", "c3", "c4")
ALL = set(MEMBERS)


def make_config(**changes: Any) -> RingGroupConfig:
    """The ring group's config from the default settings, with `changes`."""
    return dataclasses.replace(ring_group_config(Settings()), **changes)


NO_WRAPUP = make_config(wrapup_seconds=0)


def ringall() -> RingGroup:
    return RingGroup("loneliness", MEMBERS, make_config(strategy=Strategy.RINGALL))


def group(config: RingGroupConfig | None = None) -> RingGroup:
    return RingGroup("loneliness", MEMBERS, config or make_config())


def legs_of(rings: list[Ring]) -> dict[str, str]:
    """leg id -> member."""
    return {r.leg_id: r.member for r in rings}


def take_call(g: RingGroup, call_id: str, now: float, reachable: set[str] = ALL) -> str:
    """Enqueue a caller, ring, answer; returns the member who took it."""
    g.enqueue(call_id, now)
    rings = [r for r in g.plan(reachable, "leg-", now) if r.call_id == call_id]
    assert len(rings) == 1, rings
    result = g.answered(rings[0].leg_id, now)
    assert result is not None
    return result[1]
