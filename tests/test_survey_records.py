"""The survey answer's record (ivr.flow.survey_records) with a real SQLite store: an answer
the database only deferred (locked) is not logged as stored."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from ivr.flow.commands import AnsweredBy, RecordSurvey, SurveyKind
from ivr.flow.survey_records import SurveyRecords
from ivr.store import Store


async def test_a_deferred_answer_is_not_logged_as_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        await store.fetch("PRAGMA busy_timeout=0")
        ctx = SimpleNamespace(store=store, clock=lambda: 100.0)
        call = SimpleNamespace(
            call_id="c1", flow=SimpleNamespace(record=SimpleNamespace(queue="loneliness"))
        )
        records = SurveyRecords(ctx)  # type: ignore[arg-type]
        record = records.handlers()[RecordSurvey]
        cmd = RecordSurvey(SurveyKind.SCORE, 4, AnsweredBy.KEY)
        locker = sqlite3.connect(tmp_path / "db.sqlite3", timeout=0)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            with caplog.at_level(logging.INFO, logger="ivr.flow.survey_records"):
                await record(call, cmd)
            assert len(store.pending) == 1
        finally:
            locker.rollback()
            locker.close()
        assert "record not written yet" in caplog.text
        assert "survey answer stored" not in caplog.text
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ivr.flow.survey_records"):
            await record(call, cmd)  # the database takes it: now it is stored, and said so
        assert "survey answer stored (score)" in caplog.text
    finally:
        await store.close()
