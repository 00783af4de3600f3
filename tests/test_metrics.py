"""The live gauges of /metrics (ivr/metrics.py), read back with the Prometheus client's own
parser: a snapshot of real flows and a real ring group, the families it gives, the follow-up
tasks due counted in a real SQLite store, and the collector served from a registry."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ivr.followup.model import Status, TaskType
from ivr.followup.records import FollowupRecords
from ivr.metrics import LiveCollector, Snapshot, families, followups_due, snapshot
from ivr.store import Store
from speech.pool import RecognizerPool
from tests import flow_support as fs
from tests.ringgroup_support import group

NOW = 1_764_000_000.0


def parsed(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, parsed by prometheus_client's parser."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if not s.name.endswith("_created")
    }


def served(s: Snapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    collector = LiveCollector()
    collector.latest = s
    registry = CollectorRegistry()
    registry.register(collector)
    return parsed(registry)


def _controller(flows: dict[str, Any], waiting: list[str]) -> Any:
    pool = RecognizerPool(None, capacity=0)  # the callers' recognizers: none free
    pool.refused()  # one utterance answered with keys
    g = group()
    for call_id in waiting:
        g.enqueue(call_id, flows[call_id].record.queued_at)
    calls = {cid: SimpleNamespace(flow=f) for cid, f in flows.items()}
    members = [
        {"member": "k1", "team": "counselors", "state": "idle"},
        {"member": "k2", "team": "counselors", "state": "busy"},
        {"member": "k2", "team": "counselors", "state": "busy"},  # in two queues: once
        {"member": "s1", "team": "social_workers", "state": "paused"},
    ]
    return SimpleNamespace(
        calls=calls,
        staff=SimpleNamespace(groups={"loneliness": g}),
        members=lambda: members,
        ctx=SimpleNamespace(tallies=Counter({"bookkeeping": 2})),
        journey=SimpleNamespace(recognizers=pool),
        backlog=lambda: (7, 3),
    )


def test_a_snapshot_counts_calls_by_stage_the_queue_and_the_longest_wait() -> None:
    # Queued at 2.0 (the choice of the line): one in the consent question, one waiting.
    flows: dict[str, Any] = {
        "a": fs.menu_waiting(),
        "b": fs.consent_asked()[0],
        "c": fs.waiting(),
        "d": fs.connected(),
    }
    flows["c"].record.queued_at = 5.0
    ctl = _controller(flows, waiting=["b", "c"])
    s = snapshot(ctl, SimpleNamespace(connects=3), {"counselors": 4}, now=12.5)
    got = served(s)

    calls = {k[1]: v for k, v in got.items() if k[0] == "ivr120_calls"}
    assert calls == {
        (("journey", "inbound"), ("stage", "menu")): 1,
        (("journey", "inbound"), ("stage", "consent")): 1,
        (("journey", "inbound"), ("stage", "queue")): 1,
        (("journey", "inbound"), ("stage", "staff")): 1,
    }
    assert got["ivr120_queue_length", (("queue", "loneliness"),)] == 2
    assert got["ivr120_queue_longest_wait_seconds", (("queue", "loneliness"),)] == 10.5
    assert got["ivr120_counselors", (("state", "idle"), ("team", "counselors"))] == 1
    assert got["ivr120_counselors", (("state", "busy"), ("team", "counselors"))] == 1
    assert got["ivr120_counselors", (("state", "paused"), ("team", "social_workers"))] == 1
    assert got["ivr120_counselors", (("state", "ringing"), ("team", "counselors"))] == 0
    assert got["ivr120_followups_due", (("team", "counselors"),)] == 4
    assert got["ivr120_followups_due", (("team", "companions"),)] == 0
    assert got["ivr120_errors_total", (("where", "bookkeeping"),)] == 2
    assert got["ivr120_errors_total", (("where", "controller"),)] == 0
    assert got["ivr120_ari_reconnects_total", ()] == 2
    assert got["ivr120_speech_fallback_total", ()] == 1
    assert got["ivr120_controller_inputs_waiting", ()] == 7
    assert got["ivr120_controller_lanes_busy", ()] == 3


def test_nobody_waiting_is_a_queue_of_zero_with_no_wait() -> None:
    ctl = _controller({"d": fs.connected()}, waiting=[])
    got = served(snapshot(ctl, None, None, now=50.0))
    assert got["ivr120_queue_length", (("queue", "loneliness"),)] == 0
    assert got["ivr120_queue_longest_wait_seconds", (("queue", "loneliness"),)] == 0
    # The database could not be read: the family is left out, the scrape still answers.
    assert not any(k[0] == "ivr120_followups_due" for k in got)
    assert got["ivr120_ari_reconnects_total", ()] == 0


def test_before_the_controller_runs_the_counters_are_zero() -> None:
    got = served(snapshot(None, None, None, now=0.0))
    assert got["ivr120_speech_fallback_total", ()] == 0
    assert {k[1] for k in got if k[0] == "ivr120_errors_total"} == {
        (("where", w),) for w in ("controller", "command", "bookkeeping")
    }
    assert not any(k[0] == "ivr120_calls" for k in got)


def test_families_are_gauges_and_counters_as_prometheus_reads_them() -> None:
    kinds = {f.name: f.type for f in families(Snapshot(followups_due={}))}
    assert kinds["ivr120_queue_length"] == "gauge"
    assert kinds["ivr120_errors"] == "counter"
    assert kinds["ivr120_speech_fallback"] == "counter"
    helps = {f.name: f.documentation for f in families(Snapshot(followups_due={}))}
    # One per utterance refused (not per call moved to the key menu).
    assert "utterances" in helps["ivr120_speech_fallback"]
    assert "calls" not in helps["ivr120_speech_fallback"].lower()


async def test_followups_due_counts_open_tasks_due_now_by_team(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        records = FollowupRecords(store)
        await records.add_or_merge(TaskType.CALLBACK, "a", None, None, NOW, NOW - 10)
        await records.add_or_merge(TaskType.CALLBACK, "b", None, None, NOW, NOW)
        await records.add_or_merge(TaskType.CALLBACK, "c", None, None, NOW, NOW + 100)
        await records.add_or_merge(TaskType.IN_DEPTH, "a", None, None, NOW, NOW - 1)
        done, _ = await records.add_or_merge(TaskType.CALLBACK, "d", None, None, NOW, NOW - 5)
        await records.close(done, Status.DONE, "reached", NOW, "k1")
        assert await followups_due(store, NOW) == {"counselors": 2, "social_workers": 1}
    finally:
        await store.close()
    # A closed store: None (the family is left out), no exception.
    assert await followups_due(store, NOW) is None


def test_chats_are_counted_by_step_every_step_shown() -> None:
    got = served(
        snapshot(None, None, None, now=0.0, chat_steps=["waiting", "waiting", "connected"])
    )
    assert got["ivr120_chats", (("step", "waiting"),)] == 2
    assert got["ivr120_chats", (("step", "connected"),)] == 1
    assert got["ivr120_chats", (("step", "guide"),)] == 0
