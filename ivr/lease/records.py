"""The `leases` table, over a stdlib `sqlite3` connection of its own (autocommit).

Every take-over and renewal is one conditional UPDATE (a compare-and-set on the token, and for
a take-over on the expiry too), so when two controllers act on the same row at once exactly one
UPDATE changes it and the other sees rowcount 0. The first lease of a database is an
``INSERT … ON CONFLICT DO NOTHING`` with the same property. The table is created by the store's
migrations (ivr/store_schema.py); the controller's other writes check the token in their own
transaction (`ivr.lease.fence`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ivr.lease.model import CONTROLLER, Decision, Lease, LeaseParams, decide, renewed, taken_over


def connect(path: Path, timeout: float) -> sqlite3.Connection:
    """The lease's own connection: autocommit, waiting at most `timeout` s for a lock (a
    renewal stuck behind a long write must not outlast the lease)."""
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit holds the write lock for microseconds, not an fsync (a standby waits
        # for that lock to take over). Safe: WAL commits survive in order, so a power loss that
        # drops a take-over also drops every write made under its token.
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def read(conn: sqlite3.Connection, name: str = CONTROLLER) -> Lease | None:
    row = conn.execute(
        "SELECT holder, token, expires_at FROM leases WHERE name=?", (name,)
    ).fetchone()
    return Lease(str(row[0]), int(row[1]), float(row[2])) if row else None


def take_over(
    conn: sqlite3.Connection,
    row: Lease | None,
    me: str,
    now: float,
    params: LeaseParams,
    name: str = CONTROLLER,
) -> Lease | None:
    """Take the lease `row` (as read, expired or missing); None when another was quicker."""
    new = taken_over(row, me, now, params)
    if row is None:
        cur = conn.execute(
            "INSERT INTO leases (name, holder, token, expires_at, taken_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO NOTHING",
            (name, new.holder, new.token, new.expires_at, now),
        )
    else:
        cur = conn.execute(
            "UPDATE leases SET holder=?, token=?, expires_at=?, taken_at=?"
            " WHERE name=? AND token=? AND expires_at<=?",
            (new.holder, new.token, new.expires_at, now, name, row.token, now),
        )
    return new if cur.rowcount == 1 else None


def renew(
    conn: sqlite3.Connection, row: Lease, now: float, params: LeaseParams, name: str = CONTROLLER
) -> Lease | None:
    """Renew `row` (mine); None when its token is no longer the stored one (lost)."""
    new = renewed(row, now, params)
    cur = conn.execute(
        "UPDATE leases SET expires_at=? WHERE name=? AND token=? AND holder=?",
        (new.expires_at, name, row.token, row.holder),
    )
    return new if cur.rowcount == 1 else None


def release(conn: sqlite3.Connection, lease: Lease, now: float, name: str = CONTROLLER) -> bool:
    """Let the lease lapse now (a clean stop): a standby takes over at its next look."""
    cur = conn.execute(
        "UPDATE leases SET expires_at=? WHERE name=? AND token=? AND holder=?",
        (now, name, lease.token, lease.holder),
    )
    return cur.rowcount == 1


def attempt(
    conn: sqlite3.Connection,
    me: str,
    mine: Lease | None,
    now: float,
    params: LeaseParams,
    name: str = CONTROLLER,
) -> tuple[Decision, Lease | None]:
    """One look at the row and what came of it: (RENEW or TAKE_OVER, my new lease),
    (STAND_BY, the holder's lease) or (LOST, the row as stored)."""
    row = read(conn, name)
    decision = decide(row, me, mine.token if mine else None, now)
    if decision is Decision.TAKE_OVER:
        won = take_over(conn, row, me, now, params, name)
        if won is None:  # another standby was quicker
            return Decision.STAND_BY, read(conn, name)
        return decision, won
    if decision is Decision.RENEW:
        assert row is not None  # decide() says RENEW only for my own stored row
        new = renew(conn, row, now, params, name)
        if new is None:  # taken over between the read and the UPDATE
            return Decision.LOST, read(conn, name)
        return decision, new
    return decision, row
