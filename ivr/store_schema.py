"""The database schema: `MIGRATIONS`, applied in order, append only (`PRAGMA user_version`
counts how many a database has). Each capability's tables are one migration; a change to a
table is a new migration, never an edit of an old one.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time

import aiosqlite

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE calls (
        call_id      TEXT PRIMARY KEY,
        caller_hash  TEXT NOT NULL,
        started_at   REAL NOT NULL,
        menu_path    TEXT NOT NULL DEFAULT '',
        queue        TEXT,
        queued_at    REAL,
        answered_at  REAL,
        member       TEXT,
        wait_seconds REAL,
        talk_seconds REAL,
        ended_at     REAL,
        outcome      TEXT
    );
    CREATE INDEX calls_started ON calls (started_at);
    CREATE INDEX calls_caller ON calls (caller_hash);
    """,
    """
    ALTER TABLE calls ADD COLUMN end_reason TEXT;
    CREATE TABLE ring_attempts (
        leg_id     TEXT PRIMARY KEY,
        call_id    TEXT NOT NULL,
        member     TEXT NOT NULL,
        started_at REAL NOT NULL,
        ended_at   REAL,
        outcome    TEXT
    );
    CREATE INDEX ring_attempts_call ON ring_attempts (call_id);
    CREATE TABLE counselor_events (
        id     INTEGER PRIMARY KEY,
        member TEXT NOT NULL,
        at     REAL NOT NULL,
        field  TEXT NOT NULL,
        old    TEXT,
        new    TEXT,
        reason TEXT
    );
    CREATE TABLE caller_flags (
        id          INTEGER PRIMARY KEY,
        caller_hash TEXT NOT NULL,
        kind        TEXT NOT NULL,
        level       INTEGER NOT NULL,
        created_at  REAL NOT NULL,
        until       REAL NOT NULL,
        call_id     TEXT,
        member      TEXT,
        lifted_at   REAL,
        lifted_by   TEXT
    );
    CREATE INDEX caller_flags_caller ON caller_flags (caller_hash);
    CREATE TABLE callbacks (
        id            INTEGER PRIMARY KEY,
        call_id       TEXT NOT NULL,
        caller_hash   TEXT NOT NULL,
        number_sealed BLOB,
        requested_at  REAL NOT NULL,
        reason        TEXT NOT NULL,
        consent       TEXT NOT NULL,
        requested_by  TEXT,
        status        TEXT NOT NULL DEFAULT 'open'
    );
    """,
    """
    CREATE TABLE silence_events (
        id         INTEGER PRIMARY KEY,
        call_id    TEXT NOT NULL,
        party      TEXT NOT NULL,
        started_at REAL NOT NULL,
        seconds    REAL NOT NULL,
        action     TEXT NOT NULL
    );
    CREATE INDEX silence_events_call ON silence_events (call_id);
    """,
    """
    CREATE TABLE consents (
        call_id        TEXT PRIMARY KEY,
        answer         TEXT NOT NULL,      -- yes | no | none (no answer = no consent)
        answered_by    TEXT NOT NULL,      -- key | voice | none
        at             REAL NOT NULL,
        prompt_id      TEXT NOT NULL,
        prompt_version TEXT NOT NULL,      -- catalog version + hash of the exact text heard
        channel        TEXT NOT NULL,      -- the caller's channel name
        withdrawn_at   REAL,
        withdrawn_by   TEXT
    );
    CREATE TABLE recordings (
        name       TEXT PRIMARY KEY,       -- Asterisk's stored recording name
        call_id    TEXT NOT NULL,
        party      TEXT NOT NULL,          -- caller | staff
        started_at REAL NOT NULL,
        status     TEXT NOT NULL,          -- recording | fetched | deleted | failed
        path       TEXT                    -- where the fetched audio waits for transcription
    );
    CREATE INDEX recordings_call ON recordings (call_id);
    CREATE TABLE transcription_jobs (
        id         INTEGER PRIMARY KEY,
        call_id    TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        status     TEXT NOT NULL,          -- pending | running | done | failed | cancelled
        attempts   INTEGER NOT NULL DEFAULT 0,
        error      TEXT
    );
    CREATE TABLE transcripts (
        call_id    TEXT NOT NULL,
        party      TEXT NOT NULL,
        sealed     BLOB NOT NULL,          -- AES-GCM, purpose "transcript:<call>:<party>"
        created_at REAL NOT NULL,
        PRIMARY KEY (call_id, party)
    );
    CREATE TABLE summaries (
        call_id     TEXT PRIMARY KEY,
        sealed      BLOB,                  -- JSON summary, purpose "summary:<call>"
        created_at  REAL,
        note_sealed BLOB,                  -- the counselor's wrap-up note, purpose "note:<call>"
        note_by     TEXT,
        note_at     REAL
    );
    CREATE TABLE summary_access (
        id      INTEGER PRIMARY KEY,
        call_id TEXT NOT NULL,
        who     TEXT NOT NULL,
        at      REAL NOT NULL,
        action  TEXT NOT NULL              -- read | export | withdraw | purge
    );
    """,
    """
    -- The counselors' own current state (counselor_events keeps the history); restored at start.
    CREATE TABLE counselor_state (
        member          TEXT PRIMARY KEY,
        logged_in       INTEGER NOT NULL,
        logged_in_since REAL,
        paused          INTEGER NOT NULL,
        pause_reason    TEXT,
        paused_since    REAL
    );
    """,
    """
    ALTER TABLE calls ADD COLUMN menu_failures INTEGER NOT NULL DEFAULT 0;
    """,
    """
    -- Follow-up (ivr/followup): every stored request becomes a task that is dialled.
    CREATE TABLE followup_tasks (
        id            INTEGER PRIMARY KEY,
        type          TEXT NOT NULL,
        team          TEXT NOT NULL,
        caller_hash   TEXT NOT NULL,
        number_sealed BLOB,
        sealed_for    TEXT,
        created_at    REAL NOT NULL,
        due_at        REAL NOT NULL,
        priority      INTEGER NOT NULL,
        attempts      INTEGER NOT NULL DEFAULT 0,
        status        TEXT NOT NULL DEFAULT 'open',
        outcome       TEXT,
        closed_at     REAL,
        closed_by     TEXT,
        member        TEXT,
        call_id       TEXT,
        requested_by  TEXT,
        referral_id   INTEGER,
        series_id     INTEGER,
        note          TEXT,
        locked_by     TEXT,
        locked_until  REAL,
        alerted_at    REAL
    );
    CREATE INDEX followup_due ON followup_tasks (status, team, priority, due_at);
    CREATE INDEX followup_citizen ON followup_tasks (caller_hash, status);
    CREATE TABLE followup_attempts (
        id           INTEGER PRIMARY KEY,
        task_id      INTEGER NOT NULL,
        started_at   REAL NOT NULL,
        ended_at     REAL,
        member       TEXT,
        call_id      TEXT,
        result       TEXT,
        sip_cause    INTEGER,
        talk_seconds REAL
    );
    CREATE INDEX followup_attempts_task ON followup_attempts (task_id);
    CREATE TABLE followup_optouts (
        caller_hash TEXT PRIMARY KEY,
        at          REAL NOT NULL,
        call_id     TEXT,
        via         TEXT NOT NULL
    );
    CREATE TABLE companion_series (
        id            INTEGER PRIMARY KEY,
        caller_hash   TEXT NOT NULL,
        number_sealed BLOB,
        sealed_for    TEXT,
        member        TEXT NOT NULL,
        every_days    INTEGER NOT NULL,
        weekday       INTEGER NOT NULL,
        at_minute     INTEGER NOT NULL,
        started_at    REAL NOT NULL,
        stopped_at    REAL,
        call_id       TEXT
    );
    CREATE TABLE referrals (
        id          INTEGER PRIMARY KEY,
        call_id     TEXT NOT NULL,
        caller_hash TEXT NOT NULL,
        agency      TEXT NOT NULL,
        status      TEXT NOT NULL,
        created_at  REAL NOT NULL,
        updated_at  REAL NOT NULL,
        created_by  TEXT,
        note        TEXT
    );
    CREATE INDEX referrals_call ON referrals (call_id);
    ALTER TABLE calls ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound';
    ALTER TABLE calls ADD COLUMN task_id INTEGER;
    ALTER TABLE callbacks ADD COLUMN task_id INTEGER;
    """,
    """
    -- Follow-up: the tasks fixed to one member (companion series, `assign`), read by member
    -- every planning cycle; the task a call's request became.
    CREATE INDEX followup_member ON followup_tasks (member, status, team, priority, due_at)
        WHERE member IS NOT NULL;
    CREATE INDEX followup_call ON followup_tasks (call_id);
    """,
    """
    -- How long no controller was alive when a restart closed this record (ivr.recovery).
    ALTER TABLE calls ADD COLUMN downtime_seconds REAL;
    """,
    """
    -- Follow-up: every referral a social workers' task checks (its own, and those whose
    -- monitoring merged into it): the monitoring call's outcome updates them all.
    CREATE TABLE followup_task_referrals (
        task_id     INTEGER NOT NULL,
        referral_id INTEGER NOT NULL,
        PRIMARY KEY (task_id, referral_id)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO followup_task_referrals (task_id, referral_id)
        SELECT id, referral_id FROM followup_tasks WHERE referral_id IS NOT NULL;
    """,
    """
    -- Follow-up dialling paused or on, per team (ivr.followup.control; `ivr-admin followup
    -- pause|resume`): one row per change, with who and why; a team's latest row is in force.
    CREATE TABLE followup_dialling (
        id     INTEGER PRIMARY KEY,
        team   TEXT NOT NULL,
        paused INTEGER NOT NULL,
        at     REAL NOT NULL,
        by     TEXT NOT NULL,
        reason TEXT
    );
    """,
    """
    -- Where a call ended and the seconds spent in each stage (ivr.flow.record.Stage); NULL
    -- for calls stored before this migration and for follow-up calls.
    ALTER TABLE calls ADD COLUMN ended_in TEXT;
    ALTER TABLE calls ADD COLUMN menu_seconds REAL;
    ALTER TABLE calls ADD COLUMN intro_seconds REAL;
    ALTER TABLE calls ADD COLUMN consent_seconds REAL;
    ALTER TABLE calls ADD COLUMN queue_seconds REAL;
    ALTER TABLE calls ADD COLUMN staff_seconds REAL;
    ALTER TABLE calls ADD COLUMN goodbye_seconds REAL;
    """,
    """
    -- When a task's first in-depth request was made (a `*8` merged into an older social
    -- workers' task): its one-working-day deadline counts from then.
    ALTER TABLE followup_tasks ADD COLUMN in_depth_at REAL;
    UPDATE followup_tasks SET in_depth_at = created_at WHERE type = 'in_depth';
    """,
    """
    -- Each live inbound call's snapshot (ivr.resume, ivr.flow.restore): what a restarted
    -- controller needs to take the call back. Written as the journey changes; the row goes
    -- in the same transaction as the call record's end (the trigger).
    CREATE TABLE live_calls (
        call_id        TEXT PRIMARY KEY,  -- = the caller's channel id
        owner          TEXT NOT NULL,     -- the run that wrote it (its channel id prefix)
        state          TEXT NOT NULL,     -- ivr.flow.states.State
        talk           TEXT,              -- ivr.flow.conversation.State when connected
        caller_hash    TEXT NOT NULL,
        channel_name   TEXT NOT NULL,
        flag_level     INTEGER NOT NULL,
        started_at     REAL NOT NULL,
        stage_since    REAL NOT NULL,
        stage_seconds  TEXT NOT NULL,     -- JSON: stage -> seconds
        menu_path      TEXT NOT NULL,
        menu_failures  INTEGER NOT NULL,
        queue          TEXT,
        queued_at      REAL,              -- the original arrival in the queue
        member         TEXT,
        staff_leg      TEXT,
        answered_at    REAL,
        consent        TEXT,
        consent_stored INTEGER NOT NULL,
        holding_bridge TEXT,
        talk_bridge    TEXT,
        recordings     TEXT NOT NULL,     -- JSON: party -> recording name in progress
        last_playback  TEXT,
        updated_at     REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TRIGGER live_call_ended AFTER UPDATE OF outcome ON calls
        WHEN NEW.outcome IS NOT NULL
    BEGIN
        DELETE FROM live_calls WHERE call_id = NEW.call_id;
    END;
    """,
    """
    -- The web desk's passwords (ivr/web/auth.py): a scrypt hash per staff member, set by
    -- `ivr-admin desk-password MEMBER`; the SIP secret is never a desk password.
    CREATE TABLE desk_passwords (
        member  TEXT PRIMARY KEY,
        hash    TEXT NOT NULL,
        set_at  REAL NOT NULL,
        set_by  TEXT NOT NULL
    );
    """,
    """
    -- The post-call satisfaction survey (ivr.flow.survey): at most one answer per call, with
    -- its line and time; no caller number and no caller hash. kind 'score': answer 1-5;
    -- kind 'helped' ("did this help?"): answer 1 yes, 0 no.
    CREATE TABLE survey_answers (
        call_id     TEXT PRIMARY KEY,
        line        TEXT NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('score', 'helped')),
        answer      INTEGER NOT NULL CHECK (
            (kind = 'score' AND answer BETWEEN 1 AND 5) OR (kind = 'helped' AND answer IN (0, 1))
        ),
        answered_by TEXT NOT NULL,
        at          REAL NOT NULL
    );
    CREATE INDEX survey_answers_at ON survey_answers (at);
    """,
    """
    -- The wrap-up the counselor had after the call (ivr.staff.ringgroup.RingGroup.released:
    -- not rung for that long); NULL for calls nobody answered and calls stored before this.
    ALTER TABLE calls ADD COLUMN wrapup_seconds REAL;
    """,
    """
    -- A follow-up call's own stages (ivr.flow.record.Stage; with staff_seconds and
    -- goodbye_seconds, and ended_in): NULL for inbound calls and calls stored before this.
    ALTER TABLE calls ADD COLUMN whisper_seconds REAL;
    ALTER TABLE calls ADD COLUMN dialling_seconds REAL;
    ALTER TABLE calls ADD COLUMN outcome_seconds REAL;
    """,
    """
    -- The counselor's wrap-up of a call from the web desk (ivr.desk): the needs ticked (keys of
    -- config/needs_ko.toml, comma-separated), the outcome (ivr.desk.screen OUTCOMES). No
    -- number, no free text (the note is sealed with the summary; a referral is its own row).
    -- Saving the form again replaces it.
    CREATE TABLE call_wrapups (
        call_id  TEXT PRIMARY KEY,
        member   TEXT NOT NULL,
        needs    TEXT NOT NULL,
        outcome  TEXT NOT NULL,
        at       REAL NOT NULL
    );
    """,
    """
    -- The text chat channel (ivr/chat): one row per chat that asked for a counselor (the
    -- channel the reports count next to calls). identity_hash: a keyed hash of the chat
    -- identity the citizen's browser keeps in a signed cookie (the abuse flags' caller_hash).
    -- consent 'yes': its messages are kept in chat_messages, each sealed (AES-GCM, purpose
    -- "chat:<chat_id>:<seq>"); 'no': nothing typed is stored. Every read is in chat_access.
    CREATE TABLE chats (
        chat_id       TEXT PRIMARY KEY,
        identity_hash TEXT NOT NULL,
        started_at    REAL NOT NULL,
        queued_at     REAL NOT NULL,
        answered_at   REAL,
        ended_at      REAL,
        member        TEXT,
        consent       TEXT NOT NULL CHECK (consent IN ('yes', 'no')),
        outcome       TEXT,
        ended_by      TEXT,
        path          TEXT NOT NULL DEFAULT '',
        flag_level    INTEGER NOT NULL DEFAULT 0,
        withdrawn_at  REAL  -- consent withdrawn: its messages were deleted then
    );
    CREATE INDEX chats_started ON chats (started_at);
    CREATE TABLE chat_messages (
        id          INTEGER PRIMARY KEY,
        chat_id     TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        sender      TEXT NOT NULL CHECK (sender IN ('citizen', 'counselor')),
        at          REAL NOT NULL,
        text_sealed BLOB NOT NULL,
        UNIQUE (chat_id, seq)
    );
    CREATE TABLE chat_access (
        chat_id TEXT NOT NULL,
        who     TEXT NOT NULL,
        at      REAL NOT NULL,
        action  TEXT NOT NULL
    );
    CREATE INDEX chat_access_chat ON chat_access (chat_id);
    """,
    """
    -- The ring group (queue) a chat went to: its line in the reports (NULL for chats stored
    -- before this column, or while the controller was not up when it was opened).
    ALTER TABLE chats ADD COLUMN queue TEXT;
    """,
    """
    -- Active/standby controllers (ivr/lease): the one lease row and its fencing token, which
    -- only grows (+1 on every take-over). Empty unless ha_enabled.
    CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        token      INTEGER NOT NULL,
        expires_at REAL NOT NULL,
        taken_at   REAL NOT NULL
    );
    """,
    """
    -- The wallboard's seed at a start (ivr/wallboard/records.py) reads these by time and by
    -- call, on the connection the controller writes through: no whole-table scan.
    CREATE INDEX IF NOT EXISTS silence_events_started ON silence_events (started_at);
    CREATE INDEX IF NOT EXISTS counselor_events_at ON counselor_events (at);
    CREATE INDEX IF NOT EXISTS caller_flags_call ON caller_flags (call_id);
    """,
    """
    -- 24: the wallboard counts open callbacks and today's closed ones every few seconds
    -- (ivr/wallboard/records.py); callbacks are never purged: by status, by request time.
    CREATE INDEX IF NOT EXISTS callbacks_status ON callbacks (status);
    CREATE INDEX IF NOT EXISTS callbacks_requested ON callbacks (requested_at, status);
    """,
    """
    -- When the run holding a chat last saw it live (ivr.chat.restore): a chat left open by a
    -- restart is taken up again when this is recent, else closed as interrupted at this time.
    ALTER TABLE chats ADD COLUMN seen_at REAL;
    """,
    """
    -- Signed-in desk sessions (ivr/web/session_store.py), so that a restart or a hand-over
    -- signs nobody out: the session id's SHA-256 only (the cookie's id is not kept), who and
    -- since when; a sign-out deletes its row, `ivr-admin desk-password` the member's rows.
    CREATE TABLE desk_sessions (
        sid_hash      TEXT PRIMARY KEY,
        member        TEXT NOT NULL,
        role          TEXT NOT NULL,
        signed_in_at  REAL NOT NULL,
        last_seen     REAL NOT NULL
    );
    """,
    """
    -- Times a call's counselor's phone was lost mid-conversation (no media for rtp_timeout,
    -- a network failure) and the caller waited again for the next counselor (ivr.flow.call).
    ALTER TABLE calls ADD COLUMN staff_lost INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE live_calls ADD COLUMN staff_lost INTEGER NOT NULL DEFAULT 0;
    """,
    """
    -- The crisis line's channel once it joined a call (warm transfer): a restart takes the
    -- three-way call, or the caller handed over to the crisis line, back (ivr.flow.restore).
    ALTER TABLE live_calls ADD COLUMN crisis_leg TEXT;
    """,
    """
    -- When a caller began waiting again after a lost counselor: their wait (the timers, the
    -- announcements) counts from then after a restart too; queued_at keeps their place.
    ALTER TABLE live_calls ADD COLUMN requeued_at REAL;
    """,
)


