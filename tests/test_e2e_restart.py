"""End to end: the controller killed with SIGKILL during calls, then started again.

A caller is talking with an agent, one waits in the queue, one is in the menu. Asterisk
outlives the killed `ivr-run` and the next start adopts it (same pid) instead of stopping it
with every call on it; with Asterisk run on its own (`--external-pbx`) the new controller finds
the same channels. Either way, this step of issue 14 cannot take the calls back yet: every
caller hears the apology and gets a BYE, the agent's leg is hung up, the records the dead run
left open are closed once (`controller_restart`, with the downtime), and nothing of the dead
run is left in Asterisk."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.paths import project_file
from ivr.pbx.adopt import alive
from ivr.phone.audio import is_silent, read_wav
from ivr.prompts.build import build as build_prompts
from ivr.prompts.catalog import load_catalog
from tests.conftest import TEST_CALLER_NUMBER, PhoneFactory, write_roster
from tests.e2e_product import IvrRun, asterisk_pid, pbx_of

ORPHAN = "ivr120-orphan-recording"


@pytest.fixture(params=["managed", "external"])
async def product(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IvrRun]:
    topology = request.param
    roster = write_roster(tmp_path / "roster.toml", ("counselor01",))
    run = IvrRun.create(
        tmp_path,
        f"restart{topology[:3]}",
        rtp=34200 if topology == "managed" else 34400,
        IVR120_ROSTER_FILE=str(roster),
        IVR120_AGENTS="agent01",
        IVR120_MENU_INPUT_TIMEOUT="20",
        IVR120_WRAPUP_SECONDS="0",
    )
    pbx = None
    if topology == "external":
        run.state.mkdir(parents=True)
        pbx = pbx_of(run)
        settings = pbx.settings  # the prompts, as _pbx_ctx builds them for its own Asterisk
        catalog = load_catalog(project_file(settings.prompt_catalog))
        studio = project_file(settings.prompt_studio_dir)
        await asyncio.to_thread(build_prompts, catalog, pbx.sounds_dir, studio)
        await asyncio.to_thread(pbx.prepare)
        await pbx.start()
        run.args = ("--external-pbx",)
    try:
        yield run
    finally:
        await run.close()
        if pbx is not None:
            await pbx.stop()
        left = pbx_of(run)
        with contextlib.suppress(OSError):  # Asterisk's log stays with the test's files
            shutil.copy(left.log_file, tmp_path / "asterisk-messages.log")
        left.remove_instance()


async def wait_for(what: str, check, timeout: float = 20):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while True:
            got = await check()
            if got:
                return got
            await asyncio.sleep(0.2)


async def test_sigkill_with_calls_adopts_asterisk_and_leaves_nobody_in_dead_air(
    product: IvrRun, phones: PhoneFactory, tmp_path: Path
) -> None:
    run = product
    await run.start()
    pid = asterisk_pid(pbx_of(run))
    ari = run.ari()
    try:
        agent = await phones("agent01")
        reg = await agent.register(
            "agent01", run.secrets()["sip_passwords"]["agent01"], f"127.0.0.1:{run.sip_port}"
        )
        assert reg["code"] == 200, reg

        async def online() -> bool:
            return (await ari.get("endpoints/PJSIP/agent01")).get("state") == "online"

        await wait_for("the agent online", online)

        # A connected call: the caller chose 1, the agent answered.
        talking = await phones("talking")
        await talking.identity(TEST_CALLER_NUMBER)
        await talking.call(run.uri_120)
        await talking.wait_for("call_state", state="CONFIRMED", timeout=10)
        await asyncio.sleep(1.0)  # the menu has begun
        await talking.dtmf("1")
        await agent.wait_for("incoming", timeout=30)
        await agent.answer()
        await agent.wait_for("call_state", state="CONFIRMED", timeout=10)

        async def bridged() -> bool:
            return any(b["id"].startswith("talk-") for b in await ari.get("bridges"))

        await wait_for("the talk bridge", bridged)
        # A stored recording of ours that no call owns (left by a run that died mid-fetch).
        talk = next(b["id"] for b in await ari.get("bridges") if b["id"].startswith("talk-"))
        await ari.post(f"bridges/{talk}/record", name=ORPHAN, format="wav", ifExists="overwrite")

        async def recording() -> bool:
            live = await ari.get(f"recordings/live/{ORPHAN}")
            return bool(live.get("state") == "recording")

        await wait_for("the recording", recording)
        await ari.post(f"recordings/live/{ORPHAN}/stop")

        async def stored() -> bool:
            return any(r["name"] == ORPHAN for r in await ari.get("recordings/stored"))

        await wait_for("the stored recording", stored)

        # A caller waiting in the queue (the only agent is busy): in a holding bridge.
        waiting = await phones("waiting")
        await waiting.call(run.uri_120)
        await waiting.wait_for("call_state", state="CONFIRMED", timeout=10)
        await asyncio.sleep(1.0)
        await waiting.dtmf("1")

        async def holding() -> bool:
            return any(b["id"].startswith("hold-") for b in await ari.get("bridges"))

        await wait_for("the holding bridge", holding)

        # A call in the menu.
        menu = await phones("menu")
        await menu.call(run.uri_120)
        await menu.wait_for("call_state", state="CONFIRMED", timeout=10)

        async def three_rows() -> bool:
            return len(run.rows("SELECT call_id FROM calls")) == 3

        await wait_for("the three call records", three_rows)

        await run.kill()
        assert alive(pid), "Asterisk died with the killed controller"
        callers = (talking, waiting, menu)
        for phone in callers:
            await phone.record(tmp_path / f"{phone.name}.wav")
        await run.start()
        assert asterisk_pid(pbx_of(run)) == pid and alive(pid), "Asterisk was restarted"
        if "--external-pbx" not in run.args:
            assert f"adopting the running Asterisk (pid {pid})" in run.text(), run.text()

        for phone in (*callers, agent):
            await phone.wait_for("call_state", state="DISCONNECTED", timeout=40)
        for phone in callers:
            await phone.wait_for("recorded", timeout=10)
            heard = read_wav(tmp_path / f"{phone.name}.wav")
            assert not is_silent(heard.span(heard.seconds - 3, heard.seconds - 0.5)), (
                f"the {phone.name} caller heard no apology before the BYE"
            )

        async def nothing_left() -> bool:
            return not await ari.get("channels") and not await ari.get("bridges")

        with contextlib.suppress(TimeoutError):
            await wait_for("Asterisk clean", nothing_left, timeout=15)
        assert await ari.get("channels") == []
        assert await ari.get("bridges") == []
        stored = await ari.get("recordings/stored")
        assert not [r for r in stored if r["name"].startswith("ivr120-")]

        calls = run.rows("SELECT call_id, outcome, end_reason, downtime_seconds FROM calls")
        assert len(calls) == 3, calls
        assert all(c["outcome"] == "error" for c in calls), calls
        assert all(c["end_reason"] == "controller_restart" for c in calls), calls
        assert all(c["downtime_seconds"] is not None for c in calls), calls
        assert run.rows("SELECT * FROM ring_attempts WHERE outcome IS NULL") == []
        text = run.text()
        assert "closed 3 call record(s)" in text, text
        assert f"deleting stored recording {ORPHAN}" in text, text
        assert "destroying bridge talk-" in text and "destroying bridge hold-" in text, text
        assert TEST_CALLER_NUMBER not in text

        run.signal(signal.SIGTERM)
        assert await run.wait(40) == 0, run.text()
        if "--external-pbx" not in run.args:
            assert not alive(pid), "a clean stop left the adopted Asterisk running"
        else:
            assert alive(pid), "an external Asterisk was stopped by the controller"
    finally:
        await ari.close()
