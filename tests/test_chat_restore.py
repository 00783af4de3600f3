"""Chats a previous run left open, taken up again at the next run's first tick
(ivr.chat.restore): over a real SQLite store and real ring groups, one service per run, the
second one built afresh as a restart builds it (the same store and secrets, a new ring group)."""

from __future__ import annotations

import base64
import os
import types
from typing import Any

import pytest

from ivr.chat import restore
from ivr.chat.journey import (
    NOTICE_COUNSELOR_GONE,
    ChatParams,
    Choose,
    ConsentAnswered,
    CounselorEnded,
    Outcome,
    Step,
    Typed,
)
from ivr.chat.service import ChatService, LiveChat
from ivr.config import Settings
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.staff.ringgroup import RingGroup
from ivr.store import Store
from tests.ringgroup_support import make_config
from tests.test_chat_service import Counselors

OFFER = 30.0
T0 = 1_000_000.0
#: The data key both runs read from their secrets.
KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture
async def store(db_store: Store) -> Store:
    """One database for every run of a test, as a restart finds it."""
    return db_store


def run_of(
    store: Store, key: str, members: tuple[str, ...] = ("c1", "c2")
) -> tuple[ChatService, RingGroup]:
    """One run's chat service over `store`, its ring group new (as after a restart)."""
    group = RingGroup("loneliness", members, make_config())
    main: dict[Any, Any] = {
        STORE: store,
        SECRETS: types.SimpleNamespace(data_key=key, caller_hash_key="k"),
        SETTINGS: Settings(),
    }
    s = ChatService(main, counselors=Counselors(group))
    s.present["c1"] = 1
    return s, group


async def queued(s: ChatService, identity: str, consent: bool, now: float) -> LiveChat:
    chat = await s.start(identity, now)
    await s.feed(chat, Choose("chat"), now)
    await s.feed(chat, ConsentAnswered(consent), now)
    chat.watchers = 1
    return chat


async def talking_in(s: ChatService, consent: bool = True, said: str = "네") -> LiveChat:
    """A chat c1 took at T0 + 1, in which the citizen and c1 said a line each."""
    chat = await queued(s, "chat-talking", consent, T0)
    await s.step(T0, OFFER)
    assert await s.accept("c1", chat.chat_id, T0 + 1)
    await s.feed(chat, Typed("citizen", "안녕하세요"), T0 + 2)
    await s.feed(chat, Typed("counselor", said), T0 + 3)
    return chat


def texts(chat: LiveChat) -> list[tuple[str, str]]:
    return [(ln.sender, ln.text) for ln in chat.lines]


async def test_a_restart_takes_up_the_waiting_and_the_connected_chats_as_they_were(
    store: Store,
) -> None:
    first, _ = run_of(store, KEY)
    talking = await talking_in(first, said="네, 말씀하세요")
    waiting = await queued(first, "chat-waiting", False, T0 + 4)
    await first.feed(waiting, Typed("citizen", "기다릴게요"), T0 + 5)
    mark = T0 + restore.SEEN_EVERY
    await first.step(mark, OFFER)  # the live chats are marked seen
    seen = await store.fetch("SELECT chat_id, seen_at FROM chats ORDER BY queued_at")
    assert seen == [(talking.chat_id, mark), (waiting.chat_id, mark)]
    # The process dies here: nothing else of the first run is told.

    second, group = run_of(store, KEY)
    await second.step(mark + 20, OFFER)
    back = second.chat_of("chat-talking")
    assert back is not None and back.chat_id == talking.chat_id
    assert back.journey.step is Step.CONNECTED and back.journey.member == "c1"
    assert group.chats_of("c1") == {talking.chat_id}  # counts against c1 again
    assert texts(back) == [
        ("citizen", "안녕하세요"),
        ("counselor", "네, 말씀하세요"),
        ("system", restore.NOTICE_RESUMED),
    ]
    # The kept messages were read like a transcript: the read is recorded, by "restart".
    access = await store.fetch("SELECT chat_id, who, action FROM chat_access")
    assert access == [(talking.chat_id, "restart", "read")]

    still = second.chat_of("chat-waiting")
    assert still is not None and still.journey.step is Step.WAITING
    assert still.queued and still.queued_at == T0 + 4  # its place: when it first queued
    assert group.waiting_chats == [waiting.chat_id]
    assert texts(still) == [
        ("system", restore.NOTICE_RESUMED),
        ("system", restore.NOTICE_EARLIER_NOT_KEPT),
    ]

    # The conversation goes on and is kept after the kept lines (no number used twice).
    await second.feed(back, Typed("citizen", "다시 연결됐네요"), mark + 21)
    kept = await store.fetch(
        "SELECT seq, sender FROM chat_messages WHERE chat_id = ? ORDER BY seq",
        (talking.chat_id,),
    )
    assert [s for _, s in kept] == ["citizen", "counselor", "citizen"]
    assert len({seq for seq, _ in kept}) == 3 and kept[-1][0] > kept[1][0]
    await second.feed(back, CounselorEnded(), mark + 30)
    assert group.chats_of("c1") == set()
    ended = await store.fetch(
        "SELECT ended_at, outcome, ended_by FROM chats WHERE chat_id = ?", (talking.chat_id,)
    )
    assert ended == [(mark + 30, "completed", "c1")]

    # A third start finds nothing left open but the waiting chat, which it takes up again.
    third, _ = run_of(store, KEY)
    await third.step(mark + 40, OFFER)
    assert set(third.chats) == {waiting.chat_id}


