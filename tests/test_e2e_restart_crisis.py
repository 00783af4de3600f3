"""End to end: the controller killed with SIGKILL during a warm transfer, then started again.

The caller, the agent and the crisis line (`*7`, answered) talk three-way when `ivr-run` is
killed. Asterisk keeps the three bridged while no controller runs; the next run takes the call
back as three-way (the crisis leg is the call's again, not an orphan to hang up), the agent
hands over by hanging up, the crisis line stays with the caller to the end, and the record is
completed once: transferred, by the agent, with the downtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.phone.audio import tone_ratio
from tests.conftest import (
    CALLER_TONE,
    COUNSELOR_TONE,
    CRISIS_TONE,
    TEST_CALLER_NUMBER,
    PhoneFactory,
)
from tests.e2e_product import IvrRun, agent_online, dial_and_press, running_product
from tests.e2e_product import wait_checked as wait_for
from tests.e2e_ringgroup_support import NOT_HEARD, hears


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[IvrRun]:
    env = {"IVR120_AGENTS": "agent01", "IVR120_WRAPUP_SECONDS": "0"}
    async with running_product(tmp_path, "restartcrisis", 36000, **env) as product:
        yield product


async def snapshot_talk(run: IvrRun, talk: str) -> str:
    """The call id of the one live call once its snapshot's conversation state is `talk`."""

    async def written() -> str | None:
        rows = run.rows("SELECT call_id, talk FROM live_calls")
        return rows[0]["call_id"] if len(rows) == 1 and rows[0]["talk"] == talk else None

    return str(await wait_for(f"the live call's snapshot as {talk}", written))


async def test_a_three_way_crisis_transfer_survives_a_sigkill(
    run: IvrRun, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    await run.start()
    ari = run.ari()
    try:
        agent = await agent_online(run, phones, ari)
        crisis = await phones("crisis")
        await crisis.auto_answer()
        password = run.secrets()["sip_passwords"]["crisis"]
        reg = await crisis.register("crisis", password, f"127.0.0.1:{run.sip_port}")
        assert reg["code"] == 200, reg
        caller = await dial_and_press(run, phones, "caller", "1", TEST_CALLER_NUMBER)
        await agent.wait_for("incoming", timeout=30)
        await agent.answer()
        await agent.wait_for("call_state", state="CONFIRMED", timeout=10)
        call_id = await snapshot_talk(run, "talking")
        await agent.dtmf("*7")
        await crisis.wait_for("call_state", state="CONFIRMED", timeout=30)
        assert await snapshot_talk(run, "three_way") == call_id

        await run.kill()
        await caller.play(tones["caller"])
        await agent.play(tones["counselor"])
        await crisis.play(tones["crisis"])
        # No controller runs: the three still hear each other.
        await hears(caller, tmp_path, "caller-down", (COUNSELOR_TONE, CRISIS_TONE))
        await hears(crisis, tmp_path, "crisis-down", (CALLER_TONE, COUNSELOR_TONE))

        await run.start()

        async def taken_back() -> bool:
            return "taken back after a restart as connected" in run.text()

        await wait_for("the call taken back", taken_back)
        assert "hanging up staff/crisis channel" not in run.text(), run.text()
        await hears(caller, tmp_path, "caller-after", (COUNSELOR_TONE, CRISIS_TONE))
        await hears(agent, tmp_path, "agent-after", (CALLER_TONE, CRISIS_TONE))

        # The agent hands over: the crisis line stays with the caller.
        await agent.hangup()
        assert await snapshot_talk(run, "handed_over") == call_id
        heard = await hears(caller, tmp_path, "caller-handed", (CRISIS_TONE,))
        assert tone_ratio(heard.samples, heard.rate, COUNSELOR_TONE) < NOT_HEARD
        assert not [e for e in caller.events if e.get("state") == "DISCONNECTED"]

        await crisis.hangup()
        await caller.wait_for("call_state", state="DISCONNECTED", timeout=20)

        async def closed() -> list[dict[str, object]]:
            return run.rows("SELECT * FROM calls WHERE call_id=? AND outcome IS NOT NULL", call_id)

        [row] = await wait_for("the record completed", closed)
        assert (row["outcome"], row["end_reason"], row["member"]) == (
            "transferred",
            "crisis_transfer",
            "agent01",
        ), row
        assert row["downtime_seconds"] is not None and float(row["downtime_seconds"]) > 0, row
        assert not run.rows("SELECT * FROM live_calls")

        async def nothing_left() -> bool:
            return not await ari.get("channels") and not await ari.get("bridges")

        await wait_for("nothing of the call left in Asterisk", nothing_left)
    finally:
        await ari.close()
