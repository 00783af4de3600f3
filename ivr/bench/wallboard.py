"""Wallboard screens open on the product's desk during a step of `ivr-bench load`, and the time
from a caller entering the queue to the screens showing them.

`--wallboards` screens sign in to the product's desk as `supervisor01` (a desk password set
with `ivr-admin desk-password`, as an administrator would) and keep `/wallboard/events` open
for the whole step, each noting when every board arrived and how many callers it said were
waiting. After the step, the product's call records give each caller's `queued_at` (the
controller's clock when it put them in the queue: the DTMF → prompt latency in the step's
table covers the controller's own delay before that).

While nobody has left the queue yet, the number waiting only grows: the k-th caller to be
queued is on a screen at its first board with k or more waiting. The latency of the k-th
arrival is that board's arrival minus the k-th `queued_at`. Only arrivals before the step's
first departure from the queue (an answer or a hang-up) are counted, so every figure is exact,
and the count of them is printed with the figures.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from ivr.paths import PROJECT_ROOT

#: The member the screens sign in as (the default settings' supervisor).
MEMBER = "supervisor01"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def set_password(state_dir: Path, password: str) -> None:
    """`ivr-admin desk-password MEMBER`, the password on stdin, against the product's state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR120_")}
    env["IVR120_STATE_DIR"] = str(state_dir)
    subprocess.run(
        [sys.executable, "-m", "ivr.admin", "desk-password", MEMBER, "--by", "ivr-bench"],
        input=password + "\n", text=True, cwd=PROJECT_ROOT, env=env, check=True,
        capture_output=True,
    )  # fmt: skip


@dataclass
class Screen:
    """One signed-in wallboard: (arrival time, callers waiting) of every board it was sent."""

    base: str
    boards: list[tuple[float, int]] = field(default_factory=list)
    http: aiohttp.ClientSession = field(init=False)

    def __post_init__(self) -> None:
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(self, password: str) -> None:
        async with self.http.get(f"{self.base}/signin") as r:
            token = CSRF.search(await r.text())
        if token is None:
            raise RuntimeError("the desk's sign-in page has no CSRF token")
        form = {"member": MEMBER, "password": password, "csrf": token[1], "next": ""}
        async with self.http.post(f"{self.base}/signin", data=form, allow_redirects=False) as r:
            if r.status != 303:
                raise RuntimeError(f"the desk's sign-in answered {r.status}")

    async def watch(self, ready: asyncio.Event) -> None:
        async with self.http.get(f"{self.base}/wallboard/events", timeout=None) as resp:
            if resp.status != 200:
                raise RuntimeError(f"/wallboard/events answered {resp.status}")
            ready.set()
            async for raw in resp.content:
                if raw.startswith(b"data: "):
                    at = time.time()
                    self.boards.append((at, int(json.loads(raw[6:])["waiting"])))


@dataclass(frozen=True)
class BoardLatency:
    screens: int
    #: Seconds from the k-th `queued_at` to its first board, per screen and arrival.
    seconds: tuple[float, ...]
    #: Arrivals counted (before the first departure) and arrivals never shown on a screen.
    arrivals: int
    missed: int


def latencies(
    screens: list[list[tuple[float, int]]], queued: list[float], first_left: float | None
) -> BoardLatency:
    """The arrival → board latencies (module docstring): `queued` the step's `queued_at`s,
    `first_left` its first departure from the queue (None: nobody left)."""
    arrivals = sorted(q for q in queued if first_left is None or q < first_left)
    out: list[float] = []
    missed = 0
    for boards in screens:
        times = [at for at, _ in boards]
        for k, q in enumerate(arrivals, 1):
            i = bisect.bisect_left(times, q)
            shown = next((at for at, n in boards[i:] if n >= k), None)
            if shown is None:
                missed += 1
            else:
                out.append(shown - q)
    return BoardLatency(len(screens), tuple(out), len(arrivals), missed)


def queue_times(db: Path, since: float) -> tuple[list[float], float | None]:
    """The `queued_at` of the calls started since `since`, and the first departure from the
    queue among them (answered, else ended)."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as con:
        rows = con.execute(
            "SELECT queued_at, coalesce(answered_at, ended_at) FROM calls"
            " WHERE started_at >= ? AND queued_at IS NOT NULL",
            (since,),
        ).fetchall()
    left = [float(r[1]) for r in rows if r[1] is not None]
    return [float(r[0]) for r in rows], (min(left) if left else None)


class Wallboards:
    """`count` screens on the desk at `base`, open from `start` to `finish`; `db` the product's
    database (its call records)."""

    def __init__(self, base: str, count: int, password: str, db: Path) -> None:
        self.base, self.count, self.password, self.db = base, count, password, db
        self.screens: list[Screen] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.screens = [Screen(self.base) for _ in range(self.count)]
        for s in self.screens:  # one at a time: each sign-in runs scrypt on the desk
            await s.sign_in(self.password)
        readies = [asyncio.Event() for _ in self.screens]
        self.tasks = [
            asyncio.create_task(s.watch(r)) for s, r in zip(self.screens, readies, strict=True)
        ]
        waiting = [asyncio.create_task(r.wait()) for r in readies]
        done, _ = await asyncio.wait(
            [*waiting, *self.tasks], return_when=asyncio.FIRST_EXCEPTION, timeout=60
        )
        for t in done:
            if t in self.tasks and t.exception() is not None:
                raise RuntimeError("a wallboard screen failed") from t.exception()
        if not all(r.is_set() for r in readies):
            raise RuntimeError("the wallboard screens were not all open within 60 s")

    async def finish(self, since: float) -> BoardLatency:
        """Close the screens; the latencies of the calls started since `since` (their records
        complete)."""
        boards = [s.boards for s in self.screens]
        await self.close()
        queued, first_left = await asyncio.to_thread(queue_times, self.db, since)
        return latencies(boards, queued, first_left)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for s in self.screens:
            await s.http.close()
        self.screens, self.tasks = [], []
