"""Chats a previous run left open (a restart, a crash, a take-over by the standby), taken up
again by this run's chat service at its first tick.

A chat lives in the memory of the run that holds it; its row in `chats` (written when the
citizen answered the consent question) says who it was (the identity's keyed hash, which the
citizen's signed cookie gives again), when it queued, and which counselor took it. While a run
holds a chat it marks the row `seen_at` every SEEN_EVERY seconds. At the next start:

- a chat heard of within RESUME_WITHIN seconds is taken up again as it was: WAITING with its
  place (its first `queued_at`: the queue orders by it), or CONNECTED to its counselor, who it
  counts against again. With consent its kept messages are shown again (read like a transcript:
  a `chat_access` row and an audit line first, who = ``restart``); without, nothing was kept,
  and a line says the earlier messages are not shown. A notice tells both sides it goes on.
  Its citizen's page (reconnecting by itself) finds it by their cookie; a citizen who does not
  come back is gone as usual (the service's CITIZEN_GONE / CITIZEN_LEFT_CONNECTED).
- an older one (the product was down longer) is closed as ``interrupted`` at the time it was
  last heard of, not at this start. So is every open chat of an identity but its newest, and
  one whose citizen has already started a new chat in this run (a page that came back before
  the take-up): one live chat per identity.
- kept messages that cannot be read now (a locked or full disk) are not shown, and a line
  says so; new messages are numbered after the last kept one all the same.
- a connected chat whose counselor is no longer in the roster queues again at its first
  place (the journey's CounselorGone) once the ring group is up (:func:`recount`).

A take-up that fails (a database error) is tried again at the next ticks, RECOVER_TRIES in
all; the tick goes on meanwhile, and citizens' requests wait for it at most READY_WAIT.

Pure decisions here (:func:`plan`, :func:`journey_of`); :func:`recover` carries them out.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.chat import records
from ivr.chat.journey import ChatJourney, ChatParams, CounselorGone, Step
from ivr.staff.ringgroup import UnknownMemberError
from ivr.store import Store, WriteDeferred

if TYPE_CHECKING:
    from ivr.chat.service import ChatService

log = logging.getLogger(__name__)

#: Seconds since a chat was last heard of within which a new run takes it up again (a restart
#: or a take-over takes seconds; an outage longer than this ends the chats it held).
RESUME_WITHIN = 300.0
#: Seconds between two marks of the live chats (`chats.seen_at`).
SEEN_EVERY = 30.0
#: Who reads a resumed chat's kept messages (its `chat_access` row).
READER = "restart"

NOTICE_RESUMED = "시스템이 다시 시작되어 채팅을 이어 갑니다."
NOTICE_EARLIER_NOT_KEPT = "보관하지 않은 이전 메시지는 표시되지 않습니다."
NOTICE_EARLIER_UNREADABLE = "보관된 이전 메시지를 지금은 표시할 수 없습니다."
#: Ticks that try the take-up before this run gives up on it (a database error each).
RECOVER_TRIES = 3


@dataclass(frozen=True)
class OpenChat:
    """A chat row not ended, as records.left_open reads it."""

    chat_id: str
    identity: str
    started_at: float
    queued_at: float
    answered_at: float | None
    member: str | None
    consent: bool
    flag_level: int
    path: tuple[str, ...]
    #: When it was last heard of: its seen_at, latest kept message or answer.
    heard_at: float
    callback_asked: bool
    #: The number of its last kept message (0: none).
    last_seq: int

    @classmethod
    def of(cls, row: tuple[object, ...]) -> OpenChat:
        chat_id, identity, started, queued, answered, member, consent, level, path = row[:9]
        heard, callback, last_seq = row[10], row[11], row[12]
        return cls(
            str(chat_id),
            str(identity),
            float(started),  # type: ignore[arg-type]
            float(queued),  # type: ignore[arg-type]
            None if answered is None else float(answered),  # type: ignore[arg-type]
            None if member is None or answered is None else str(member),
            consent == "yes",
            int(level or 0),  # type: ignore[call-overload]
            tuple(p for p in str(path or "").split(",") if p),
            float(heard),  # type: ignore[arg-type]
            bool(callback),
            int(last_seq or 0),  # type: ignore[call-overload]
        )


def plan(
    chats: list[OpenChat], now: float, taken: set[str], within: float = RESUME_WITHIN
) -> tuple[list[OpenChat], list[OpenChat]]:
    """(the chats to take up again, the chats to close as interrupted): those heard of within
    `within`, one per identity (its newest), none of an identity in `taken` (it has a chat in
    this run already)."""
    resume: list[OpenChat] = []
    close: list[OpenChat] = []
    seen = set(taken)
    for c in sorted(chats, key=lambda c: c.queued_at, reverse=True):
        if now - c.heard_at > within or c.identity in seen:
            close.append(c)
        else:
            resume.append(c)
            seen.add(c.identity)
    return sorted(resume, key=lambda c: c.queued_at), sorted(close, key=lambda c: c.queued_at)


def journey_of(chat: OpenChat, params: ChatParams, lines: int) -> ChatJourney:
    return ChatJourney.restored(
        chat.chat_id,
        params,
        chat.started_at,
        chat.consent,
        chat.member,
        flagged=chat.flag_level > 0,
        path=chat.path,
        callback_asked=chat.callback_asked,
        lines=lines,
    )


async def recover(service: ChatService, store: Store, now: float) -> tuple[int, int]:
    """Take up or close what a previous run left open (module docstring); (resumed, closed).
    A chat whose kept messages cannot be read is taken up without them (logged)."""
    rows = await records.left_open(store, set(service.chats))
    taken = {c.identity for c in service.chats.values() if c.journey.step is not Step.ENDED}
    resume, close = plan([OpenChat.of(r) for r in rows], now, taken)
    for c in close:
        try:
            await records.interrupted(store, c.chat_id, c.heard_at)
        except WriteDeferred:
            pass  # written when the database takes writes again
    for c in resume:
        kept: list[records.Message] | None = []
        if c.consent:
            try:
                kept = await records.read_transcript(store, service.sealer, c.chat_id, READER, now)
            except Exception:
                log.exception("chat %s: its kept messages could not be read", c.chat_id)
                kept = None
        journey = journey_of(c, service.params, c.last_seq if kept is None else len(kept))
        chat = service.resumed(journey, c.identity, c.flag_level, c.queued_at, now)
        for m in kept or []:
            chat.add(m.sender, m.text, m.at)
        chat.seq = max([chat.seq, c.last_seq, *(m.seq for m in kept or [])])
        chat.add("system", NOTICE_RESUMED, now)
        if not c.consent:
            chat.add("system", NOTICE_EARLIER_NOT_KEPT, now)
        elif kept is None:
            chat.add("system", NOTICE_EARLIER_UNREADABLE, now)
        log.info(
            "chat %s: taken up again after a restart (%s%s)",
            c.chat_id,
            chat.journey.step,
            f", {len(kept)} kept messages" if kept else "",
        )
    return len(resume), len(close)


class Recovery:
    """This run's take-up of what a previous run left open (:func:`recover`), tried at the
    first ticks; `done` is set once it is over (or given up after RECOVER_TRIES)."""

    def __init__(self) -> None:
        self.tries = 0
        self.done = asyncio.Event()

    async def attempt(self, service: ChatService, store: Store, now: float) -> None:
        self.tries += 1
        try:
            resumed, closed = await recover(service, store, now)
        except Exception:
            log.exception("chats a previous run left open: attempt %d failed", self.tries)
            if self.tries < RECOVER_TRIES:
                return
            log.error("chats a previous run left open: not taken up (the next run tries again)")
        else:
            if resumed or closed:
                log.warning(
                    "chats a previous run left open: %d taken up again, %d closed as interrupted",
                    resumed,
                    closed,
                )
        self.done.set()


async def recount(service: ChatService, now: float) -> None:
    """Connected chats taken up again count against their counselors once the ring group is
    up; one whose counselor is no longer in the roster queues again (CounselorGone)."""
    group = service.group()
    if group is None:
        return
    for chat in [c for c in service.chats.values() if c.recount]:
        chat.recount = False
        member = chat.journey.member
        if member is None or chat.journey.step is not Step.CONNECTED:
            continue
        try:
            group.chat_resumed(member, chat.chat_id)
        except UnknownMemberError:
            log.warning(
                "chat %s: taken up again, but %s is no longer a counselor; queued again",
                chat.chat_id,
                member,
            )
            chat.requeued_at = now  # the wait is timed from now; the place stays the first
            await service.feed(chat, CounselorGone(chat.queued_at or chat.journey.started_at), now)
