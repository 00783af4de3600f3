"""The controller's lanes (ivr.lanes, issue 13): one call's inputs in order, calls side by side,
GLOBAL inputs alone; what calls share held by one lane at a time. The scheduler on its own, then
the real controller against the fake ARI server of tests/test_adapter_effects.py: a call whose
ARI reply is held up holds up no other call."""

from __future__ import annotations

import asyncio

from ivr import inputs
from ivr.ari.events import parse_event
from ivr.controller import OTHER_EVENTS
from ivr.lanes import GLOBAL, Lanes, Shared
from tests.test_adapter_effects import MEMBER, Rig, rig  # noqa: F401 - the fixture


class Script:
    """Inputs ("key:name" strings; key "*" = GLOBAL) handled by waiting on a gate per name."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []
        self.done: list[str] = []
        self.lanes: Lanes[str] = Lanes(self.handle, self.key)

    @staticmethod
    def key(item: str) -> str | None:
        key = item.split(":")[0]
        return GLOBAL if key == "*" else key

    def gate(self, item: str) -> asyncio.Event:
        return self.gates.setdefault(item, asyncio.Event())

    async def handle(self, item: str) -> None:
        self.started.append(item)
        await self.gate(item).wait()
        self.done.append(item)


async def settle() -> None:
    """Let every ready task run until none is ready (no timer involved)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_one_key_in_order_other_keys_beside_it() -> None:
    s = Script()
    for item in ("a:1", "a:2", "b:1"):
        await s.lanes.dispatch(item)
    await settle()
    assert s.started == ["a:1", "b:1"]  # b does not wait for a's held input
    s.gate("b:1").set()
    await settle()
    assert s.done == ["b:1"] and s.started == ["a:1", "b:1"]  # a:2 still waits for a:1
    s.gate("a:2").set()
    await settle()
    assert s.done == ["b:1"], "a:2 ran before a:1"
    s.gate("a:1").set()
    await s.lanes.idle()
    assert s.done == ["b:1", "a:1", "a:2"]
    assert s.lanes.busy == 0 and s.lanes.most == 2


async def test_a_global_input_runs_after_everything_before_it_and_before_everything_after() -> None:
    s = Script()
    await s.lanes.dispatch("a:1")
    dispatching = asyncio.create_task(s.lanes.dispatch("*:tick"))
    await settle()
    assert s.started == ["a:1"] and not dispatching.done()  # the tick waits for a:1
    s.gate("*:tick").set()
    s.gate("a:1").set()
    await dispatching
    assert s.done == ["a:1", "*:tick"]
    await s.lanes.dispatch("b:1")  # after the tick: starts only now
    s.gate("b:1").set()
    await s.lanes.idle()
    assert s.done == ["a:1", "*:tick", "b:1"]


async def test_an_error_in_one_input_does_not_stop_its_lane() -> None:
    handled: list[str] = []

    async def handle(item: str) -> None:
        if item == "boom":
            raise RuntimeError("boom")
        handled.append(item)

    lanes: Lanes[str] = Lanes(handle, lambda _: "a")
    for item in ("boom", "next"):
        await lanes.dispatch(item)
    await lanes.idle()
    assert handled == ["next"]


async def test_closing_cancels_the_work_in_progress() -> None:
    s = Script()
    await s.lanes.dispatch("a:1")
    await settle()
    await s.lanes.close()
    assert s.done == [] and s.lanes.busy == 0


async def test_the_lane_mark_is_the_lanes_own_not_a_task_it_starts() -> None:
    seen: dict[str, str | None] = {}
    background: list[asyncio.Task[None]] = []

    async def later() -> None:
        seen["started from the lane"] = Lanes.current()

    async def handle(item: str) -> None:
        seen[item] = Lanes.current()
        background.append(asyncio.create_task(later()))

    lanes: Lanes[str] = Lanes(handle, lambda item: None if item == "g" else "call-1")
    await lanes.dispatch("x")
    await lanes.dispatch("g")
    await asyncio.gather(*background)
    assert seen == {"x": "call-1", "g": None, "started from the lane": None}
    assert Lanes.current() is None


async def test_shared_is_held_by_one_lane_at_a_time_and_reentrant() -> None:
    shared = Shared()
    inside: list[str] = []
    most = 0
    release = asyncio.Event()

    async def handle(item: str) -> None:
        nonlocal most
        async with shared.hold():
            inside.append(item)
            most = max(most, len(inside))
            async with shared.hold():  # the same lane again: no deadlock
                await release.wait()
            inside.remove(item)

    lanes: Lanes[str] = Lanes(handle, lambda item: item)
    for item in ("a", "b", "c"):
        await lanes.dispatch(item)
    await settle()
    assert len(inside) == 1
    release.set()
    await lanes.idle()
    assert most == 1 and inside == []


