"""End to end through the containers (issue 14, "Deploy"; docs/containers.md): the images are
built with podman on this machine (`ivr.deploy.images`), docker/compose.yaml is brought up with
podman-compose — Asterisk on the host network, the controller reaching it over ARI, the summary
worker in its own container, state on a named volume, secrets from a file — and a pjsua2 caller
reaches a pjsua2 counselor through them.

The controller is told to receive the taps' RTP on every address and Asterisk to send it to
the machine's own non-loopback address, and its SIP messages carry that address as their
From: the both-silent notice the counselor's phone gets proves the taps' audio arrived there.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.ari.client import AriClient
from ivr.config import load_settings
from ivr.deploy.images import build, podman_env
from ivr.paths import PROJECT_ROOT
from ivr.pbx.secrets import load_or_create
from ivr.phone.audio import is_silent, read_wav, tone_present
from ivr.phone.remote import RemotePhone
from tests.conftest import (
    CALLER_TONE,
    COUNSELOR_TONE,
    TEST_CALLER_NUMBER,
    PhoneFactory,
    free_port,
    write_roster,
)
from tests.e2e_product import wait_checked as wait_for

pytestmark = pytest.mark.timeout(1200)

COMPOSE = PROJECT_ROOT / "docker" / "compose.yaml"
RTP_START = 35000


def own_address() -> str:
    """This machine's first non-loopback IPv4 address (what another host would reach)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        return line.split()[3].split("/")[0]
    pytest.fail(f"no non-loopback IPv4 address on this machine:\n{out}")


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, float]]:
    started = time.monotonic()
    times = build(load_settings(env={}))
    times["total"] = time.monotonic() - started
    print(f"image build: {', '.join(f'{k} {v:.1f} s' for k, v in times.items())}")
    yield times


class Composed:
    """The composed product of one test: its project name, environment and ports."""

    def __init__(self, tmp: Path) -> None:
        self.project = f"ivr120t{os.getpid()}"
        self.address = own_address()
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.http_port = free_port()
        self.status_port = free_port()
        shared = {
            "IVR120_INSTANCE": self.project,
            "IVR120_SIP_PORT": str(self.sip_port),
            "IVR120_HTTP_PORT": str(self.http_port),
            "IVR120_STATUS_PORT": str(self.status_port),
            "IVR120_RTP_PORT_START": str(RTP_START),
            "IVR120_RTP_PORT_END": str(RTP_START + 199),
            "IVR120_COUNSELORS": "counselor01",
            "IVR120_AGENTS": "agent01",
        }
        # The secrets file of the installation, as its operator keeps it (0600, outside).
        staff = load_settings(env=shared).staff_endpoints
        self.secrets = load_or_create(tmp / "secrets.json", staff)
        site = tmp / "site"
        site.mkdir()
        write_roster(site / "roster.toml", ("counselor01",))
        (site / "ivr120.toml").write_text(
            'roster_file = "/etc/ivr120/roster.toml"\n'
            "both_silence_notify = 4\n"
            "caller_silence_notify = 8\n"
            "wrapup_seconds = 0\n"
            "shutdown_grace = 2\n",
            encoding="utf-8",
        )
        site.chmod(0o755)
        for f in site.iterdir():
            f.chmod(0o644)
        settings = load_settings(env={})
        self.env = podman_env(settings)
        self.env.update(shared)
        self.env.update(
            IVR120_SECRETS=str(tmp / "secrets.json"),
            IVR120_SITE_DIR=str(site),
            IVR120_CONFIG="/etc/ivr120/ivr120.toml",
            IVR120_TAP_RTP_BIND="0.0.0.0",
            IVR120_TAP_RTP_ADDRESS=self.address,
            IVR120_MESSAGE_FROM=f"sip:ivr120@{self.address}",
        )

    def compose(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "podman_compose", "-f", str(COMPOSE), "-p", self.project, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"podman-compose {args} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def podman(self, *args: str) -> str:
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, check=False
        ).stdout

    def logs(self) -> str:
        out = []
        for service in ("asterisk", "controller", "summary-worker"):
            name = f"{self.project}_{service}_1"
            out.append(f"--- {name}\n{self.podman('logs', '--tail', '60', name)}")
        return "\n".join(out)

    def db_rows(self, sql: str) -> list[dict[str, Any]]:
        volume = self.podman(
            "volume", "inspect", "--format", "{{.Mountpoint}}", f"{self.project}_state"
        )
        db_path = Path(volume.strip()) / "ivr120.sqlite3"
        if not db_path.exists():
            return []
        db = sqlite3.connect(db_path)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql)]
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    async def ari_get(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.http_port}/ari"
        ari = AriClient(url, "ivr120", self.secrets.ari_password, "ivr120")
        try:
            return await ari.get(path)
        finally:
            await ari.close()

    async def health(self) -> int | None:
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"http://127.0.0.1:{self.status_port}/health") as r,
            ):
                return r.status
        except aiohttp.ClientError:
            return None


