"""`ivr-admin lease` on the database file: who is active, or that the lease lapsed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ivr import admin
from ivr.lease import records
from ivr.lease.model import LeaseParams
from ivr.store import Store


@pytest.fixture
async def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IVR120_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("IVR120_CONFIG", raising=False)
    path = tmp_path / "ivr120.sqlite3"
    store = await Store.open(path)
    await store.close()
    return path


def _take(path: Path, at: float) -> None:
    """node-a takes the lease at `at` for an hour."""
    conn = records.connect(path, 1.0)
    try:
        records.attempt(conn, "node-a:42:x", None, at, LeaseParams(3600.0, 1.0))
    finally:
        conn.close()


async def test_no_lease_yet(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["lease"]) == 0
    assert "임대 없음" in capsys.readouterr().out


async def test_the_active_holder(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _take(database, time.time())
    assert admin.main(["lease"]) == 0
    assert "활성 컨트롤러: node-a:42:x (토큰 1" in capsys.readouterr().out


async def test_a_lapsed_lease(database: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _take(database, time.time() - 7200)
    assert admin.main(["lease"]) == 0
    assert "임대 만료: node-a:42:x" in capsys.readouterr().out
