"""Helpers for the summary tests: a state directory with secrets and a database as the
controller leaves them, the rows the controller writes for a consented call, Korean speech from
espeak-ng, and the worker run in its own process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.config import Settings
from ivr.crypto import Sealer
from ivr.paths import PROJECT_ROOT
from ivr.pbx.secrets import load_or_create
from ivr.store import MIGRATIONS
from speech import synth
from speech.recognizer import read_wav

RATE = 8000


@dataclass
class State:
    """A state_dir as the controller leaves it."""

    dir: Path
    sealer: Sealer

    @property
    def db(self) -> Path:
        return self.dir / "ivr120.sqlite3"

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=10)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def audio(self, call_id: str, party: str) -> Path:
        return self.dir / "audio" / call_id / f"{party}.wav"

    def db_bytes(self) -> bytes:
        """Everything SQLite has on disk for the database (main file, WAL, journal)."""
        return b"".join(
            p.read_bytes()
            for p in (self.db, Path(f"{self.db}-wal"), Path(f"{self.db}-journal"))
            if p.exists()
        )


def create_db(path: Path) -> None:
    """The controller's database: ivr.store.MIGRATIONS applied as Store.open applies them."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for i, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.executescript(f"BEGIN; {script} PRAGMA user_version={i}; COMMIT;")
    finally:
        conn.close()


def make_state(root: Path) -> State:
    root.mkdir(parents=True, exist_ok=True)
    secrets = load_or_create(root / "secrets.json", Settings().staff_endpoints)
    create_db(root / "ivr120.sqlite3")
    return State(root, Sealer(secrets.data_key))


def add_call(
    state: State,
    call_id: str,
    *,
    consent: str | None = "yes",
    parties: Sequence[str] = ("caller", "staff"),
    started_at: float | None = None,
    job: bool = True,
    withdrawn: bool = False,
) -> None:
    """The rows the controller writes for a call it recorded and fetched (audio files are the
    test's: state.audio(call_id, party))."""
    now = time.time() if started_at is None else started_at
    conn = state.connect()
    try:
        if consent is not None:
            conn.execute(
                "INSERT INTO consents (call_id, answer, answered_by, at, prompt_id,"
                " prompt_version, channel, withdrawn_at, withdrawn_by)"
                " VALUES (?, ?, 'key', ?, 'consent_summary', 'v1:abc', 'PJSIP/test-0001', ?, ?)",
                (
                    call_id,
                    consent,
                    now,
                    now + 1 if withdrawn else None,
                    "test" if withdrawn else None,
                ),
            )
        for party in parties:
            conn.execute(
                "INSERT INTO recordings (name, call_id, party, started_at, status, path)"
                " VALUES (?, ?, ?, ?, 'fetched', ?)",
                (f"{call_id}-{party}", call_id, party, now, str(state.audio(call_id, party))),
            )
        if job:
            conn.execute(
                "INSERT INTO transcription_jobs (call_id, created_at, updated_at, status)"
                " VALUES (?, ?, ?, 'pending')",
                (call_id, now, now),
            )
    finally:
        conn.close()


def speak(path: Path, sentences: Sequence[str], pause: float = 1.0) -> Path:
    """The sentences in espeak-ng's Korean voice, 8 kHz mono 16-bit, each followed by a pause.

    Repeatable: sox dithers with a random seed when it resamples, and what vosk hears in
    espeak's voice changes with it; SOX_OPTS=-R (sox's "repeatable" mode) fixes the seed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    pieces = []
    saved = os.environ.get("SOX_OPTS")
    os.environ["SOX_OPTS"] = "-R"
    try:
        for i, text in enumerate(sentences):
            part = synth.espeak_korean(text, path.with_name(f".{path.stem}-{i}.wav"), rate=RATE)
            pcm, _ = read_wav(part)
            part.unlink()
            pieces += [pcm, synth.silence(pause, RATE)]
    finally:
        if saved is None:
            del os.environ["SOX_OPTS"]
        else:
            os.environ["SOX_OPTS"] = saved
    write_wav(path, b"".join(pieces))
    return path


def write_wav(path: Path, pcm: bytes, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def worker_env(state: State, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR120_")}
    env.update(
        IVR120_STATE_DIR=str(state.dir),
        IVR120_LOG_LEVEL="INFO",
        IVR120_SUMMARY_POLL_SECONDS="0.2",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ivr.summary.worker", *args]


def run_worker(
    state: State, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`ivr-summarize --once --retry-delay 0` in its own process; fails the test on a crash."""
    proc = subprocess.run(
        worker_command("--once", "--retry-delay", "0", *args),
        env=worker_env(state, **(env or {})),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def job_row(state: State, call_id: str) -> tuple[str, int, str | None]:
    conn = state.connect()
    try:
        row = conn.execute(
            "SELECT status, attempts, error FROM transcription_jobs WHERE call_id=?", (call_id,)
        ).fetchone()
    finally:
        conn.close()
    assert row is not None
    return str(row[0]), int(row[1]), row[2]


def count(state: State, sql: str, *params: object) -> int:
    conn = state.connect()
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()
