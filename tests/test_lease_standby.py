"""A standby's status port (ivr/lease/standby.py, ivr/lease/http.py) on a real port and a real
SQLite file: /health 503 "standby" with the lease it sees while another controller is active;
an admin command told that it stands by; the port closed once the lease is ours (the
controller opens it again); a taken port refused with a clear message."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from pathlib import Path

import pytest

from ivr.admin_client import AdminError, request
from ivr.lease.keeper import LeaseKeeper
from ivr.lease.model import LeaseParams
from ivr.lease.standby import StandbyError, stand_by
from tests.conftest import free_port
from tests.e2e_product import health
from tests.lease_support import held_by_another

P = LeaseParams(lease_seconds=2.0, renew_seconds=0.5)


async def _held_by_another(tmp_path: Path) -> Path:
    path = tmp_path / "ivr120.sqlite3"
    await held_by_another(path)
    return path


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


async def test_the_standby_says_so_until_it_holds_the_lease(tmp_path: Path) -> None:
    path = await _held_by_another(tmp_path)
    port = free_port()
    keeper = LeaseKeeper(path, P, me="me")
    waiting = asyncio.ensure_future(stand_by(keeper, port))
    try:
        async with asyncio.timeout(10):
            while keeper.seen is None:  # the keeper's first look
                await asyncio.sleep(0.05)
        status, body = await health(port)
        assert status == 503
        assert body["role"] == "standby" and body["ok"] is False
        assert body["lease"]["holder"] == "elsewhere" and body["lease"]["token"] == 1
        # An ivr-admin command sent to the standby hears that it stands by, not a traceback.
        with pytest.raises(AdminError, match="대기\\(standby\\) 중.*standby: this controller"):
            await request(f"http://127.0.0.1:{port}", "any-token", "GET", "/calls")
        with sqlite3.connect(path) as db:  # the active controller stopped cleanly
            db.execute("UPDATE leases SET expires_at=0")
        db.close()
        fence = await asyncio.wait_for(waiting, 10)
        assert fence is not None and fence.token == 2
        assert _refused(port)  # free for the controller's own status page
    finally:
        keeper.stop(release=True)


async def test_a_taken_status_port_is_refused_clearly(tmp_path: Path) -> None:
    path = await _held_by_another(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        keeper = LeaseKeeper(path, P, me="me")
        try:
            with pytest.raises(StandbyError, match="status port TCP 127.0.0.1:.* in use"):
                await stand_by(keeper, taken.getsockname()[1])
        finally:
            keeper.stop(release=False)
    assert keeper.seen is None  # it never looked at the lease
