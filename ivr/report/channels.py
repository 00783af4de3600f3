"""The contacts behind "contacts per day and by channel": every kind of contact the hotline
has, as (when, channel, line), made by ONE small function (:func:`contacts`), so a new channel
is a few lines there and in the reader. Pure.

Channels now:
- `phone`: an inbound call to 120; its line is the queue chosen, `menu` when none was;
- `followup`: an outbound follow-up call (callback, welfare check, referral monitoring,
  companion call); its line is the queue, else `followup`.

Adding chats (ivr/chat, issue 11), for the integrator:
1. the reader: read the period's chats with when each started and its line (from the chat
   table, whatever its columns are called), e.g. as `Contact(started_at, "chat", line)`;
2. here: give :func:`contacts` those rows (`chats: Sequence[Contact] = ()`, `out += chats`);
3. ivr.report.cli: pass them from the reader to `contacts(...)`.
The table, its CSV and its plot take the channel from the rows; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ivr.report.rows import CallRow

PHONE = "phone"
FOLLOWUP = "followup"


@dataclass(frozen=True, slots=True)
class Contact:
    """One contact: when it started (epoch s), its channel and its line."""

    started_at: float
    channel: str
    line: str


def of_call(call: CallRow) -> Contact:
    if call.direction == "inbound":
        return Contact(call.started_at, PHONE, call.queue or "menu")
    return Contact(call.started_at, FOLLOWUP, call.queue or "followup")


def contacts(calls: Sequence[CallRow]) -> list[Contact]:
    """Every contact of the period, by channel (see the module docstring to add one)."""
    return [of_call(c) for c in calls]
