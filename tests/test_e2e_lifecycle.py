"""End to end: the product as `make run` starts it, stopping it, and the dialplan's own safety
net when the controller is not there. Each test runs its own Asterisk instance."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ivr.app import PBX, Options, build_app
from ivr.config import load_settings
from ivr.phone.audio import is_silent, read_wav
from tests.conftest import TEST_CALLER_NUMBER, PhoneFactory, free_port
from tests.e2e_product import asterisk_processes


def mounts() -> str:
    return Path("/proc/self/mounts").read_text()


@pytest.fixture
async def pbx_without_controller(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    settings = load_settings(
        env={},
        overrides={
            "instance": f"nocontroller{os.getpid()}",
            "state_dir": tmp_path / "state",
            "sip_bind": "127.0.0.1",
            "sip_port": free_port(socket.SOCK_DGRAM),
            "http_port": free_port(),
            "status_port": free_port(),
            "rtp_port_start": 32000,
            "rtp_port_end": 32199,
        },
    )
    app = build_app(settings, Options(run_controller=False))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        yield settings.sip_port, tmp_path
    finally:
        pbx = app.get(PBX)
        await runner.cleanup()
        if pbx is not None:
            pbx.remove_instance()


async def test_dialplan_apologises_when_the_controller_is_down(
    pbx_without_controller: tuple[int, Path], phones: PhoneFactory
) -> None:
    sip_port, tmp = pbx_without_controller
    caller = await phones("caller")
    await caller.call(f"sip:120@127.0.0.1:{sip_port}")
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    await caller.record(tmp / "fallback.wav")
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=30)
    await caller.wait_for("recorded", timeout=10)
    heard = read_wav(tmp / "fallback.wav")
    assert heard.seconds > 3, "the PBX hung up without the apology"
    assert not is_silent(heard.samples)


async def test_ivr_run_serves_calls_and_stops_cleanly_on_sigterm(
    tmp_path: Path, phones: PhoneFactory
) -> None:
    instance = f"cli{os.getpid()}"
    sip_port, status_port = free_port(socket.SOCK_DGRAM), free_port()
    env = {
        **os.environ,
        "IVR120_INSTANCE": instance,
        "IVR120_STATE_DIR": str(tmp_path / "state"),
        "IVR120_SIP_BIND": "127.0.0.1",
        "IVR120_SIP_PORT": str(sip_port),
        "IVR120_HTTP_PORT": str(free_port()),
        "IVR120_STATUS_PORT": str(status_port),
        "IVR120_RTP_PORT_START": "32200",
        "IVR120_RTP_PORT_END": "32399",
    }
    log_path = tmp_path / "ivr-run.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.main", env=env, stdout=log, stderr=log
        )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(90):
            while True:
                assert proc.returncode is None, log_path.read_text()
                try:
                    async with http.get(f"http://127.0.0.1:{status_port}/health") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        assert asterisk_processes(instance)

        caller = await phones("caller")
        await caller.identity(TEST_CALLER_NUMBER)
        await caller.call(f"sip:120@127.0.0.1:{sip_port}")
        await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
        await caller.record(tmp_path / "heard.wav")
        await asyncio.sleep(2)

        proc.send_signal(signal.SIGTERM)  # what Ctrl-C or a service manager does
        async with asyncio.timeout(40):
            rc = await proc.wait()
        assert rc == 0, log_path.read_text()
        await caller.wait_for("call_state", state="DISCONNECTED", timeout=10)
        await caller.wait_for("recorded", timeout=10)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    text = log_path.read_text()
    assert "Asterisk stopped" in text
    assert "speech recognizers closed" in text  # the pool's threads are released
    assert TEST_CALLER_NUMBER not in text, "a caller's number was logged in clear"
    assert not asterisk_processes(instance), "Asterisk outlived ivr-run"
    assert "root-sid/proc" not in mounts()
    heard = read_wav(tmp_path / "heard.wav")
    assert not is_silent(heard.span(heard.seconds - 3, heard.seconds - 0.5)), (
        "the caller heard no apology while the service stopped"
    )
    db = sqlite3.connect(tmp_path / "state" / "ivr120.sqlite3")
    try:
        rows = db.execute("SELECT outcome, caller_hash FROM calls").fetchall()
    finally:
        db.close()
    assert rows == [("error", rows[0][1])]
    assert TEST_CALLER_NUMBER not in rows[0][1]
