"""The product as an operator runs it, for end-to-end tests: `python -m ivr.main` (= ivr-run)
in a subprocess with its own instance, ports and state directory."""

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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.ari.client import AriClient
from ivr.config import Settings, load_settings
from ivr.pbx.install import locate
from ivr.pbx.runner import Pbx
from ivr.pbx.secrets import load_or_create
from tests.conftest import free_port


def _processes(program: bytes) -> Iterator[tuple[Path, bytes]]:
    """Live processes whose command line holds `program`: their /proc entry and command line."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if program in cmd:
            yield entry, cmd


def asterisk_processes(instance: str) -> list[int]:
    """Asterisk processes of one instance (their command line names its config)."""
    mark = f"/srv/ivr120/{instance}/".encode()
    return [int(entry.name) for entry, cmd in _processes(b"asterisk") if mark in cmd]


def summary_workers(env: dict[str, str]) -> list[int]:
    """Summary workers of one run: their environment (ivr-run's) names its instance and its
    status port (two runs of an HA pair share the instance, not the port)."""
    marks = [f"IVR120_{k}={env[f'IVR120_{k}']}".encode() for k in ("INSTANCE", "STATUS_PORT")]
    pids = []
    for entry, _ in _processes(b"ivr.summary.worker"):
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if all(mark in environ for mark in marks):
            pids.append(int(entry.name))
    return pids


@dataclass
class IvrRun:
    """One instance of the product, started (and started again) as `ivr-run` subprocesses."""

    tmp: Path
    instance: str
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    proc: asyncio.subprocess.Process | None = None
    runs: int = 0

    @classmethod
    def create(cls, tmp: Path, name: str, rtp: int, **env: str) -> IvrRun:
        instance = f"{name}{os.getpid()}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("IVR120_")}
        base.update(
            IVR120_INSTANCE=instance,
            IVR120_STATE_DIR=str(tmp / "state"),
            IVR120_SIP_BIND="127.0.0.1",
            IVR120_SIP_PORT=str(free_port(socket.SOCK_DGRAM)),
            IVR120_HTTP_PORT=str(free_port()),
            IVR120_STATUS_PORT=str(free_port()),
            IVR120_DESK_PORT=str(free_port()),
            IVR120_RTP_PORT_START=str(rtp),
            IVR120_RTP_PORT_END=str(rtp + 199),
            IVR120_VOICE_ANSWERS="false",
            PYTHONUNBUFFERED="1",
        )
        base.update(env)
        return cls(tmp, instance, base)

    # -- settings as the tests need them ---------------------------------------------------
    @property
    def state(self) -> Path:
        return Path(self.env["IVR120_STATE_DIR"])

    @property
    def sip_port(self) -> int:
        return int(self.env["IVR120_SIP_PORT"])

    @property
    def status_port(self) -> int:
        return int(self.env["IVR120_STATUS_PORT"])

    @property
    def http_port(self) -> int:
        return int(self.env["IVR120_HTTP_PORT"])

    @property
    def uri_120(self) -> str:
        return f"sip:120@127.0.0.1:{self.sip_port}"

    @property
    def log(self) -> Path:
        return self.tmp / f"ivr-run-{self.runs}.log"

    def secrets(self) -> dict[str, Any]:
        return dict(json.loads((self.state / "secrets.json").read_text(encoding="utf-8")))

    def ari(self) -> AriClient:
        url = f"http://127.0.0.1:{self.http_port}/ari"
        return AriClient(url, "ivr120", self.secrets()["ari_password"], "ivr120")

    def rows(self, sql: str, *args: object) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.state / "ivr120.sqlite3")
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, args)]
        finally:
            db.close()

    # -- the process -------------------------------------------------------------------------
    async def start(self, timeout: float = 120, healthy: bool = True) -> None:
        """Start ivr-run and return once /health says 200 (at once with healthy=False: a
        standby of an active/standby pair serves nothing yet)."""
        self.runs += 1
        with self.log.open("wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ivr.main", *self.args, env=self.env, stdout=out,
                stderr=out,
            )  # fmt: skip
        if healthy:
            await self.wait_health(200, timeout)

    async def health(self) -> int | None:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{self.status_port}/health") as r,
            ):
                return r.status
        return None

    async def wait_health(self, status: int, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while await self.health() != status:
                assert self.proc is not None and self.proc.returncode is None, self.text()
                await asyncio.sleep(0.2)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):  # it may have ended already
            self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(timeout):
            return await self.proc.wait()

    async def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        self.signal(signal.SIGKILL)
        await self.wait(10)

    async def close(self) -> None:
        """End whatever is left of it (the tests' own cleanup)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await self.wait(30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for pid in asterisk_processes(self.instance):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        await self._no_worker_left()

    async def _no_worker_left(self) -> None:
        """The run's summary worker ends with it (its parent-death signal, or ivr-run's own
        stop); one still alive 30 s after is a product fault (an orphan holding the worker's
        lock makes no summary after a restart): killed, and the test fails."""
        deadline = asyncio.get_running_loop().time() + 30
        while left := summary_workers(self.env):
            if asyncio.get_running_loop().time() > deadline:
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"summary worker {left} outlived ivr-run by 30 s")
            await asyncio.sleep(0.1)


def pbx_of(run: IvrRun) -> Pbx:
    """The run's Asterisk instance as an object (to start it on its own, or find its pid)."""
    settings = load_settings(env=run.env)
    install = locate(settings.pbx_mode, settings.pbx_cache_dir)
    secrets = load_or_create(settings.state_dir / "secrets.json", settings.staff_endpoints)
    return Pbx(settings, secrets, install)


def asterisk_pid(pbx: Pbx) -> int:
    return int((pbx.host(pbx.dirs.run) / "asterisk.pid").read_text().strip())


async def health(port: int) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/health") as r,
    ):
        return r.status, await r.json()


