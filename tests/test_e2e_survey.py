"""End to end: the post-call satisfaction survey (ivr.flow.survey) with a real Asterisk, the
controller and pjsua2 phones. The loneliness line's survey is switched on for these calls only
(the menu a new call starts with, as a reload would set it; the menu file has it off), and the
report counts what the calls stored."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import datetime as dt
import io
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr.flow import call as flow
from ivr.flow.commands import SurveyKind
from ivr.flow.survey import State as SurveyState
from ivr.phone.audio import is_silent, read_wav
from ivr.report.cli import main as report_main
from ivr.report.rows import Period
from ivr.summary.capture import wav_problem
from ivr.timezone import SEOUL
from speech.synth import espeak_korean
from tests.conftest import TEST_CALLER_NUMBER, Hotline, PhoneFactory
from tests.test_e2e_calls import counselor, dial_120, record_for
from tests.test_e2e_consent import live_recording, recording_running


@contextlib.contextmanager
def survey_on(
    hotline: Hotline, timeout: float = 8.0, kind: SurveyKind = SurveyKind.SCORE
) -> Iterator[None]:
    """New calls to the loneliness line ask the survey (1-5 by default); the menu as it was
    afterwards."""
    journey = hotline.controller.journey
    before = journey.flow_config
    queues = dict(before.menu.queues)
    queues["loneliness"] = dataclasses.replace(
        queues["loneliness"], survey=kind, survey_timeout=timeout
    )
    menu = dataclasses.replace(before.menu, queues=queues)
    journey.flow_config = dataclasses.replace(before, menu=menu)
    try:
        yield
    finally:
        journey.flow_config = before


@pytest.fixture
def spy(hotline: Hotline) -> Iterator[list[flow.Command]]:
    seen: list[flow.Command] = []
    with hotline.watch(seen.append):
        yield seen


def answers(hotline: Hotline, call_id: str) -> list[dict[str, Any]]:
    return hotline.rows(f"SELECT * FROM survey_answers WHERE call_id = '{call_id}'")


async def connected_call(hotline: Hotline, phones: PhoneFactory, name: str) -> tuple[Any, str]:
    caller = await dial_120(hotline, phones, name)
    call_id = await hotline.last_call_id()
    await hotline.press_5(caller, call_id)
    await hotline.wait_state(call_id, flow.State.CONNECTED, timeout=30)
    return caller, call_id


async def test_counselor_hangs_up_caller_answers_4_the_answer_is_stored_and_reported(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command], tmp_path: Path
) -> None:
    hotline = clean_hotline
    k1 = await counselor(hotline, phones, "counselor01", auto_answer=True)
    with survey_on(hotline):
        caller, call_id = await connected_call(hotline, phones, "surveyed")
    await k1.hangup()  # the counselor ends the call: the caller stays on for the question
    await hotline.wait_play(spy, call_id, "survey_question_score", timeout=15)
    heard = read_wav(await record_for(caller, tmp_path / "question.wav", 2.5))
    assert not is_silent(heard.samples), "the survey question was not heard"
    assert hotline.controller.calls[call_id].flow.state is flow.State.SURVEY

    await caller.dtmf("4")
    async with asyncio.timeout(10):
        while not answers(hotline, call_id):
            await asyncio.sleep(0.1)
    await hotline.wait_play(spy, call_id, "survey_thanks", timeout=10)
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=20)  # after the thanks
    [answer] = answers(hotline, call_id)
    assert (answer["line"], answer["kind"], answer["answer"]) == ("loneliness", "score", 4)
    assert answer["answered_by"] == "key"
    assert TEST_CALLER_NUMBER not in str(answer) and "caller_hash" not in answer
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["ended_in"], row["member"]) == ("completed", "staff", "counselor01")
    assert row["goodbye_seconds"] > 2  # the survey, after the counselor left
    assert row["talk_seconds"] == pytest.approx(row["staff_seconds"], abs=0.5)
    await hotline.wait_clean()

    # The report counts the session's answers in the period: its numbers are the rows.
    today = dt.datetime.now(SEOUL).date()
    period = Period(today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    db = hotline.settings.state_path(hotline.settings.database)
    argv = ["--from", str(period.first), "--to", str(period.last), "--db", str(db)]
    out, tables = tmp_path / "report.html", tmp_path / "csv"
    assert report_main([*argv, "--no-roster", "--out", str(out), "--csv", str(tables)]) == 0
    stored = hotline.rows(
        f"SELECT answer FROM survey_answers WHERE kind = 'score' AND line = 'loneliness'"
        f" AND at >= {period.start} AND at < {period.end}"
    )
    scores = [r["answer"] for r in stored]
    with (tables / "satisfaction.csv").open(encoding="utf-8") as fh:
        lines = {r["line"]: r for r in csv.DictReader(fh)}
    line = lines["loneliness"]
    assert int(line["score_answers"]) == len(scores) >= 1
    assert float(line["average_score"]) == pytest.approx(sum(scores) / len(scores))
    assert [int(line[f"score_{n}"]) for n in range(1, 6)] == [scores.count(n) for n in range(1, 6)]
    assert "만족도" in out.read_text(encoding="utf-8")


async def test_no_answer_thank_you_then_hung_up_nothing_stored(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command], tmp_path: Path
) -> None:
    hotline = clean_hotline
    k2 = await counselor(hotline, phones, "counselor02", auto_answer=True)
    with survey_on(hotline, timeout=3.0):
        caller, call_id = await connected_call(hotline, phones, "silent")
    await k2.hangup()
    await hotline.wait_play(spy, call_id, "survey_question_score", timeout=15)
    await hotline.wait_play(spy, call_id, "survey_thanks", timeout=30)  # after the window
    heard = read_wav(await record_for(caller, tmp_path / "thanks.wav", 1.5))
    assert not is_silent(heard.samples), "the thank-you was not heard"
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=20)
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["ended_in"]) == ("completed", "staff")
    assert answers(hotline, call_id) == []
    await hotline.wait_clean()


async def test_survey_off_the_caller_is_hung_up_with_the_counselor_as_today(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command]
) -> None:
    hotline = clean_hotline
    assert hotline.controller.flow_config.menu.queues["loneliness"].survey is None
    k3 = await counselor(hotline, phones, "counselor03", auto_answer=True)
    caller, call_id = await connected_call(hotline, phones, "unsurveyed")
    await k3.hangup()
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=10)
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["ended_in"]) == ("completed", "staff")
    assert row["goodbye_seconds"] is None
    survey_plays = [
        c
        for c in spy
        if isinstance(c, flow.Play)
        and c.playback_id.startswith(call_id)
        and any(p.startswith("survey_") for p in c.prompts)
    ]
    assert survey_plays == [] and answers(hotline, call_id) == []
    await hotline.wait_clean()


async def test_did_it_help_answered_by_saying_ne(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command], tmp_path: Path
) -> None:
    """The "helped" survey, answered by voice with the recognizer the menu uses."""
    hotline = clean_hotline
    ne = espeak_korean("네", tmp_path / "ne.wav", rate=8000, speed=140)
    k4 = await counselor(hotline, phones, "counselor04", auto_answer=True)
    with survey_on(hotline, timeout=20.0, kind=SurveyKind.HELPED):
        caller, call_id = await connected_call(hotline, phones, "helped")
    await k4.hangup()
    await hotline.wait_play(spy, call_id, "survey_question_helped", timeout=15)
    survey = hotline.controller.calls[call_id].flow.survey
    assert survey is not None
    async with asyncio.timeout(30):  # the question played out: the answer window is open
        while survey.state is SurveyState.ASKING:
            await asyncio.sleep(0.1)
    await hotline.wait_listening(call_id, "네")
    await caller.play(ne, loop=False)
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=40)
    pool = hotline.controller.journey.recognizers
    assert survey.answer == 1, (
        f"not recognised (recognizers: {pool.busy} busy of {pool.capacity}, {pool.created} "
        f"made, {pool.fallbacks} refused): {caller.diagnostics()}"
    )
    [answer] = answers(hotline, call_id)
    assert (answer["kind"], answer["answer"], answer["answered_by"]) == ("helped", 1, "voice")
    row = await hotline.wait_row(call_id)
    assert (row["outcome"], row["ended_in"]) == ("completed", "staff")
    await hotline.wait_clean()


async def test_with_consent_the_recording_ends_when_the_counselor_left(
    clean_hotline: Hotline, phones: PhoneFactory, spy: list[flow.Command]
) -> None:
    """The survey is not counseling: the caller's recording stops (kept, finished) as it
    begins, so the question and the answer are not in the recording nor its summary."""
    hotline = clean_hotline
    with survey_on(hotline, timeout=20.0):
        caller = await dial_120(hotline, phones, "consented")
        call_id = await hotline.last_call_id()
        await hotline.press_5(caller, call_id, "1")  # yes: the counseling is recorded
        await hotline.wait_state(call_id, flow.State.WAITING, timeout=90)
        k5 = await counselor(hotline, phones, "counselor05", auto_answer=True)
        await hotline.wait_state(call_id, flow.State.CONNECTED, timeout=90)
    name = f"ivr120-{call_id}-caller"
    live = await recording_running(hotline, name)
    assert live is not None and live["state"] == "recording", live
    await k5.hangup()
    await hotline.wait_play(spy, call_id, "survey_question_score", timeout=15)
    assert flow.StopRecording() in spy
    survey = hotline.controller.calls[call_id].flow.survey
    assert survey is not None
    async with asyncio.timeout(30):  # the question played out: the answer window is open
        while survey.state is SurveyState.ASKING:
            await asyncio.sleep(0.1)
    assert await live_recording(hotline, name, wait=0) is None, "still recording the survey"
    data = await hotline.ari.get_bytes(f"recordings/stored/{name}/file")
    assert wav_problem(data) is None  # finished by the stop, complete
    with wave.open(io.BytesIO(data)) as w:
        seconds = w.getnframes() / w.getframerate()
    [started] = hotline.rows(f"SELECT started_at FROM recordings WHERE name = '{name}'")
    left = hotline.controller.calls[call_id].flow.record.staff_left_at
    assert left is not None
    assert 0 < seconds <= left - started["started_at"] + 1.0, (seconds, left, started)

    await caller.dtmf("4")
    await caller.wait_for("call_state", state="DISCONNECTED", timeout=30)
    async with asyncio.timeout(20):  # collected as for a call that ended with the counselor
        while not hotline.rows(f"SELECT * FROM transcription_jobs WHERE call_id = '{call_id}'"):
            await asyncio.sleep(0.2)
    statuses = hotline.rows(f"SELECT party, status FROM recordings WHERE call_id = '{call_id}'")
    assert {r["party"] for r in statuses} == {"caller", "staff"}
    assert {r["status"] for r in statuses} <= {"fetched", "deleted"}
    await hotline.wait_clean()
