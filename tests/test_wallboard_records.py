"""The wallboard's seed queries (ivr/wallboard/records.py) on a migrated database: each reads
its never-purged tables through an index, never a whole-table scan (they run at a start on the
connection the controller writes through)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.store import Store
from ivr.wallboard import records

#: The tables that are never purged, under the names (or aliases) the queries give them.
GROWING = {
    "calls",
    "c",
    "silence_events",
    "s",
    "counselor_events",
    "chats",
    "h",
    "caller_flags",
    "f",
    "callbacks",
}
QUERIES = {
    "silences": records._SILENCES,
    "call_abuses": records._CALL_ABUSES,
    "chat_abuses": records._CHAT_ABUSES,
    "busy": records._BUSY,
    "events": records._EVENTS,
    "today_calls": records.TODAY_CALLS,
    "open_callbacks": records.OPEN_CALLBACKS,
    "closed_callbacks": records.CLOSED_CALLBACKS_SINCE,
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "ivr120.sqlite3")
    yield s
    await s.close()


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_a_seed_query_reads_through_an_index(store: Store, name: str) -> None:
    sql = QUERIES[name]
    plan = [
        str(r[3]) for r in await store.fetch(f"EXPLAIN QUERY PLAN {sql}", (0.0,) * sql.count("?"))
    ]
    scans = [d for d in plan if d.startswith("SCAN ") and d.split()[1] in GROWING]
    assert scans == [], plan
    assert not [d for d in plan if "AUTOMATIC" in d], plan