async def wait_health(port: int, status: int, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            got, body = await health(port)
            if got == status:
                return body
            await asyncio.sleep(0.2)


def own_settings(tmp: Path, name: str, **extra: Any) -> Settings:
    """Settings of a product run in the test's process, with its own instance and ports."""
    return load_settings(
        env={},
        overrides={
            "instance": f"{name}{os.getpid()}",
            "state_dir": tmp / "state",
            "sip_bind": "127.0.0.1",
            "sip_port": free_port(socket.SOCK_DGRAM),
            "http_port": free_port(),
            "status_port": free_port(),
            "rtp_port_start": 33200,
            "rtp_port_end": 33299,
            "voice_answers": False,
            **extra,
        },
    )


async def wait_checked(what: str, check: Any, timeout: float = 30) -> Any:
    """Poll the coroutine function `check` until it returns something true (returned); fail
    the test saying `what` was not seen within `timeout` s."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                got = await check()
                if got:
                    return got
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


def keep_log_and_remove(run: IvrRun, tmp_path: Path) -> None:
    """After a run: its Asterisk's log stays with the test's files, its instance goes."""
    left = pbx_of(run)
    with contextlib.suppress(OSError):
        shutil.copy(left.log_file, tmp_path / "asterisk-messages.log")
    left.remove_instance()


async def agent_online(run: IvrRun, phones: Any, ari: AriClient) -> Any:
    """The phone of agent01, registered with the run and seen online by Asterisk."""
    agent = await phones("agent01")
    reg = await agent.register(
        "agent01", run.secrets()["sip_passwords"]["agent01"], f"127.0.0.1:{run.sip_port}"
    )
    assert reg["code"] == 200, reg

    async def online() -> bool:
        return (await ari.get("endpoints/PJSIP/agent01")).get("state") == "online"

    await wait_checked("the agent online", online)
    return agent


@contextlib.asynccontextmanager
async def running_product(tmp: Path, name: str, rtp: int, **env: str) -> AsyncIterator[IvrRun]:
    """An IvrRun for one test (not started): ended, its log kept and its instance removed
    at the end."""
    run = IvrRun.create(tmp, name, rtp=rtp, **env)
    try:
        yield run
    finally:
        await run.close()
        keep_log_and_remove(run, tmp)


async def dial_and_press(
    run: IvrRun, phones: Any, name: str, key: str, number: str | None = None
) -> Any:
    """A caller's phone (`name`, calling from `number` if given) dials 120, is answered, and
    presses `key` once its media flows."""
    phone = await phones(name)
    if number is not None:
        await phone.identity(number)
    await phone.call(run.uri_120)
    await phone.wait_for("call_state", state="CONFIRMED", timeout=10)
    await phone.wait_for("media", active=True, timeout=10)
    await phone.dtmf(key)
    return phone
