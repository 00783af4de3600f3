"""The call's end and its stages written in the same write (ivr.store.call_ended), real
SQLite: a caller who hung up during the consent question is stored as such, with the seconds
spent in the menu and in the question; stages never entered stay NULL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ivr.flow.call import CallerHungUp
from ivr.store import Store
from tests.flow_support import consent_asked


async def test_stages_stored_with_the_end(tmp_path: Path) -> None:
    flow, _ = consent_asked()
    flow.handle(CallerHungUp(), 9.5)
    store = await Store.open(tmp_path / "calls.db")
    try:
        await store.call_started("c1", "h1", 0.0)
        await store.call_ended("c1", flow.record)
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "calls.db") as db:
        row = db.execute(
            "SELECT outcome, ended_in, menu_seconds, intro_seconds, consent_seconds,"
            " queue_seconds, staff_seconds, goodbye_seconds FROM calls WHERE call_id='c1'"
        ).fetchone()
    assert row == ("abandoned_consent", "consent", 2.0, None, 7.5, None, None, None)
