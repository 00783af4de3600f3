"""What the chat screens show, JSON-ready: the citizen's page and a counselor's chats on the
desk (read from the chat service's live chats; nothing here changes them)."""

from __future__ import annotations

from typing import Any

from ivr.chat.journey import Step
from ivr.chat.service import ChatService, LiveChat


def position(service: ChatService, chat: LiveChat) -> int | None:
    """The chat's place among the chats waiting in its ring group (1 = next), while waiting."""
    group = service.group()
    if group is None or chat.journey.step is not Step.WAITING:
        return None
    ids = group.waiting_chats
    return ids.index(chat.chat_id) + 1 if chat.chat_id in ids else None


def _lines(chat: LiveChat) -> list[dict[str, Any]]:
    return [{"seq": ln.seq, "sender": ln.sender, "text": ln.text} for ln in chat.lines]


def citizen_view(service: ChatService, chat: LiveChat | None) -> dict[str, Any]:
    if chat is None:
        return {"step": Step.GUIDE.value, "lines": [], "position": None, "kept": False}
    return {
        "step": chat.journey.step.value,
        "lines": _lines(chat),
        "position": position(service, chat),
        "kept": bool(chat.journey.consent),
        "callback": chat.journey.callback_open,
    }


def desk_view(service: ChatService, member: str, now: float) -> dict[str, Any]:
    """The chats offered to `member` and the chats `member` has taken."""
    offers, mine = [], []
    for chat in service.chats.values():
        j = chat.journey
        if chat.offer is not None and chat.offer.member == member:
            offers.append(
                {
                    "chat_id": chat.chat_id,
                    "waited": int(now - (chat.queued_at or j.started_at)),
                    "flag": chat.flag_level,
                    "consent": j.consent,
                    "path": j.path,
                }
            )
        if j.member == member:
            mine.append(
                {
                    "chat_id": chat.chat_id,
                    "step": j.step.value,
                    "flag": chat.flag_level,
                    "consent": j.consent,
                    "lines": _lines(chat),
                }
            )
    return {"offers": offers, "chats": mine}