async def test_chats_heard_of_too_long_ago_are_closed_as_interrupted_when_last_heard_of(
    store: Store,
) -> None:
    first, _ = run_of(store, KEY)
    chat = await queued(first, "chat-old", False, T0)
    await first.step(T0 + 10, OFFER)
    # A row of a release before seen_at: heard of when it queued.
    await store.change(
        "INSERT INTO chats (chat_id, identity_hash, started_at, queued_at, consent)"
        " VALUES ('chat-older', 'chat-x', 5.0, 7.0, 'no')",
        (),
    )
    later = T0 + 10 + restore.RESUME_WITHIN + 1
    second, group = run_of(store, KEY)
    await second.step(later, OFFER)
    assert second.chats == {} and group.waiting_chats == []
    rows = await store.fetch(
        "SELECT chat_id, ended_at, outcome, ended_by FROM chats ORDER BY queued_at"
    )
    assert rows == [
        ("chat-older", 7.0, "interrupted", "system"),
        (chat.chat_id, T0 + 10, "interrupted", "system"),
    ]


def test_the_plan_takes_up_what_was_heard_of_within_the_limit() -> None:
    def row(chat_id: str, heard: float, answered: float | None = None) -> restore.OpenChat:
        member = "c1" if answered is not None else None
        return restore.OpenChat.of(
            (chat_id, "chat-i", 1.0, 2.0, answered, member, "yes", 1, "info,chat", None)
            + (heard, 0, 7)
        )

    fresh, old = row("a", 1000.0, answered=3.0), row("b", 1000.0 - restore.RESUME_WITHIN - 1)
    assert restore.plan([fresh, old], 1000.0, set()) == ([fresh], [old])
    assert fresh.last_seq == 7
    # An identity with a chat in this run already: nothing of it is taken up.
    assert restore.plan([fresh], 1000.0, {"chat-i"}) == ([], [fresh])
    assert fresh.path == ("info", "chat") and fresh.consent and fresh.member == "c1"
    journey = restore.journey_of(fresh, ChatParams(), lines=4)
    assert journey.step is Step.CONNECTED and journey.flagged and journey.member == "c1"
    waiting = restore.journey_of(old, ChatParams(), lines=0)
    assert waiting.step is Step.WAITING and waiting.member is None
    assert waiting.outcome is None and Outcome.INTERRUPTED.value == "interrupted"


async def test_kept_messages_that_cannot_be_read_are_not_shown_and_new_ones_go_on_after_them(
    store: Store,
) -> None:
    first, _ = run_of(store, KEY)
    talking = await talking_in(first)

    # The next run cannot open what was kept (here: another data key).
    other = base64.urlsafe_b64encode(os.urandom(32)).decode()
    second, _ = run_of(store, other)
    await second.step(T0 + 10, OFFER)
    back = second.chat_of("chat-talking")
    assert back is not None and back.journey.step is Step.CONNECTED
    assert texts(back) == [
        ("system", restore.NOTICE_RESUMED),
        ("system", restore.NOTICE_EARLIER_UNREADABLE),
    ]
    await second.feed(back, Typed("citizen", "들리세요?"), T0 + 11)
    kept = await store.fetch(
        "SELECT seq FROM chat_messages WHERE chat_id = ? ORDER BY seq", (talking.chat_id,)
    )
    assert len(kept) == 3 and len({seq for (seq,) in kept}) == 3, kept


