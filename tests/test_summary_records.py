"""Audited reads, exports, notes, withdrawal, retention and the job queue (ivr.summary.records,
ivr.summary.jobs) and the `ivr-admin` summary commands, on a database as the controller and the
worker leave it (no speech model: summaries are built from crafted words)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ivr import admin
from ivr.config import Settings
from ivr.crypto import DecryptionError, Sealer
from ivr.summary import jobs, records
from ivr.summary.needs import load_needs
from ivr.summary.summarize import Word, build_summary
from ivr.summary.worker import Transcript, Worker, acquire_lock
from tests.summary_support import State, add_call, count, job_row, make_state, write_wav

DAY = 86400.0


@pytest.fixture
def state(tmp_path: Path) -> State:
    return make_state(tmp_path / "state")


@pytest.fixture
def conn(state: State) -> Iterator[sqlite3.Connection]:
    c = jobs.connect(state.db)
    yield c
    c.close()


def words(text: str, start: float = 0.0) -> list[Word]:
    return [Word(w, start + i / 2, start + i / 2 + 0.4, 0.9) for i, w in enumerate(text.split())]


CALLER_TEXT = "요즘 혼자 지내서 외로워요 병원비가 걱정돼요"


def store_done(state: State, call_id: str, created_at: float | None = None) -> dict[str, Any]:
    """A call the worker has finished: sealed transcripts and summary, audio files on disk
    (as if kept: delete_audio_after_transcription = false), job done."""
    now = time.time() if created_at is None else created_at
    add_call(state, call_id, started_at=now)
    by_party = {"caller": words(CALLER_TEXT), "staff": words("네 그러셨군요", 4.0)}
    summary = build_summary(call_id, by_party, load_needs(), created_at=now)
    c = state.connect()
    try:
        for party, ws in by_party.items():
            t = Transcript(party, 8000, 5.0, [" ".join(w.word for w in ws)], ws)
            blob = state.sealer.seal(t.to_json(), records.transcript_purpose(call_id, party))
            c.execute(
                "INSERT INTO transcripts (call_id, party, sealed, created_at) VALUES (?, ?, ?, ?)",
                (call_id, party, blob, now),
            )
            write_wav(state.audio(call_id, party), bytes(1600))
        c.execute(
            "INSERT INTO summaries (call_id, sealed, created_at) VALUES (?, ?, ?)",
            (
                call_id,
                state.sealer.seal(json.dumps(summary), records.summary_purpose(call_id)),
                now,
            ),
        )
        c.execute("UPDATE transcription_jobs SET status='done' WHERE call_id=?", (call_id,))
    finally:
        c.close()
    return summary


# -- reads -----------------------------------------------------------------------------------


def test_every_read_is_audited(state: State, conn: sqlite3.Connection) -> None:
    summary = store_done(state, "call-1")
    for who in ("counselor03", "counselor03", "supervisor"):
        assert records.read_summary(conn, state.sealer, "call-1", who) == summary
    log = records.access_log(conn, "call-1")
    assert [(who, action) for who, _, action in log] == [
        ("counselor03", "read"),
        ("counselor03", "read"),
        ("supervisor", "read"),
    ]
    assert all(abs(at - time.time()) < 60 for _, at, _ in log)
    with pytest.raises(records.NotFound):
        records.read_summary(conn, state.sealer, "no-such-call", "supervisor")
    assert records.access_log(conn, "no-such-call") == []


def test_a_wrong_key_is_an_error_and_still_audited(state: State, conn: sqlite3.Connection) -> None:
    store_done(state, "call-1")
    other = Sealer(Sealer.new_key())
    with pytest.raises(DecryptionError):
        records.read_summary(conn, other, "call-1", "intruder")
    assert records.access_log(conn, "call-1")[-1][0::2] == ("intruder", "read")
    blob = conn.execute("SELECT sealed FROM transcripts WHERE party='caller'").fetchone()[0]
    with pytest.raises(DecryptionError):
        other.open(blob, records.transcript_purpose("call-1", "caller"))
    # the right key, the wrong row: a sealed value is bound to its call and party
    with pytest.raises(DecryptionError):
        state.sealer.open(blob, records.transcript_purpose("call-1", "staff"))
    assert "외로워요" in state.sealer.open(blob, records.transcript_purpose("call-1", "caller"))


def test_export_for_a_follow_up(state: State, conn: sqlite3.Connection) -> None:
    summary = store_done(state, "call-1")
    doc = json.loads(records.export_summary(conn, state.sealer, "call-1", "social-worker-2"))
    assert doc["summary"] == summary
    assert doc["consent"]["answer"] == "yes"
    assert doc["exported_by"] == "social-worker-2"
    assert records.access_log(conn, "call-1")[-1][0::2] == ("social-worker-2", "export")


def test_the_counselors_note(state: State, conn: sqlite3.Connection) -> None:
    add_call(state, "call-1")  # the worker has not finished: a note can come first
    records.set_note(conn, state.sealer, "call-1", "다음 주에 다시 전화 드리기로 함", "counselor03")
    s = records.read_summary(conn, state.sealer, "call-1", "counselor03")
    assert s["pending"] is True
    assert s["note"]["text"] == "다음 주에 다시 전화 드리기로 함"
    assert s["note"]["by"] == "counselor03"
    records.set_note(conn, state.sealer, "call-1", "복지관 연계 필요", "counselor05")
    s = records.read_summary(conn, state.sealer, "call-1", "counselor05")
    assert s["note"]["text"] == "복지관 연계 필요" and s["note"]["by"] == "counselor05"
    assert "복지관".encode() not in state.db_bytes()
    actions = [a for _, _, a in records.access_log(conn, "call-1")]
    assert actions == ["note", "read", "note", "read"]
    with pytest.raises(ValueError):
        records.set_note(conn, state.sealer, "call-1", "   ", "counselor05")

    add_call(state, "call-no", consent="no")
    with pytest.raises(records.NotAllowed):
        records.set_note(conn, state.sealer, "call-no", "메모", "counselor03")
    with pytest.raises(records.NotFound):
        records.set_note(conn, state.sealer, "call-unknown", "메모", "counselor03")


# -- withdrawal and retention ----------------------------------------------------------------


def test_withdrawal_deletes_everything_and_is_kept(state: State, conn: sqlite3.Connection) -> None:
    store_done(state, "call-1")
    store_done(state, "call-2")
    records.set_note(conn, state.sealer, "call-1", "메모", "counselor03")
    t0 = time.time()
    w = records.withdraw(conn, "call-1", "caller-by-phone", state.dir, now=t0)
    assert (w.transcripts_deleted, w.summary_deleted, w.audio_files_deleted) == (2, True, 2)
    assert count(state, "SELECT COUNT(*) FROM transcripts WHERE call_id='call-1'") == 0
    assert count(state, "SELECT COUNT(*) FROM summaries WHERE call_id='call-1'") == 0
    assert not state.audio("call-1", "caller").exists()
    assert not state.audio("call-1", "caller").parent.exists()
    assert count(state, "SELECT COUNT(*) FROM recordings WHERE status='deleted'") == 2
    assert job_row(state, "call-1")[0] == "cancelled"
    c = records.consent_record(conn, "call-1")
    assert c.answer == "yes" and c.withdrawn_at == t0 and c.withdrawn_by == "caller-by-phone"
    assert records.access_log(conn, "call-1")[-1] == ("caller-by-phone", t0, "withdraw")
    with pytest.raises(records.NotFound):
        records.read_summary(conn, state.sealer, "call-1", "counselor03")
    # the other call is untouched
    assert count(state, "SELECT COUNT(*) FROM transcripts WHERE call_id='call-2'") == 2
    assert state.audio("call-2", "caller").exists()
    # again: nothing left to delete, the first withdrawal's time stays
    again = records.withdraw(conn, "call-1", "someone", state.dir, now=t0 + 10)
    assert (again.withdrawn_at, again.withdrawn_by) == (t0, "caller-by-phone")
    assert again.transcripts_deleted == 0 and not again.summary_deleted
    with pytest.raises(records.NotFound):
        records.withdraw(conn, "call-unknown", "x", state.dir)


def test_retention_purges_only_what_is_past_the_period(
    state: State, conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()
    store_done(state, "old", created_at=now - 91 * DAY)
    store_done(state, "recent", created_at=now - 89 * DAY)
    add_call(state, "stuck", started_at=now - 100 * DAY)  # audio of a job that never finished
    write_wav(state.audio("stuck", "caller"), bytes(1600))
    conn.execute("UPDATE transcription_jobs SET status='failed' WHERE call_id='stuck'")
    with caplog.at_level(logging.INFO, logger="ivr.audit"):
        result = records.purge(conn, 90, state.dir, now=now)
    audit = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]  # the purge's only
    assert result.calls == ["old", "stuck"]
    assert (result.transcripts, result.summaries) == (2, 1)
    assert count(state, "SELECT COUNT(*) FROM transcripts WHERE call_id='old'") == 0
    assert count(state, "SELECT COUNT(*) FROM summaries WHERE call_id='old'") == 0
    assert count(state, "SELECT COUNT(*) FROM transcripts WHERE call_id='recent'") == 2
    assert records.read_summary(conn, state.sealer, "recent", "x")["call_id"] == "recent"
    assert not state.audio("stuck", "caller").exists()
    purges = conn.execute(
        "SELECT call_id, who FROM summary_access WHERE action='purge' ORDER BY call_id"
    ).fetchall()
    assert purges == [("old", "retention"), ("stuck", "retention")]
    assert any("retention purge: call=old" in m for m in audit)
    assert not any("call=recent" in m for m in audit)
    assert records.purge(conn, 90, state.dir, now=now).calls == []


# -- the queue -------------------------------------------------------------------------------


def test_the_job_queue(state: State, conn: sqlite3.Connection) -> None:
    now = time.time()
    add_call(state, "a", started_at=now - 10)
    add_call(state, "b", started_at=now)
    job = jobs.claim(conn, now, retry_delay=30)
    assert job is not None and (job.call_id, job.status, job.attempts) == ("a", "running", 1)
    assert job_row(state, "a")[:2] == ("running", 1)
    # a dead worker's running job is pending again, its attempt counted: like a failed
    # attempt it waits for the retry delay (the job may be what killed the worker)
    assert jobs.recover_running(conn, now) == (["a"], [])
    assert job_row(state, "a")[:2] == ("pending", 1)
    nxt = jobs.claim(conn, now + 1, retry_delay=30)
    assert nxt is not None and nxt.call_id == "b"
    assert jobs.claim(conn, now + 1, retry_delay=30) is None
    assert jobs.next_retry_in(conn, now + 1, retry_delay=30) == pytest.approx(29)
    job = jobs.claim(conn, now + 30, retry_delay=30)
    assert job is not None and (job.call_id, job.attempts) == ("a", 2)
    assert jobs.fail(conn, job, "boom", now + 30) == "pending"
    # a graceful stop does not count the attempt
    jobs.release(conn, nxt, now)
    assert job_row(state, "b")[:2] == ("pending", 0)
    # third failure: failed, with the error
    job = jobs.claim(conn, now + 100, retry_delay=30)
    assert job is not None and (job.call_id, job.attempts) == ("a", 3)
    assert jobs.fail(conn, job, "boom", now + 100) == "failed"
    assert job_row(state, "a") == ("failed", 3, "boom")
    assert [j.call_id for j in records.pending_jobs(conn)] == ["a", "b"]
    assert jobs.retry(conn, "a", now) and job_row(state, "a") == ("pending", 0, None)
    assert not jobs.retry(conn, "b", now)


def test_a_worker_dying_in_its_last_attempt_fails_the_job(
    state: State, conn: sqlite3.Connection
) -> None:
    add_call(state, "a")
    conn.execute("UPDATE transcription_jobs SET status='running', attempts=3")
    assert jobs.recover_running(conn, time.time()) == ([], ["a"])
    assert job_row(state, "a") == ("failed", 3, "the worker stopped during attempt 3")


def test_missing_audio_is_an_error_not_a_crash(state: State, conn: sqlite3.Connection) -> None:
    add_call(state, "a")  # no audio files written

    def no_model() -> Any:
        raise AssertionError("the model is not needed to find a file missing")

    settings = Settings(state_dir=state.dir)
    worker = Worker(settings, state.sealer, conn, retry_delay=0, model_loader=no_model)
    assert worker.drain() == 3
    status, attempts, error = job_row(state, "a")
    assert (status, attempts) == ("failed", 3)
    assert error is not None and "audio file missing" in error


def test_calls_fetched_but_never_queued_are_adopted(state: State, conn: sqlite3.Connection) -> None:
    now = time.time()
    for call_id, ended_ago in (("orphan", 600.0), ("just-ended", 60.0)):
        add_call(state, call_id, job=False, started_at=now - 900)
        conn.execute(
            "INSERT INTO calls (call_id, caller_hash, started_at, ended_at) VALUES (?, 'h', ?, ?)",
            (call_id, now - 900, now - ended_ago),
        )
    add_call(state, "still-recording", job=False, started_at=now - 2 * DAY)
    conn.execute("UPDATE recordings SET status='recording' WHERE call_id='still-recording'")
    add_call(state, "queued", started_at=now - 2 * DAY)
    assert jobs.adopt_orphans(conn, now) == ["orphan"]
    assert job_row(state, "orphan")[:2] == ("pending", 0)
    assert jobs.adopt_orphans(conn, now) == []


def test_one_worker_at_a_time(tmp_path: Path) -> None:
    first = acquire_lock(tmp_path / "summary-worker.lock")
    assert first is not None
    assert acquire_lock(tmp_path / "summary-worker.lock") is None
    first.close()
    again = acquire_lock(tmp_path / "summary-worker.lock")
    assert again is not None
    again.close()


# -- ivr-admin -------------------------------------------------------------------------------


def test_ivr_admin_summary_commands(
    state: State, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k in list(os.environ):
        if k.startswith("IVR120_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("IVR120_STATE_DIR", str(state.dir))
    store_done(state, "call-1")

    def run(*argv: str) -> tuple[int, str, str]:
        code = admin.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("consent", "call-1")
    assert code == 0 and "동의 answer: 예 yes" in out and "철회 withdrawn: -" in out

    code, out, _ = run("note", "call-1", "--text", "주거 지원 연계", "--by", "counselor03")
    assert code == 0 and "note saved" in out

    code, out, _ = run("summary", "call-1", "--who", "supervisor")
    assert code == 0
    assert "통화 요약 Call summary — call-1" in out
    assert "고립/외로움 isolation / loneliness: 혼자, 외로워요" in out
    assert "주요 발언 key sentences:" in out and "요즘 혼자 지내서 외로워요" in out
    assert "상담사 메모 counselor's note (counselor03" in out and "주거 지원 연계" in out

    export = state.dir / "export.json"
    code, out, _ = run("export", "call-1", "--out", str(export), "--who", "social-worker")
    assert code == 0
    assert stat.S_IMODE(export.stat().st_mode) == 0o600
    assert json.loads(export.read_text(encoding="utf-8"))["summary"]["note"]["by"] == "counselor03"

    add_call(state, "call-2")
    code, out, _ = run("jobs")
    assert code == 0 and "call-2 | pending | 0" in out and "call-1" not in out

    code, out, _ = run("withdraw", "call-1", "--by", "counselor03")
    assert code == 0 and "consent withdrawn" in out and "2 transcripts" in out
    code, _, err = run("summary", "call-1")
    assert code == 1 and "not found" in err

    code, out, _ = run("purge")
    assert code == 0 and "retention 90 days" in out and "0 calls" in out

    conn = jobs.connect(state.db)
    try:
        log = [(who, action) for who, _, action in records.access_log(conn, "call-1")]
    finally:
        conn.close()
    assert log == [
        ("counselor03", "note"),
        ("supervisor", "read"),
        ("social-worker", "export"),
        ("counselor03", "withdraw"),
    ]
