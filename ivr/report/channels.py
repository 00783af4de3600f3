"""The contacts behind "contacts per day and by channel": every kind of contact the hotline
has, as (when, channel, line), made by ONE small function (:func:`contacts`), so a new channel
is a few lines there and in the reader. Pure.

Channels now:
- `phone`: an inbound call to 120; its line is the queue chosen, `menu` when none was;
- `followup`: an outbound follow-up call (callback, welfare check, referral monitoring,
  companion call); its line is the queue, else `followup`.

- `chat`: a text chat that asked for a counselor (ivr/chat); its line is the ring group it was
  queued to (ivr.report.chats reads them and makes their contacts).

A new channel: give :func:`contacts` its rows as contacts and add them to the list returned.
The table, its CSV and its plot take the channel from the rows; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ivr.report.rows import CallRow

PHONE = "phone"
FOLLOWUP = "followup"


class Contact(NamedTuple):
    """One contact: when it started (epoch s), its channel and its line."""

    started_at: float
    channel: str
    line: str


def contacts(
    calls: Sequence[CallRow], chats: Sequence[tuple[float, str, str]] = ()
) -> list[tuple[float, str, str]]:
    """Every contact of the period as (started_at, channel, line), by channel (see the module
    docstring to add one). Plain tuples, Contact's fields in its order (a Contact is one too):
    a year at 10x Seoul's volume is 420,000 of them."""
    phone = [(c.started_at, PHONE, c.queue or "menu") for c in calls if c.direction == "inbound"]
    out = [
        (c.started_at, FOLLOWUP, c.queue or "followup") for c in calls if c.direction != "inbound"
    ]
    return phone + out + list(chats)
