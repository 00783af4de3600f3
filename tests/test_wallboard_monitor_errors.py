"""Listen / whisper / barge (ivr.wallboard.monitoring) on what a real Asterisk will not do on
demand: a snoop refused with a 500. The monitoring ends at once, audited with the failure, and
removes what it made (the supervisor's ringing phone leg, its snoop, its bridge). Against an
in-process fake ARI (a real aiohttp app on port 0, as in tests/test_ari_client.py) and a
stand-in controller holding one call talking with a counselor; everything else is tested with
Asterisk in tests/test_e2e_monitor.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.ari.client import AriClient
from ivr.ari.events import parse_event
from ivr.config import load_settings
from ivr.flow.conversation import State
from ivr.keys import CONTROLLER, SETTINGS
from ivr.wallboard.monitor import Mode
from ivr.wallboard.monitoring import Monitors
from ivr.web.sessions import Sessions
from ivr.web.site import Desk

CALL, LEG, SUPERVISOR = "1700.1", "ivr-abc-leg1", "supervisor01"


@dataclass
class FakeAri:
    """Answers the origination, refuses every snoop with a 500; records each request."""

    seen: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/ari/{tail:.*}", self.rest)
        return app

    async def rest(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        self.seen.append(f"{request.method} {tail}")
        if tail.endswith("/snoop"):
            return web.json_response({"message": "Allocation failed"}, status=500)
        if request.method == "DELETE":
            return web.Response(status=204)
        return web.json_response({"id": tail})


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeAri, AriClient]]:
    ari = FakeAri()
    server = TestServer(ari.app(), port=0)
    await server.start_server()
    client = AriClient(str(server.make_url("/ari")), "ivr120", "pw", "ivr120")
    try:
        yield ari, client
    finally:
        await client.close()
        await server.close()


def stand_in_controller(ari: AriClient) -> Any:
    """A call talking with counselor02 on LEG, as ivr.wallboard.monitoring.target_of reads it."""
    call = SimpleNamespace(
        flow=SimpleNamespace(
            conversation=SimpleNamespace(state=State.TALKING),
            record=SimpleNamespace(member="counselor02"),
        ),
        talk_bridge=f"talk-{CALL}",
    )
    leg = SimpleNamespace(call_id=CALL, answered=True)
    return SimpleNamespace(ari=ari, calls={CALL: call}, legs={LEG: leg}, watchers=[])


async def test_a_refused_snoop_ends_the_monitoring_audited_and_removes_its_objects(
    fake: tuple[FakeAri, AriClient], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    ari, client = fake
    main = web.Application()
    main[SETTINGS] = load_settings(env={}, overrides={"state_dir": tmp_path / "state"})
    controller = stand_in_controller(client)
    main[CONTROLLER] = cast(Any, controller)
    monitors = Monitors(Desk(main, Sessions(b"k" * 32)))

    assert await monitors.start(SUPERVISOR, CALL, Mode.LISTEN) is None
    assert controller.watchers == [monitors]
    p = monitors.active[SUPERVISOR]
    # The controller has handled the supervisor's leg entering Stasis: it answered.
    monitors.handled(parse_event({"type": "StasisStart", "channel": {"id": p.phone}}))
    async with asyncio.timeout(10):
        while SUPERVISOR in monitors.active:
            await asyncio.sleep(0.01)

    assert not monitors.connected and not monitors.owned()
    removed = {s for s in ari.seen if s.startswith("DELETE")}
    assert removed == {
        f"DELETE channels/{p.phone}",
        f"DELETE channels/{p.snoop}",
        f"DELETE bridges/{p.id}",
    }
    audited = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    ended = [m for m in audited if " ended " in m]
    assert ended == [
        f"monitor: {SUPERVISOR} ended listen on call {CALL} (failed: ARI POST"
        f" channels/{CALL}/snoop -> 500: Allocation failed)"
    ]
