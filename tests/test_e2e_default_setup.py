"""End to end with the default configuration, the way `make run` starts the product.

`python -m ivr.main` (= ivr-run) in a fresh copy of the project, so `state_dir` is the relative
default `var`; every setting is the default except the ports and the instance name (so it runs
beside the test session's own instance). A consented call goes all the way: an independent
counselor phone registers with the password from var/secrets.json, the caller dials 120,
presses 5, answers the consent question with 1 and speaks Korean; the summary worker seals a
summary (`ivr-admin summary`), and `ivr-admin withdraw` leaves no audio on disk or in Asterisk.
The rest of the suite runs with absolute temporary paths, which is how the `var/var/audio`
bug slipped through."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.ari.client import AriClient, AriNotFound
from ivr.paths import PROJECT_ROOT
from ivr.staff.roster import load_roster, on_shift
from ivr.timezone import SEOUL
from speech.synth import espeak_korean
from tests.conftest import TEST_CALLER_NUMBER, PhoneFactory, free_port

IGNORE = shutil.ignore_patterns(
    ".git", ".venv", "var", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"
)


@dataclass
class Run:
    """ivr-run in its own checkout, as an administrator sees it."""

    checkout: Path
    env: dict[str, str]
    sip_port: int
    status_port: int
    http_port: int
    log: Path

    @property
    def var(self) -> Path:
        return self.checkout / "var"

    def secrets(self) -> dict[str, Any]:
        return dict(json.loads((self.var / "secrets.json").read_text(encoding="utf-8")))

    def rows(self, sql: str, *args: object) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.var / "ivr120.sqlite3")
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, args)]
        finally:
            db.close()

    async def admin(self, *argv: str) -> tuple[int, str]:
        """`ivr-admin ...` run from the checkout (cwd: the relative `var` again)."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.admin",
            *argv,
            cwd=self.checkout,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return int(proc.returncode or 0), out.decode()

    async def status(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.secrets()['admin_token']}"}
        async with http.get(f"http://127.0.0.1:{self.status_port}/status", headers=headers) as r:
            return dict(await r.json())


@pytest.fixture
async def ivr_run(tmp_path: Path) -> AsyncIterator[Run]:
    checkout = tmp_path / "ivr120"
    shutil.copytree(PROJECT_ROOT, checkout, ignore=IGNORE)
    sip_port, status_port, http_port = free_port(socket.SOCK_DGRAM), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR120_")}
    env.update(
        IVR120_INSTANCE=f"default{os.getpid()}",
        IVR120_RTP_PORT_START="33000",
        IVR120_RTP_PORT_END="33199",
        PYTHONUNBUFFERED="1",
    )
    run = Run(checkout, env, sip_port, status_port, http_port, tmp_path / "ivr-run.log")
    with run.log.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.main",
            "--sip-port",
            str(sip_port),
            "--http-port",
            str(http_port),
            "--status-port",
            str(status_port),
            cwd=checkout,
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(120):
            while True:
                assert proc.returncode is None, run.log.read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{status_port}/health") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.2)
        yield run
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(40):
            assert await proc.wait() == 0, run.log.read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_default_setup_consented_call_to_sealed_summary_and_withdrawal(
    ivr_run: Run, phones: PhoneFactory, tmp_path: Path
) -> None:
    run = ivr_run
    assert run.var.is_dir() and (run.var / "secrets.json").is_file()
    secrets = run.secrets()
    roster = load_roster(run.checkout / "config" / "roster.toml")
    member = sorted(on_shift(roster, datetime.now(SEOUL)))[0]
    sentence = espeak_korean("요즘 혼자 지내서 너무 외로워요", tmp_path / "caller.wav", rate=8000)

    c = await phones(member)
    reg = await c.register(member, secrets["sip_passwords"][member], f"127.0.0.1:{run.sip_port}")
    assert reg["code"] == 200 and reg["active"], reg
    ari = AriClient(
        f"http://127.0.0.1:{run.http_port}/ari", "ivr120", secrets["ari_password"], "ivr120"
    )
    try:
        async with asyncio.timeout(15):
            while (await ari.get(f"endpoints/PJSIP/{member}")).get("state") != "online":
                await asyncio.sleep(0.2)

        caller = await phones("caller")
        await caller.identity(TEST_CALLER_NUMBER)
        await caller.call(f"sip:120@127.0.0.1:{run.sip_port}")
        await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
        async with asyncio.timeout(10):
            while not run.rows("SELECT call_id FROM calls"):
                await asyncio.sleep(0.1)
        call_id = run.rows("SELECT call_id FROM calls")[0]["call_id"]
        await asyncio.sleep(1.0)  # the menu has begun
        await caller.dtmf("5")

        # Answer 1 once the consent question is asked: its own state before the queue today,
        # or while waiting (the question may move into the queue); the stored row is the proof.
        async with aiohttp.ClientSession() as http, asyncio.timeout(120):
            while not run.rows("SELECT 1 FROM consents WHERE call_id=?", call_id):
                calls = {x["call_id"]: x for x in (await run.status(http))["calls"]}
                if calls.get(call_id, {}).get("state") in ("consent", "waiting"):
                    await asyncio.sleep(1.0)
                    await caller.dtmf("1")
                    await asyncio.sleep(1.0)
                else:
                    await asyncio.sleep(0.2)
        consent = run.rows("SELECT * FROM consents WHERE call_id=?", call_id)[0]
        assert consent["answer"] == "yes", consent

        await c.wait_for("incoming", timeout=60)
        await c.answer()
        await c.wait_for("call_state", state="CONFIRMED", timeout=10)
        await caller.play(sentence, loop=True)
        for party in ("caller", "staff"):  # recording in Asterisk while they talk
            async with asyncio.timeout(15):
                while True:
                    with contextlib.suppress(AriNotFound):
                        live = await ari.get(f"recordings/live/ivr120-{call_id}-{party}")
                        if live.get("state") == "recording":
                            break
                    await asyncio.sleep(0.2)
        await asyncio.sleep(6)  # the caller talks for a while
        await caller.hangup()
        await caller.wait_for("call_state", state="DISCONNECTED", timeout=10)

        async with asyncio.timeout(240):
            while True:
                jobs = run.rows("SELECT * FROM transcription_jobs WHERE call_id=?", call_id)
                if jobs:
                    assert jobs[0]["status"] not in ("failed", "cancelled"), jobs[0]
                    if jobs[0]["status"] == "done":
                        break
                await asyncio.sleep(0.5)
        code, out = await run.admin("summary", call_id, "--who", "test")
        assert code == 0, out
        assert "통화 요약 Call summary" in out and "not written yet" not in out, out
        assert "FAILED" not in out
        turns = out.split("대화 turns:", 1)[-1]
        assert any("\uac00" <= ch <= "\ud7a3" for ch in turns), out  # Korean, transcribed

        code, out = await run.admin("withdraw", call_id, "--by", "test")
        assert code == 0 and "consent withdrawn" in out, out
        left = [p for p in (run.var / "audio").rglob("*") if p.is_file()]
        assert left == [], f"audio left on disk: {left}"
        assert not (run.var / "var").exists()
        stored = await ari.get("recordings/stored")
        assert not [r["name"] for r in stored if call_id in r["name"]], "audio left in Asterisk"
        code, out = await run.admin("summary", call_id)
        assert code == 1 and "not found" in out, out
    finally:
        await ari.close()
    text = run.log.read_text()
    assert TEST_CALLER_NUMBER not in text
    fetched = [line for line in text.splitlines() if "fetched (" in line]
    assert len(fetched) == 2, text
    print("\n".join(fetched))
