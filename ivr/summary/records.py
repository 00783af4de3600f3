"""What people do with summaries: read, export, annotate, withdraw, purge — each one audited.

Functions over a `sqlite3` connection from `ivr.summary.jobs.connect` and an `ivr.crypto.Sealer`
with the installation's data key; `ivr-admin` calls them. Every access to a summary's content
first commits a ``summary_access`` row (who, when, call, action) and logs it on the
``ivr.audit`` logger, so a read that fails to decrypt is still on record, and nothing is shown
unless the record was written.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.audit import audit as audit_log
from ivr.chat import records as chat_records
from ivr.crypto import Sealer
from ivr.summary import jobs
from ivr.summary.summarize import Note, with_note

#: Who a retention purge is recorded as.
RETENTION = "retention"


class NotFound(LookupError):
    """No such call, consent or summary."""


class NotAllowed(PermissionError):
    """The caller's consent does not allow this."""


def summary_purpose(call_id: str) -> str:
    return f"summary:{call_id}"


def note_purpose(call_id: str) -> str:
    return f"note:{call_id}"


def transcript_purpose(call_id: str, party: str) -> str:
    return f"transcript:{call_id}:{party}"


def audit(conn: sqlite3.Connection, call_id: str, who: str, action: str, now: float) -> None:
    """Record an access (committed before anything is revealed)."""
    with jobs.transaction(conn):
        conn.execute(
            "INSERT INTO summary_access (call_id, who, at, action) VALUES (?, ?, ?, ?)",
            (call_id, who, now, action),
        )
    audit_log.info("summary %s: call=%s who=%s", action, call_id, who)


def access_log(conn: sqlite3.Connection, call_id: str) -> list[tuple[str, float, str]]:
    """(who, at, action) of every recorded access to a call's summary, oldest first."""
    rows = conn.execute(
        "SELECT who, at, action FROM summary_access WHERE call_id=? ORDER BY at, id", (call_id,)
    ).fetchall()
    return [(str(w), float(a), str(x)) for w, a, x in rows]


def _note(sealer: Sealer, call_id: str, row: Any) -> Note | None:
    note_sealed, note_by, note_at = row
    if note_sealed is None:
        return None
    return Note(sealer.open(note_sealed, note_purpose(call_id)), note_by, note_at)


def current_note(conn: sqlite3.Connection, sealer: Sealer, call_id: str) -> Note | None:
    """The counselor's note for the call (no audit: the worker merges it into the summary)."""
    row = conn.execute(
        "SELECT note_sealed, note_by, note_at FROM summaries WHERE call_id=?", (call_id,)
    ).fetchone()
    return _note(sealer, call_id, row) if row else None


def read_summary(
    conn: sqlite3.Connection,
    sealer: Sealer,
    call_id: str,
    who: str,
    *,
    action: str = "read",
    now: float | None = None,
) -> dict[str, Any]:
    """The decrypted summary with the current counselor's note; audited as ``action``.

    Raises NotFound when there is neither a summary nor a note, and
    `ivr.crypto.DecryptionError` when the key is wrong (the access is recorded all the same).
    """
    row = conn.execute(
        "SELECT sealed, created_at, note_sealed, note_by, note_at FROM summaries WHERE call_id=?",
        (call_id,),
    ).fetchone()
    job = jobs.job_for(conn, call_id)
    if row is None or (row[0] is None and row[2] is None):
        if job is None:
            raise NotFound(f"no summary for call {call_id}")
        if job.status == "cancelled":
            raise NotFound(f"no summary for call {call_id} (cancelled: {job.error})")
        row = (None, None, None, None, None)  # no summary yet: say how its job stands
    audit(conn, call_id, who, action, time.time() if now is None else now)
    sealed, created_at, *note_row = row
    note = _note(sealer, call_id, note_row)
    if sealed is None:  # not written (yet): the job says whether it is coming or failed
        summary: dict[str, Any] = {"call_id": call_id, "pending": True}
        if job is not None:
            summary["job"] = {"status": job.status, "attempts": job.attempts, "error": job.error}
    else:
        summary = json.loads(sealer.open(sealed, summary_purpose(call_id)))
    return with_note(summary, note)


