"""The chat channel's rows: `chats` (one per chat that asked for a counselor), its messages
sealed in `chat_messages` (only with the citizen's consent), and `chat_access` (every read).

Writes go through the store's kept-for-later path (`Store.write`: a locked or full database
does not stop a chat); a read of a transcript first commits its `chat_access` row (and the
`ivr.audit` line) and only then decrypts anything.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ivr.audit import audit
from ivr.crypto import Sealer
from ivr.store import Store, WriteDeferred


def message_purpose(chat_id: str, seq: int) -> str:
    """The associated data a message is sealed with (a ciphertext moved to another row fails)."""
    return f"chat:{chat_id}:{seq}"


async def opened(
    store: Store,
    chat_id: str,
    identity_hash: str,
    started_at: float,
    queued_at: float,
    consent: bool,
    path: list[str],
    flag_level: int,
    queue: str | None = None,
) -> None:
    """`queue`: the ring group the chat is queued to (its line in the reports)."""
    await store.write(
        "chat",
        "INSERT INTO chats (chat_id, identity_hash, started_at, queued_at, consent, path,"
        " flag_level, queue) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            chat_id,
            identity_hash,
            started_at,
            queued_at,
            "yes" if consent else "no",
            ",".join(path),
            flag_level,
            queue,
        ),
    )


async def answered(store: Store, chat_id: str, member: str, at: float) -> None:
    await store.write(
        "chat answered",
        "UPDATE chats SET answered_at = ?, member = ? WHERE chat_id = ?",
        (at, member, chat_id),
    )


async def ended(store: Store, chat_id: str, at: float, outcome: str, by: str) -> None:
    await store.write(
        "chat ended",
        "UPDATE chats SET ended_at = ?, outcome = ?, ended_by = ? WHERE chat_id = ?",
        (at, outcome, by, chat_id),
    )


#: The columns of a chat left open, as :func:`left_open` reads them (ivr.chat.restore).
OPEN_COLUMNS = (
    "chat_id, identity_hash, started_at, queued_at, answered_at, member, consent, flag_level,"
    " path, seen_at"
)


async def left_open(store: Store, live: set[str]) -> list[tuple[object, ...]]:
    """The chats not ended, except `live` (this run's), with when each was last heard of:
    its `seen_at`, or its latest kept message or answer when later (OPEN_COLUMNS, then that
    time, whether a callback was asked from it, and the number of its last kept message:
    read here, with no decryption, so new messages go on after it even when the kept ones
    cannot be read)."""
    rows = await store.fetch(
        f"SELECT {OPEN_COLUMNS},"
        " max(coalesce(seen_at, 0), queued_at, coalesce(answered_at, 0),"
        "     coalesce((SELECT max(at) FROM chat_messages m WHERE m.chat_id = c.chat_id), 0)),"
        " EXISTS (SELECT 1 FROM callbacks b WHERE b.call_id = c.chat_id),"
        " coalesce((SELECT max(seq) FROM chat_messages m WHERE m.chat_id = c.chat_id), 0)"
        " FROM chats c WHERE ended_at IS NULL ORDER BY queued_at"
    )
    return [r for r in rows if r[0] not in live]


async def seen(store: Store, chat_ids: list[str], now: float) -> None:
    """The chats `chat_ids` are live in this run at `now` (one statement for all)."""
    if chat_ids:
        marks = ",".join("?" * len(chat_ids))
        await store.write(
            "chats seen",
            f"UPDATE chats SET seen_at = ? WHERE ended_at IS NULL AND chat_id IN ({marks})",
            (now, *chat_ids),
        )


async def interrupted(store: Store, chat_id: str, at: float) -> None:
    """A chat a previous run left open and nobody can take up again: closed as ``interrupted``
    at `at` (when it was last heard of)."""
    await store.write(
        "chat left open",
        "UPDATE chats SET ended_at = ?, outcome = 'interrupted', ended_by = 'system'"
        " WHERE chat_id = ? AND ended_at IS NULL",
        (at, chat_id),
    )


async def message(
    store: Store, sealer: Sealer, chat_id: str, seq: int, sender: str, at: float, text: str
) -> None:
    """Keep one message, sealed (only called with the citizen's consent)."""
    await store.write(
        "chat message",
        "INSERT INTO chat_messages (chat_id, seq, sender, at, text_sealed) VALUES (?, ?, ?, ?, ?)",
        (chat_id, seq, sender, at, sealer.seal(text, message_purpose(chat_id, seq))),
    )


async def forget(store: Store, chat_id: str, at: float) -> bool:
    """Consent withdrawn: the kept messages are deleted, then the chat says when. Both are
    ordinary writes, so they land after every write of the chat still pending (a consent row
    or a message the database could not take yet) and are retried like them. True when done
    now; False when kept for later (WriteDeferred: done once ``store.pending`` is empty)."""
    done = True
    for what, sql, args in (
        ("chat messages forgotten", "DELETE FROM chat_messages WHERE chat_id = ?", (chat_id,)),
        (
            "chat consent withdrawn",
            "UPDATE chats SET consent = 'no', withdrawn_at = ? WHERE chat_id = ?",
            (at, chat_id),
        ),
    ):
        try:
            await store.write(what, sql, args)
        except WriteDeferred:
            done = False
    audit.info(
        "chat consent withdrawn: chat=%s; its kept messages %s",
        chat_id,
        "deleted" if done else "to be deleted once the database takes writes",
    )
    return done


def purge_messages(conn: sqlite3.Connection, cutoff: float, now: float) -> list[str]:
    """Delete kept chat messages older than `cutoff` (the summaries' retention, run by their
    purge inside its transaction, ivr.summary.records.purge); one `chat_access` row per chat,
    who = "retention", action ``purge``. Returns the chats purged."""
    chats = [
        str(r[0])
        for r in conn.execute(
            "SELECT DISTINCT chat_id FROM chat_messages WHERE at < ? ORDER BY chat_id", (cutoff,)
        )
    ]
    conn.execute("DELETE FROM chat_messages WHERE at < ?", (cutoff,))
    conn.executemany(
        "INSERT INTO chat_access (chat_id, who, at, action) VALUES (?, 'retention', ?, 'purge')",
        [(c, now) for c in chats],
    )
    return chats


@dataclass(frozen=True)
class Message:
    seq: int
    sender: str
    at: float
    text: str


async def read_transcript(
    store: Store, sealer: Sealer, chat_id: str, who: str, now: float
) -> list[Message]:
    """A chat's kept messages, decrypted; the read is recorded (committed) first. Raises the
    store's error when the access row cannot be written (then nothing is shown)."""
    await store.change(
        "INSERT INTO chat_access (chat_id, who, at, action) VALUES (?, ?, ?, 'read')",
        (chat_id, who, now),
    )
    audit.info("chat transcript read: chat=%s who=%s", chat_id, who)
    rows = await store.fetch(
        "SELECT seq, sender, at, text_sealed FROM chat_messages WHERE chat_id = ? ORDER BY seq",
        (chat_id,),
    )
    return [
        Message(int(seq), str(sender), float(at), sealer.open(blob, message_purpose(chat_id, seq)))
        for seq, sender, at, blob in rows
    ]
