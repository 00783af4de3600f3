"""End to end: a spoofed carrier INVITE is refused, REGISTER brute force gets the source banned
(and the ban lifted), and the state directory, the PBX instance and the PBX user are private.

One Asterisk for the module, with a short ban so its end can be seen. 127.0.0.1 is the carrier
(and the counselors' address, exempt from bans); 127.0.0.2 and 127.0.0.3 are other hosts."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ivr.app import PBX, build_app
from ivr.config import load_settings
from ivr.pbx.install import PBX_ID
from tests.conftest import COUNSELORS, Hotline, PhoneFactory, free_port, write_roster
from tests.sip_raw import SipClient

BAN_FAILURES = 3
BAN_SECONDS = 6.0


@pytest.fixture(scope="module")
async def guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hotline]:
    tmp = tmp_path_factory.mktemp("guarded")
    settings = load_settings(
        env={},
        overrides={
            "instance": f"sec{os.getpid()}",
            "state_dir": tmp / "state",
            "sip_bind": "127.0.0.1",
            "sip_port": free_port(socket.SOCK_DGRAM),
            "http_port": free_port(),
            "status_port": free_port(),
            "rtp_port_start": 33000,
            "rtp_port_end": 33199,
            "counselors": ",".join(COUNSELORS),
            "agents": "agent01",
            "roster_file": write_roster(tmp / "roster.toml", COUNSELORS),
            "carrier_addresses": "127.0.0.1/32",
            "auth_ban_failures": BAN_FAILURES,
            "auth_ban_window": 60,
            "auth_ban_seconds": BAN_SECONDS,
            "voice_answers": False,
        },
    )
    app = build_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        yield Hotline(settings, app, tmp)
    finally:
        pbx = app.get(PBX)
        await runner.cleanup()
        if pbx is not None:
            pbx.remove_instance()


def client(hotline: Hotline, source: str) -> SipClient:
    return SipClient(source, ("127.0.0.1", hotline.settings.sip_port))


async def test_a_spoofed_carrier_invite_from_another_address_is_refused(guarded: Hotline) -> None:
    spoofer = client(guarded, "127.0.0.2")
    try:
        final = await asyncio.to_thread(spoofer.invite, "120", from_user="carrier")
    finally:
        spoofer.close()
    channels = await guarded.ari.get("channels")
    assert final is not None and final.status in (401, 403), final
    assert channels == [], [c["name"] for c in channels]


async def register(hotline: Hotline, source: str, user: str, password: str) -> int | None:
    c = client(hotline, source)
    try:
        final = await asyncio.to_thread(c.register, user, password)
    finally:
        c.close()
    return final.status if final else None


async def test_register_brute_force_bans_the_source_until_the_ban_ends(
    guarded: Hotline, phones: PhoneFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    caller = await phones("caller")
    await caller.call(guarded.uri_120)  # a citizen's call in progress, from the carrier
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    call_id = await guarded.last_call_id()

    for _ in range(BAN_FAILURES):
        assert await register(guarded, "127.0.0.3", "counselor01", "wrong") == 401
    async with asyncio.timeout(10):  # the ban is applied (file written, res_pjsip reloaded)
        while (status := await register(guarded, "127.0.0.3", "counselor01", "wrong")) == 401:
            await asyncio.sleep(0.2)
    assert status in (403, None), status
    assert "SIP source 127.0.0.3 banned until" in caplog.text

    # The right password still works from another address, and the call goes on.
    good = guarded.password("counselor02")
    assert await register(guarded, "127.0.0.1", "counselor02", good) == 200
    assert await register(guarded, "127.0.0.3", "counselor02", good) in (403, None)
    assert call_id in guarded.controller.calls
    assert [c for c in await guarded.ari.get("channels") if c["id"] == call_id]
    assert not [e for e in caller.events if e.get("state") == "DISCONNECTED"]

    async with asyncio.timeout(BAN_SECONDS + 15):  # the ban ends: challenged again
        while await register(guarded, "127.0.0.3", "counselor01", "wrong") != 401:
            await asyncio.sleep(0.5)
    assert "SIP source 127.0.0.3: ban ended" in caplog.text
    await caller.hangup()
    await guarded.wait_row(call_id)


def loose(top: Path) -> list[str]:
    """Entries under `top` that others could read or write (directories may be traversable:
    the unprivileged Asterisk must reach its instance)."""
    found = []
    for root, dirnames, filenames in os.walk(top):
        for p in [Path(root)] + [Path(root) / n for n in (*dirnames, *filenames)]:
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            allowed = 0o011 if stat.S_ISDIR(st.st_mode) else 0
            if stat.S_IMODE(st.st_mode) & 0o077 & ~allowed:
                found.append(f"{p} {stat.S_IMODE(st.st_mode):o}")
    return found


def process_ids(pid: int) -> tuple[int, int]:
    """(real uid, real gid) of a running process."""
    fields = dict(ln.split(":", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


async def test_state_and_pbx_files_are_private_and_asterisk_has_its_own_uid(
    guarded: Hotline, phones: PhoneFactory
) -> None:
    caller = await phones("caller")
    await caller.call(guarded.uri_120)
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    call_id = await guarded.last_call_id()
    await caller.hangup()
    await guarded.wait_row(call_id)

    state = guarded.settings.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    db = state / guarded.settings.database
    assert {db, db.with_name(db.name + "-wal")} <= set(state.iterdir())
    assert loose(state) == []
    pbx = guarded.app[PBX]
    astdb = pbx.host(pbx.dirs.lib) / "astdb.sqlite3"
    assert astdb.exists() and stat.S_IMODE(astdb.stat().st_mode) == 0o600
    assert loose(pbx.host_base) == []

    pid = int((pbx.host(pbx.dirs.run) / "asterisk.pid").read_text())
    assert process_ids(pid) == (PBX_ID, PBX_ID)
    assert astdb.stat().st_uid == PBX_ID
