"""`ivr-bench failover`: how long a standby takes to replace an active controller killed with
SIGKILL, with a caller on the line.

Two `ivr-run` of one instance (one state directory, one managed Asterisk, `ha_enabled`, the
lease settings given) and a caller waiting in the queue (a pjsua2 phone that dialled 120 and
pressed 1, with nobody to answer). Each round kills the active controller with SIGKILL and
measures, from that moment, on the standby:

    lease    its log line "lease: standby -> active" (the line's own timestamp)
    call     its log line "taken back after a restart" for the caller
    health   its /health answering 200 (polled every 20 ms)

then starts the killed one again as the standby of the next round. It prints each round and
p50 / p95 / max, with the machine it ran on. The caller must still be connected at the end
(its phone saw no BYE). There is no baseline to print beside it: FreePBX and a plain Asterisk
have no active/standby controller of their own (a pair there is a cluster manager around the
whole PBX, which restarts Asterisk and drops the calls on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from ivr.bench import procstat
from ivr.bench.product import Product, free_port, poll_until, say, spawn
from ivr.pbx.runner import Pbx
from ivr.pbx.secrets import load_existing
from ivr.phone.remote import RemotePhone

LEASE_LINE = "lease: standby -> active"
TAKEN_BACK = "taken back after a restart"
HEALTH_POLL = 0.02


@dataclass
class Node:
    """One controller of the pair: its settings (own status and desk port) and process."""

    name: str
    product: Product
    proc: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> Path:
        return self.product.log_path

    async def launch(self, env: dict[str, str]) -> None:
        self.proc = await spawn(self.product.settings, self.log, **env)

    async def health(self) -> tuple[int, dict[str, object]]:
        url = self.product.health_url
        timeout = aiohttp.ClientTimeout(total=1)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as r:
                return r.status, await r.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return 0, {}

    async def wait_role(self, role: str, status: int, timeout: float = 120) -> None:
        async def there() -> bool:
            if self.proc is not None and self.proc.returncode is not None:
                tail = self.log.read_text(errors="replace").splitlines()[-15:]
                raise RuntimeError(
                    f"{self.name} exited ({self.proc.returncode}):\n" + "\n".join(tail)
                )
            got, body = await self.health()
            return got == status and body.get("role") == role

        await poll_until(there, timeout, f"{self.name} {role}")


@dataclass(frozen=True)
class Round:
    lease: float
    call: float
    health: float


def stamp(line: str) -> float | None:
    """The wall-clock time of a log line ("2026-12-03 17:59:43,846 ...", local time)."""
    try:
        at = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    except ValueError:
        return None
    return at.timestamp()


def first_after(log: Path, offset: int, text: str) -> float | None:
    with log.open("rb") as f:
        f.seek(offset)
        for raw in f.read().decode(errors="replace").splitlines():
            if text in raw:
                return stamp(raw)
    return None


async def one_round(active: Node, standby: Node) -> Round:
    offset = standby.log.stat().st_size
    assert active.proc is not None
    killed_wall, killed = time.time(), time.monotonic()
    active.proc.send_signal(signal.SIGKILL)
    health = None
    while time.monotonic() - killed < 30:
        status, _ = await standby.health()
        if status == 200:
            health = time.monotonic() - killed
            break
        await asyncio.sleep(HEALTH_POLL)
    await active.proc.wait()
    if health is None:
        raise TimeoutError(f"{standby.name} not serving within 30 s of the kill")

    def lines() -> tuple[float, float] | None:
        lease = first_after(standby.log, offset, LEASE_LINE)
        call = first_after(standby.log, offset, TAKEN_BACK)
        return None if lease is None or call is None else (lease, call)

    await poll_until(lambda: lines() is not None, 30, "the take-over's log lines")
    got = lines()
    assert got is not None
    return Round(got[0] - killed_wall, got[1] - killed_wall, health)


def keep_logs(into: Path, logs: list[Path]) -> None:
    """Hashed callers and audit lines: owner-only, as the product's own logs."""
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    for log in logs:
        kept = into / log.name
        kept.write_bytes(log.read_bytes())
        kept.chmod(0o600)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(rounds: list[Round], lease: float, renew: float) -> list[str]:
    out = [
        f"ivr-bench failover ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)",
        f"machine: {procstat.machine()}",
        f"ha_lease_seconds = {lease}, ha_renew_seconds = {renew}; seconds after the SIGKILL:",
        f"{'round':>6} {'lease':>7} {'call':>7} {'health':>7}",
    ]
    for i, r in enumerate(rounds, 1):
        out.append(f"{i:>6} {r.lease:7.2f} {r.call:7.2f} {r.health:7.2f}")
    for name, p in (("p50", 50.0), ("p95", 95.0), ("max", 100.0)):
        figs = [percentile([getattr(r, f) for r in rounds], p) for f in ("lease", "call", "health")]
        out.append(f"{name:>6} " + " ".join(f"{v:7.2f}" for v in figs))
    return out


