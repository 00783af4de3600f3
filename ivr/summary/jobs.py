"""The transcription queue and the call data it touches, over a stdlib `sqlite3` connection.

The controller writes the same database with aiosqlite (WAL mode); here every change is one
``BEGIN IMMEDIATE`` transaction, so a job is claimed by exactly one worker and a crash at any
point leaves either the old or the new state. Job states:

    pending ──claim──> running ──> done
       ^                  │ error: attempts < MAX_ATTEMPTS ──> pending (retried after a delay)
       │                  │ error: attempts = MAX_ATTEMPTS ──> failed
       └── worker start ──┘ (a running job of a dead worker; attempts stay counted)
    pending/running/failed ──consent no, none or withdrawn──> cancelled

Audio files are deleted after the transaction that marks their recordings ``deleted`` has
committed; a crash in between leaves files that `sweep_deleted_audio` removes on the next start.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: The first schema (ivr.store.MIGRATIONS) with the consent, recording and summary tables.
REQUIRED_SCHEMA = 4
#: A job is tried this many times before it is marked failed.
MAX_ATTEMPTS = 3
#: A call whose recordings were fetched but which got no job (the controller died in between)
#: is queued by the worker once the call ended this long ago.
ORPHAN_AFTER_SECONDS = 300.0
#: ... or, if the call never got an end time, once it started this long ago.
ORPHAN_UNENDED_AFTER_SECONDS = 24 * 3600.0
#: The audio folder under state_dir (one folder per call).
AUDIO_DIR = "audio"
#: The sweep leaves files younger than this alone (a fetch may be writing them).
SWEEP_GRACE_SECONDS = 600.0
#: Recording statuses whose audio file is ours to delete (not "recording": Asterisk has it).
_OURS = ("fetched", "failed", "deleted")


class SchemaError(RuntimeError):
    """The database is missing or older than the summary tables."""


@dataclass(frozen=True)
class Job:
    id: int
    call_id: str
    created_at: float
    updated_at: float
    status: str
    attempts: int
    error: str | None


@dataclass(frozen=True)
class Recording:
    name: str
    call_id: str
    party: str
    started_at: float
    status: str
    path: str | None


@dataclass(frozen=True)
class Consent:
    call_id: str
    answer: str
    answered_by: str
    at: float
    prompt_id: str
    prompt_version: str
    channel: str
    withdrawn_at: float | None
    withdrawn_by: str | None

    @property
    def allows_summary(self) -> bool:
        return self.answer == "yes" and self.withdrawn_at is None


def connect(path: Path, timeout: float = 10.0) -> sqlite3.Connection:
    """Open the controller's database (it must exist with schema >= REQUIRED_SCHEMA).

    Autocommit mode: use `transaction` for changes. WAL, a busy timeout for the controller's
    writes, and secure_delete so deleted transcripts are overwritten in the file.
    """
    if not path.is_file():
        raise SchemaError(
            f"no database at {path}: the controller (ivr-run) creates it on its first start"
        )
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a written summary survives a power loss too
        conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        conn.execute("PRAGMA secure_delete=ON")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < REQUIRED_SCHEMA:
            raise SchemaError(
                f"database {path} has schema {version}, summaries need {REQUIRED_SCHEMA}: "
                "start the controller (ivr-run) once to upgrade it"
            )
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on any exception)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# -- reading -------------------------------------------------------------------------------------

_JOB_COLUMNS = "id, call_id, created_at, updated_at, status, attempts, error"


def job_for(conn: sqlite3.Connection, call_id: str) -> Job | None:
    row = conn.execute(
        f"SELECT {_JOB_COLUMNS} FROM transcription_jobs WHERE call_id=?", (call_id,)
    ).fetchone()
    return Job(*row) if row else None


def jobs(
    conn: sqlite3.Connection, statuses: tuple[str, ...] = ("pending", "running", "failed")
) -> list[Job]:
    marks = ",".join("?" * len(statuses))
    rows = conn.execute(
        f"SELECT {_JOB_COLUMNS} FROM transcription_jobs WHERE status IN ({marks})"
        " ORDER BY created_at, id",
        statuses,
    ).fetchall()
    return [Job(*row) for row in rows]


def recordings(conn: sqlite3.Connection, call_id: str) -> list[Recording]:
    rows = conn.execute(
        "SELECT name, call_id, party, started_at, status, path FROM recordings WHERE call_id=?"
        " ORDER BY started_at, party",
        (call_id,),
    ).fetchall()
    return [Recording(*row) for row in rows]


def consent(conn: sqlite3.Connection, call_id: str) -> Consent | None:
    row = conn.execute(
        "SELECT call_id, answer, answered_by, at, prompt_id, prompt_version, channel,"
        " withdrawn_at, withdrawn_by FROM consents WHERE call_id=?",
        (call_id,),
    ).fetchone()
    return Consent(*row) if row else None


def refusal(conn: sqlite3.Connection, call_id: str) -> str | None:
    """Why this call may not be summarised, or None if its caller consented."""
    c = consent(conn, call_id)
    if c is None:
        return "no consent recorded"
    if c.withdrawn_at is not None:
        return "consent withdrawn"
    if c.answer != "yes":
        return f"consent answer is {c.answer!r}"
    return None


def audio_path(rec: Recording, state_dir: Path) -> Path:
    """Where a recording's audio is: its path (relative ones are under state_dir), or the
    controller's default ``<state_dir>/audio/<call_id>/<party>.wav``. A relative path that
    does not exist there (rows written before state_dir was made absolute held
    ``var/audio/…``, relative to the controller's working directory) means the default."""
    default = call_audio_dir(state_dir, rec.call_id) / f"{rec.party}.wav"
    if rec.path:
        p = Path(rec.path)
        if p.is_absolute():
            return p
        if (state_dir / p).exists() or not default.exists():
            return state_dir / p
    return default


def call_audio_dir(state_dir: Path, call_id: str) -> Path:
    """The folder the controller fetches a call's recordings into."""
    return state_dir / AUDIO_DIR / call_id


# -- the queue -----------------------------------------------------------------------------------


def recover_running(conn: sqlite3.Connection, now: float) -> tuple[list[str], list[str]]:
    """Jobs left ``running`` by a dead worker: back to pending, or failed if that was their
    last attempt (a file that kills the worker must not kill every next one). Call only while
    holding the worker lock. Returns (requeued, failed) call ids."""
    with transaction(conn):
        rows = conn.execute(
            "SELECT id, call_id, attempts FROM transcription_jobs WHERE status='running'"
        ).fetchall()
        requeued, failed = [], []
        for job_id, call_id, attempts in rows:
            if attempts >= MAX_ATTEMPTS:
                conn.execute(
                    "UPDATE transcription_jobs SET status='failed', updated_at=?, error=?"
                    " WHERE id=?",
                    (now, f"the worker stopped during attempt {attempts}", job_id),
                )
                failed.append(call_id)
            else:
                conn.execute(
                    "UPDATE transcription_jobs SET status='pending', updated_at=? WHERE id=?",
                    (now, job_id),
                )
                requeued.append(call_id)
    return requeued, failed


def claim(conn: sqlite3.Connection, now: float, retry_delay: float) -> Job | None:
    """The oldest pending job that is due, now ``running`` with one more attempt."""
    with transaction(conn):
        row = conn.execute(
            f"SELECT {_JOB_COLUMNS} FROM transcription_jobs WHERE status='pending'"
            " AND (attempts=0 OR updated_at<=?) ORDER BY created_at, id LIMIT 1",
            (now - retry_delay,),
        ).fetchone()
        if row is None:
            return None
        job = Job(*row)
        conn.execute(
            "UPDATE transcription_jobs SET status='running', attempts=attempts+1, updated_at=?"
            " WHERE id=?",
            (now, job.id),
        )
    return Job(job.id, job.call_id, job.created_at, now, "running", job.attempts + 1, job.error)


def next_retry_in(conn: sqlite3.Connection, now: float, retry_delay: float) -> float | None:
    """Seconds until a pending job becomes due (0 if one is due now), None if none is pending."""
    row = conn.execute(
        "SELECT MIN(CASE WHEN attempts=0 THEN 0 ELSE updated_at END) FROM transcription_jobs"
        " WHERE status='pending'"
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return max(0.0, float(row[0]) + retry_delay - now) if row[0] else 0.0


def fail(conn: sqlite3.Connection, job: Job, error: str, now: float) -> str:
    """Record a failed attempt: pending again (for a retry) or failed. Returns the status."""
    status = "failed" if job.attempts >= MAX_ATTEMPTS else "pending"
    with transaction(conn):
        conn.execute(
            "UPDATE transcription_jobs SET status=?, updated_at=?, error=? WHERE id=?"
            " AND status='running'",
            (status, now, error[:500], job.id),
        )
    return status


def release(conn: sqlite3.Connection, job: Job, now: float) -> None:
    """The worker is stopping mid-job: pending again, the attempt not counted."""
    with transaction(conn):
        conn.execute(
            "UPDATE transcription_jobs SET status='pending', attempts=MAX(0, attempts-1),"
            " updated_at=? WHERE id=? AND status='running'",
            (now, job.id),
        )


def retry(conn: sqlite3.Connection, call_id: str, now: float) -> bool:
    """A failed job pending again with fresh attempts (an administrator's decision)."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE transcription_jobs SET status='pending', attempts=0, error=NULL, updated_at=?"
            " WHERE call_id=? AND status='failed'",
            (now, call_id),
        )
    return cur.rowcount > 0


def finish(
    conn: sqlite3.Connection,
    job: Job,
    transcripts: Mapping[str, bytes],
    summary: bytes,
    now: float,
    delete_audio: bool,
) -> str | None:
    """Store the sealed transcripts and summary and mark the job done, in one transaction.

    Consent and the job are checked again inside it: a withdrawal while the worker was
    transcribing wins. Returns None when stored, else why not (nothing is stored then).
    """
    with transaction(conn):
        row = conn.execute("SELECT status FROM transcription_jobs WHERE id=?", (job.id,)).fetchone()
        if row is None or row[0] != "running":
            return f"job is {row[0] if row else 'gone'}"
        why = refusal(conn, job.call_id)
        if why is not None:
            return why
        conn.execute("DELETE FROM transcripts WHERE call_id=?", (job.call_id,))
        conn.executemany(
            "INSERT INTO transcripts (call_id, party, sealed, created_at) VALUES (?, ?, ?, ?)",
            [(job.call_id, party, blob, now) for party, blob in transcripts.items()],
        )
        conn.execute(
            "INSERT INTO summaries (call_id, sealed, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT(call_id) DO UPDATE SET sealed=excluded.sealed,"
            " created_at=excluded.created_at",
            (job.call_id, summary, now),
        )
        if delete_audio:
            conn.execute(
                "UPDATE recordings SET status='deleted' WHERE call_id=? AND status='fetched'",
                (job.call_id,),
            )
        conn.execute(
            "UPDATE transcription_jobs SET status='done', updated_at=?, error=NULL WHERE id=?",
            (now, job.id),
        )
    return None


def erase_call(conn: sqlite3.Connection, call_id: str, state_dir: Path) -> list[Path]:
    """Inside a transaction: delete the call's transcripts and summary (note included) and
    mark its fetched recordings deleted. Returns the audio files to unlink after the commit."""
    conn.execute("DELETE FROM transcripts WHERE call_id=?", (call_id,))
    conn.execute("DELETE FROM summaries WHERE call_id=?", (call_id,))
    conn.execute(
        "UPDATE recordings SET status='deleted' WHERE call_id=? AND status IN (?, ?, ?)",
        (call_id, *_OURS),
    )
    return call_audio_files(conn, call_id, state_dir)


def cancel(
    conn: sqlite3.Connection, call_id: str, reason: str, now: float, state_dir: Path
) -> list[Path]:
    """Cancel the call's job (whatever its state but done) and erase what it would have made.
    Returns the audio files to unlink (see `unlink_audio`)."""
    with transaction(conn):
        conn.execute(
            "UPDATE transcription_jobs SET status='cancelled', updated_at=?, error=?"
            " WHERE call_id=? AND status<>'cancelled'",
            (now, reason, call_id),
        )
        return erase_call(conn, call_id, state_dir)


@dataclass(frozen=True)
class Removed:
    """What a deletion removed from the disk."""

    files: int = 0
    bytes: int = 0

    def __add__(self, other: Removed) -> Removed:
        return Removed(self.files + other.files, self.bytes + other.bytes)


def unlink_audio(paths: list[Path]) -> Removed:
    """Delete audio files (missing ones are fine) and their call's folder once empty."""
    files = size = 0
    for p in dict.fromkeys(paths):
        try:
            n = p.stat().st_size
            p.unlink()
            files += 1
            size += n
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not delete audio %s: %s", p, exc)
            continue
        try:
            p.parent.rmdir()  # only succeeds when empty
        except OSError:
            pass
    return Removed(files, size)


def call_audio_files(conn: sqlite3.Connection, call_id: str, state_dir: Path) -> list[Path]:
    """Every audio file of a call: its recordings' paths and whatever is in its folder
    (a half-written ``.part`` too)."""
    paths = [audio_path(r, state_dir) for r in recordings(conn, call_id)]
    folder = call_audio_dir(state_dir, call_id)
    if folder.is_dir():
        paths += sorted(p for p in folder.iterdir() if p.is_file())
    return paths


def delete_call_audio(conn: sqlite3.Connection, call_id: str, state_dir: Path) -> Removed:
    """Mark the call's fetched recordings deleted and delete their files."""
    with transaction(conn):
        recs = [r for r in recordings(conn, call_id) if r.status in _OURS]
        conn.execute(
            "UPDATE recordings SET status='deleted' WHERE call_id=? AND status IN (?, ?, ?)",
            (call_id, *_OURS),
        )
    return unlink_audio([audio_path(r, state_dir) for r in recs])


def sweep_deleted_audio(conn: sqlite3.Connection, state_dir: Path) -> Removed:
    """Delete files left behind by a crash after their recordings were marked deleted."""
    rows = conn.execute(
        "SELECT name, call_id, party, started_at, status, path FROM recordings"
        " WHERE status='deleted'"
    ).fetchall()
    paths = [audio_path(Recording(*row), state_dir) for row in rows]
    return unlink_audio([p for p in paths if p.exists()])


def audio_owner(conn: sqlite3.Connection, call_id: str, now: float) -> str | None:
    """Who still needs a call's audio folder (None: nobody, it may be deleted): a call in
    progress, a recording still being collected, a fetched recording waiting for its job, or
    a job that is pending, running or failed (an administrator may retry it)."""
    call = conn.execute(
        "SELECT started_at, ended_at FROM calls WHERE call_id=?", (call_id,)
    ).fetchone()
    if call is not None and call[1] is None and call[0] > now - ORPHAN_UNENDED_AFTER_SECONDS:
        return "the call is in progress"
    job = job_for(conn, call_id)
    if job is not None and job.status in ("pending", "running", "failed"):
        return f"its job is {job.status}"
    statuses = {r.status for r in recordings(conn, call_id)}
    if "recording" in statuses:
        return "a recording is being collected"
    if job is None and "fetched" in statuses:
        return "its recordings wait for a job"
    if job is not None and job.status == "done" and "fetched" in statuses:
        return "kept after transcription (delete_audio_after_transcription is off)"
    return None


def sweep_orphan_audio(conn: sqlite3.Connection, state_dir: Path, now: float) -> Removed:
    """Delete audio that no call in progress and no pending job owns (see `audio_owner`):
    left behind by a crash, a done or cancelled job, or a call with no records at all. Files
    modified in the last SWEEP_GRACE_SECONDS are left alone. Each call's deletion is logged."""
    root = state_dir / AUDIO_DIR
    total = Removed()
    if not root.is_dir():
        return total
    for entry in sorted(root.iterdir()):
        call_id = entry.name if entry.is_dir() else "-"
        if entry.is_dir():
            why = audio_owner(conn, entry.name, now)
            files = [p for p in entry.iterdir() if p.is_file()]
        else:
            why, files = None, [entry]
        if why is not None:
            continue
        old = [p for p in files if _mtime(p) < now - SWEEP_GRACE_SECONDS]
        if not old:
            if entry.is_dir() and not files:
                with contextlib.suppress(OSError):
                    entry.rmdir()
            continue
        removed = unlink_audio(old)
        total += removed
        if removed.files:
            log.warning(
                "swept %d audio file(s), %d bytes, of call %s: no call or job owns them",
                removed.files,
                removed.bytes,
                call_id,
            )
    return total


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return float("inf")


def adopt_orphans(conn: sqlite3.Connection, now: float) -> list[str]:
    """Queue calls whose recordings were all fetched (or failed) but that have no job: the
    controller died between fetching and queueing. Waits ORPHAN_AFTER_SECONDS after the call's
    end, so a live controller always queues its own calls first."""
    with transaction(conn):
        rows = conn.execute(
            """SELECT r.call_id FROM recordings r
               LEFT JOIN transcription_jobs j ON j.call_id = r.call_id
               LEFT JOIN calls c ON c.call_id = r.call_id
               WHERE j.id IS NULL
               GROUP BY r.call_id
               HAVING SUM(r.status='fetched') > 0 AND SUM(r.status='recording') = 0
                  AND (MAX(c.ended_at) <= ? OR (MAX(c.ended_at) IS NULL AND MAX(r.started_at) <= ?))
            """,
            (now - ORPHAN_AFTER_SECONDS, now - ORPHAN_UNENDED_AFTER_SECONDS),
        ).fetchall()
        calls = [str(r[0]) for r in rows]
        conn.executemany(
            "INSERT OR IGNORE INTO transcription_jobs (call_id, created_at, updated_at, status)"
            " VALUES (?, ?, ?, 'pending')",
            [(c, now, now) for c in calls],
        )
    return calls
