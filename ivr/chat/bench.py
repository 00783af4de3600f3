"""``python -m ivr.chat.bench``: how fast a citizen's chat message reaches the counselor's desk
with many chats open.

The desk's own site is served on a free loopback port over a fresh store (its chat room as in
the product; the counselors' ring group is a real :class:`~ivr.staff.ringgroup.RingGroup`
built from the default settings). ``--desks`` counselors sign in over HTTP and keep their
``/desk/chats/events`` stream open, accepting every offer; ``--chats`` citizens open
``/chat``, ask for a counselor (consent yes: every message is sealed and stored), keep their
own stream open and, once all are connected, each sends ``--messages`` messages (one every
~2 s, spread out). Reported: the time from a citizen's POST to the line's arrival on the
counselor's stream (p50/p95/max; target p95 < 200 ms) and the process's CPU per chat and per
message. The simulated clients run in the same process, so the CPU includes theirs: an upper
bound for the desk's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from ivr.chat.http import SERVICE
from ivr.config import load_settings
from ivr.configs import ring_group_config
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.pbx.secrets import load_or_create
from ivr.staff.ringgroup import RingGroup
from ivr.store import Store
from ivr.web.auth import hash_password
from ivr.web.site import DESK_APP, desk_ctx

PASSWORD = "chat-bench-password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
DESK_CSRF = re.compile(r'data-csrf="([^"]+)"')


class BenchQueue:
    """The counselors' ring group (the controller's, in the product)."""

    def __init__(self, group: RingGroup) -> None:
        self.ring_group = group

    def group(self) -> RingGroup | None:
        return self.ring_group

    def on_shift(self, group: RingGroup, now: float) -> frozenset[str] | None:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _events(resp: aiohttp.ClientResponse) -> Any:
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            yield json.loads(line[6:])


class Counselor:
    def __init__(self, base: str, member: str, seen: dict[str, float]) -> None:
        self.base, self.member, self.seen = base, member, seen
        self.http = _session()
        self.csrf = ""

    async def sign_in(self) -> None:
        async with self.http.get(f"{self.base}/signin") as r:
            token = CSRF.search(await r.text())
        assert token, "no CSRF token on the sign-in page"
        form = {"member": self.member, "password": PASSWORD, "csrf": token[1], "next": ""}
        async with self.http.post(f"{self.base}/signin", data=form, allow_redirects=False) as r:
            assert r.status == 303, f"{self.member}: sign-in answered {r.status}"
        async with self.http.get(f"{self.base}/desk/chats") as r:
            found = DESK_CSRF.search(await r.text())
        assert found, "no CSRF token on the desk"
        self.csrf = found[1]

    async def work(self, ready: asyncio.Event) -> None:
        accepted: set[str] = set()
        async with self.http.get(f"{self.base}/desk/chats/events", timeout=None) as resp:
            ready.set()
            async for view in _events(resp):
                now = time.perf_counter()
                for chat in view["chats"]:
                    for line in chat["lines"]:
                        self.seen.setdefault(line["text"], now)
                for offer in view["offers"]:
                    if offer["chat_id"] not in accepted:
                        accepted.add(offer["chat_id"])
                        await self.http.post(
                            f"{self.base}/desk/chats/{offer['chat_id']}/accept",
                            data={"csrf": self.csrf},
                            headers={"Accept": "application/json"},
                        )


class Citizen:
    def __init__(self, base: str, n: int) -> None:
        self.base, self.n = base, n
        self.http = _session()
        self.csrf = ""
        self.step = ""

    async def start(self) -> None:
        async with self.http.get(f"{self.base}/chat") as r:
            token = CSRF.search(await r.text())
        assert token
        self.csrf = token[1]
        for path, form in (("choose", {"option": "chat"}), ("consent", {"answer": "yes"})):
            data = {**form, "csrf": self.csrf}
            async with self.http.post(f"{self.base}/chat/{path}", data=data) as r:
                assert r.status == 200, f"citizen {self.n}: {path} answered {r.status}"

    async def follow(self) -> None:
        async with self.http.get(f"{self.base}/chat/events", timeout=None) as resp:
            async for view in _events(resp):
                self.step = view["step"]

    async def say(self, text: str) -> float:
        t0 = time.perf_counter()
        async with self.http.post(
            f"{self.base}/chat/say",
            data={"text": text, "csrf": self.csrf},
            headers={"Accept": "application/json"},
        ) as r:
            answer = await r.json()
        assert answer["ok"], answer
        return t0


async def bench(chats: int, desks: int, messages: int) -> dict[str, Any]:
    per = max(1, -(-chats // desks))
    names = [f"counselor{i:03d}" for i in range(1, desks + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            env={},
            overrides={
                "state_dir": Path(tmp) / "state",
                "desk_port": _free_port(),
                "counselors": ",".join(names),
                "chats_per_counselor": per,
                # Every simulated citizen comes from 127.0.0.1: one address's limits are
                # everybody's here (ivr.chat.limits), so they are as large as the run.
                "chat_starts_per_address": max(chats, 1),
                "chat_starts_total": max(chats, 1),
                "chat_max_live": max(chats, 1),
                "chat_streams_per_address": max(chats, 1),
                "chat_streams_total": max(chats, 1),
            },
        )
        main = web.Application()
        main[SETTINGS] = settings
        main[SECRETS] = load_or_create(settings.state_dir / "secrets.json", names)
        store = main[STORE] = await Store.open(settings.state_path(settings.database))
        hashed = hash_password(PASSWORD)
        for m in names:
            await store.change(
                "INSERT INTO desk_passwords (member, hash, set_at, set_by)"
                " VALUES (?, ?, 0, 'bench')",
                (m, hashed),
            )
        serving = desk_ctx(main)
        await serving.__anext__()
        service = main[DESK_APP][SERVICE]
        service.counselors = BenchQueue(RingGroup("bench", names, ring_group_config(settings)))
        base = f"http://127.0.0.1:{settings.desk_port}"
        seen: dict[str, float] = {}
        counselors = [Counselor(base, m, seen) for m in names]
        citizens = [Citizen(base, n) for n in range(chats)]
        tasks: list[asyncio.Task[None]] = []
        try:
            for c in counselors:
                await c.sign_in()
            readies = [asyncio.Event() for _ in counselors]
            tasks += [
                asyncio.create_task(c.work(r)) for c, r in zip(counselors, readies, strict=True)
            ]
            for r in readies:
                await r.wait()
            t_start = time.perf_counter()
            await asyncio.gather(*(c.start() for c in citizens))
            tasks += [asyncio.create_task(c.follow()) for c in citizens]
            deadline = time.monotonic() + 120
            while not all(c.step == "connected" for c in citizens):
                if time.monotonic() > deadline:
                    raise RuntimeError("not every chat was taken within 120 s")
                await asyncio.sleep(0.1)
            connect_all = time.perf_counter() - t_start
            cpu0 = time.process_time()
            sent: dict[str, float] = {}

            async def talk(c: Citizen) -> None:
                await asyncio.sleep(2.0 * c.n / chats)  # spread out
                for k in range(messages):
                    text = f"bench {c.n} {k}"
                    sent[text] = await c.say(text)
                    await asyncio.sleep(2.0)

            t0 = time.perf_counter()
            await asyncio.gather(*(talk(c) for c in citizens))
            deadline = time.monotonic() + 30
            while len([t for t in sent if t in seen]) < len(sent):
                if time.monotonic() > deadline:
                    raise RuntimeError("messages did not all reach the desk within 30 s")
                await asyncio.sleep(0.05)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for http in [c.http for c in counselors] + [c.http for c in citizens]:
                await http.close()
            try:
                await serving.__anext__()
            except StopAsyncIteration:
                pass
            await store.close()
    latencies = sorted((seen[t] - sent[t]) * 1000 for t in sent)
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    return {
        "chats": chats,
        "desks": desks,
        "messages": len(latencies),
        "all_connected_s": round(connect_all, 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(latencies[-1], 1),
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "cpu_ms_per_message": round(1000 * cpu / len(latencies), 2),
        "cpu_share_per_chat": round(cpu / wall / chats, 5),
    }


def main(argv: Sequence[str] | None = None) -> int:
    from speech.bench import machine

    parser = argparse.ArgumentParser(prog="chat-bench", description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--desks", type=int, default=50)
    parser.add_argument("--messages", type=int, default=5, help="messages per citizen")
    args = parser.parse_args(argv)
    r = asyncio.run(bench(args.chats, args.desks, args.messages))
    print(f"chat-bench: {machine()}")
    print(
        f"chat-bench: {r['chats']} chats, {r['desks']} desks open; all taken in "
        f"{r['all_connected_s']} s"
    )
    print(
        f"chat-bench: citizen message -> desk, {r['messages']} messages: p50 {r['p50_ms']} ms,"
        f" p95 {r['p95_ms']} ms (target < 200), max {r['max_ms']} ms"
    )
    print(
        f"chat-bench: CPU {r['cpu_ms_per_message']} ms per message, "
        f"{100 * r['cpu_share_per_chat']:.3f}% of a core per chat talking every 2 s"
        " (clients included)"
    )
    print("chat-bench: " + json.dumps(r, sort_keys=True))
    return 0 if r["p95_ms"] < 200 else 1


if __name__ == "__main__":
    sys.exit(main())
