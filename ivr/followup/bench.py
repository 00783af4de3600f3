"""``followup-bench``: what one planning cycle of the follow-up dialler costs with a large
worklist, and how big the database gets per 100,000 tasks.

A fresh database (a temporary directory) is filled with ``--tasks`` open tasks (default
100,000) in a realistic mix: callbacks and welfare checks of the counselors mostly overdue (a
backlog), in-depth calls due within a day, monitoring calls over the next two weeks, companion
series calls over the next week, each fixed to one of the 20 companions. Numbers are sealed as
in production; one task in a hundred is locked by a dialler, one citizen in fifty opted out
(their tasks still open, so the query's opt-out filter is exercised), one task in five has a
note. Then ``--cycles`` cycles run (with the backlog due, and again at a time when hardly
anything is due yet), each the cycle the dialler runs on every tick:
`FollowupRecords.due` for each team (and once per free companion, for the tasks fixed to
them), then `planner.plan`. Reported: p50/p95/max per cycle (target: under 10 ms), the
planner's own share, and the database's size per 100,000 tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ivr.config import Settings
from ivr.configs import followup_config
from ivr.crypto import Sealer
from ivr.followup.model import PRIORITY, TEAM_OF, FollowupConfig, Task, TaskType, Team
from ivr.followup.planner import Plan, TeamView, plan
from ivr.followup.records import FollowupRecords
from ivr.store import Store
from ivr.timezone import SEOUL
from speech.bench import machine

#: A weekday afternoon in Seoul: within the calling hours, every team plans.
NOW = dt.datetime(2025, 12, 2, 14, 0, tzinfo=SEOUL).timestamp()
DAY = 86400.0
#: type -> (share of the tasks, due from, due to) in seconds around NOW.
MIX: dict[TaskType, tuple[float, float, float]] = {
    TaskType.CALLBACK: (0.25, -3 * DAY, 600.0),
    TaskType.WELFARE: (0.05, -2 * DAY, 600.0),
    TaskType.IN_DEPTH: (0.15, -DAY, DAY),
    TaskType.MONITORING: (0.30, -DAY, 14 * DAY),
    TaskType.COMPANION: (0.25, -DAY, 7 * DAY),
}
MEMBERS: dict[Team, tuple[str, ...]] = {
    Team.COUNSELORS: tuple(f"counselor{i:02d}" for i in range(1, 11)),
    Team.SOCIAL_WORKERS: tuple(f"social{i:02d}" for i in range(1, 5)),
    Team.COMPANIONS: tuple(f"companion{i:02d}" for i in range(1, 21)),
}
#: The cycles are timed twice: at NOW, with a backlog of overdue tasks (the reads stop after
#: CANDIDATES rows), and three days earlier, when hardly anything is due yet (the reads must
#: not wade through the tasks due later).
SCENARIOS = (
    ("a backlog due (due reads for every team + plan)", NOW),
    ("hardly anything due yet", NOW - 3 * DAY),
)
#: How many due tasks the dialler reads per team and cycle (a few more than free members).
CANDIDATES = 20

_INSERT = (
    "INSERT INTO followup_tasks (type, team, caller_hash, number_sealed, sealed_for,"
    " created_at, due_at, priority, member, call_id, requested_by, note, locked_by,"
    " locked_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def fill(store: Store, tasks: int, seed: int = 120) -> None:
    """`tasks` open tasks and the opt-outs of one citizen in fifty."""
    rnd = random.Random(seed)
    sealer = Sealer(Sealer.new_key())
    citizens = [f"{rnd.getrandbits(80):020x}" for _ in range(max(1, tasks * 6 // 10))]
    types = list(MIX)
    weights = [MIX[t][0] for t in types]
    rows = []
    for i in range(tasks):
        type_ = rnd.choices(types, weights)[0]
        _, lo, hi = MIX[type_]
        citizen = rnd.choice(citizens)
        purpose = f"citizen:{citizen}"
        number = f"010{rnd.randrange(10**8):08d}"
        due = NOW + rnd.uniform(lo, hi)
        member = rnd.choice(MEMBERS[Team.COMPANIONS]) if type_ is TaskType.COMPANION else None
        locked = rnd.random() < 0.01
        rows.append(
            (
                type_.value,
                TEAM_OF[type_].value,
                citizen,
                sealer.seal(number, purpose),
                purpose,
                min(due, NOW) - rnd.uniform(0, DAY),
                due,
                PRIORITY[type_],
                member,
                f"{1_764_000_000 + i}.{rnd.randrange(1000)}",
                "caller" if type_ is TaskType.CALLBACK else "counselor01",
                "지난 통화에서 병원 이야기를 하셨습니다" if rnd.random() < 0.2 else None,
                "bench-run" if locked else None,
                NOW + 300 if locked else None,
            )
        )
    optouts = [(c, NOW - DAY, None, "key") for c in citizens if rnd.random() < 0.02]

    async def insert(db: object) -> None:
        await db.executemany(_INSERT, rows)  # type: ignore[attr-defined]
        await db.executemany(  # type: ignore[attr-defined]
            "INSERT OR IGNORE INTO followup_optouts (caller_hash, at, call_id, via)"
            " VALUES (?, ?, ?, ?)",
            optouts,
        )

    await store.atomically(insert)
    await store.fetch("PRAGMA wal_checkpoint(TRUNCATE)")


def views(rnd: random.Random) -> dict[Team, TeamView]:
    """A busy afternoon: a few members of each team free, most present, nobody waiting."""
    result = {}
    for team, members in MEMBERS.items():
        present = [m for m in members if rnd.random() < 0.8]
        free = [m for m in present if rnd.random() < 0.3]
        result[team] = TeamView(tuple(free), frozenset(present), 0)
    return result


async def candidates(
    records: FollowupRecords, teams: Mapping[Team, TeamView], now: float
) -> dict[Team, list[Task]]:
    """Each team's due tasks, as the dialler reads them; for companions also the tasks fixed
    to each free one (the team's first rows may all be other companions')."""
    result: dict[Team, list[Task]] = {}
    for team, view in teams.items():
        tasks = await records.due(team, now, CANDIDATES)
        if team is Team.COMPANIONS:
            seen = {t.id for t in tasks}
            for member in view.free:
                for t in await records.due(team, now, 1, member=member):
                    if t.id not in seen:
                        tasks.append(t)
                        seen.add(t.id)
        result[team] = tasks
    return result


async def cycle(
    records: FollowupRecords, teams: Mapping[Team, TeamView], now: float, config: FollowupConfig
) -> tuple[Plan, float]:
    """One dialler cycle: (the plan, the seconds `plan` itself took)."""
    found = await candidates(records, teams, now)
    t0 = time.perf_counter()
    result = plan(teams, found, frozenset(), now, config)
    return result, time.perf_counter() - t0


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[int(round(0.95 * (len(ordered) - 1)))]


def _ms(values: Sequence[float]) -> str:
    return (
        f"p50 {statistics.median(values) * 1000:.2f} ms, p95 {_p95(values) * 1000:.2f} ms, "
        f"max {max(values) * 1000:.2f} ms"
    )


async def run(tasks: int, cycles: int, directory: Path) -> None:
    path = directory / "bench.sqlite3"
    store = await Store.open(path)
    try:
        t0 = time.monotonic()
        await fill(store, tasks)
        filled = time.monotonic() - t0
        size = path.stat().st_size
        print(
            f"database: {tasks} open tasks written in {filled:.1f} s; "
            f"{size / 1e6:.1f} MB, {size / tasks * 100_000 / 1e6:.1f} MB per 100,000 tasks"
        )
        records = FollowupRecords(store)
        config = followup_config(Settings())
        worst = 0.0
        for label, start in SCENARIOS:
            rnd = random.Random(7)
            totals, cpu, planning, offers = [], [], [], 0
            for i in range(cycles):
                teams = views(rnd)
                now = start + i  # a tick a second
                t0, c0 = time.perf_counter(), time.process_time()
                result, planned = await cycle(records, teams, now, config)
                totals.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                planning.append(planned)
                offers += len(result.offers)
            print(f"cycle, {label}, {cycles} cycles: {_ms(totals)}")
            print(f"  CPU (both threads, unaffected by other processes): {_ms(cpu)}")
            print(f"  of which plan: {_ms(planning)}; {offers / cycles:.1f} offers per cycle")
            worst = max(worst, _p95(totals))
        verdict = "met" if worst < 0.010 else "MISSED"
        print(f"target under 10 ms per cycle (p95, the worse case): {verdict}")
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="followup-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000, help="open tasks to fill in")
    parser.add_argument("--cycles", type=int, default=200, help="planning cycles to time")
    args = parser.parse_args(argv)
    print(f"followup-bench: {machine()}, SQLite {_sqlite_version()}")
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="followup-bench-") as tmp:
        asyncio.run(run(args.tasks, args.cycles, Path(tmp)))
    sys.stdout.flush()
    return 0


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    raise SystemExit(main())
