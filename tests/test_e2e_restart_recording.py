"""End to end: a consented counseling recorded across a controller crash. The caller said yes
to the summary question and talks with the counselor; `ivr-run` is killed with SIGKILL (the
dead run's recordings stop with its taps) and started again: the call taken back is recorded
on in a second segment per party (`ivr120-<call>-caller-2`), and at its end every segment is
fetched and transcribed into one summary — words from after the restart included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ivr.ari.client import AriClient, AriNotFound
from ivr.crypto import Sealer
from speech.synth import espeak_korean
from tests.conftest import TEST_CALLER_NUMBER, PhoneFactory, write_roster
from tests.e2e_product import IvrRun, dial_and_press, running_product
from tests.e2e_product import wait_checked as wait_for


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[IvrRun]:
    roster = write_roster(tmp_path / "roster.toml", ("counselor01",))
    env = {"IVR120_ROSTER_FILE": str(roster), "IVR120_WRAPUP_SECONDS": "0"}
    async with running_product(tmp_path, "restartrec", 35800, **env) as product:
        yield product


async def recording(ari: AriClient, name: str) -> None:
    """Until Asterisk reports the live recording `name` as recording (its media flows)."""

    async def running() -> bool:
        try:
            return bool((await ari.get(f"recordings/live/{name}"))["state"] == "recording")
        except AriNotFound:
            return False

    await wait_for(f"the recording {name}", running, timeout=30)


async def test_a_consented_call_is_recorded_on_after_a_crash_into_one_summary(
    run: IvrRun, phones: PhoneFactory, tmp_path: Path
) -> None:
    sentence = espeak_korean("요즘 혼자 지내서 너무 외로워요", tmp_path / "caller.wav", rate=8000)
    await run.start()
    ari = run.ari()
    try:
        caller = await dial_and_press(run, phones, "caller", "5", TEST_CALLER_NUMBER)

        def in_state(wanted: str) -> Any:
            async def check() -> bool:
                return [r["state"] for r in run.rows("SELECT state FROM live_calls")] == [wanted]

            return check

        await wait_for("the consent question", in_state("consent"))
        await caller.dtmf("1")  # yes: the counseling may be kept
        await wait_for("the queue", in_state("waiting"))
        counselor = await phones("counselor01")
        await counselor.auto_answer()
        secret = run.secrets()["sip_passwords"]["counselor01"]
        reg = await counselor.register("counselor01", secret, f"127.0.0.1:{run.sip_port}")
        assert reg["code"] == 200, reg
        await wait_for("connected", in_state("connected"))
        [row] = run.rows("SELECT call_id FROM live_calls")
        call_id = str(row["call_id"])
        await caller.play(sentence, loop=True)
        for party in ("caller", "staff"):
            await recording(ari, f"ivr120-{call_id}-{party}")

        await run.kill()
        await run.start()

        async def taken_back() -> bool:
            return f"call {call_id}: taken back after a restart as connected" in run.text()

        await wait_for("the call taken back", taken_back)
        for party in ("caller", "staff"):  # recorded on, in a segment of its own
            await recording(ari, f"ivr120-{call_id}-{party}-2")
        await caller.play(sentence, loop=False)  # the caller says it again, into the new one
        await caller.wait_for("play_done", timeout=30)
        await caller.hangup()

        async def summarised() -> bool:
            jobs = run.rows("SELECT status FROM transcription_jobs WHERE call_id=?", call_id)
            assert not jobs or jobs[0]["status"] != "failed", jobs
            return bool(jobs) and jobs[0]["status"] == "done"

        await wait_for("the summary", summarised, timeout=240)
        recs = run.rows("SELECT name, party, started_at FROM recordings WHERE call_id=?", call_id)
        names = {r["name"] for r in recs}
        assert names == {
            f"ivr120-{call_id}-{p}{s}" for p in ("caller", "staff") for s in ("", "-2")
        }, recs
        second = min(r["started_at"] for r in recs if r["name"].endswith("-2"))
        first = min(r["started_at"] for r in recs)
        sealer = Sealer(run.secrets()["data_key"])
        [t] = run.rows("SELECT sealed FROM transcripts WHERE call_id=? AND party='caller'", call_id)
        words: list[Any] = json.loads(sealer.open(t["sealed"], f"transcript:{call_id}:caller"))[
            "words"
        ]
        assert words, "nothing of the caller was transcribed"
        # Words from the segment after the restart are in the one transcript.
        assert max(w[1] for w in words) >= second - first, (words, second - first)
        assert run.rows("SELECT * FROM summaries WHERE call_id=?", call_id)
        assert not [r for r in await ari.get("recordings/stored") if call_id in r["name"]]
    finally:
        await ari.close()