async def test_a_connected_chat_whose_counselor_left_the_roster_queues_again_at_its_place(
    store: Store,
) -> None:
    first, _ = run_of(store, KEY)
    talking = await talking_in(first, consent=False)
    # The conversation goes on past chat_max_wait (600 s) before the restart.
    later = T0 + 700.0
    await first.step(later - 10, OFFER)  # seen live then

    second, group = run_of(store, KEY, members=("c2",))  # c1 was taken off the roster
    second.present["c2"] = 1
    # Long after it first queued: it waits again (timed from now), it is not ended.
    await second.step(later, OFFER)
    back = second.chat_of("chat-talking")
    assert back is not None and back.journey.step is Step.WAITING
    assert back.journey.member is None and back.queued and back.queued_at == T0
    assert texts(back)[-1] == ("system", NOTICE_COUNSELOR_GONE)
    assert group.waiting_chats == [talking.chat_id]
    await second.step(later + 1, OFFER)
    assert back.journey.step is Step.WAITING
    assert back.offer is not None and back.offer.member == "c2"
    assert await second.accept("c2", talking.chat_id, later + 2)
    row = await store.fetch(
        "SELECT member, answered_at FROM chats WHERE chat_id = ?", (talking.chat_id,)
    )
    assert row == [("c2", later + 2)]


async def test_one_live_chat_per_identity_after_a_restart(store: Store) -> None:
    first, _ = run_of(store, KEY)
    older = await queued(first, "chat-same", False, T0)
    # A second open row for the same identity (a release that let two exist).
    await store.change(
        "INSERT INTO chats (chat_id, identity_hash, started_at, queued_at, consent)"
        " VALUES ('chat-newer', 'chat-same', ?, ?, 'no')",
        (T0 + 2, T0 + 3),
    )
    other = await queued(first, "chat-other", False, T0 + 4)

    second, _ = run_of(store, KEY)
    # The citizen of "chat-other" came back before the take-up and started a new chat.
    fresh = await second.start("chat-other", T0 + 9)
    await second.step(T0 + 10, OFFER)
    same = second.chat_of("chat-same")
    assert same is not None and same.chat_id == "chat-newer"
    assert second.chat_of("chat-other") is fresh
    rows = await store.fetch(
        "SELECT chat_id, outcome FROM chats WHERE outcome IS NOT NULL ORDER BY queued_at"
    )
    assert rows == [(older.chat_id, "interrupted"), (other.chat_id, "interrupted")]


async def test_a_take_up_that_fails_is_tried_again_and_the_tick_goes_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = run_of(store, KEY)
    left = await queued(first, "chat-left", False, T0)
    calls: list[int] = []
    real = restore.records.left_open

    async def failing(store: Store, live: set[str]) -> list[tuple[object, ...]]:
        calls.append(1)
        if len(calls) < restore.RECOVER_TRIES:
            raise RuntimeError("disk I/O error")  # what a broken disk gives, on demand
        return await real(store, live)

    monkeypatch.setattr(restore.records, "left_open", failing)
    second, group = run_of(store, KEY)
    new = await queued(second, "chat-new", False, T0 + 5)
    await second.step(T0 + 6, OFFER)
    assert not second.recovered.is_set()
    assert new.queued and group.waiting_chats == [new.chat_id]  # the tick went on
    for n in range(restore.RECOVER_TRIES - 1):
        await second.step(T0 + 7 + n, OFFER)
    assert second.recovered.is_set() and len(calls) == restore.RECOVER_TRIES
    assert second.chat_of("chat-left") is not None
    assert group.waiting_chats == [left.chat_id, new.chat_id]  # its first place


async def test_a_take_up_that_keeps_failing_gives_up_and_leaves_the_rows_open(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = run_of(store, KEY)
    await queued(first, "chat-left", False, T0)

    async def failing(store: Store, live: set[str]) -> list[tuple[object, ...]]:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(restore.records, "left_open", failing)
    second, _ = run_of(store, KEY)
    for n in range(restore.RECOVER_TRIES):
        assert not second.recovered.is_set()
        await second.step(T0 + 6 + n, OFFER)
    assert second.recovered.is_set() and second.chats == {}
    assert await store.fetch("SELECT count(*) FROM chats WHERE ended_at IS NULL") == [(1,)]