async def run(rounds: int, lease: float, renew: float, work: Path, logs: Path | None = None) -> int:
    from ivr.config import Settings
    from ivr.pbx.install import locate

    defaults = Settings()
    install = await asyncio.to_thread(locate, defaults.pbx_mode, defaults.pbx_cache_dir)
    a = Node("controller A", Product(work, install, (36400, 36599)))
    b_product = Product(work, install, (36400, 36599))
    b_product.settings = replace(
        a.product.settings,
        status_port=free_port(socket.SOCK_STREAM),
        desk_port=free_port(socket.SOCK_STREAM),
    )
    b_product.log_path = work / "standby.log"
    b = Node("controller B", b_product)
    env = {
        "IVR120_HA_ENABLED": "true",
        "IVR120_HA_LEASE_SECONDS": str(lease),
        "IVR120_HA_RENEW_SECONDS": str(renew),
    }
    phone: RemotePhone | None = None
    active, standby = a, b
    try:
        say(f"starting the pair (instance {a.product.settings.instance})")
        await a.launch(env)
        await a.wait_role("active", 200)
        await b.launch(env)
        await b.wait_role("standby", 503)
        s = a.product.settings
        a.product.pbx = b.product.pbx = Pbx(s, load_existing(s.secrets_path), install)
        pid_file = a.product.pbx.host(a.product.pbx.dirs.run) / "asterisk.pid"
        a.product.asterisk_pid = int(pid_file.read_text().strip())
        phone = await RemotePhone.start(name="caller")
        await phone.call(f"sip:120@127.0.0.1:{s.sip_port}")
        await phone.wait_for("call_state", state="CONFIRMED", timeout=10)
        await phone.wait_for("media", active=True, timeout=10)
        await phone.dtmf("1")  # a line nobody answers here: the caller waits in the queue
        done: list[Round] = []
        for i in range(rounds):
            # Not a wait for an event: the kills land at varied points of the 0.5 s renewal.
            await asyncio.sleep(1.0 + (i % 5) * 0.1)
            r = await one_round(active, standby)
            done.append(r)
            say(f"round {i + 1}: lease {r.lease:.2f}, call {r.call:.2f}, health {r.health:.2f} s")
            await active.launch(env)  # the killed one comes back as the standby
            await active.wait_role("standby", 503)
            active, standby = standby, active
        if any(e.get("state") == "DISCONNECTED" for e in phone.events):
            say("the caller was disconnected during the rounds")
            return 1
        for line in report(done, lease, renew):
            print(line)
        return 0
    finally:
        if phone is not None:
            with contextlib.suppress(Exception):
                await phone.close()
        for node in (standby, active):
            if node.proc is not None and node.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.proc.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(node.proc.wait(), 60)
        await a.product._stop_orphaned_asterisk()  # noqa: SLF001 - the bench's own helper
        if logs is not None:
            keep_logs(logs, [a.log, b.log])
