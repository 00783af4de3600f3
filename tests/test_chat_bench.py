"""The chat benchmark (ivr.chat.bench) runs end to end at a small size: every message a
citizen sends reaches the counselor's desk stream, and the figures are reported."""

from __future__ import annotations

from ivr.chat.bench import bench


async def test_the_chat_bench_measures_every_message() -> None:
    r = await bench(chats=6, desks=2, messages=2)
    assert r["messages"] == 12
    assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"]
    assert r["cpu_ms_per_message"] > 0
