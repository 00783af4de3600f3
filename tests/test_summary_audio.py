"""Where a consented call's audio goes and how it leaves: withdrawal and purge delete what
they are responsible for and say how much, the sweep removes audio nobody owns, and a failed
job is shown as failed (ivr.summary.jobs, ivr.summary.records, `ivr-admin`)."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr import admin
from ivr.summary import jobs, records
from tests.summary_support import State, add_call, make_state, run_worker, write_wav

DAY = 86400.0
WAV_BYTES = 44 + 1600  # write_wav(path, bytes(1600))


@pytest.fixture
def state(tmp_path: Path) -> State:
    return make_state(tmp_path / "state")


@pytest.fixture
def conn(state: State) -> Iterator[sqlite3.Connection]:
    c = jobs.connect(state.db)
    yield c
    c.close()


def audio(state: State, call_id: str, *parties: str) -> None:
    for party in parties:
        write_wav(state.audio(call_id, party), bytes(1600))


def age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def sql(state: State, text: str, *args: object) -> None:
    c = state.connect()
    try:
        c.execute(text, args)
    finally:
        c.close()


def test_withdrawal_deletes_every_file_of_the_call_and_says_how_much(
    state: State, conn: sqlite3.Connection
) -> None:
    """Including a half-written .part and a row with the old relative path (`var/audio/…`,
    relative to the controller's cwd) that once made withdraw report 0 files."""
    add_call(state, "c1")
    audio(state, "c1", "caller", "staff")
    sql(state, "UPDATE recordings SET path='var/audio/c1/caller.wav' WHERE party='caller'")
    state.audio("c1", "staff").with_suffix(".part").write_bytes(b"x" * 10)
    w = records.withdraw(conn, "c1", "admin", state.dir)
    assert (w.audio_files_deleted, w.audio_bytes_deleted) == (3, 2 * WAV_BYTES + 10)
    assert not (state.dir / "audio" / "c1").exists()


def test_ivr_admin_withdraw_and_purge_report_files_and_bytes(
    state: State, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k in list(os.environ):
        if k.startswith("IVR120_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("IVR120_STATE_DIR", str(state.dir))
    add_call(state, "c1")
    audio(state, "c1", "caller", "staff")
    assert admin.main(["withdraw", "c1"]) == 0
    out = capsys.readouterr().out
    assert f"2 audio files ({2 * WAV_BYTES} bytes)" in out, out

    add_call(state, "old", started_at=time.time() - 100 * DAY)  # a failed job, long ago
    sql(state, "UPDATE transcription_jobs SET status='failed' WHERE call_id='old'")
    audio(state, "old", "caller")
    assert admin.main(["purge"]) == 0
    out = capsys.readouterr().out
    assert f"1 audio files ({WAV_BYTES} bytes) deleted" in out, out
    assert not state.audio("old", "caller").exists()


def test_a_failed_job_is_shown_as_failed(
    state: State, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for k in list(os.environ):
        if k.startswith("IVR120_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("IVR120_STATE_DIR", str(state.dir))
    add_call(state, "c1")
    sql(
        state,
        "UPDATE transcription_jobs SET status='failed', attempts=3,"
        " error='audio file missing: /x/var/var/audio/c1/caller.wav' WHERE call_id='c1'",
    )
    assert admin.main(["summary", "c1"]) == 0
    out = capsys.readouterr().out
    assert "summary FAILED" in out and "audio file missing" in out, out
    assert "not written yet" not in out


def test_the_sweep_removes_audio_nobody_owns_and_logs_it(
    state: State, conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()
    hour = 3600.0
    # Owned: a call in progress, a pending job, a failed job (may be retried), a fetched
    # recording waiting for its job, a recording being collected.
    sql(state, "INSERT INTO calls (call_id, caller_hash, started_at) VALUES ('live', 'h', ?)", now)
    audio(state, "live", "caller")
    add_call(state, "pending")
    audio(state, "pending", "caller")
    add_call(state, "failed")
    sql(state, "UPDATE transcription_jobs SET status='failed' WHERE call_id='failed'")
    audio(state, "failed", "caller")
    add_call(state, "nojob", job=False)
    audio(state, "nojob", "caller")
    # Not owned: a done job whose files a crash left, a cancelled one, a folder with no rows.
    add_call(state, "done")
    sql(
        state,
        "UPDATE transcription_jobs SET status='done' WHERE call_id='done'",
    )
    sql(state, "UPDATE recordings SET status='deleted' WHERE call_id='done'")
    audio(state, "done", "caller", "staff")
    add_call(state, "cancelled")
    sql(state, "UPDATE transcription_jobs SET status='cancelled' WHERE call_id='cancelled'")
    audio(state, "cancelled", "caller")
    audio(state, "stranger", "caller")
    # Not owned but too young: a fetch might be writing it.
    audio(state, "young", "caller")
    for p in (state.dir / "audio").rglob("*.wav"):
        if p.parent.name != "young":
            age(p, hour)

    with caplog.at_level(logging.WARNING, logger="ivr.summary.jobs"):
        removed = jobs.sweep_orphan_audio(conn, state.dir, now)
    assert removed == jobs.Removed(4, 4 * WAV_BYTES)
    left = sorted(p.parent.name for p in (state.dir / "audio").rglob("*.wav"))
    assert left == ["failed", "live", "nojob", "pending", "young"]
    assert not (state.dir / "audio" / "done").exists()
    swept = [r.getMessage() for r in caplog.records if "swept" in r.getMessage()]
    assert len(swept) == 3 and any("of call stranger" in m for m in swept), swept


def test_the_worker_sweeps_at_start(state: State) -> None:
    """ivr-summarize sweeps when it starts (and hourly, with the purge), in its own process."""
    audio(state, "stranger", "caller", "staff")
    for p in (state.dir / "audio" / "stranger").iterdir():
        age(p, 3600)
    proc = run_worker(state)
    assert not (state.dir / "audio" / "stranger").exists()
    assert f"sweep: deleted 2 audio files ({2 * WAV_BYTES} bytes)" in proc.stderr, proc.stderr
