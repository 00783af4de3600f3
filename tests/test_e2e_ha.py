"""End to end: two `ivr-run` with ha_enabled against one Asterisk (docs/ha.md).

A standby waits, touching nothing of the instance and answering /health with 503 "standby"
and the lease it sees, until the lease is free; when the active
controller is killed with SIGKILL during a call the standby takes the lease over within the
lease and a look, adopts the running Asterisk and takes the call back; a controller whose lease
was taken over ends at once with LEASE_LOST_EXIT."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.lease.keeper import LEASE_LOST_EXIT
from ivr.lease.model import LeaseParams
from ivr.pbx.adopt import alive
from ivr.phone.audio import is_silent, read_wav
from ivr.phone.remote import RemotePhone
from tests.conftest import TEST_CALLER_NUMBER, PhoneFactory, free_port
from tests.e2e_product import (
    IvrRun,
    asterisk_pid,
    asterisk_processes,
    health,
    keep_log_and_remove,
    pbx_of,
)
from tests.e2e_product import wait_checked as wait_for
from tests.lease_support import held_by_another

LEASE = LeaseParams(lease_seconds=2.0, renew_seconds=0.5)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[IvrRun, IvrRun]]:
    """Two ivr-run of one instance (one state directory, one Asterisk), each with its own
    status and desk port."""
    a = IvrRun.create(
        tmp_path,
        "ha",
        rtp=34600,
        IVR120_HA_ENABLED="true",
        IVR120_AGENTS="agent01",
        IVR120_MENU_INPUT_TIMEOUT="20",
    )
    (tmp_path / "b").mkdir()
    env = {
        **a.env,
        "IVR120_STATUS_PORT": str(free_port()),
        "IVR120_DESK_PORT": str(free_port()),
    }
    b = dataclasses.replace(a, tmp=tmp_path / "b", env=env, proc=None, runs=0)
    try:
        yield a, b
    finally:
        await b.close()
        await a.close()
        keep_log_and_remove(a, tmp_path)


async def test_a_standby_waits_touching_nothing_and_stops_on_sigterm(
    pair: tuple[IvrRun, IvrRun],
) -> None:
    a, _ = pair
    await held_by_another(a.state / "ivr120.sqlite3")
    await a.start(healthy=False)

    async def standing_by() -> bool:
        return "lease: standby; elsewhere is active" in a.text()

    await wait_for("the standby line", standing_by)
    assert asterisk_processes(a.instance) == []
    status, body = await health(a.status_port)  # alive, not serving calls
    assert (status, body["role"], body["ok"]) == (503, "standby", False), body
    assert body["lease"]["holder"] == "elsewhere" and body["lease"]["token"] == 1, body
    assert body["lease"]["expires_at"] > time.time() + 3000, body
    a.signal(signal.SIGTERM)
    assert await a.wait(10) == 0, a.text()
    assert asterisk_processes(a.instance) == []


def _take_lease_from(state: Path) -> None:
    """Another controller's take-over, as its keeper does it (the row's token + 1)."""
    with sqlite3.connect(state / "ivr120.sqlite3") as db:
        db.execute("UPDATE leases SET holder='elsewhere', token=token+1, expires_at=?",
                   (time.time() + 3600,))  # fmt: skip


async def _active_and_standby_with_a_caller(
    a: IvrRun, b: IvrRun, phones: PhoneFactory
) -> tuple[int, RemotePhone, str]:
    """a active, b standing by, a caller in a's menu: (Asterisk's pid, the caller, its call id)."""
    await a.start()
    assert "lease: standby -> active (token 1" in a.text(), a.text()
    pid = asterisk_pid(pbx_of(a))
    await b.start(healthy=False)

    async def b_standing_by() -> bool:
        return "lease: standby;" in b.text()

    await wait_for("the second controller standing by", b_standing_by)
    status, body = await health(b.status_port)
    assert (status, body["role"], body["lease"]["token"]) == (503, "standby", 1), body
    assert a.proc is not None and f":{a.proc.pid}:" in body["lease"]["holder"], body
    status, body = await health(a.status_port)
    assert (status, body["role"], body["lease"]["token"]) == (200, "active", 1), body
    caller = await phones("caller")
    await caller.identity(TEST_CALLER_NUMBER)
    await caller.call(a.uri_120)
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)

    async def snapshot() -> bool:
        return bool(a.rows("SELECT call_id FROM live_calls"))

    await wait_for("the menu call's snapshot", snapshot)
    return pid, caller, a.rows("SELECT call_id FROM live_calls")[0]["call_id"]


async def taken_back_and_heard(b: IvrRun, caller: RemotePhone, call_id: str, wav: Path) -> None:
    """b takes the call back, and the caller hears the menu again (2 s of it recorded)."""

    async def taken_back() -> bool:
        return f"call {call_id}: taken back after a restart" in b.text()

    await wait_for("the call taken back", taken_back)
    await caller.record(wav)
    await asyncio.sleep(2.0)
    again = read_wav(Path(await caller.stop_record()))
    assert not is_silent(again.samples), "the caller heard nothing after the take-over"


async def test_the_standby_takes_over_a_killed_active_controller_and_its_call(
    pair: tuple[IvrRun, IvrRun], phones: PhoneFactory, tmp_path: Path
) -> None:
    a, b = pair
    pid, caller, call_id = await _active_and_standby_with_a_caller(a, b, phones)

    await a.kill()
    killed = time.monotonic()
    assert alive(pid), "Asterisk died with the killed controller"

    async def b_active() -> bool:
        return "lease: standby -> active (token 2" in b.text()

    await wait_for("the take-over", b_active, timeout=10)
    took_over = time.monotonic() - killed
    # the lease (2 s) and one look (0.5 s), with the log line's own delay under load
    assert took_over < LEASE.lease_seconds + 2 * LEASE.renew_seconds, took_over
    await b.wait_health(200, timeout=60)
    serving = time.monotonic() - killed
    _, body = await health(b.status_port)
    assert (body["role"], body["lease"]["token"]) == ("active", 2), body
    assert asterisk_pid(pbx_of(b)) == pid, "Asterisk was restarted"
    assert f"adopting the running Asterisk (pid {pid})" in b.text(), b.text()

    await taken_back_and_heard(b, caller, call_id, tmp_path / "menu-again.wav")
    print(f"take-over after {took_over:.2f} s, serving again after {serving:.2f} s")

    # Its lease taken over, the controller ends at once and commands nothing more.
    _take_lease_from(b.state)
    assert await b.wait(10) == LEASE_LOST_EXIT, b.text()
    assert "lost" in b.text()
    assert TEST_CALLER_NUMBER not in a.text() + b.text()


async def test_a_paused_active_controller_is_replaced_and_ends_when_it_runs_again(
    pair: tuple[IvrRun, IvrRun], phones: PhoneFactory, tmp_path: Path
) -> None:
    a, b = pair
    pid, caller, call_id = await _active_and_standby_with_a_caller(a, b, phones)

    a.signal(signal.SIGSTOP)  # still holding the instance lock, its websocket, its ports
    try:

        async def b_active() -> bool:
            return "lease: standby -> active (token 2" in b.text()

        await wait_for("the take-over", b_active, timeout=10)
        await b.wait_health(200, timeout=60)
        assert "a controller that lost the lease" in b.text(), b.text()

        async def taken_back() -> bool:
            return f"call {call_id}: taken back after a restart" in b.text()

        await wait_for("the call taken back", taken_back)
    finally:
        a.signal(signal.SIGCONT)
    assert await a.wait(10) == LEASE_LOST_EXIT, a.text()
    assert "lease controller token 1 lost" in a.text(), a.text()
    assert alive(pid), "the fenced controller stopped Asterisk"
    assert await b.health() == 200
    # The call goes on with the new active controller, after the old one ended.
    await caller.record(tmp_path / "after.wav")
    await asyncio.sleep(2.0)
    after = read_wav(Path(await caller.stop_record()))
    assert not is_silent(after.samples), "the caller heard nothing after the old one ended"
    assert [r["call_id"] for r in b.rows("SELECT call_id FROM live_calls")] == [call_id]
    await caller.hangup()

    async def closed_once() -> bool:
        rows = b.rows("SELECT outcome FROM calls WHERE call_id=?", call_id)
        return len(rows) == 1 and rows[0]["outcome"] is not None

    await wait_for("the record completed", closed_once)
    assert b.rows("SELECT * FROM live_calls") == []


async def test_a_hand_over_releases_the_lease_and_the_standby_takes_the_call(
    pair: tuple[IvrRun, IvrRun], phones: PhoneFactory, tmp_path: Path
) -> None:
    """An update of the active controller (SIGUSR2): it ends without ending the call and
    lets the lease lapse at once; the standby takes over at its next look (not after the
    lease ran out), adopts the same Asterisk and takes the call back."""
    a, b = pair
    pid, caller, call_id = await _active_and_standby_with_a_caller(a, b, phones)

    a.signal(signal.SIGUSR2)
    assert await a.wait(30) == 0, a.text()
    assert "lease: released (token 1)" in a.text(), a.text()
    assert alive(pid), "Asterisk stopped with the handed-over controller"
    assert not [e for e in caller.events if e.get("state") == "DISCONNECTED"]

    async def b_active() -> bool:
        return "lease: standby -> active (token 2" in b.text()

    await wait_for("the take-over", b_active, timeout=10)
    await b.wait_health(200, timeout=60)
    assert asterisk_pid(pbx_of(b)) == pid, "Asterisk was restarted"

    await taken_back_and_heard(b, caller, call_id, tmp_path / "menu-again.wav")
    await caller.hangup()

    async def closed_once() -> bool:
        rows = b.rows("SELECT outcome FROM calls WHERE call_id=?", call_id)
        return len(rows) == 1 and rows[0]["outcome"] is not None

    await wait_for("the record completed", closed_once)
