"""End to end against a real Asterisk: a consented summary on a follow-up (outbound) call.

The follow-up call is started as in tests/test_e2e_followup.py (a task in the database, a
counselor's phone answering the offer, the `citizen` phone on the trunk answering); once
bridged, the citizen hears the opt-out notice, then the summary question (setting
`followup_summary_consent`, on here as by default). A 1 records both parties like a consented
inbound call, and the summary worker (the hotline's child process) summarises the outbound call
as it does an inbound one; a 2, or no key, records nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr import supervise
from ivr.app import SECRETS
from ivr.crypto import Sealer
from ivr.followup import model
from ivr.followup.journey import State as FState
from ivr.phone.audio import is_silent, read_wav
from speech.synth import espeak_korean
from tests.conftest import Hotline, PhoneFactory
from tests.e2e_ringgroup_support import counselor, ivr_admin, record_for, rows_where, until
from tests.test_e2e_consent import live_recording, recording_running
from tests.test_e2e_followup import add_task, followup, followup_call, spy

pytestmark = pytest.mark.timeout(240)
__all__ = ["followup", "spy"]  # fixtures used by name

#: Made-up numbers (never real ones) of the citizens of these tests, one per test.
CONSENTING_NUMBER = "0299995611"
DECLINING_NUMBERS = {"2": "0299995612", None: "0299995613"}
WITHDRAWING_NUMBER = "0299995614"


@pytest.fixture
async def asking(followup: Hotline) -> AsyncIterator[Hotline]:
    """The follow-up hotline with the summary question on (the default; restored after)."""
    ctrl = followup.controller
    before = ctrl.ctx.settings
    ctrl.ctx.settings = dataclasses.replace(before, followup_summary_consent=True)
    try:
        yield followup
    finally:
        ctrl.ctx.settings = before


@pytest.fixture(scope="module")
def sentence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("followup-summary")
    return espeak_korean("요즘 혼자 지내서 너무 외로워요", out / "citizen.wav", rate=8000)


def rows(hotline: Hotline, table: str, call_id: str) -> list[dict[str, Any]]:
    return rows_where(hotline, f"SELECT * FROM {table} WHERE call_id=?", call_id)


def file_mode(path: Path) -> int | None:
    """The permission bits of a regular file (None: not one)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


@contextlib.contextmanager
def worker_paused(hotline: Hotline) -> Iterator[None]:
    """The summary worker stopped (SIGSTOP) so that the fetched audio can be looked at before
    it is transcribed and deleted; continued (SIGCONT) however the block ends. It is stopped
    only at a moment it holds no write lock on the database (the controller must go on
    writing): the test takes and drops one itself right after."""
    proc = hotline.app[supervise.WORKER].proc
    assert proc is not None and proc.returncode is None
    db = sqlite3.connect(hotline.settings.state_path(hotline.settings.database), timeout=0)
    try:
        while True:
            os.kill(proc.pid, signal.SIGSTOP)
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
                break
            except sqlite3.OperationalError:  # someone writes: let it finish, try again
                os.kill(proc.pid, signal.SIGCONT)
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        db.close()


async def connected_and_asked(
    hotline: Hotline, phones: PhoneFactory, citizen: Any, spy: list[Any], number: str, member: str
) -> tuple[Any, Any]:
    """A follow-up call to `number` answered by `member`, the question being asked."""
    await citizen.auto_answer()
    task_id, _ = await add_task(hotline, model.TaskType.CALLBACK, number)
    staff = await counselor(hotline, phones, member, auto_answer=True)
    await citizen.wait_for("call_state", state="CONFIRMED", timeout=60)
    call = await followup_call(hotline, task_id=task_id)
    await until(lambda: call.flow.state is FState.CONNECTED, what="connected")
    await hotline.wait_play(spy, call.call_id, "followup_consent_question", timeout=30)
    return staff, call


async def nothing_recorded_then_hang_up(
    hotline: Hotline, citizen: Any, staff: Any, call: Any
) -> None:
    """No party is being recorded; the citizen hangs up, the staff member keys the outcome,
    and everything is gone from Asterisk."""
    for party in ("caller", "staff"):
        assert await live_recording(hotline, f"ivr120-{call.call_id}-{party}", wait=0) is None
    await citizen.hangup()
    await until(lambda: call.flow.state is FState.OUTCOME, timeout=10, what="the outcome")
    await staff.dtmf("1")
    await staff.wait_for("call_state", state="DISCONNECTED", timeout=30)
    await hotline.wait_clean()


