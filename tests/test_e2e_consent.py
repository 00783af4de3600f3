"""End to end: consent before the counseling, recording only with it, fetched over ARI.

Real Asterisk, pjsua2 phones, the controller's per-party recordings of its audio taps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ivr.app import SECRETS
from ivr.ari.client import AriNotFound
from ivr.crypto import Sealer
from ivr.flow import call as flow
from speech.synth import espeak_korean
from tests.conftest import Hotline, PhoneFactory
from tests.test_e2e_calls import counselor, dial_120


@pytest.fixture(scope="module")
def sentence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("consent")
    return espeak_korean("요즘 혼자 지내서 너무 외로워요", out / "caller.wav", rate=8000)


async def live_recording(hotline: Hotline, name: str, wait: float = 10) -> Any:
    """The live recording `name` in Asterisk, or None (after waiting up to `wait` s)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            return await hotline.ari.get(f"recordings/live/{name}")
        except AriNotFound:
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.2)


async def recording_running(hotline: Hotline, name: str, wait: float = 20) -> Any:
    """The live recording `name` once Asterisk reports it `recording` (it is `queued` until its
    media flows, which takes a moment on a busy machine); the last state seen, or None, after
    `wait` s."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        live = await live_recording(hotline, name, wait=max(0.0, deadline - _now()))
        if live is None or live["state"] == "recording" or _now() >= deadline:
            return live
        await asyncio.sleep(0.2)


def _now() -> float:
    return asyncio.get_running_loop().time()


def rows(hotline: Hotline, table: str, call_id: str) -> list[dict[str, Any]]:
    return hotline.rows(f"SELECT * FROM {table} WHERE call_id = '{call_id}'")


async def _to_counselor(
    hotline: Hotline, phones: PhoneFactory, member: str, consent_key: str | None
) -> tuple[Any, Any, str]:
    caller = await dial_120(hotline, phones)
    call_id = await hotline.last_call_id()
    # The question is asked while the phones ring: the counselor registers once the caller
    # answered it (or it timed out), so that they do not answer first.
    await hotline.press_5(caller, call_id, consent_key)
    await hotline.wait_state(call_id, flow.State.WAITING, timeout=90)  # no answer: after it
    c = await counselor(hotline, phones, member, auto_answer=True)
    await hotline.wait_state(call_id, flow.State.CONNECTED, timeout=90)
    return c, caller, call_id


async def test_consent_yes_records_each_party_and_fetches_over_ari(
    clean_hotline: Hotline, phones: PhoneFactory, sentence: Path
) -> None:
    hotline = clean_hotline
    c, caller, call_id = await _to_counselor(hotline, phones, "counselor05", "1")
    assert rows(hotline, "consents", call_id)[0]["answer"] == "yes"
    incoming = await c.wait_for("incoming", timeout=1)
    assert incoming["headers"].get("X-IVR120-Consent") == "yes"
    await caller.play(sentence, loop=True)
    for party in ("caller", "staff"):  # recording in Asterisk during the call
        live = await recording_running(hotline, f"ivr120-{call_id}-{party}")
        assert live is not None and live["state"] == "recording", (party, live)
    await asyncio.sleep(4)
    await caller.hangup()
    await hotline.wait_clean()
    async with asyncio.timeout(20):
        while not rows(hotline, "transcription_jobs", call_id):
            await asyncio.sleep(0.2)
    recs = {r["party"]: r for r in rows(hotline, "recordings", call_id)}
    assert set(recs) == {"caller", "staff"}
    for rec in recs.values():
        assert rec["status"] in ("fetched", "deleted")  # the worker may already be done
    stored = {r["name"] for r in await hotline.ari.get("recordings/stored")}
    assert not any(call_id in name for name in stored), "left in Asterisk after the fetch"

    # The summary worker (its own process) transcribes, summarises, seals, deletes the audio.
    async with asyncio.timeout(180):
        while rows(hotline, "transcription_jobs", call_id)[0]["status"] != "done":
            assert rows(hotline, "transcription_jobs", call_id)[0]["status"] != "failed"
            await asyncio.sleep(0.5)
    sealer = Sealer(hotline.app[SECRETS].data_key)
    transcripts = {r["party"]: r for r in rows(hotline, "transcripts", call_id)}
    assert set(transcripts) == {"caller", "staff"}
    caller_text = sealer.open(transcripts["caller"]["sealed"], f"transcript:{call_id}:caller")
    assert any("\uac00" <= ch <= "\ud7a3" for ch in caller_text), caller_text  # Korean text
    db_bytes = hotline.settings.state_path(hotline.settings.database).read_bytes()
    assert caller_text.encode() not in db_bytes  # encrypted at rest
    summary = rows(hotline, "summaries", call_id)[0]
    assert summary["sealed"] and sealer.open(summary["sealed"], f"summary:{call_id}")
    assert {r["status"] for r in rows(hotline, "recordings", call_id)} == {"deleted"}
    assert not list((hotline.settings.state_dir / "audio").glob(f"{call_id}/*.wav"))


@pytest.mark.parametrize("answer", ["2", None])
async def test_no_consent_nothing_is_recorded_anywhere(
    clean_hotline: Hotline, phones: PhoneFactory, sentence: Path, answer: str | None
) -> None:
    hotline = clean_hotline
    member = "counselor06" if answer else "counselor07"
    c, caller, call_id = await _to_counselor(hotline, phones, member, answer)
    consent = rows(hotline, "consents", call_id)[0]
    assert consent["answer"] == ("no" if answer else "none")
    await caller.play(sentence, loop=True)
    await asyncio.sleep(3)
    for party in ("caller", "staff"):
        assert await live_recording(hotline, f"ivr120-{call_id}-{party}", wait=0) is None
    await caller.hangup()
    await hotline.wait_clean()
    await asyncio.sleep(1)
    stored = await hotline.ari.get("recordings/stored")
    assert not any(call_id in r["name"] for r in stored)
    for table in ("recordings", "transcription_jobs", "transcripts", "summaries"):
        assert rows(hotline, table, call_id) == [], table
    assert not (hotline.settings.state_dir / "audio" / call_id).exists()


async def test_withdrawal_during_the_call_discards_the_recording(
    clean_hotline: Hotline, phones: PhoneFactory, sentence: Path
) -> None:
    hotline = clean_hotline
    c, caller, call_id = await _to_counselor(hotline, phones, "counselor08", "1")
    await caller.play(sentence, loop=True)
    assert await live_recording(hotline, f"ivr120-{call_id}-caller") is not None
    await c.dtmf("*6")  # the caller asked the counselor to withdraw consent
    async with asyncio.timeout(10):
        while not rows(hotline, "consents", call_id)[0]["withdrawn_at"]:
            await asyncio.sleep(0.2)
    for party in ("caller", "staff"):
        assert await live_recording(hotline, f"ivr120-{call_id}-{party}", wait=0) is None
    await asyncio.sleep(2)
    await caller.hangup()
    await hotline.wait_clean()
    await asyncio.sleep(1)
    stored = await hotline.ari.get("recordings/stored")
    assert not any(call_id in r["name"] for r in stored)
    assert {r["status"] for r in rows(hotline, "recordings", call_id)} == {"deleted"}
    for table in ("transcription_jobs", "transcripts", "summaries"):
        assert rows(hotline, table, call_id) == [], table
    consent = rows(hotline, "consents", call_id)[0]
    assert consent["withdrawn_by"] == "counselor08"