async def test_shared_outside_a_lane_is_not_held() -> None:
    shared = Shared()
    async with shared.hold(), shared.hold():
        pass  # a GLOBAL input or code outside the loop: runs alone already, never waits


def stasis_start(channel_id: str) -> inputs.AriInput:
    return inputs.AriInput(
        parse_event(
            {
                "type": "StasisStart",
                "args": [],
                "channel": {
                    "id": channel_id,
                    "name": f"PJSIP/caller-{channel_id[-1]}",
                    "caller": {"number": "0299990000"},
                },
            }
        )
    )


async def test_a_call_held_up_by_asterisk_holds_up_no_other_call(rig: Rig) -> None:  # noqa: F811
    """Call A's answer is not answered by ARI; call B, which came after it, is answered and
    hears its greeting meanwhile; A goes on where it was when its reply comes."""
    a, b = "1700000000.11", "1700000000.12"
    held = rig.fake.gates[("POST", f"channels/{a}/answer")] = asyncio.Event()
    controller = rig.controller
    for item in (stasis_start(a), stasis_start(b)):
        await controller.lanes.dispatch(item)
    await rig.fake.request_arrives("POST", f"channels/{b}/play/")
    assert rig.fake.paths("POST", f"channels/{b}/answer")
    assert not rig.fake.paths("POST", f"channels/{a}/play/")  # A waits for its answer
    held.set()
    await rig.fake.request_arrives("POST", f"channels/{a}/play/")
    order = [p for _, p, _ in rig.fake.requests if p.startswith(f"channels/{a}/")]
    assert order.index(f"channels/{a}/answer") < order.index(
        rig.fake.paths("POST", f"channels/{a}/play/")[0]
    )
    await controller.lanes.idle()
    assert {a, b} <= set(controller.calls)
    await controller.shutdown(0)  # ends both calls: their audio taps are closed


async def test_an_event_for_another_call_goes_through_that_calls_lane(rig: Rig) -> None:  # noqa: F811
    """Fed from call A's lane, call B's event waits behind B's own input in progress."""
    a, b = "1700000000.21", "1700000000.22"
    controller = rig.controller
    held = rig.fake.gates[("POST", f"channels/{b}/answer")] = asyncio.Event()
    await controller.lanes.dispatch(stasis_start(b))
    await rig.fake.request_arrives("POST", f"channels/{b}/answer")
    fed: list[str | None] = []

    async def from_a() -> None:
        fed.append(controller.lanes.current())
        await controller._feed(b, inputs.flow.TimerFired("nothing"))

    # An input of A's lane that feeds B: B's event is posted, not carried out here.
    lanes: Lanes[str] = Lanes(lambda _: from_a(), lambda _: a)
    await lanes.dispatch("x")
    await lanes.idle()
    assert fed == [a]
    posted = controller._inputs.get_nowait()
    assert posted == inputs.FlowInput(b, inputs.flow.TimerFired("nothing"))
    held.set()
    await controller.lanes.idle()
    await controller.shutdown(0)


async def test_an_input_without_a_lane_because_routing_failed_is_handled_alone() -> None:
    handled: list[str] = []

    async def handle(item: str) -> None:
        handled.append(item)

    def key(item: str) -> str | None:
        if item == "odd":
            raise KeyError(item)
        return item

    lanes: Lanes[str] = Lanes(handle, key)
    await lanes.dispatch("odd")  # handled alone, at once: the loop goes on
    assert handled == ["odd"] and lanes.busy == 0


def endpoint_change(resource: str) -> inputs.AriInput:
    ev = {"type": "EndpointStateChange", "endpoint": {"resource": resource, "state": "online"}}
    return inputs.AriInput(parse_event(ev))


async def test_only_a_staff_phones_state_stops_the_lanes(rig: Rig) -> None:  # noqa: F811
    """A staff phone's state changes who can be rung: alone (GLOBAL). The trunk's (it changes
    with every call) and other endpoints' are nobody's business but the watchers'."""
    controller = rig.controller
    assert controller._lane_of(endpoint_change(MEMBER)) is GLOBAL
    assert controller._lane_of(endpoint_change("carrier")) == OTHER_EVENTS
