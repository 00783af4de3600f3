"""End to end: a second start next to a running hotline harms nothing, and `/health` tells the
truth when Asterisk or ARI's websocket goes away."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ivr.app import PBX, SECRETS, Options, build_app
from ivr.config import Settings
from ivr.pbx.install import locate
from ivr.pbx.runner import Pbx
from tests.conftest import Hotline, PhoneFactory
from tests.e2e_product import health, own_settings, wait_health


def second_start_env(settings: Settings, **changes: str) -> dict[str, str]:
    env = {
        **os.environ,
        "IVR120_INSTANCE": settings.instance,
        "IVR120_STATE_DIR": str(settings.state_dir),
        "IVR120_SIP_BIND": settings.sip_bind,
        "IVR120_SIP_PORT": str(settings.sip_port),
        "IVR120_HTTP_PORT": str(settings.http_port),
        "IVR120_STATUS_PORT": str(settings.status_port),
        "IVR120_ROSTER_FILE": str(settings.roster_file),
        "IVR120_VOICE_ANSWERS": "false",
    }
    env.update(changes)
    return env


async def run_second(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.main", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(90):
            out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


async def test_a_second_start_of_the_same_instance_leaves_the_first_running(
    hotline: Hotline, phones: PhoneFactory
) -> None:
    pbx = hotline.pbx
    pidfile = pbx.host(pbx.dirs.run) / "asterisk.pid"
    pid = pidfile.read_text()
    conf = pbx.host(pbx.dirs.etc) / "pjsip.conf"
    written = conf.stat().st_mtime_ns

    rc, out = await run_second(second_start_env(hotline.settings))
    assert rc == 1, out
    assert "already run by a live controller" in out and f"pid {os.getpid()}" in out, out
    # Same ports, another instance: refused on the ports, before anything is touched.
    rc, out = await run_second(second_start_env(hotline.settings, IVR120_INSTANCE="other"))
    assert rc == 1, out
    assert "already in use" in out, out
    assert not pbx.install.host_path(pbx.dirs.base).with_name("other").exists()

    assert pidfile.read_text() == pid and pbx.running
    assert conf.stat().st_mtime_ns == written, "the second start rewrote the live configuration"
    info = await hotline.ari.get("asterisk/info")
    assert info["system"]["entity_id"]
    caller = await phones("caller")
    await caller.call(hotline.uri_120)
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    call_id = await hotline.last_call_id()
    await caller.hangup()
    await hotline.wait_row(call_id)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[web.Application, Settings]]:
    """The product with its own Asterisk (no summary worker), serving /health."""
    settings = own_settings(tmp_path, "health")
    app = build_app(settings, Options(run_summary_worker=False))
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


async def test_health_is_503_with_the_reason_when_asterisk_dies(
    served: tuple[web.Application, Settings],
) -> None:
    app, settings = served
    await wait_health(settings.status_port, 200)
    pbx = app[PBX]
    os.kill(int((pbx.host(pbx.dirs.run) / "asterisk.pid").read_text()), signal.SIGKILL)
    body = await wait_health(settings.status_port, 503)
    async with asyncio.timeout(10):
        while len(body["reasons"]) < 2:  # both are seen within moments of each other
            body = (await health(settings.status_port))[1]
            await asyncio.sleep(0.1)
    assert body["ok"] is False
    assert any("Asterisk is not running" in r for r in body["reasons"]), body
    assert any("ARI websocket is disconnected" in r for r in body["reasons"]), body


async def test_health_is_503_while_ari_is_gone_and_200_again_after(tmp_path: Path) -> None:
    settings = own_settings(tmp_path, "ext")
    app = build_app(settings, Options(manage_pbx=False, run_summary_worker=False))
    install = await asyncio.to_thread(locate, settings.pbx_mode, settings.pbx_cache_dir)
    pbx = Pbx(settings, app[SECRETS], install)
    await asyncio.to_thread(pbx.prepare)
    await pbx.start()
    runner = web.AppRunner(app)
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", settings.status_port).start()
        await wait_health(settings.status_port, 200)
        await pbx.stop()
        body = await wait_health(settings.status_port, 503)
        assert body["reasons"] == ["ARI websocket is disconnected"], body
        await asyncio.to_thread(pbx.prepare)
        await pbx.start()
        assert (await wait_health(settings.status_port, 200))["ok"] is True
    finally:
        await runner.cleanup()
        await pbx.stop()
        pbx.remove_instance()
