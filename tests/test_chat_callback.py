"""A chat's callback request (ivr.chat.service over the real SQLite store and the follow-up
requests): the number is typed, not verified, so it never lifts a follow-up opt-out; the task
is kept closed with a note saying why."""

from __future__ import annotations

import base64
import os
import time
import types
from pathlib import Path

from ivr.chat.journey import CallbackAsked, Choose, ConsentAnswered
from ivr.config import Settings
from ivr.followup.model import Status
from ivr.followup.records import FollowupRecords
from ivr.followup.requests import CHAT_OPTED_OUT_NOTE
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.privacy import caller_hash
from ivr.store import Store
from tests.test_chat_withdrawal import service

#: Not a real number (010-0000-xxxx is not in service).
NUMBER = "01000005678"
KEY = "hash-key"


async def test_a_chat_callback_never_lifts_an_opt_out(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        records = FollowupRecords(store)
        hashed = caller_hash(NUMBER, KEY)
        await records.opt_out(hashed, time.time() - 100, "call-0", "key")
        main = {
            STORE: store,
            SECRETS: types.SimpleNamespace(
                data_key=base64.urlsafe_b64encode(os.urandom(32)).decode(), caller_hash_key=KEY
            ),
            SETTINGS: Settings(followup_enabled=True),
        }
        s = service(main)
        chat = await s.start("chat-z", time.time())
        await s.feed(chat, Choose("chat"), time.time())
        await s.feed(chat, ConsentAnswered(False), time.time())
        await s.feed(chat, CallbackAsked("010-0000-5678"), time.time())
        assert await records.opted_out(hashed)  # still opted out
        (task,) = await records.tasks()
        assert task.status is Status.OPTED_OUT and task.note == CHAT_OPTED_OUT_NOTE
        ((linked,),) = await store.fetch("SELECT task_id FROM callbacks")
        assert linked == task.id
    finally:
        await store.close()