#: How long a controller waits for the other one of a pair migrating the same file (a
#: migration of a large database may take longer than the store's usual busy timeout).
MIGRATION_BUSY_SECONDS = 60.0
#: How often use_wal tries again while the file is locked.
WAL_RETRY_SECONDS = 0.05


async def use_wal(db: aiosqlite.Connection, wait_seconds: float = MIGRATION_BUSY_SECONDS) -> None:
    """PRAGMA journal_mode=WAL, waiting while another connection writes.

    Hand-written retry: SQLite does not call the busy handler here (a file still in rollback
    mode, another controller of the pair migrating it: "database is locked" at once).
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(WAL_RETRY_SECONDS)


def statements(script: str) -> list[str]:
    """The statements of a migration script, one by one.

    Hand-written on top of sqlite3.complete_statement (SQLite's own tokenizer: semicolons in
    comments, strings and trigger bodies do not end a statement) because executescript, the
    only stdlib way to run a script, commits the open transaction first (Python 3.11), which
    would give up the write lock the migration holds.
    """
    out: list[str] = []
    current = ""
    *pieces, rest = script.split(";")
    for piece in pieces:
        current += piece + ";"
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    rest = current + rest
    if rest.strip() and any(
        line.strip() and not line.strip().startswith("--") for line in rest.splitlines()
    ):
        raise ValueError(f"incomplete statement at the end of a migration: {rest.strip()!r}")
    return out


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer version of the product than this one."""


