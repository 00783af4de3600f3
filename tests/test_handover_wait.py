"""The hand-over waits for every call to be one the next run can take back (ivr/stopping.py,
ivr.resume.not_taken_back): over real journey machines in each state, and the wait itself over
a controller stand-in whose list of such calls the test empties or not (what a crisis transfer
or a goodbye ending gives, on demand)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from ivr.keys import CONTROLLER, HANDOVER
from ivr.resume import not_taken_back
from ivr.stopping import Watchdog, hand_over
from tests.flow_support import CONFIG, connected, goodbye, menu_waiting, waiting


def test_calls_in_a_goodbye_or_without_a_journey_snapshot_are_not_taken_back() -> None:
    journeys: dict[str, Any] = {
        "menu": menu_waiting(),
        "waiting": waiting(),
        "talking": connected(),
        "goodbye": goodbye()[0],
        "followup": object(),  # an outbound follow-up call's journey: no snapshot
    }
    assert not_taken_back(journeys, CONFIG, 100.0) == ["goodbye", "followup"]


class Calls:
    """The controller as the hand-over sees it: the calls the next run could not take back."""

    def __init__(self, left: list[str]) -> None:
        self.left = left

    def not_taken_back(self) -> list[str]:
        return list(self.left)


def app_with(calls: Calls) -> web.Application:
    app = web.Application()
    app[HANDOVER] = asyncio.Event()
    app[CONTROLLER] = calls  # type: ignore[misc]
    return app


class Dog(Watchdog):
    """The stop's watchdog, noting that it was armed (a real one would end the process)."""

    armed = False

    def arm(self) -> None:
        self.armed = True


def watchdog() -> Dog:
    return Dog(3600.0, lambda: None)


async def test_the_hand_over_goes_ahead_once_the_goodbye_has_ended() -> None:
    calls = Calls(["goodbye"])
    app, stop, dog = app_with(calls), asyncio.Event(), watchdog()
    task = asyncio.create_task(hand_over(app, 30.0, stop, dog))
    await asyncio.sleep(0)  # it looked once: the goodbye is still up
    assert not stop.is_set() and not app[HANDOVER].is_set()
    calls.left.clear()  # the goodbye ended
    await asyncio.wait_for(task, 5)
    assert stop.is_set() and app[HANDOVER].is_set() and dog.armed


async def test_a_call_still_up_after_the_grace_means_no_hand_over() -> None:
    app, stop, dog = app_with(Calls(["crisis"])), asyncio.Event(), watchdog()
    await asyncio.wait_for(hand_over(app, 0.3, stop, dog), 5)
    assert not stop.is_set() and not app[HANDOVER].is_set()  # the product runs on
    assert not dog.armed


async def test_a_sigterm_while_waiting_is_the_usual_stop() -> None:
    app, stop, dog = app_with(Calls(["goodbye"])), asyncio.Event(), watchdog()
    task = asyncio.create_task(hand_over(app, 30.0, stop, dog))
    await asyncio.sleep(0)
    stop.set()  # SIGTERM: the calls end with the apology as in any stop
    await asyncio.wait_for(task, 5)
    assert not app[HANDOVER].is_set()
