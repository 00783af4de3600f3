"""The live gauges of `/metrics`: what the controller holds, read when Prometheus scrapes.

A custom `prometheus_client` collector: nothing is updated as calls move, the numbers are
taken from the controller's own state at scrape time (one `Snapshot`), and the open follow-up
tasks due now are counted in the database just before. The families (all prefixed `ivr120_`):

- `calls{journey,stage}`: calls in progress; inbound by journey stage (menu, intro, consent,
  queue, staff, goodbye), follow-up calls by their state;
- `queue_length{queue}`, `queue_longest_wait_seconds{queue}`: callers waiting for a counselor
  (the ring group's list: from the choice of the line, intro and consent included, as the
  report's waits) and the longest of their waits so far;
- `counselors{team,state}`: staff members by state (idle, ringing, busy, wrapup, cooldown,
  paused, logged_out), each member once per team;
- `followups_due{team}`: open follow-up tasks due now;
- `chats{step}`: text chats held now by the chat service (ivr/chat), by step (guide, info,
  consent, waiting for a counselor, connected, ended but still shown to the citizen);
- `errors_total{where}`: unexpected errors handled (`controller`: an input the loop could not
  handle; `command`: a call command that failed and ended the call; `bookkeeping`: a record
  that could not be written, each attempt);
- `ari_reconnects_total`: ARI websocket connections after the first;
- `controller_inputs_waiting`, `controller_lanes_busy`: the controller's inputs (ARI events,
  timers, audio events) taken and not started yet, and the calls with an input in progress now
  (ivr.lanes); a waiting count that keeps growing is a controller falling behind;
- `speech_fallback_total`: callers' utterances not recognised because every recognizer was
  busy, one per utterance (the caller answers that question with keys; the callers'
  recognizer pool's count, `speech.pool.RecognizerPool.fallbacks`).

The process counts (restarts, up, ARI connected, calls active) stay in ivr/supervise.py.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ivr.chat.journey import Step as ChatStep
from ivr.flow.call import CallFlow
from ivr.flow.states import STAGE_OF
from ivr.followup.model import Team
from ivr.staff.members import Activity

log = logging.getLogger(__name__)

#: The error places counted (`CallContext.tallies` keys), always shown (0 until one happens).
ERROR_PLACES = ("controller", "command", "bookkeeping")
SPEECH_FALLBACK = "speech_fallback"


@dataclass(frozen=True)
class Snapshot:
    """The live numbers at one moment."""

    calls: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (journey, stage)
    queues: Mapping[str, tuple[int, float]] = field(default_factory=dict)  # length, longest
    counselors: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (team, state)
    followups_due: Mapping[str, int] | None = None  # None: the database could not be read
    tallies: Mapping[str, int] = field(default_factory=dict)
    ari_reconnects: int = 0
    chats: Mapping[str, int] = field(default_factory=dict)  # step -> chats
    backlog: tuple[int, int] = (0, 0)  # inputs waiting, lanes busy (Controller.backlog)


def snapshot(
    controller: Any,
    ari: Any,
    due: Mapping[str, int] | None,
    now: float,
    chat_steps: Iterable[str] = (),
) -> Snapshot:
    """Read the controller (`ivr.controller.Controller`, or None before it runs) without
    awaiting anything, so the numbers are of one moment of the loop. `chat_steps`: the step
    of each chat the chat service holds now."""
    reconnects = max(0, getattr(ari, "connects", 0) - 1) if ari is not None else 0
    chats = dict(Counter(chat_steps))
    if controller is None:
        return Snapshot(followups_due=due, ari_reconnects=reconnects, chats=chats)
    calls: Counter[tuple[str, str]] = Counter()
    for call in controller.calls.values():
        journey = call.flow
        if isinstance(journey, CallFlow):
            stage = STAGE_OF.get(journey.state)
            calls["inbound", stage.value if stage is not None else "ended"] += 1
        else:
            calls["followup", journey.state.value] += 1
    queues = {}
    for name, group in controller.staff.groups.items():
        waits = [
            now - queued
            for call_id in group.waiting
            if (c := controller.calls.get(call_id)) is not None
            and (queued := c.flow.record.queued_at) is not None
        ]
        queues[name] = (len(group.waiting), max(waits, default=0.0))
    seen: set[tuple[str, str]] = set()
    counselors: Counter[tuple[str, str]] = Counter()
    for m in controller.members():
        team = m["team"] or "counselors"
        if (team, m["member"]) not in seen:
            seen.add((team, m["member"]))
            counselors[team, m["state"]] += 1
    return Snapshot(
        calls=calls,
        queues=queues,
        counselors=counselors,
        followups_due=due,
        tallies={**controller.ctx.tallies, SPEECH_FALLBACK: _fallbacks(controller)},
        ari_reconnects=reconnects,
        chats=chats,
        backlog=controller.backlog(),
    )


def _fallbacks(controller: Any) -> int:
    """Utterances answered with keys because every recognizer was busy (0 without speech)."""
    pool = controller.journey.recognizers
    return pool.fallbacks if pool is not None else 0


def families(s: Snapshot) -> list[Metric]:
    """The Prometheus families of one snapshot (pure)."""
    calls = GaugeMetricFamily(
        "ivr120_calls", "Calls in progress by journey and stage", labels=["journey", "stage"]
    )
    for (journey, stage), n in sorted(s.calls.items()):
        calls.add_metric([journey, stage], n)
    length = GaugeMetricFamily(
        "ivr120_queue_length", "Callers waiting for a counselor", labels=["queue"]
    )
    longest = GaugeMetricFamily(
        "ivr120_queue_longest_wait_seconds",
        "The longest wait so far of the callers waiting (0 when nobody waits)",
        labels=["queue"],
    )
    for name, (n, wait) in sorted(s.queues.items()):
        length.add_metric([name], n)
        longest.add_metric([name], round(wait, 3))
    counselors = GaugeMetricFamily(
        "ivr120_counselors", "Staff members by team and state", labels=["team", "state"]
    )
    teams = sorted({team for team, _ in s.counselors})
    for team in teams:
        for state in Activity:
            counselors.add_metric([team, state.value], s.counselors.get((team, state.value), 0))
    chats = GaugeMetricFamily("ivr120_chats", "Text chats held now, by step", labels=["step"])
    for step in ChatStep:
        chats.add_metric([step.value], s.chats.get(step.value, 0))
    out: list[Metric] = [calls, length, longest, counselors, chats]
    if s.followups_due is not None:
        due = GaugeMetricFamily(
            "ivr120_followups_due", "Open follow-up tasks due now", labels=["team"]
        )
        for team in Team:
            due.add_metric([team.value], s.followups_due.get(team.value, 0))
        out.append(due)
    errors = CounterMetricFamily(
        "ivr120_errors", "Unexpected errors handled, by where", labels=["where"]
    )
    for where in ERROR_PLACES:
        errors.add_metric([where], s.tallies.get(where, 0))
    reconnects = CounterMetricFamily(
        "ivr120_ari_reconnects", "ARI websocket connections after the first"
    )
    reconnects.add_metric([], s.ari_reconnects)
    fallback = CounterMetricFamily(
        "ivr120_speech_fallback",
        "Callers' utterances not recognised because every speech recognizer was busy",
    )
    fallback.add_metric([], s.tallies.get(SPEECH_FALLBACK, 0))
    waiting = GaugeMetricFamily(
        "ivr120_controller_inputs_waiting",
        "Controller inputs (ARI events, timers, audio events) taken and not started yet",
    )
    waiting.add_metric([], s.backlog[0])
    busy = GaugeMetricFamily(
        "ivr120_controller_lanes_busy", "Calls with a controller input in progress now"
    )
    busy.add_metric([], s.backlog[1])
    return [*out, errors, reconnects, fallback, waiting, busy]


async def followups_due(store: Any, now: float) -> dict[str, int] | None:
    """Open follow-up tasks due by `now`, by team (None, with a warning, if unreadable)."""
    sql = (
        "SELECT team, COUNT(*) FROM followup_tasks WHERE status='open' AND due_at<=? GROUP BY team"
    )
    try:
        rows: Iterable[tuple[Any, ...]] = await store.fetch(sql, (now,))
    except Exception as exc:  # a scrape never fails on the database: the family is left out
        log.warning("metrics: follow-up tasks could not be counted: %s", exc)
        return None
    return {str(team): int(n) for team, n in rows}


class LiveCollector(Collector):
    """Serves the last snapshot taken (`refresh` before each scrape)."""

    def __init__(self) -> None:
        self.latest = Snapshot()

    async def refresh(
        self, controller: Any, ari: Any, now: float, chat_steps: Iterable[str] = ()
    ) -> None:
        due = await followups_due(controller.store, now) if controller is not None else None
        self.latest = snapshot(controller, ari, due, now, chat_steps)

    def collect(self) -> Iterator[Metric]:
        yield from families(self.latest)
