"""End to end: every stop of `ivr-run` ends — Ctrl-C, then SIGTERM during the graceful stop,
then more of both — within shutdown_grace + 5 s, with its Asterisk stopped."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.pbx.adopt import alive
from tests.conftest import PhoneFactory
from tests.e2e_product import IvrRun, asterisk_pid, asterisk_processes, pbx_of

GRACE = 4.0


@pytest.fixture
async def product(tmp_path: Path) -> AsyncIterator[IvrRun]:
    run = IvrRun.create(tmp_path, "stop", rtp=34600, IVR120_SHUTDOWN_GRACE=str(GRACE))
    try:
        yield run
    finally:
        await run.close()
        left = pbx_of(run)
        with contextlib.suppress(OSError):
            shutil.copy(left.log_file, tmp_path / "asterisk-messages.log")
        left.remove_instance()


async def test_ctrl_c_then_sigterm_during_the_stop_ends_within_the_grace(
    product: IvrRun, phones: PhoneFactory
) -> None:
    run = product
    await run.start()
    pid = asterisk_pid(pbx_of(run))
    caller = await phones("caller")
    await caller.call(run.uri_120)
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    async with asyncio.timeout(10):
        while not run.rows("SELECT call_id FROM calls"):
            await asyncio.sleep(0.1)

    began = time.monotonic()
    run.signal(signal.SIGINT)  # Ctrl-C: the graceful stop begins (the caller's apology)
    async with asyncio.timeout(5):
        while "stopping: ending calls in progress" not in run.text():
            await asyncio.sleep(0.05)
    # The impatient operator (and a service manager): more of both, every 0.4 s, until it ends.
    assert run.proc is not None
    async with asyncio.timeout(GRACE + 5 - (time.monotonic() - began)):
        sigs = (signal.SIGTERM, signal.SIGINT)
        n = 0
        while run.proc.returncode is None:
            run.signal(sigs[n % 2])
            n += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(run.proc.wait()), 0.4)
    took = time.monotonic() - began
    assert took < GRACE + 5, took
    assert not alive(pid), "Asterisk outlived the stop"
    assert not asterisk_processes(run.instance)
    assert "Asterisk stopped" in run.text(), run.text()
    assert "already stopping" in run.text(), run.text()
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=10)
    assert run.rows("SELECT * FROM calls WHERE outcome IS NULL") == []
