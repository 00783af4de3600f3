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
  last heard of, not at this start.

Pure decisions here (:func:`plan`, :func:`journey_of`); :func:`recover` carries them out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.chat import records
from ivr.chat.journey import ChatJourney, ChatParams
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

    @classmethod
    def of(cls, row: tuple[object, ...]) -> OpenChat:
        chat_id, identity, started, queued, answered, member, consent, level, path = row[:9]
        heard, callback = row[10], row[11]
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
        )


def plan(
    chats: list[OpenChat], now: float, within: float = RESUME_WITHIN
) -> tuple[list[OpenChat], list[OpenChat]]:
    """(the chats to take up again, the chats to close as interrupted)."""
    resume = [c for c in chats if now - c.heard_at <= within]
    return resume, [c for c in chats if now - c.heard_at > within]


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
    resume, close = plan([OpenChat.of(r) for r in rows], now)
    for c in close:
        try:
            await records.interrupted(store, c.chat_id, c.heard_at)
        except WriteDeferred:
            pass  # written when the database takes writes again
    for c in resume:
        kept: list[records.Message] = []
        if c.consent:
            try:
                kept = await records.read_transcript(store, service.sealer, c.chat_id, READER, now)
            except Exception:
                log.exception("chat %s: its kept messages could not be read", c.chat_id)
        journey = journey_of(c, service.params, len(kept))
        chat = service.resumed(journey, c.identity, c.flag_level, c.queued_at, now)
        for m in kept:
            chat.add(m.sender, m.text, m.at)
        chat.seq = max([chat.seq, *(m.seq for m in kept)])  # new lines after the kept ones
        chat.add("system", NOTICE_RESUMED, now)
        if not c.consent:
            chat.add("system", NOTICE_EARLIER_NOT_KEPT, now)
        log.info(
            "chat %s: taken up again after a restart (%s%s)",
            c.chat_id,
            chat.journey.step,
            f", {len(kept)} kept messages" if kept else "",
        )
    return len(resume), len(close)
