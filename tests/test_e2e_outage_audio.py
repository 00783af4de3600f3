"""End to end: no dead air while no controller runs (issue 14), measured by what the callers'
phones receive.

Five callers, each where a prompt has ended or will end while the controller is dead: one in
the menu whose menu has been played (waiting for a key), one at the loneliness line's consent
question, one waiting in the queue, one talking with an agent (the agent's phone plays a tone
all along), and one answering the general line's survey after the agent hung up. The
controller is killed with SIGKILL and each phone records what it receives.

The bound: no silent stretch longer than the menu's input timeout + 3 s. A live controller
itself leaves the menu caller that long without a prompt (the input window after the menu,
then the re-prompt); a dead one must not leave anyone longer. Before the fix the menu caller
heard nothing at all for the whole outage.

The outage lasts a little longer than the bound (enough to fail the old code);
`IVR120_TEST_OUTAGE_SECONDS=60` runs the issue's 60 s version, and `-s` shows each phone's
longest silence either way."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.paths import project_file
from ivr.phone.audio import longest_silence, read_wav
from ivr.phone.remote import RemotePhone
from tests.conftest import PhoneFactory, write_roster
from tests.e2e_product import IvrRun, agent_online, keep_log_and_remove
from tests.e2e_product import wait_checked as wait_for

INPUT_TIMEOUT = 5.0
#: The longest silence a caller may hear while no controller runs.
BOUND = INPUT_TIMEOUT + 3.0
OUTAGE = float(os.environ.get("IVR120_TEST_OUTAGE_SECONDS", BOUND + 4.0))


@pytest.fixture
async def product(tmp_path: Path) -> AsyncIterator[IvrRun]:
    roster = write_roster(tmp_path / "roster.toml", ("counselor01",))
    menu = project_file(Path("config/menu.toml")).read_text(encoding="utf-8")
    menu = menu.replace(
        "[queues.general]\n", '[queues.general]\nsurvey = "score"\nsurvey_timeout = 120\n', 1
    )
    (tmp_path / "menu.toml").write_text(menu, encoding="utf-8")
    run = IvrRun.create(
        tmp_path,
        "outage",
        rtp=35000,
        IVR120_ROSTER_FILE=str(roster),
        IVR120_AGENTS="agent01",
        IVR120_MENU_INPUT_TIMEOUT=str(INPUT_TIMEOUT),
        IVR120_CONSENT_TIMEOUT="120",  # the consent caller is still at the question when killed
        IVR120_WRAPUP_SECONDS="0",
        IVR120_MENU_FILE=str(tmp_path / "menu.toml"),
    )
    try:
        yield run
    finally:
        await run.close()
        keep_log_and_remove(run, tmp_path)


async def test_no_caller_hears_dead_air_while_the_controller_is_dead(
    product: IvrRun, phones: PhoneFactory, tones: dict[str, Path], tmp_path: Path
) -> None:
    run = product
    await run.start()
    ari = run.ari()
    try:
        agent = await agent_online(run, phones, ari)

        def states() -> dict[str, str]:
            return {r["call_id"]: r["state"] for r in run.rows("SELECT * FROM live_calls")}

        async def dial(name: str, key: str | None, *state: str) -> tuple[RemotePhone, str]:
            """A caller who dials 120 (and presses `key` once the menu has begun), until their
            call's snapshot is in one of `state`."""
            before = set(states())
            phone = await phones(name)
            await phone.call(run.uri_120)
            await phone.wait_for("call_state", state="CONFIRMED", timeout=10)

            async def new_call() -> str | None:
                return next(iter(set(states()) - before), None)

            call_id = str(await wait_for(f"{name}'s call", new_call))
            if key is not None:
                await asyncio.sleep(1.0)  # the menu has begun
                await phone.dtmf(key)

            async def there() -> bool:
                return states().get(call_id) in state

            await wait_for(f"{name} in {state}", there, timeout=60)
            return phone, call_id

        async def talks(name: str) -> tuple[RemotePhone, str]:
            """A caller of the general line whom the agent answers."""
            phone, call_id = await dial(name, "1", "intro", "waiting", "connecting")
            await agent.wait_for("incoming", timeout=30)
            await agent.answer()
            await agent.wait_for("call_state", state="CONFIRMED", timeout=10)

            async def connected() -> bool:
                return states().get(call_id) == "connected"

            await wait_for(f"{name} connected", connected)
            return phone, call_id

        surveyed, surveyed_id = await talks("surveyed")
        await agent.hangup()  # the caller stays on for the survey (its question ends first)
        await agent.wait_for("call_state", state="DISCONNECTED", timeout=10)

        async def in_survey() -> bool:
            return states().get(surveyed_id) == "survey"

        await wait_for("the survey", in_survey)
        talking, _ = await talks("talking")
        await agent.play(tones["counselor"])  # the counselor speaks all along
        waiting, _ = await dial("waiting", "1", "waiting")
        consent, _ = await dial("consent", "5", "consent")
        menu, menu_id = await dial("menu", None, "menu_waiting")  # its menu has been played

        await run.kill()
        assert states()[menu_id] == "menu_waiting", "the menu was playing again at the kill"
        callers = {"menu": menu, "consent": consent, "waiting": waiting, "talking": talking}
        callers["survey"] = surveyed
        for name, phone in callers.items():
            await phone.record(tmp_path / f"{name}-outage.wav")
        await asyncio.sleep(OUTAGE)  # the outage: nothing is asserted before it is over
        silences = {}
        for name, phone in callers.items():
            heard = read_wav(await phone.stop_record())
            assert heard.seconds >= OUTAGE - 1.0, (name, heard.seconds)
            silences[name] = longest_silence(heard.samples, heard.rate)
        print(f"longest silence over a {OUTAGE:.0f} s outage (bound {BOUND:.0f} s): {silences}")
        assert all(s <= BOUND for s in silences.values()), silences

        # The next run takes every call back, as before.
        await run.start()

        async def taken_back() -> bool:
            return run.text().count("taken back after a restart") == 5

        await wait_for("the five calls taken back", taken_back)
    finally:
        await ari.close()
