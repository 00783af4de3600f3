"""Kept chat messages follow the summaries' retention (`retention_days`): the summaries' purge
(ivr-admin purge, the worker's daily purge) deletes those older, records one access row per
chat and logs it on the audit logger."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import pytest

from ivr.chat.records import message_purpose
from ivr.crypto import Sealer
from ivr.summary import records
from tests.summary_support import make_state

DAY = 86400.0


def add_chat(conn: sqlite3.Connection, sealer: Sealer, chat_id: str, at: float) -> None:
    conn.execute(
        "INSERT INTO chats (chat_id, identity_hash, started_at, queued_at, consent)"
        " VALUES (?, 'chat-x', ?, ?, 'yes')",
        (chat_id, at, at),
    )
    conn.execute(
        "INSERT INTO chat_messages (chat_id, seq, sender, at, text_sealed)"
        " VALUES (?, 1, 'citizen', ?, ?)",
        (chat_id, at, sealer.seal("외로워요", message_purpose(chat_id, 1))),
    )


def test_old_chat_messages_are_purged_with_the_summaries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = make_state(tmp_path / "state")
    conn = state.connect()
    now = time.time()
    add_chat(conn, state.sealer, "chat-old", now - 91 * DAY)
    add_chat(conn, state.sealer, "chat-recent", now - 89 * DAY)
    with caplog.at_level(logging.INFO, logger="ivr.audit"):
        result = records.purge(conn, 90, state.dir, now=now)
    assert result.chats == ["chat-old"] and result.calls == []
    kept = conn.execute("SELECT chat_id FROM chat_messages").fetchall()
    assert kept == [("chat-recent",)]
    access = conn.execute("SELECT chat_id, who, action FROM chat_access").fetchall()
    assert access == [("chat-old", "retention", "purge")]
    assert conn.execute("SELECT COUNT(*) FROM chats").fetchone() == (2,)  # the rows stay
    assert any("chat=chat-old" in r.getMessage() for r in caplog.records)
