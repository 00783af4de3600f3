"""`report-bench`: the time `ivr-report` takes over one year of records at 10× Seoul's volume
(≈ 420,000 contacts; the issue's target is under 30 s on the project's machine).

The year is synthetic (ivr.report.synthetic's call model, labelled `synthetic-`) and, unlike the
test generator, bulk-inserted in one transaction (the store's one-commit-per-record path would
take longer than the report). The database is a temporary file, removed afterwards.

Then the what-if simulation's speed (ivr.report.simulate, the product's ring group on a
simulated clock): the first `--sim-days` days of that year's loneliness-line calls replayed
with a roster sized for the load (4 teams of `--sim-team` counselors, 24-hour shifts), in
simulated days per second.
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

from ivr.configs import ring_group_config
from ivr.report import simulate as sim
from ivr.report.cli import main as report
from ivr.report.reader import connect, read_calls
from ivr.report.rows import Period
from ivr.report.synthetic import HOUR_WEIGHTS, PREFIX, Params, one_call
from ivr.staff.roster import Roster, parse_roster
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
    parser.add_argument("--sim-days", type=int, default=30, help="days the simulation replays")
    parser.add_argument("--sim-team", type=int, default=25, help="counselors per team (4 teams)")
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
        simulation(db, first, min(args.sim_days, args.days), args.sim_team)
    return 0


def bench_roster(per_team: int, start: dt.date) -> Roster:
    """4 teams of `per_team` counselors, 24-hour shifts from 09:00 (the real rotation's shape)."""
    teams = {t: [f"{t}{i:02d}" for i in range(per_team)] for t in "ABCD"}
    counselors = [{"id": c, "name": c, "endpoint": c} for ids in teams.values() for c in ids]
    rotation = {"start": start, "shift_start": "09:00", "shift_hours": 24, "cycle": list(teams)}
    data = {"counselor": counselors, "teams": teams, "rotation": rotation}
    return parse_roster(data, "report-bench roster")


def simulation(db_path: Path, first: dt.date, days: int, per_team: int) -> float:
    """Replay `days` days through the ring group; prints and returns simulated days/s."""
    from ivr.config import Settings

    period = Period(first, first + dt.timedelta(days=days - 1))
    db = connect(db_path)
    try:
        calls = read_calls(db, period, "loneliness")
    finally:
        db.close()
    callers = sim.arrivals(calls, random.Random(1))
    roster = bench_roster(per_team, first - dt.timedelta(days=1))
    config = ring_group_config(Settings())
    t0 = time.monotonic()
    result = sim.simulate(callers, roster, config, period.start, period.end)
    took = time.monotonic() - t0
    s = sim.summary(result)
    speed = days / took
    print(
        f"report-bench: simulation: {days} days, {len(result)} calls, {per_team} counselors on"
        f" shift, simulated SL 20 s {s['service_level_20s']:.3f}, in {took:.1f} s ="
        f" {speed:.1f} simulated days/s"
    )
    return speed


if __name__ == "__main__":
    sys.exit(main())