def export_summary(
    conn: sqlite3.Connection,
    sealer: Sealer,
    call_id: str,
    who: str,
    now: float | None = None,
) -> str:
    """The summary as JSON for a follow-up worker (with the consent on which it rests);
    audited as ``export``. The result is plain text: whoever writes it somewhere protects it."""
    summary = read_summary(conn, sealer, call_id, who, action="export", now=now)
    c = jobs.consent(conn, call_id)
    document = {
        "call_id": call_id,
        "exported_at": time.time() if now is None else now,
        "exported_by": who,
        "consent": None if c is None else {"answer": c.answer, "at": c.at, "by": c.answered_by},
        "summary": summary,
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def set_note(
    conn: sqlite3.Connection,
    sealer: Sealer,
    call_id: str,
    text: str,
    by: str,
    now: float | None = None,
) -> None:
    """Add or replace the counselor's wrap-up note (sealed, purpose ``note:<call>``).

    Only for calls whose caller consented (and did not withdraw): the note belongs to the
    summary and goes with it. Audited as ``note``.
    """
    text = text.strip()
    if not text:
        raise ValueError("the note is empty")
    c = jobs.consent(conn, call_id)
    if c is None:
        raise NotFound(f"no consent recorded for call {call_id}")
    if not c.allows_summary:
        raise NotAllowed(f"call {call_id}: {jobs.refusal(conn, call_id)}")
    now = time.time() if now is None else now
    blob = sealer.seal(text, note_purpose(call_id))
    with jobs.transaction(conn):
        conn.execute(
            "INSERT INTO summaries (call_id, note_sealed, note_by, note_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(call_id) DO UPDATE SET note_sealed=excluded.note_sealed,"
            " note_by=excluded.note_by, note_at=excluded.note_at",
            (call_id, blob, by, now),
        )
        conn.execute(
            "INSERT INTO summary_access (call_id, who, at, action) VALUES (?, ?, ?, 'note')",
            (call_id, by, now),
        )
    audit_log.info("summary note: call=%s who=%s", call_id, by)


@dataclass(frozen=True)
class Withdrawal:
    call_id: str
    withdrawn_at: float
    withdrawn_by: str
    transcripts_deleted: int
    summary_deleted: bool
    audio_files_deleted: int
    audio_bytes_deleted: int = 0


def withdraw(
    conn: sqlite3.Connection,
    call_id: str,
    by: str,
    state_dir: Path,
    now: float | None = None,
) -> Withdrawal:
    """The caller withdraws consent: record it (the consent row keeps the withdrawal), delete
    the transcripts, the summary with its note and the audio, cancel the job; audited as
    ``withdraw``. Idempotent: withdrawing again deletes whatever is left and keeps the first
    withdrawal's time."""
    now = time.time() if now is None else now
    if jobs.consent(conn, call_id) is None:
        raise NotFound(f"no consent recorded for call {call_id}")
    with jobs.transaction(conn):
        conn.execute(
            "UPDATE consents SET withdrawn_at=?, withdrawn_by=? WHERE call_id=?"
            " AND withdrawn_at IS NULL",
            (now, by, call_id),
        )
        n_transcripts = conn.execute(
            "SELECT COUNT(*) FROM transcripts WHERE call_id=?", (call_id,)
        ).fetchone()[0]
        had_summary = (
            conn.execute("SELECT 1 FROM summaries WHERE call_id=?", (call_id,)).fetchone()
            is not None
        )
        conn.execute(
            "UPDATE transcription_jobs SET status='cancelled', updated_at=?,"
            " error='consent withdrawn' WHERE call_id=? AND status<>'cancelled'",
            (now, call_id),
        )
        files = jobs.erase_call(conn, call_id, state_dir)
        conn.execute(
            "INSERT INTO summary_access (call_id, who, at, action) VALUES (?, ?, ?, 'withdraw')",
            (call_id, by, now),
        )
    removed = jobs.unlink_audio(files)
    _checkpoint(conn)
    c = jobs.consent(conn, call_id)
    assert c is not None and c.withdrawn_at is not None
    audit_log.info(
        "consent withdrawn: call=%s who=%s transcripts=%d summary=%s audio=%d files %d bytes",
        call_id,
        by,
        n_transcripts,
        had_summary,
        removed.files,
        removed.bytes,
    )
    return Withdrawal(
        call_id,
        c.withdrawn_at,
        c.withdrawn_by or by,
        int(n_transcripts),
        had_summary,
        removed.files,
        removed.bytes,
    )


@dataclass(frozen=True)
class Purge:
    cutoff: float
    calls: list[str]
    transcripts: int
    summaries: int
    audio_files: int
    audio_bytes: int = 0
    chats: list[str] = field(default_factory=list)
    """Chats whose kept messages (ivr.chat) were deleted."""


def purge(
    conn: sqlite3.Connection,
    retention_days: int,
    state_dir: Path,
    now: float | None = None,
) -> Purge:
    """Delete transcripts and summaries (notes included) created more than ``retention_days``
    ago, and audio still waiting from calls that old (failed jobs). One audit row per call,
    who = "retention", action ``purge``; each also logged on ``ivr.audit``."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    now = time.time() if now is None else now
    cutoff = now - retention_days * 86400
    with jobs.transaction(conn):
        t_calls = {
            str(r[0])
            for r in conn.execute(
                "SELECT DISTINCT call_id FROM transcripts WHERE created_at < ?", (cutoff,)
            )
        }
        s_calls = {
            str(r[0])
            for r in conn.execute(
                "SELECT call_id FROM summaries WHERE COALESCE(created_at, note_at, 0) < ?",
                (cutoff,),
            )
        }
        audio = [
            jobs.Recording(*row)
            for row in conn.execute(
                "SELECT name, call_id, party, started_at, status, path FROM recordings"
                " WHERE status IN ('fetched', 'failed') AND started_at < ?",
                (cutoff,),
            )
        ]
        n_t = conn.execute("DELETE FROM transcripts WHERE created_at < ?", (cutoff,)).rowcount
        n_s = conn.execute(
            "DELETE FROM summaries WHERE COALESCE(created_at, note_at, 0) < ?", (cutoff,)
        ).rowcount
        conn.executemany(
            "UPDATE recordings SET status='deleted' WHERE name=?", [(r.name,) for r in audio]
        )
        chats = chat_records.purge_messages(conn, cutoff, now)
        calls = sorted(t_calls | s_calls | {r.call_id for r in audio})
        conn.executemany(
            "INSERT INTO summary_access (call_id, who, at, action) VALUES (?, ?, ?, 'purge')",
            [(c, RETENTION, now) for c in calls],
        )
    files = [jobs.audio_path(r, state_dir) for r in audio]
    for call_id in sorted({r.call_id for r in audio}):
        files += jobs.call_audio_files(conn, call_id, state_dir)
    removed = jobs.unlink_audio(files)
    if calls or chats:
        _checkpoint(conn)
    for chat in chats:
        audit_log.info(
            "retention purge: chat=%s messages (older than %d days)", chat, retention_days
        )
    for c in calls:
        audit_log.info(
            "retention purge: call=%s (older than %d days) transcripts=%s summary=%s",
            c,
            retention_days,
            c in t_calls,
            c in s_calls,
        )
    return Purge(cutoff, calls, n_t, n_s, removed.files, removed.bytes, chats)


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Move the WAL into the database file, so deleted pages (zeroed by secure_delete) do not
    linger in the WAL. Best effort: a busy controller may keep part of it for a while."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError as exc:
        logging.getLogger(__name__).debug("checkpoint: %s", exc)


def pending_jobs(conn: sqlite3.Connection) -> list[jobs.Job]:
    """Jobs not finished: pending, running and failed."""
    return jobs.jobs(conn, ("pending", "running", "failed"))


def consent_record(conn: sqlite3.Connection, call_id: str) -> jobs.Consent:
    c = jobs.consent(conn, call_id)
    if c is None:
        raise NotFound(f"no consent recorded for call {call_id}")
    return c
