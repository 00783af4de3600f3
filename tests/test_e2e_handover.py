"""End to end: the stop for an update (SIGUSR2, a hand-over). A caller is talking with the
agent and one waits in the queue when `ivr-run` is told to hand over: it ends with status 0
without ending a call, Asterisk keeps running (same pid) with both calls, the two still hear
each other while no controller runs, and the next `ivr-run` adopts Asterisk and takes both
calls back; each record is completed once, with the downtime, and no apology was played."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from ivr.bench.wallboard import MEMBER, set_password
from ivr.pbx.adopt import alive
from ivr.phone.audio import read_wav, tone_present
from ivr.phone.remote import RemotePhone
from ivr.web.browser import settled, sign_in, submit
from tests.conftest import CALLER_TONE, COUNSELOR_TONE, PhoneFactory
from tests.e2e_product import IvrRun, agent_online, asterisk_pid, pbx_of, running_product
from tests.e2e_product import wait_checked as wait_for
from tests.test_e2e_restart import agent_takes_the_waiting_caller, heard, talking_and_waiting


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[IvrRun]:
    env = {"IVR120_AGENTS": "agent01", "IVR120_WRAPUP_SECONDS": "0"}
    async with running_product(tmp_path, "handover", 35800, **env) as product:
        yield product


async def hears(listener: RemotePhone, tone: float, wav: Path) -> bool:
    rec = read_wav(await heard(listener, wav, 2.0))
    return tone_present(rec.samples, rec.rate, tone)


async def test_a_hand_over_keeps_every_call_for_the_next_run(
    run: IvrRun, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    await run.start()
    pid = asterisk_pid(pbx_of(run))
    ari = run.ari()
    try:
        agent = await agent_online(run, phones, ari)
        talking, waiting, ids = await talking_and_waiting(run, phones, agent)

        run.signal(signal.SIGUSR2)
        assert await run.wait(30) == 0, run.text()
        first = run.text()
        assert "handing over: 2 call(s) stay in Asterisk for the next run" in first, first
        assert "ending calls in progress with an apology" not in first, first
        assert alive(pid), "Asterisk stopped with the handed-over run"
        # No controller runs now: the talking pair still hear each other.
        await talking.play(tones["caller"])
        await agent.play(tones["counselor"])
        assert await hears(talking, COUNSELOR_TONE, tmp_path / "c-down.wav")
        assert await hears(agent, CALLER_TONE, tmp_path / "a-down.wav")
        assert not [e for e in talking.events if e.get("state") == "DISCONNECTED"]

        await run.start()
        assert asterisk_pid(pbx_of(run)) == pid
        assert f"adopting the running Asterisk (pid {pid})" in run.text(), run.text()

        async def taken_back() -> bool:
            return run.text().count("taken back after a restart") == 2

        await wait_for("the two calls taken back", taken_back)
        assert await hears(talking, COUNSELOR_TONE, tmp_path / "c-after.wav")
        await agent.hangup()
        await talking.wait_for("call_state", state="DISCONNECTED", timeout=20)
        await agent_takes_the_waiting_caller(
            run, agent, waiting, ids["waiting"], tones, tmp_path / "a-heard.wav"
        )
        await waiting.hangup()

        async def all_closed() -> bool:
            return not run.rows("SELECT * FROM calls WHERE outcome IS NULL")

        await wait_for("every record completed", all_closed)
        calls = run.rows("SELECT call_id, outcome, end_reason, downtime_seconds FROM calls")
        assert len(calls) == 2, calls
        assert all(c["outcome"] == "completed" and c["end_reason"] is None for c in calls), calls
        assert all(c["downtime_seconds"] is not None for c in calls), calls
        assert run.rows("SELECT * FROM live_calls") == []
    finally:
        await ari.close()


async def test_a_hand_over_signs_nobody_out_of_the_desk(run: IvrRun, browser: Any) -> None:
    """A supervisor's wallboard open in Chromium across the hand-over and the next start: the
    page comes back signed in (no sign-in page), and a form rendered before (sign-out, with
    its CSRF token) still posts."""
    await run.start()
    password = "wallboard-handover-pw"
    set_password(run.state, password)
    base = f"http://127.0.0.1:{run.env['IVR120_DESK_PORT']}"
    sign_in(browser, base, MEMBER, password)
    browser.get(f"{base}/wallboard")
    pushed = "return document.body.dataset.pushed"
    settled(browser).until(lambda b: b.execute_script(pushed) == "yes")

    run.signal(signal.SIGUSR2)
    assert await run.wait(30) == 0, run.text()
    await run.start()
    assert "desk: 1 signed-in session(s) kept from before this start" in run.text()
    browser.get(f"{base}/wallboard")
    settled(browser).until(lambda b: b.execute_script(pushed) == "yes")
    assert urlsplit(browser.current_url).path == "/wallboard", browser.current_url
    submit(browser, "signout")  # the page's form, its token from before the restart
    assert urlsplit(browser.current_url).path == "/signin", browser.current_url
    browser.get(f"{base}/wallboard")
    assert urlsplit(browser.current_url).path == "/signin", browser.current_url
