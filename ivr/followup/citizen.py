"""Where a follow-up that is created *after* a call gets the citizen's sealed number from.

The inbound call's number is only in memory while the call is up (`ActiveCall.number`). A
referral or a companion enrolment recorded by staff therefore takes the number, in order:

1. from the live call, if it is still up (the counselor records it during the call or the
   controller still holds it): sealed at once for ``citizen:<hash>`` (model.seal_purpose);
2. else the citizen's latest sealed number already kept by the follow-up room or the callback
   requests, copied as it is (blob and purpose; it is never unsealed here): an open or closed
   follow-up task, a companion series, a callback request of one of the citizen's calls;
3. else none: the task is still created (it is the worklist entry that the need exists) but it
   cannot be dialled; the API and ``ivr-admin`` say so (``dialable: false``), and staff can
   only close it by hand.

The number is never returned by anything here except as the sealed blob, and never logged.
An anonymous caller (no number: hash "anonymous") never borrows another anonymous caller's
number.
"""

from __future__ import annotations

from typing import Any

from ivr.crypto import Sealer
from ivr.followup.model import seal_purpose
from ivr.store import Store

#: A sealed number and the purpose it was sealed for.
Sealed = tuple[bytes, str]

ANONYMOUS = "anonymous"


def columns(sealed: Sealed | None) -> tuple[bytes | None, str | None]:
    """The blob and purpose as stored in a row's `number_sealed`, `sealed_for` (None, None:
    no number)."""
    return sealed if sealed is not None else (None, None)


def seal_live(number: str | None, caller_hash: str, sealer: Sealer) -> Sealed | None:
    """The live call's number sealed for the citizen (None without a number)."""
    if not number or caller_hash == ANONYMOUS:
        return None
    purpose = seal_purpose(caller_hash)
    return sealer.seal(number, purpose), purpose


async def latest_sealed(store: Store, caller_hash: str) -> Sealed | None:
    """The citizen's most recently stored sealed number, or None."""
    if caller_hash == ANONYMOUS:
        return None
    found: list[tuple[float, int, bytes, str]] = []
    queries = (
        "SELECT created_at, number_sealed, sealed_for FROM followup_tasks WHERE caller_hash=?"
        " AND number_sealed IS NOT NULL AND sealed_for IS NOT NULL"
        " ORDER BY created_at DESC, id DESC LIMIT 1",
        "SELECT started_at, number_sealed, sealed_for FROM companion_series WHERE caller_hash=?"
        " AND number_sealed IS NOT NULL AND sealed_for IS NOT NULL"
        " ORDER BY started_at DESC, id DESC LIMIT 1",
        # ivr.callbacks.sealing seals a request's number for "callback:<call id>".
        "SELECT requested_at, number_sealed, 'callback:' || call_id FROM callbacks"
        " WHERE caller_hash=? AND number_sealed IS NOT NULL"
        " ORDER BY requested_at DESC, id DESC LIMIT 1",
    )
    for rank, sql in enumerate(queries):
        rows: list[Any] = await store.fetch(sql, (caller_hash,))
        for at, blob, purpose in rows:
            # Newest first; at the same time, a follow-up's own copy before a callback's.
            found.append((float(at), -rank, bytes(blob), str(purpose)))
    if not found:
        return None
    _, _, blob, purpose = max(found)
    return blob, purpose


async def citizen_number(
    store: Store, caller_hash: str, live_number: str | None, sealer: Sealer | None
) -> Sealed | None:
    """The number for a new follow-up: the live call's, else the latest stored one."""
    if live_number and sealer is not None:
        return seal_live(live_number, caller_hash, sealer)
    return await latest_sealed(store, caller_hash)


async def caller_of(store: Store, call_id: str) -> str | None:
    """The hashed caller of a recorded call, or None for an unknown call id."""
    rows = await store.fetch("SELECT caller_hash FROM calls WHERE call_id=?", (call_id,))
    return str(rows[0][0]) if rows else None
