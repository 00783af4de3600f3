"""The product under test: `python -m ivr.main` as an administrator runs it (`ivr-bench load`),
and what the steps need to watch and clean up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from ivr.ari.client import basic_auth_header
from ivr.config import Settings
from ivr.paths import PROJECT_ROOT
from ivr.pbx.install import AsteriskInstall
from ivr.pbx.runner import Pbx, PbxStartError
from ivr.pbx.secrets import load_existing

#: Seconds the product gets to stop after SIGTERM before it is killed.
STOP_WAIT = 90.0


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Watched:
    """What a step watches: Asterisk's pid, the controller's (None: native), /health's URL."""

    pbx_pid: int
    ctl_pid: int | None
    health_url: str | None
    pbx: Pbx


async def poll_until(
    check: Callable[[], Awaitable[bool] | bool], deadline_s: float, what: str
) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        got = check()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {deadline_s:.0f} s")
        await asyncio.sleep(0.2)


class Product:
    """The product as an administrator runs it: `python -m ivr.main` with default settings."""

    def __init__(
        self, work: Path, install: AsteriskInstall, rtp: tuple[int, int], screens: int = 0
    ) -> None:
        self.install = install
        # `screens`: wallboard screens the bench opens (ivr/bench/wallboard.py); one member
        # holds them all, so its cap on live screens is raised to that many.
        self.settings = replace(
            Settings(),
            instance=f"benchp{os.getpid()}",
            state_dir=work / "product",
            sip_bind="127.0.0.1",
            sip_port=free_port(socket.SOCK_DGRAM),
            http_port=free_port(socket.SOCK_STREAM),
            status_port=free_port(socket.SOCK_STREAM),
            desk_port=free_port(socket.SOCK_STREAM),
            desk_streams_per_member=max(Settings().desk_streams_per_member, screens),
            rtp_port_start=rtp[0],
            rtp_port_end=rtp[1],
        )
        self.log_path = work / "product.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.pbx: Pbx | None = None
        self.asterisk_pid: int | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.status_port}/health"

    async def start(self, timeout: float = 300.0) -> Watched:
        s = self.settings
        self.proc = await spawn(s, self.log_path)
        proc = self.proc

        async def healthy() -> bool:
            if proc.returncode is not None:
                tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
                raise PbxStartError(f"the product exited ({proc.returncode}):\n" + "\n".join(tail))
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with aiohttp.ClientSession() as http, http.get(self.health_url) as r:
                    return r.status == 200
            return False

        await poll_until(healthy, timeout, "the product's /health answering 200")
        self.pbx = Pbx(s, load_existing(s.secrets_path), self.install)
        pid = int((self.pbx.host(self.pbx.dirs.run) / "asterisk.pid").read_text().strip())
        self.asterisk_pid = pid
        return Watched(pid, proc.pid, self.health_url, self.pbx)

    @property
    def desk_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.desk_port}"

    @property
    def database(self) -> Path:
        return self.settings.state_path(self.settings.database)

    @property
    def sounds(self) -> Path:
        assert self.pbx is not None
        return self.pbx.sounds_dir

    def counts(self, since: float) -> tuple[int, int, int]:
        """(calls started, ended, queued) since `since` in the product's records."""
        with contextlib.closing(sqlite3.connect(self.database, timeout=10)) as con:
            row = con.execute(
                "SELECT count(*), count(ended_at), count(queued_at) FROM calls"
                " WHERE started_at >= ?",
                (since,),
            ).fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_WAIT)
            except TimeoutError:
                say(f"the product did not stop within {STOP_WAIT:.0f} s of SIGTERM; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        await self._stop_orphaned_asterisk()

    async def _stop_orphaned_asterisk(self) -> None:
        """Stop the product's Asterisk if it outlived its controller: `unshare --fork` blocks
        SIGTERM, so the parent-death signal the runner sets does not reach it when the
        controller is killed (ivr/pbx/runner.py; seen after a collapsed step)."""
        if self.asterisk_pid is None or self.pbx is None:
            return
        pid, self.asterisk_pid = self.asterisk_pid, None
        etc = self.pbx.dirs.etc
        if not _runs(pid, etc):
            return
        say(f"the product's Asterisk (pid {pid}) outlived its controller; stopping it")
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            with contextlib.suppress(TimeoutError):
                await poll_until(lambda: not _runs(pid, etc), 15, "Asterisk gone")
                return


async def spawn(s: Settings, log_path: Path, **extra: str) -> asyncio.subprocess.Process:
    """`python -m ivr.main` with the settings that differ from the defaults (ports, paths)
    in its environment, as an administrator starts it; its output appended to `log_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR120_")}
    env.update(
        IVR120_INSTANCE=s.instance,
        IVR120_STATE_DIR=str(s.state_dir),
        IVR120_SIP_BIND=s.sip_bind,
        IVR120_SIP_PORT=str(s.sip_port),
        IVR120_HTTP_PORT=str(s.http_port),
        IVR120_STATUS_PORT=str(s.status_port),
        IVR120_DESK_PORT=str(s.desk_port),
        IVR120_DESK_STREAMS_PER_MEMBER=str(s.desk_streams_per_member),
        IVR120_RTP_PORT_START=str(s.rtp_port_start),
        IVR120_RTP_PORT_END=str(s.rtp_port_end),
        **extra,
    )
    # The product's output has hashed callers and audit lines: owner-only, like its logs.
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.main",
            cwd=PROJECT_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=fd, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    finally:
        os.close(fd)


def _runs(pid: int, etc: str) -> bool:
    """Whether `pid` is the Asterisk of the instance whose configuration is in `etc`."""
    try:
        return etc.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


async def hang_up_callers(pbx: Pbx) -> int:
    """Hang up every caller's channel left in the PBX (over ARI); how many there were."""
    auth = basic_auth_header(pbx.settings.ari_user, pbx.secrets.ari_password)
    url = f"{pbx.settings.ari_url}/channels"
    async with aiohttp.ClientSession(headers={"Authorization": auth}) as http:
        async with http.get(url) as r:
            channels = await r.json()
        callers = [c["id"] for c in channels if c["name"].startswith("PJSIP/carrier-")]
        for cid in callers:
            async with http.delete(f"{url}/{cid}"):
                pass
    return len(callers)


def say(text: str) -> None:
    print(f"ivr-bench: {text}", file=sys.stderr, flush=True)