async def test_citizen_presses_1_both_parties_recorded_and_summarised(
    asking: Hotline,
    phones: PhoneFactory,
    citizen: Any,
    spy: list[Any],
    sentence: Path,
    tmp_path: Path,
) -> None:
    hotline = asking
    staff, call = await connected_and_asked(
        hotline, phones, citizen, spy, CONSENTING_NUMBER, "counselor04"
    )
    call_id = call.call_id
    for party in ("caller", "staff"):  # nothing is recorded before the citizen's yes
        assert await live_recording(hotline, f"ivr120-{call_id}-{party}", wait=0) is None, party
    await citizen.dtmf("1")
    consent = (await until(lambda: rows(hotline, "consents", call_id), what="the consent"))[0]
    assert (consent["answer"], consent["answered_by"]) == ("yes", "key")
    assert consent["prompt_id"] == "followup_consent_question"
    assert consent["prompt_version"].startswith("catalog-v")
    assert consent["channel"].startswith("PJSIP/trunk-"), consent  # the citizen's channel
    await hotline.wait_play(spy, call_id, "staff_followup_consent_yes", timeout=10)
    await citizen.play(sentence, loop=True)
    for party in ("caller", "staff"):  # each party recorded in Asterisk during the call
        live = await recording_running(hotline, f"ivr120-{call_id}-{party}")
        assert live is not None and live["state"] == "recording", (party, live)
    # The staff member hears the citizen talking (this is the audio being recorded).
    heard = read_wav(await record_for(staff, tmp_path / "staff.wav", 3.0))
    assert not is_silent(heard.samples)

    audio = hotline.settings.state_dir / "audio" / call_id
    with worker_paused(hotline):
        await citizen.hangup()
        await until(lambda: call.flow.state is FState.OUTCOME, timeout=10, what="the outcome")
        await staff.dtmf("1")
        await staff.wait_for("call_state", state="DISCONNECTED", timeout=30)
        await until(
            lambda: len(rows(hotline, "transcription_jobs", call_id)) == 1,
            timeout=60,
            what="the recordings fetched and the job queued",
        )
        recs = {r["party"]: r for r in rows(hotline, "recordings", call_id)}
        assert set(recs) == {"caller", "staff"}
        for party, rec in recs.items():  # fetched into the state directory, 0600
            assert rec["status"] == "fetched", party
            path = Path(rec["path"])
            assert path.parent == audio and file_mode(path) == 0o600, path
    stored = {r["name"] for r in await hotline.ari.get("recordings/stored")}
    assert not any(call_id in name for name in stored), "left in Asterisk after the fetch"

    # The worker summarises the outbound call as it does an inbound one.
    job = await until(
        lambda: (
            (j := rows(hotline, "transcription_jobs", call_id)[0])["status"]
            in ("done", "failed", "cancelled")
            and j
        ),
        timeout=180,
        what="the transcription job to finish",
        step=0.5,
    )
    assert job["status"] == "done", job
    sealer = Sealer(hotline.app[SECRETS].data_key)
    transcripts = {r["party"]: r for r in rows(hotline, "transcripts", call_id)}
    assert set(transcripts) == {"caller", "staff"}
    text = sealer.open(transcripts["caller"]["sealed"], f"transcript:{call_id}:caller")
    assert any("\uac00" <= ch <= "\ud7a3" for ch in text), text  # Korean text
    (summary,) = rows(hotline, "summaries", call_id)
    assert summary["sealed"] and sealer.open(summary["sealed"], f"summary:{call_id}")
    assert {r["status"] for r in rows(hotline, "recordings", call_id)} == {"deleted"}
    assert not list(audio.glob("*.wav"))
    # Read as an administrator reads an inbound call's summary (audited).
    code, out, err = await ivr_admin(hotline, "summary", call_id, "--who", "test", "--json")
    assert code == 0, err
    read = json.loads(out)
    assert read["call_id"] == call_id and not read.get("pending"), read
    access = rows(hotline, "summary_access", call_id)
    assert [(a["who"], a["action"]) for a in access][-1:] == [("test", "read")]


@pytest.mark.parametrize("answer", ["2", None])
async def test_citizen_presses_2_or_nothing_no_recording_no_summary(
    asking: Hotline,
    phones: PhoneFactory,
    citizen: Any,
    spy: list[Any],
    sentence: Path,
    answer: str | None,
) -> None:
    hotline = asking
    member = "counselor05" if answer else "counselor06"
    staff, call = await connected_and_asked(
        hotline, phones, citizen, spy, DECLINING_NUMBERS[answer], member
    )
    call_id = call.call_id
    if answer is not None:
        await citizen.dtmf(answer)
    consent = (
        await until(lambda: rows(hotline, "consents", call_id), timeout=40, what="the consent")
    )[0]
    assert consent["answer"] == ("no" if answer else "none")
    assert consent["answered_by"] == ("key" if answer else "none")
    await hotline.wait_play(spy, call_id, "staff_followup_consent_no", timeout=10)
    await citizen.play(sentence, loop=True)
    await nothing_recorded_then_hang_up(hotline, citizen, staff, call)
    stored = await hotline.ari.get("recordings/stored")
    assert not any(call_id in r["name"] for r in stored)
    for table in ("recordings", "transcription_jobs", "transcripts", "summaries"):
        assert rows(hotline, table, call_id) == [], table
    assert not (hotline.settings.state_dir / "audio" / call_id).exists()


async def test_staff_star_6_withdraws_the_consent_and_discards_the_recording(
    asking: Hotline, phones: PhoneFactory, citizen: Any, spy: list[Any], sentence: Path
) -> None:
    hotline = asking
    staff, call = await connected_and_asked(
        hotline, phones, citizen, spy, WITHDRAWING_NUMBER, "counselor07"
    )
    call_id = call.call_id
    await citizen.dtmf("1")
    await citizen.play(sentence, loop=True)
    assert await live_recording(hotline, f"ivr120-{call_id}-caller") is not None
    await staff.dtmf("*6")  # the citizen asked the staff member to withdraw it
    consent = await until(
        lambda: (c := rows(hotline, "consents", call_id)[0])["withdrawn_at"] and c,
        what="the withdrawal",
    )
    assert consent["withdrawn_by"] == "counselor07"
    await hotline.wait_play(spy, call_id, "staff_consent_withdrawn", timeout=10)
    await nothing_recorded_then_hang_up(hotline, citizen, staff, call)
    assert {r["status"] for r in rows(hotline, "recordings", call_id)} == {"deleted"}
    stored = await hotline.ari.get("recordings/stored")
    assert not any(call_id in r["name"] for r in stored)
    for table in ("transcription_jobs", "transcripts", "summaries"):
        assert rows(hotline, table, call_id) == [], table
