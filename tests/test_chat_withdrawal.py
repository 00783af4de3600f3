"""Withdrawing consent deletes what was kept whatever the write timing (ivr.chat.service,
ivr.chat.records.forget): over a real SQLite store whose database another writer holds locked,
so the consent row and the messages are still pending when the citizen withdraws. The citizen
is told it is deleted only once it is."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.chat.journey import (
    NOTICE_WITHDRAWING,
    NOTICE_WITHDRAWN,
    Choose,
    ConsentAnswered,
    Typed,
    WithdrawConsent,
)
from ivr.chat.service import ChatService, LiveChat
from ivr.config import Settings
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.staff.ringgroup import RingGroup
from ivr.store import Store
from tests.ringgroup_support import make_config


@dataclass
class OneCounselor:
    """The counselors' ring group, with c1 on the chat page (the chat waits, nobody takes
    it)."""

    ring_group: RingGroup = field(
        default_factory=lambda: RingGroup("loneliness", ("c1",), make_config())
    )

    def group(self) -> RingGroup:
        return self.ring_group

    def on_shift(self, group: RingGroup, now: float) -> None:
        return None


def service(main: dict[Any, Any]) -> ChatService:
    s = ChatService(main, counselors=OneCounselor())
    s.present["c1"] = 1
    return s


def texts(chat: LiveChat) -> list[str]:
    return [ln.text for ln in chat.lines]


async def until(cond: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_withdrawal_deletes_what_was_still_pending(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = await Store.open(path, retry_seconds=0.1)
    await store.change("PRAGMA busy_timeout=100", ())  # a locked database fails fast
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    main = {
        STORE: store,
        SECRETS: types.SimpleNamespace(data_key=key, caller_hash_key="k"),
        SETTINGS: Settings(),
    }
    s = service(main)
    chat = await s.start("chat-x", time.time())
    await s.feed(chat, Choose("chat"), time.time())
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database
    try:
        await s.feed(chat, ConsentAnswered(True), time.time())
        assert not chat.stored and store.pending  # the consent row is kept for later
        await s.feed(chat, Typed("citizen", "my secret"), time.time())
        await s.feed(chat, WithdrawConsent(), time.time())
        assert NOTICE_WITHDRAWING in texts(chat) and NOTICE_WITHDRAWN not in texts(chat)
    finally:
        blocker.rollback()
        blocker.close()
    await until(lambda: NOTICE_WITHDRAWN in texts(chat), "the withdrawn notice")
    assert await store.fetch("SELECT COUNT(*) FROM chat_messages") == [(0,)]
    ((consent, withdrawn_at),) = await store.fetch("SELECT consent, withdrawn_at FROM chats")
    assert consent == "no" and withdrawn_at is not None
    await store.close()


async def test_a_withdrawal_with_the_database_free_says_so_at_once(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite")
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    main = {
        STORE: store,
        SECRETS: types.SimpleNamespace(data_key=key, caller_hash_key="k"),
        SETTINGS: Settings(),
    }
    s = service(main)
    chat = await s.start("chat-y", time.time())
    await s.feed(chat, Choose("chat"), time.time())
    await s.feed(chat, ConsentAnswered(True), time.time())
    await s.feed(chat, Typed("citizen", "hello"), time.time())
    assert await store.fetch("SELECT COUNT(*) FROM chat_messages") == [(1,)]
    await s.feed(chat, WithdrawConsent(), time.time())
    assert texts(chat)[-1] == NOTICE_WITHDRAWN
    assert await store.fetch("SELECT COUNT(*) FROM chat_messages") == [(0,)]
    await store.close()


async def test_two_first_requests_of_one_identity_at_once_make_one_chat(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite")
    s = service({STORE: store, SETTINGS: Settings()})
    one, two = await asyncio.gather(s.start("chat-i", 1.0), s.start("chat-i", 1.0))
    assert one is two and len(s.chats) == 1
    await store.close()
