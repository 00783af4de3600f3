"""End to end: the controller killed with SIGKILL during calls, then started again.

A caller is talking with an agent, one waits in the queue, one is in the menu. Asterisk
outlives the killed `ivr-run` and the next start adopts it (same pid) instead of stopping it
with every call on it; with Asterisk run on its own (`--external-pbx`) the new controller finds
the same channels. Either way the new run takes the calls back (ivr.resume): the talking caller
and the agent stay bridged (audio both ways), the agent is still on that call for the ring
group (the waiting caller is not offered to them); the waiting caller stays in their holding
bridge, hears one "기다려 주셔서 감사합니다", and is connected when the agent is free again; the
menu caller hears the menu again. Every record is completed exactly once, with the downtime,
and nothing of the dead run is left in Asterisk."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ivr.paths import project_file
from ivr.pbx.adopt import alive
from ivr.phone.audio import is_silent, read_wav, tone_present
from ivr.phone.remote import RemotePhone
from ivr.prompts.build import build as build_prompts
from ivr.prompts.catalog import load_catalog
from tests.conftest import (
    CALLER_TONE,
    COUNSELOR_TONE,
    TEST_CALLER_NUMBER,
    PhoneFactory,
    write_roster,
)
from tests.e2e_product import (
    IvrRun,
    agent_online,
    asterisk_pid,
    dial_and_press,
    keep_log_and_remove,
    pbx_of,
)
from tests.e2e_product import wait_checked as wait_for

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
        keep_log_and_remove(run, tmp_path)


async def heard(phone: RemotePhone, path: Path, seconds: float) -> Path:
    """Record what the phone hears for `seconds` and return the file."""
    await phone.record(path)
    await asyncio.sleep(seconds)
    return Path(await phone.stop_record())


async def agent_takes_the_waiting_caller(
    run: Any, agent: Any, waiting: Any, call_id: str, tones: dict[str, Path], wav: Path
) -> None:
    """The free agent is offered the waiting caller, answers, and hears the caller's tone."""
    await agent.wait_for("incoming", timeout=30)
    await agent.answer()
    await agent.wait_for("call_state", state="CONFIRMED", timeout=10)

    async def waiting_connected() -> bool:
        rows = run.rows("SELECT state FROM live_calls WHERE call_id=?", call_id)
        return bool(rows) and rows[0]["state"] == "connected"

    await wait_for("the waiting caller connected", waiting_connected)
    await waiting.play(tones["caller"])
    by_agent = read_wav(await heard(agent, wav, 2.0))
    assert tone_present(by_agent.samples, by_agent.rate, CALLER_TONE)


async def talking_and_waiting(
    run: IvrRun, phones: PhoneFactory, agent: RemotePhone
) -> tuple[RemotePhone, RemotePhone, dict[str, str]]:
    """A caller who chose 1 and talks with the agent, and one waiting in the queue behind,
    once both snapshots are written: (talking, waiting, their call ids by snapshot state)."""
    talking = await dial_and_press(run, phones, "talking", "1", TEST_CALLER_NUMBER)
    await agent.wait_for("incoming", timeout=30)
    await agent.answer()
    await agent.wait_for("call_state", state="CONFIRMED", timeout=10)
    waiting = await dial_and_press(run, phones, "waiting", "1")

    async def two_snapshots() -> bool:
        states = {r["state"] for r in run.rows("SELECT state FROM live_calls")}
        return states == {"connected", "waiting"}

    await wait_for("the two live snapshots", two_snapshots)
    ids = {r["state"]: r["call_id"] for r in run.rows("SELECT state, call_id FROM live_calls")}
    return talking, waiting, ids


