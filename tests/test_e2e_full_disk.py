"""End to end: the state directory on a full filesystem (a small tmpfs the test fills).

A caller who answers the consent question on a full disk reaches the counselor and stays
connected (no apology); without a stored consent nothing is recorded; /health says the store
cannot write; and once space returns the call's rows are written after all."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ivr.app import ARI, CONTROLLER, PBX, SECRETS, Options, build_app
from ivr.ari.client import AriNotFound
from ivr.config import Settings, load_settings
from ivr.controller import Controller
from ivr.flow import call as flow
from tests.conftest import TEST_CALLER_NUMBER, PhoneFactory, free_port, write_roster
from tests.test_store_full_disk import fill, tmpfs

MEMBER = "counselor01"


class Hotline:
    def __init__(
        self, settings: Settings, app: web.Application, commands: list[flow.Command]
    ) -> None:
        self.settings = settings
        self.app = app
        #: Every command the controller carried out (seen through the observer seam).
        self.commands = commands

    @property
    def controller(self) -> Controller:
        return self.app[CONTROLLER]

    def rows(self, sql: str, *args: object) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.settings.state_path(self.settings.database))
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, args)]
        finally:
            db.close()

    async def health(self) -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{self.settings.status_port}/health") as r,
        ):
            return r.status, dict(await r.json())


@pytest.fixture
async def hotline_on_tmpfs(tmp_path: Path) -> AsyncIterator[Hotline]:
    with tmpfs(tmp_path / "state", "16m") as state:
        settings = load_settings(
            env={},
            overrides={
                "instance": f"fulldisk{os.getpid()}",
                "state_dir": state,
                "sip_bind": "127.0.0.1",
                "sip_port": free_port(socket.SOCK_DGRAM),
                "http_port": free_port(),
                "status_port": free_port(),
                "rtp_port_start": 33200,
                "rtp_port_end": 33399,
                "counselors": MEMBER,
                "agents": "agent01",
                "roster_file": write_roster(tmp_path / "roster.toml", (MEMBER,)),
                "ring_retry_interval": 1.0,
            },
        )
        commands: list[flow.Command] = []
        app = build_app(settings, Options(observer=lambda cmd, _error: commands.append(cmd)))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", settings.status_port)
        await site.start()
        try:
            yield Hotline(settings, app, commands)
        finally:
            pbx = app.get(PBX)
            await runner.cleanup()
            if pbx is not None:
                pbx.remove_instance()


async def test_a_consented_caller_on_a_full_disk_reaches_the_counselor(
    hotline_on_tmpfs: Hotline, phones: PhoneFactory
) -> None:
    h = hotline_on_tmpfs
    sip = f"127.0.0.1:{h.settings.sip_port}"
    c = await phones(MEMBER)
    reg = await c.register(MEMBER, h.app[SECRETS].sip_passwords[MEMBER], sip)
    assert reg["code"] == 200 and reg["active"], reg
    async with asyncio.timeout(15):
        while (await h.app[ARI].get(f"endpoints/PJSIP/{MEMBER}")).get("state") != "online":
            await asyncio.sleep(0.2)

    filler = fill(h.settings.state_dir)
    caller = await phones("caller")
    await caller.identity(TEST_CALLER_NUMBER)
    await caller.call(f"sip:120@{sip}")
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    async with asyncio.timeout(10):
        while not h.controller.calls:
            await asyncio.sleep(0.05)
    call_id = next(iter(h.controller.calls))
    call = h.controller.calls[call_id]
    await caller.dtmf("5")
    async with asyncio.timeout(90):  # the consent question is being played
        while not any(
            isinstance(cmd, flow.Play) and "consent_question" in cmd.prompts for cmd in h.commands
        ):
            await asyncio.sleep(0.1)
    await caller.dtmf("1")
    async with asyncio.timeout(15):
        while call.flow.consent != "yes":
            await asyncio.sleep(0.1)

    await c.wait_for("incoming", timeout=60)
    await c.answer()
    async with asyncio.timeout(15):
        while call.flow.state is not flow.State.CONNECTED:
            assert call_id in h.controller.calls, "the call was ended"
            await asyncio.sleep(0.1)
    status, health = await h.health()
    assert status == 503 and health["store"]["ok"] is False, health
    assert "full" in health["store"]["error"], health
    assert h.rows("SELECT * FROM calls WHERE call_id=?", call_id) == []  # nothing written yet
    with pytest.raises(AriNotFound):  # no stored consent: no recording
        await h.app[ARI].get(f"recordings/live/ivr120-{call_id}-caller")
    assert not call.recording
    # Still talking: the counselor hears the caller's line, nobody was sent to the apology.
    await asyncio.sleep(3)
    assert call_id in h.controller.calls and call.flow.state is flow.State.CONNECTED
    assert not any(isinstance(cmd, flow.Recover | flow.HangupCaller) for cmd in h.commands)

    os.unlink(filler)  # space returns: the kept records are written
    async with asyncio.timeout(30):
        while not h.rows("SELECT * FROM calls WHERE call_id=?", call_id):
            await asyncio.sleep(0.2)
    assert h.rows("SELECT answer FROM consents WHERE call_id=?", call_id) == [{"answer": "yes"}]
    await caller.hangup()
    async with asyncio.timeout(15):
        while not h.rows(
            "SELECT outcome FROM calls WHERE call_id=? AND outcome IS NOT NULL", call_id
        ):
            await asyncio.sleep(0.2)
    assert h.rows("SELECT outcome FROM calls WHERE call_id=?", call_id) == [
        {"outcome": "completed"}
    ]
    assert h.rows("SELECT * FROM recordings WHERE call_id=?", call_id) == []
    status, health = await h.health()
    assert status == 200 and health["store"]["ok"], health
