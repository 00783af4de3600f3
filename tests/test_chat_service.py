"""The chat service (ivr.chat.service) over a real ring group, without the controller or a
store: offers that time out go on, a citizen whose page is gone leaves the queue, only the
counselor offered a chat can take it, and a chat queues once the ring group is there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.chat import views
from ivr.chat.journey import (
    NOTICE_NO_COUNSELOR,
    Choose,
    ConsentAnswered,
    CounselorEnded,
    Enqueue,
    FlagIdentity,
    Outcome,
    Step,
)
from ivr.chat.service import CITIZEN_GONE, CITIZEN_LEFT_CONNECTED, ChatService, LiveChat
from ivr.keys import STORE
from ivr.staff.ringgroup import RingGroup
from ivr.store import Store
from tests.ringgroup_support import make_config

OFFER_SECONDS = 30.0


@dataclass
class Counselors:
    """The ring group chats queue into (the controller's, in the product)."""

    ring_group: RingGroup | None

    def group(self) -> RingGroup | None:
        return self.ring_group

    def on_shift(self, group: RingGroup, now: float) -> frozenset[str] | None:
        return None


def service(members: tuple[str, ...] = ("c1", "c2"), up: bool = True) -> ChatService:
    group = RingGroup("loneliness", members, make_config())
    return ChatService({}, counselors=Counselors(group if up else None))


async def waiting_chat(s: ChatService, now: float = 0.0) -> LiveChat:
    chat = await s.start("chat-identity", now)
    if not s.present:
        s.present["c1"] = 1  # a counselor on the chat page (nobody: the chat is not queued)
    await s.feed(chat, Choose("chat"), now)
    await s.feed(chat, ConsentAnswered(False), now)
    chat.watchers = 1  # the citizen's page is open
    return chat


async def test_an_offer_not_taken_in_time_goes_to_the_next_counselor() -> None:
    s = service()
    s.present.update({"c1": 1, "c2": 1})
    chat = await waiting_chat(s)
    await s.step(0.0, OFFER_SECONDS)
    first = chat.offer
    assert first is not None
    await s.step(OFFER_SECONDS, OFFER_SECONDS)  # withdrawn, then offered again
    assert chat.offer is not None and chat.offer.offer_id != first.offer_id
    assert chat.offer.member != first.member  # the other counselor, not the same one again


async def test_a_counselor_passes_an_offer_on_to_the_other() -> None:
    s = service()
    s.present.update({"c1": 1, "c2": 1})
    chat = await waiting_chat(s)
    await s.step(0.0, OFFER_SECONDS)
    first = chat.offer
    assert first is not None
    assert not s.decline("c2" if first.member == "c1" else "c1", chat.chat_id)
    assert s.decline(first.member, chat.chat_id) and chat.offer is None
    await s.step(1.0, OFFER_SECONDS)
    assert chat.offer is not None and chat.offer.member != first.member


async def test_an_offer_goes_only_to_a_counselor_on_the_desk() -> None:
    s = service()
    s.present.update({"c2": 1})
    chat = await waiting_chat(s)
    await s.step(0.0, OFFER_SECONDS)
    assert chat.offer is not None and chat.offer.member == "c2"


async def test_only_the_counselor_offered_the_chat_takes_it() -> None:
    s = service()
    s.present.update({"c1": 1})
    chat = await waiting_chat(s)
    await s.step(0.0, OFFER_SECONDS)
    assert not await s.accept("c2", chat.chat_id, 1.0)
    assert await s.accept("c1", chat.chat_id, 1.0)
    assert chat.journey.step is Step.CONNECTED


async def test_a_waiting_citizen_whose_page_is_gone_leaves_the_queue() -> None:
    s = service()
    chat = await waiting_chat(s)
    chat.watchers, chat.last_seen = 0, 0.0
    await s.step(CITIZEN_GONE + 1, OFFER_SECONDS)
    group = s.group()
    assert chat.journey.step is Step.ENDED and group is not None and group.waiting_chats == []


async def test_a_waiting_citizen_with_the_page_open_stays() -> None:
    s = service()
    chat = await waiting_chat(s)
    await s.step(CITIZEN_GONE * 5, OFFER_SECONDS)
    assert chat.journey.step is Step.WAITING


async def test_with_the_controller_down_the_citizen_is_told_at_once() -> None:
    s = service(up=False)
    chat = await waiting_chat(s)
    assert chat.journey.step is Step.ENDED and chat.journey.outcome is Outcome.UNANSWERED
    view = views.citizen_view(s, chat)
    assert view["callback"] and NOTICE_NO_COUNSELOR in [ln["text"] for ln in view["lines"]]


async def test_nobody_on_the_chat_page_the_citizen_is_told_at_once() -> None:
    s = service()
    s.present.update({"nobody": 0})
    chat = await waiting_chat(s)
    assert chat.journey.outcome is Outcome.UNANSWERED


async def test_chats_turned_off_the_citizen_is_told_at_once() -> None:
    group = RingGroup("loneliness", ("c1",), make_config(chats_per_member=0))
    s = ChatService({}, counselors=Counselors(group))
    chat = await waiting_chat(s)
    assert chat.journey.outcome is Outcome.UNANSWERED and group.waiting_chats == []


async def test_nobody_on_shift_the_citizen_is_told_at_once() -> None:
    @dataclass
    class NobodyOnShift(Counselors):
        def on_shift(self, group: RingGroup, now: float) -> frozenset[str] | None:
            return frozenset()

    s = ChatService({}, counselors=NobodyOnShift(RingGroup("g", ("c1",), make_config())))
    chat = await waiting_chat(s)
    assert chat.journey.outcome is Outcome.UNANSWERED


async def test_a_chat_waiting_the_maximum_ends_with_the_callback_form() -> None:
    s = service()
    s.present.update({"c1": 1})
    chat = await waiting_chat(s)
    group = s.group()
    assert group is not None
    group.counselor("c1").paused = True  # nobody free: the chat waits
    await s.step(599.0, OFFER_SECONDS, 600.0)
    assert chat.journey.step is Step.WAITING
    await s.step(600.0, OFFER_SECONDS, 600.0)
    assert chat.journey.outcome is Outcome.UNANSWERED and group.waiting_chats == []
    assert views.citizen_view(s, chat)["callback"]


async def test_a_chat_taken_before_its_enqueue_is_carried_out_is_not_queued_again() -> None:
    # The consent's row is written (awaited) before the Enqueue command is carried out; a
    # counselor may take the chat in between (the tick queued and offered it): the late
    # Enqueue must not put the connected chat back in the queue.
    s = service()
    s.present.update({"c1": 1})
    chat = await waiting_chat(s)
    await s.step(0.0, OFFER_SECONDS)
    assert await s.accept("c1", chat.chat_id, 1.0)
    await s._do(chat, Enqueue(0.0), 1.0)  # noqa: SLF001 - the late command, as it arrives
    group = s.group()
    assert group is not None and group.waiting_chats == []


async def test_a_stored_chat_keeps_its_ring_group_and_when_it_queued(tmp_path: Path) -> None:
    """The chats row names the ring group the chat queued to (its line in the reports); the
    live chat keeps when it queued (the wallboard's wait)."""
    store = await Store.open(tmp_path / "ivr.db")
    try:
        group = RingGroup("loneliness", ("c1",), make_config())
        s = ChatService({STORE: store}, counselors=Counselors(group))
        chat = await waiting_chat(s, now=100.0)
        assert chat.queued_at == 100.0
        down = ChatService({STORE: store}, counselors=Counselors(None))
        other = await down.start("other-identity", 200.0)
        await down.feed(other, Choose("chat"), 200.0)
        await down.feed(other, ConsentAnswered(True), 205.0)
        assert other.queued_at == 205.0
        rows = await store.fetch("SELECT chat_id, queue, queued_at FROM chats ORDER BY queued_at")
    finally:
        await store.close()
    assert rows == [(chat.chat_id, "loneliness", 100.0), (other.chat_id, None, 205.0)]


def test_no_ring_group_for_chats_before_the_controller_restored_its_members() -> None:
    # The desk runs before the controller: a chat queued before the members' stored states
    # are seeded would make RingGroup.restore refuse, and the controller would not start.
    from types import SimpleNamespace

    from ivr.chat import queue
    from ivr.keys import CONTROLLER
    from tests.ringgroup_support import group as make_group

    g = make_group()
    staff = SimpleNamespace(restored=False, team_group=lambda team: g)
    counselors = queue.Counselors({CONTROLLER: SimpleNamespace(staff=staff)})
    assert counselors.group() is None
    staff.restored = True
    assert counselors.group() is g


async def test_a_connected_citizen_whose_page_is_gone_ends_the_chat_and_frees_the_counselor() -> (
    None
):
    s = service()
    s.present.update({"c1": 1})
    chat = await waiting_chat(s)
    await s.step(0.0, OFFER_SECONDS)
    assert await s.accept("c1", chat.chat_id, 1.0)
    group = s.group()
    assert group is not None and group.chats_of("c1") == {chat.chat_id}
    chat.watchers, chat.last_seen = 0, 1.0
    await s.step(1.0 + CITIZEN_GONE * 2, OFFER_SECONDS)  # a phone's browser may come back
    assert chat.journey.step is Step.CONNECTED
    await s.step(1.0 + CITIZEN_LEFT_CONNECTED + 1, OFFER_SECONDS)
    assert chat.journey.step is Step.ENDED and chat.journey.outcome is Outcome.COMPLETED
    assert group.chats_of("c1") == set()


async def test_command_listeners_hear_the_abuse_end_of_a_chat() -> None:
    """The wallboard hears a chat's commands (its abuse endings) before they are carried out;
    a failing listener is logged and the chat goes on."""
    s = service()
    s.present.update({"c1": 1})
    heard: list[tuple[str, object]] = []

    def broken(chat: LiveChat, cmd: object) -> None:
        raise RuntimeError("a broken listener")

    s.command_listeners[:] = [broken, lambda chat, cmd: heard.append((chat.chat_id, cmd))]
    chat = await waiting_chat(s)
    await s.step(0.0, OFFER_SECONDS)
    assert await s.accept("c1", chat.chat_id, 1.0)
    await s.feed(chat, CounselorEnded(abuse=True), 2.0)
    assert chat.journey.step is Step.ENDED and chat.journey.outcome is Outcome.ABUSE
    assert [c for i, c in heard if i == chat.chat_id and isinstance(c, FlagIdentity)] == [
        FlagIdentity("c1")
    ]