async def test_sigkill_with_calls_adopts_asterisk_and_takes_every_call_back(
    product: IvrRun, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    run = product
    await run.start()
    pid = asterisk_pid(pbx_of(run))
    ari = run.ari()
    try:
        agent = await agent_online(run, phones, ari)

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

        async def three_snapshots() -> bool:
            states = {r["state"] for r in run.rows("SELECT state FROM live_calls")}
            return len(states) == 3 and "connected" in states and "waiting" in states

        await wait_for("the three live snapshots", three_snapshots)
        ids = {r["state"]: r["call_id"] for r in run.rows("SELECT state, call_id FROM live_calls")}
        queued_before = run.rows("SELECT queued_at FROM live_calls WHERE state='waiting'")

        await run.kill()
        assert alive(pid), "Asterisk died with the killed controller"
        restarted = time.time()
        await run.start()
        assert asterisk_pid(pbx_of(run)) == pid and alive(pid), "Asterisk was restarted"
        if "--external-pbx" not in run.args:
            assert f"adopting the running Asterisk (pid {pid})" in run.text(), run.text()

        async def taken_back() -> bool:
            return run.text().count("taken back after a restart") == 3

        await wait_for("the three calls taken back", taken_back)

        # The connected call: still bridged, audio both ways.
        await talking.play(tones["caller"])
        await agent.play(tones["counselor"])
        by_caller = read_wav(await heard(talking, tmp_path / "c-heard.wav", 2.0))
        by_agent = read_wav(await heard(agent, tmp_path / "a-heard.wav", 2.0))
        assert tone_present(by_caller.samples, by_caller.rate, COUNSELOR_TONE)
        assert tone_present(by_agent.samples, by_agent.rate, CALLER_TONE)
        # The menu caller hears the menu again; the waiting caller is not left in silence.
        again = read_wav(await heard(menu, tmp_path / "menu.wav", 2.0))
        assert not is_silent(again.samples), "the menu caller heard no menu after the restart"
        hold = read_wav(await heard(waiting, tmp_path / "hold.wav", 2.0))
        assert not is_silent(hold.samples), "the waiting caller heard nothing after the restart"
        assert f"call {ids['waiting']}: taken back after a restart as waiting" in run.text()
        # The agent is on the connected call for the ring group: nobody rang them again.
        assert run.rows("SELECT * FROM ring_attempts WHERE started_at > ?", restarted) == []
        await menu.hangup()

        # The agent hangs up: the talking caller's call ends; the agent (no wrap-up here) is
        # offered the waiting caller, who keeps the original place and is connected.
        await agent.hangup()
        await agent.wait_for("call_state", state="DISCONNECTED", timeout=10)
        await talking.wait_for("call_state", state="DISCONNECTED", timeout=20)
        await agent_takes_the_waiting_caller(
            run, agent, waiting, ids["waiting"], tones, tmp_path / "a-heard2.wav"
        )
        await waiting.hangup()
        for phone in (waiting, menu, agent):
            await phone.wait_for("call_state", state="DISCONNECTED", timeout=20)

        async def nothing_left() -> bool:
            return not await ari.get("channels") and not await ari.get("bridges")

        with contextlib.suppress(TimeoutError):
            await wait_for("Asterisk clean", nothing_left, timeout=15)
        assert await ari.get("channels") == []
        assert await ari.get("bridges") == []
        stored_after = await ari.get("recordings/stored")
        assert not [r for r in stored_after if r["name"].startswith("ivr120-")]

        async def all_closed() -> bool:
            return not run.rows("SELECT * FROM calls WHERE outcome IS NULL")

        await wait_for("every record completed", all_closed)
        calls = {
            r["call_id"]: r
            for r in run.rows(
                "SELECT call_id, outcome, end_reason, downtime_seconds, queued_at FROM calls"
            )
        }
        assert len(calls) == 3, calls
        assert calls[ids["connected"]]["outcome"] == "completed", calls
        assert calls[ids["waiting"]]["outcome"] == "completed", calls
        assert calls[ids["waiting"]]["queued_at"] == queued_before[0]["queued_at"], calls
        assert (
            calls[ids["menu_playing"] if "menu_playing" in ids else ids["menu_waiting"]]["outcome"]
            == "abandoned_menu"
        ), calls
        assert all(c["downtime_seconds"] is not None for c in calls.values()), calls
        assert all(c["end_reason"] is None for c in calls.values()), calls
        assert run.rows("SELECT * FROM live_calls") == []
        assert run.rows("SELECT * FROM ring_attempts WHERE outcome IS NULL") == []
        text = run.text()
        assert "closed 3 call record(s)" not in text, text
        assert f"deleting stored recording {ORPHAN}" in text, text
        assert TEST_CALLER_NUMBER not in text

        run.signal(signal.SIGTERM)
        assert await run.wait(40) == 0, run.text()
        if "--external-pbx" not in run.args:
            assert not alive(pid), "a clean stop left the adopted Asterisk running"
        else:
            assert alive(pid), "an external Asterisk was stopped by the controller"
    finally:
        await ari.close()


@pytest.mark.parametrize("product", ["managed"], indirect=True)
async def test_a_counselor_who_hangs_up_while_no_controller_runs_gets_the_next_call(
    product: IvrRun, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    """The agent hangs up while the controller is down: the new run ends the talking caller's
    call as the agent's hang-up ends it, and the agent, free again (no wrap-up here), is
    offered the caller who was waiting, who keeps the original place."""
    run = product
    await run.start()
    ari = run.ari()
    try:
        agent = await agent_online(run, phones, ari)
        talking, waiting, ids = await talking_and_waiting(run, phones, agent)
        [leg] = run.rows("SELECT staff_leg FROM live_calls WHERE state='connected'")
        queued_before = run.rows("SELECT queued_at FROM live_calls WHERE state='waiting'")

        await run.kill()
        await agent.hangup()
        await agent.wait_for("call_state", state="DISCONNECTED", timeout=10)

        async def leg_gone() -> bool:
            return leg["staff_leg"] not in {c["id"] for c in await ari.get("channels")}

        await wait_for("the agent's leg gone from Asterisk", leg_gone)
        await run.start()

        async def taken_back() -> bool:
            return run.text().count("taken back after a restart") == 2

        await wait_for("the two calls taken back", taken_back)
        # The talking caller's call ends as the agent's hang-up ends it (no apology, no error).
        await talking.wait_for("call_state", state="DISCONNECTED", timeout=20)
        # The agent is free again and is offered the waiting caller.
        await agent_takes_the_waiting_caller(
            run, agent, waiting, ids["waiting"], tones, tmp_path / "a-heard.wav"
        )
        await waiting.hangup()
        for phone in (waiting, agent):
            await phone.wait_for("call_state", state="DISCONNECTED", timeout=20)

        async def all_closed() -> bool:
            return not run.rows("SELECT * FROM calls WHERE outcome IS NULL")

        await wait_for("every record completed", all_closed)
        calls = {
            r["call_id"]: r
            for r in run.rows("SELECT call_id, outcome, end_reason, queued_at FROM calls")
        }
        assert len(calls) == 2, calls
        assert calls[ids["connected"]]["outcome"] == "completed", calls
        assert calls[ids["connected"]]["end_reason"] is None, calls
        assert calls[ids["waiting"]]["outcome"] == "completed", calls
        assert calls[ids["waiting"]]["queued_at"] == queued_before[0]["queued_at"], calls
        assert run.rows("SELECT * FROM live_calls") == []
        assert "recovering orphaned channel" not in run.text(), run.text()
    finally:
        await ari.close()


async def test_a_restart_during_the_survey_ends_with_the_thanks_and_a_completed_call(
    phones: PhoneFactory, tmp_path: Path
) -> None:
    """The general line asks the survey; the agent has hung up and the caller is answering it
    when the controller is killed. The new run plays the survey's thank-you and hangs up: the
    call is completed (no apology, no error), nothing is stored for the survey."""
    menu = project_file(Path("config/menu.toml")).read_text(encoding="utf-8")
    menu = menu.replace(
        "[queues.general]\n", '[queues.general]\nsurvey = "score"\nsurvey_timeout = 60\n', 1
    )
    (tmp_path / "menu.toml").write_text(menu, encoding="utf-8")
    run = IvrRun.create(
        tmp_path,
        "restartsur",
        rtp=34600,
        IVR120_AGENTS="agent01",
        IVR120_MENU_FILE=str(tmp_path / "menu.toml"),
        IVR120_WRAPUP_SECONDS="0",
    )
    ari = None
    try:
        await run.start()
        ari = run.ari()
        agent = await agent_online(run, phones, ari)
        caller = await phones("surveyed")
        await caller.call(run.uri_120)
        await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
        await asyncio.sleep(1.0)  # the menu has begun
        await caller.dtmf("1")
        await agent.wait_for("incoming", timeout=30)
        await agent.answer()
        await agent.wait_for("call_state", state="CONFIRMED", timeout=10)

        async def in_state(state: str) -> bool:
            return [r["state"] for r in run.rows("SELECT state FROM live_calls")] == [state]

        await wait_for("connected", lambda: in_state("connected"))
        await agent.hangup()  # the caller stays on for the question
        await wait_for("the survey", lambda: in_state("survey"))
        [row] = run.rows("SELECT call_id FROM live_calls")

        await run.kill()
        await run.start()

        async def taken_back() -> bool:
            return f"call {row['call_id']}: taken back after a restart as survey" in run.text()

        await wait_for("the call taken back", taken_back)
        thanks = read_wav(await heard(caller, tmp_path / "thanks.wav", 2.0))
        assert not is_silent(thanks.samples), "the caller heard nothing after the restart"
        await caller.wait_for("call_state", state="DISCONNECTED", timeout=20)

        async def closed() -> bool:
            return not run.rows("SELECT * FROM calls WHERE outcome IS NULL")

        await wait_for("the record completed", closed)
        [call] = run.rows("SELECT outcome, end_reason, ended_in, member FROM calls")
        assert (call["outcome"], call["end_reason"]) == ("completed", None), call
        assert (call["ended_in"], call["member"]) == ("staff", "agent01"), call
        assert run.rows("SELECT * FROM survey_answers") == []
        assert run.rows("SELECT * FROM live_calls") == []
        assert "recovering orphaned channel" not in run.text(), run.text()
    finally:
        if ari is not None:
            await ari.close()
        await run.close()
        keep_log_and_remove(run, tmp_path)