@pytest.fixture
async def composed(images: dict[str, float], tmp_path: Path) -> AsyncIterator[Composed]:
    product = Composed(tmp_path)
    product.compose("down", "-v", check=False)
    started = time.monotonic()
    product.compose("up", "-d")
    try:
        deadline = time.monotonic() + 180
        while await product.health() != 200:
            if time.monotonic() > deadline:
                pytest.fail(f"the composed product never became healthy:\n{product.logs()}")
            await asyncio.sleep(0.5)
        print(f"composed product healthy {time.monotonic() - started:.1f} s after `up`")
        yield product
    finally:
        (tmp_path / "containers.log").write_text(product.logs(), encoding="utf-8")
        product.compose("down", "-v", check=False)


async def hears(phone: RemotePhone, path: Path, freq: float, timeout: float = 20) -> None:
    """Record what the phone hears in 1.5 s pieces until the tone is in one."""

    async def heard() -> bool:
        await phone.record(path)
        await asyncio.sleep(1.5)
        wav = read_wav(Path(await phone.stop_record()))
        return tone_present(wav.samples, wav.rate, freq)

    await wait_for(f"{phone.name} to hear {freq} Hz", heard, timeout)


async def test_a_call_through_the_composed_containers(
    composed: Composed, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    product = composed
    names = product.podman("ps", "--format", "{{.Names}}").split()
    for service in ("asterisk", "controller", "summary-worker"):
        assert f"{product.project}_{service}_1" in names, names
    # No secret in any image: the secrets file is only mounted.
    for image in ("localhost/ivr120-asterisk:latest", "localhost/ivr120-controller:latest"):
        history = product.podman("image", "inspect", image)
        assert product.secrets.ari_password not in history

    domain = f"127.0.0.1:{product.sip_port}"
    c1 = await phones("counselor01")
    await c1.auto_answer()
    reg = await c1.register("counselor01", product.secrets.sip_passwords["counselor01"], domain)
    assert reg["code"] == 200, reg

    async def online() -> bool:
        ep = await product.ari_get("endpoints/PJSIP/counselor01")
        return bool(ep.get("state") == "online")

    await wait_for("the counselor online", online)

    caller = await phones("caller")
    await caller.identity(TEST_CALLER_NUMBER)
    await caller.call(f"sip:120@{domain}")
    await caller.wait_for("call_state", state="CONFIRMED", timeout=20)
    await caller.record(tmp_path / "menu.wav")
    await asyncio.sleep(2.5)
    menu = read_wav(Path(await caller.stop_record()))
    assert not is_silent(menu.samples), "the caller heard no menu"

    await caller.dtmf("5")
    await c1.wait_for("incoming", timeout=30)
    await c1.wait_for("call_state", state="CONFIRMED", timeout=10)
    await caller.play(tones["caller"])
    await c1.play(tones["counselor"])
    await hears(caller, tmp_path / "caller-heard.wav", COUNSELOR_TONE, timeout=30)
    await hears(c1, tmp_path / "counselor-heard.wav", CALLER_TONE)

    # Both fall silent: the taps' audio reaches the controller at the address given, and the
    # notice comes from the configured sender.
    await caller.stop_play()
    await c1.stop_play()
    told = await c1.wait_for("message", timeout=30)
    assert told["body"].startswith("ivr120:both_silent:"), told
    assert f"ivr120@{product.address}" in told["from"], told

    await caller.hangup()
    await c1.wait_for("call_state", state="DISCONNECTED", timeout=10)

    async def record() -> list[dict[str, Any]]:
        return product.db_rows("SELECT * FROM calls WHERE outcome IS NOT NULL")

    rows = await wait_for("the call record", record)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["outcome"] == "completed"
    assert row["menu_path"] == "5"
    assert row["member"] == "counselor01"
    assert TEST_CALLER_NUMBER not in row["caller_hash"]

    async def no_channels() -> bool:
        return await product.ari_get("channels") == []

    await wait_for("no channel left in Asterisk", no_channels)
