"""The chat channel in the report (ivr/chat, the `chats` table): its contacts for "contacts per
day and by channel" (channel `chat`, line = the ring group the chat was queued to) and the chat
table. Rows read read only (like ivr.report.reader), the table computed here (pure).

Definitions (a `chats` row exists for every chat that asked for a counselor, from the moment
the citizen answered the consent question and was queued):
- **offered**: every such chat (queued);
- **answered**: a counselor took it (`answered_at` set);
- **abandoned while waiting**: the citizen left before a counselor took it (outcome
  `abandoned`, not answered);
- **guided start**: the chat opened → queued (the menu buttons and the consent question; the
  chat's stage before the queue, as the menu and consent are a call's);
- **wait**: queued → answered (answered chats); **service level**: answered within 20 s / 60 s
  over offered, as for calls;
- **handle time**: answered → ended (answered and ended chats; a chat has no wrap-up time);
- **consent share**: offered chats whose citizen said yes to keeping the transcript and did not
  withdraw it, over offered;
- **abuse endings**: outcome `abuse` (the counselor ended it for abuse).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ivr.report.figures import PERCENTILES, SERVICE_LEVEL_SECONDS, Table, percentile
from ivr.report.rows import Period

CHAT = "chat"
#: The line of a chat stored without its ring group (before it was recorded, or opened while
#: the controller was not up).
NO_QUEUE = "chat"


@dataclass(frozen=True, slots=True)
class ChatRow:
    """One row of `chats` (no identity, nothing typed)."""

    chat_id: str
    started_at: float
    queued_at: float
    answered_at: float | None
    ended_at: float | None
    member: str | None
    consent: str  # yes | no
    outcome: str | None  # ivr.chat.journey.Outcome, None while open
    queue: str | None = None
    withdrawn: bool = False

    @property
    def line(self) -> str:
        return self.queue or NO_QUEUE

    @property
    def guided_seconds(self) -> float:
        return self.queued_at - self.started_at

    @property
    def wait_seconds(self) -> float | None:
        return None if self.answered_at is None else self.answered_at - self.queued_at

    @property
    def handle_seconds(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.answered_at


_CHATS = """
SELECT chat_id, started_at, queued_at, answered_at, ended_at, member, consent, outcome, queue,
       withdrawn_at IS NOT NULL
FROM chats WHERE started_at >= ? AND started_at < ?
"""


def read_chats(db: sqlite3.Connection, period: Period, line: str | None = None) -> list[ChatRow]:
    sql, args = _CHATS, list[Any]([period.start, period.end])
    if line is not None:
        sql += " AND queue = ?"
        args.append(line)
    rows = db.execute(sql + " ORDER BY started_at", args).fetchall()
    out = []
    for cid, started, queued, answered, ended, member, consent, outcome, queue, gone in rows:
        out.append(
            ChatRow(
                cid, started, queued, answered, ended, member, consent, outcome, queue, bool(gone)
            )
        )
    return out


def contacts(chats: Sequence[ChatRow]) -> list[tuple[float, str, str]]:
    """The chats as contacts (ivr.report.channels.Contact's fields)."""
    return [(c.started_at, CHAT, c.line) for c in chats]


def _share(n: int, of: int) -> float | None:
    return n / of if of else None


def chat_table(chats: Sequence[ChatRow]) -> Table:
    """The chat channel's figures (module docstring), one (measure, value) per row."""
    offered = len(chats)
    answered = [c for c in chats if c.answered_at is not None]
    waits = [w for c in answered if (w := c.wait_seconds) is not None]
    handles = [h for c in answered if (h := c.handle_seconds) is not None]
    outcomes = Counter(c.outcome or "open" for c in chats)
    abandoned = sum(1 for c in chats if c.outcome == "abandoned" and c.answered_at is None)
    consented = sum(1 for c in chats if c.consent == "yes" and not c.withdrawn)
    rows: list[tuple[Any, ...]] = [
        ("offered", offered),
        ("answered", len(answered)),
        ("abandoned_waiting", abandoned),
        ("answer_rate", _share(len(answered), offered)),
        ("abandonment_rate", _share(abandoned, offered)),
    ]
    rows += [(f"outcome_{k}", outcomes[k]) for k in sorted(outcomes)]
    guided = [c.guided_seconds for c in chats]
    rows += [(f"p{p}_guided_start_s", percentile(guided, p)) for p in (50, 90)]
    rows += [(f"p{p}_wait_s", percentile(waits, p)) for p in PERCENTILES]
    for t in SERVICE_LEVEL_SECONDS:
        rows.append((f"service_level_{t}s", _share(sum(1 for w in waits if w <= t), offered)))
    rows += [
        ("mean_handle_min", sum(handles) / len(handles) / 60 if handles else None),
        *((f"p{p}_handle_min", _minutes(percentile(handles, p))) for p in (50, 90)),
        ("consent_share", _share(consented, offered)),
        ("consent_withdrawn", sum(1 for c in chats if c.withdrawn)),
        ("abuse_endings", outcomes["abuse"]),
    ]
    return Table("chats", ("measure", "value"), rows)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 60


def per_member(chats: Sequence[ChatRow]) -> Counter[str]:
    """Chats each counselor took (for the workload)."""
    return Counter(c.member for c in chats if c.member is not None and c.answered_at is not None)
