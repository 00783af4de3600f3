"""The lease's command of ``ivr-admin``: on the database file, no controller needed.

ivr-admin lease     which controller of an active/standby pair is active (holder, token,
                    until when), or that the lease has lapsed or was never taken
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import time
from datetime import datetime
from typing import Any

from ivr.config import Settings
from ivr.lease import records
from ivr.lease.model import Lease
from ivr.timezone import SEOUL

COMMANDS = ("lease",)


def add_commands(sub: Any) -> None:
    sub.add_parser("lease", help="which controller of an active/standby pair is active")


def describe(lease: Lease | None, now: float) -> str:
    """The answer's text (Korean with English)."""
    if lease is None:
        return (
            "임대 없음: 이중화(ha_enabled) 컨트롤러가 아직 시작되지 않았습니다 (no lease taken yet)"
        )
    until = datetime.fromtimestamp(lease.expires_at, SEOUL).strftime("%H:%M:%S.%f")[:-3]
    if lease.expired(now):
        return (
            f"임대 만료: {lease.holder} (토큰 {lease.token}, {until}까지) — 대기 컨트롤러가 "
            f"곧 넘겨받습니다 (lapsed: a standby takes over at its next look)"
        )
    return f"활성 컨트롤러: {lease.holder} (토큰 {lease.token}, {until}까지 갱신됨) (active)"


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = settings.state_path(settings.database)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        print(f"ivr-admin: cannot open {path} ({exc})")
        return 1
    with contextlib.closing(db):
        try:
            lease = records.read(db)
        except sqlite3.Error as exc:  # no database yet, or before the leases migration
            print(f"ivr-admin: no lease table in {path} ({exc}); start ivr-run once")
            return 1
    print(describe(lease, time.time()))
    return 0