async def migrate(db: aiosqlite.Connection, migrations: tuple[str, ...] = MIGRATIONS) -> None:
    """Apply what is missing of `migrations`, each step in its own write transaction.

    Two controllers of an active/standby pair may start at the same moment on one file: each
    step takes the write lock first (BEGIN IMMEDIATE; the other one waits up to
    MIGRATION_BUSY_SECONDS), reads user_version under it and applies the next migration with
    the new user_version in the same transaction — a crash half-way leaves the old version and
    nothing of the step. A database at the newest version is only read.

    A database newer than `migrations` (an older release started on it: a downgrade, or the
    old node of a pair after the new one migrated) raises `SchemaTooNew` before anything is
    written: this code does not know its tables and would write rows the newer code misreads.
    """
    cur = await db.execute("PRAGMA busy_timeout")
    row = await cur.fetchone()
    busy_ms = int(row[0]) if row else 0
    await db.execute(f"PRAGMA busy_timeout={int(MIGRATION_BUSY_SECONDS * 1000)}")
    try:
        while await _step(db, migrations):
            pass
    finally:
        await db.execute(f"PRAGMA busy_timeout={busy_ms}")


async def _step(db: aiosqlite.Connection, migrations: tuple[str, ...]) -> bool:
    """Apply the next missing migration; False when there is none (nothing written)."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        cur = await db.execute("PRAGMA user_version")
        row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > len(migrations):
            raise SchemaTooNew(
                f"the database is at schema version {version}, newer than this release knows "
                f"({len(migrations)}): it was opened by a newer version of the product. Run that "
                "version, or restore a backup taken before the upgrade; nothing was changed. "
                "(데이터베이스가 이 버전보다 새로운 버전에서 사용되었습니다)"
            )
        if version == len(migrations):
            await db.execute("ROLLBACK")
            return False
        log.info("database: applying migration %d", version + 1)
        for statement in statements(migrations[version]):
            await db.execute(statement)
        await db.execute(f"PRAGMA user_version={version + 1}")
        await db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            await db.execute("ROLLBACK")
        raise
    return True
