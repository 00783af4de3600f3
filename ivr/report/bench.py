"""`report-bench`: the time `ivr-report` takes over one year of records at 10× Seoul's volume
(≈ 420,000 contacts; the issue's target is under 30 s on the project's machine).

The year is synthetic (ivr.report.synthetic's call model, labelled `synthetic-`) and, unlike the
test generator, bulk-inserted in one transaction (the store's one-commit-per-record path would
take longer than the report). The database is a temporary file, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivr.report.cli import main as report
from ivr.report.synthetic import HOUR_WEIGHTS, PREFIX, Params, one_call
from ivr.store import Store
from ivr.timezone import SEOUL
from speech.bench import machine

_INSERT = (
    "INSERT INTO calls (call_id, caller_hash, started_at, menu_path, queue, queued_at,"
    " answered_at, member, wait_seconds, talk_seconds, ended_at, outcome, ended_in)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def fill(path: Path, first: dt.date, days: int, per_day: int, seed: int) -> int:
    asyncio.run(_migrate(path))
    rng, params = random.Random(seed), Params()
    rows: list[tuple[Any, ...]] = []
    for d in range(days):
        day = dt.datetime.combine(first + dt.timedelta(days=d), dt.time(), SEOUL).timestamp()
        for h in rng.choices(range(24), weights=HOUR_WEIGHTS, k=per_day):
            r = one_call(rng, day + h * 3600 + rng.uniform(0, 3600), params)
            caller = f"{PREFIX}{rng.randrange(per_day * 25)}"
            rows.append(
                (f"{PREFIX}{len(rows)}", caller, r.started_at, "".join(r.menu_path), r.queue)
                + (r.queued_at, r.answered_at, r.member, r.wait_seconds, r.talk_seconds)
                + (r.ended_at, r.outcome.value if r.outcome else None, r.ended_in)
            )
    with sqlite3.connect(path) as db:
        db.executemany(_INSERT, rows)
    db.close()
    return len(rows)


async def _migrate(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="report-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=1150, help="10× Seoul ≈ 1150 a day")
    args = parser.parse_args(argv)
    first = dt.date(2026, 1, 1)
    last = first + dt.timedelta(days=args.days - 1)
    print(f"report-bench: {machine()}")
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        db, out = Path(tmp) / "year.db", Path(tmp) / "year.html"
        t0 = time.monotonic()
        n = fill(db, first, args.days, args.per_day, seed=1)
        print(f"report-bench: {n} synthetic calls written in {time.monotonic() - t0:.1f} s")
        t0 = time.monotonic()
        argv2 = ["--from", str(first), "--to", str(last), "--db", str(db), "--out", str(out)]
        if report([*argv2, "--no-roster"]) != 0:
            return 1
        took = time.monotonic() - t0
        verdict = "met" if took < 30 else "MISSED"
        print(f"report-bench: report over {args.days} days in {took:.1f} s")
        print(f"target under 30 s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
