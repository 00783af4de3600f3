"""End to end: the managed Asterisk and the summary worker are started again when they die
while the product runs (counted on /metrics), and a call lost with Asterisk is recorded once
as `pbx_lost`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ivr.app import PBX, SECRETS, Options, build_app
from ivr.config import Settings
from ivr.supervise import WORKER, Backoff
from tests.conftest import PhoneFactory
from tests.e2e_product import asterisk_pid, own_settings, wait_health


def test_the_back_off_doubles_to_its_cap_and_starts_over_after_a_healthy_run() -> None:
    b = Backoff(first=1.0, cap=4.0, healthy_after=60.0)
    assert [b.delay(0.5) for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert b.delay(61.0) == 1.0
    assert b.delay(1.0) == 2.0


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[web.Application, Settings]]:
    settings = own_settings(tmp_path, "superv", rtp_port_start=34800, rtp_port_end=34899)
    app = build_app(settings, Options())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.status_port).start()
    try:
        yield app, settings
    finally:
        pbx = app.get(PBX)
        await runner.cleanup()
        if pbx is not None:
            pbx.remove_instance()


def ended_calls(settings: Settings) -> list[tuple[str, str]]:
    db = sqlite3.connect(settings.state_path(settings.database))
    try:
        return db.execute(
            "SELECT outcome, end_reason FROM calls WHERE outcome IS NOT NULL"
        ).fetchall()
    finally:
        db.close()


async def restarts(app: web.Application, settings: Settings) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {app[SECRETS].admin_token}"}
    url = f"http://127.0.0.1:{settings.status_port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as r:
        assert r.status == 200
        text = await r.text()
    found = re.findall(r'^ivr120_process_restarts_total\{process="(\w+)"\} (\S+)$', text, re.M)
    return {name: float(v) for name, v in found}


async def test_a_dead_asterisk_and_worker_are_started_again_and_counted(
    served: tuple[web.Application, Settings], phones: PhoneFactory
) -> None:
    app, settings = served
    await wait_health(settings.status_port, 200)
    assert await restarts(app, settings) == {"asterisk": 0.0, "summary_worker": 0.0}
    pbx = app[PBX]

    caller = await phones("caller")
    await caller.call(f"sip:120@127.0.0.1:{settings.sip_port}")
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)

    before = asterisk_pid(pbx)
    os.kill(before, signal.SIGKILL)
    await wait_health(settings.status_port, 503)
    await wait_health(settings.status_port, 200, timeout=60)
    assert asterisk_pid(pbx) != before
    assert (await restarts(app, settings))["asterisk"] == 1.0

    async with asyncio.timeout(10):  # the call went with Asterisk: closed once, as pbx_lost
        while not (rows := ended_calls(settings)):
            await asyncio.sleep(0.1)
    assert [r[1] for r in rows] == ["pbx_lost"], rows

    worker = app[WORKER]
    assert worker.proc is not None
    first = worker.proc.pid
    os.kill(first, signal.SIGKILL)
    async with asyncio.timeout(30):
        while (await restarts(app, settings))["summary_worker"] < 1.0:
            await asyncio.sleep(0.2)
    assert worker.proc.pid != first and worker.proc.returncode is None
