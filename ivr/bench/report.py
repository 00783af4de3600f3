"""What one step of `ivr-bench load` measured, and the table printed for it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.bench.wallboard import BoardLatency

DASH = "—"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100, nearest rank) or None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class StepResult:
    """One system (product or native) at one step."""

    system: str
    calls: int
    ok: int
    failed: int
    queued: int
    concurrent: int
    setup_rate: float | None
    #: CPU seconds of Asterisk, and of the controller with its helper processes (None: native).
    cpu_pbx: float
    cpu_ctl: float | None
    rss_pbx_kb: int
    rss_ctl_kb: int | None
    #: /health latencies in seconds (empty for the native baseline), and failed polls.
    health: tuple[float, ...]
    health_errors: int
    seconds: float
    #: Product: call records not complete RECORDS_WAIT after the step (their queued_at is
    #: written at the end of the call, so "reached the queue" cannot count them yet).
    records_open: int | None = None
    #: Calls answered (200 OK) within SIPp's 30 s.
    answered: int = 0
    #: The most file descriptors open at once (sockets included).
    fds_pbx: int = 0
    fds_ctl: int | None = None
    #: Seconds from the 200 OK to the greeting's first audio, and from key 5 to the intro's,
    #: per call where the capture found them (None: not captured).
    greeting: tuple[float, ...] | None = None
    dtmf: tuple[float, ...] | None = None
    #: Caller queued → on the wallboard screens (product only; None: no screens).
    board: BoardLatency | None = None

    def per_call_ms(self, cpu: float | None) -> float | None:
        return None if cpu is None or not self.calls else cpu * 1000 / self.calls

    @property
    def cpu_total(self) -> float:
        return self.cpu_pbx + (self.cpu_ctl or 0.0)


def _n(v: float | None, fmt: str = "{:.0f}") -> str:
    return DASH if v is None else fmt.format(v)


def _mb(kb: int | None) -> str:
    return DASH if kb is None else f"{kb / 1024:.0f}"


def _health(r: StepResult | None) -> str:
    if r is None or (not r.health and not r.health_errors):
        return DASH
    p50, p95 = percentile(r.health, 50), percentile(r.health, 95)
    text = f"{_n(p50 and p50 * 1000, '{:.1f}')} / {_n(p95 and p95 * 1000, '{:.1f}')}"
    if r.health_errors:
        text += f" ({r.health_errors} failed)"
    return text


def _latency(values: tuple[float, ...] | None, calls: int) -> str:
    if values is None:
        return DASH
    if not values:
        return f"none found of {calls}"
    p50, p95 = percentile(values, 50), percentile(values, 95)
    text = f"{_n(p50 and p50 * 1000)} / {_n(p95 and p95 * 1000)}"
    if len(values) < calls:
        text += f" ({len(values)} of {calls} found)"
    return text


def _board(r: StepResult) -> str:
    b = r.board
    if b is None:
        return DASH
    if not b.seconds:
        return f"none shown of {b.arrivals} × {b.screens}"
    p50, p95 = percentile(b.seconds, 50), percentile(b.seconds, 95)
    text = f"{_n(p50 and p50 * 1000)} / {_n(p95 and p95 * 1000)} ({b.arrivals} × {b.screens})"
    if b.missed:
        text += f", {b.missed} never shown"
    return text


def step_table(
    step: int, callers: int, rate: float, hold: float, p: StepResult | None, n: StepResult | None
) -> str:
    """The table of one step: a row per measure, a column per system and their ratio."""

    def both(f: Callable[[StepResult], str]) -> tuple[str, str]:
        return (f(p) if p else DASH), (f(n) if n else DASH)

    def ratio(a: float | None, b: float | None) -> str:
        return DASH if a is None or not b else f"{a / b:.1f}×"

    rows: list[tuple[str, str, str, str]] = []

    def row(label: str, f: Callable[[StepResult], str], r: str = "") -> None:
        rows.append((label, *both(f), r))

    row("calls ok / failed", lambda r: f"{r.ok} / {r.failed}")
    row("answered (200 OK in 30 s)", lambda r: f"{r.answered} / {r.calls}")
    row("reached the queue", lambda r: f"{r.queued} / {r.calls}")
    row("call records not complete", lambda r: _n(r.records_open))
    row("most calls up at once", lambda r: str(r.concurrent))
    row("set-up rate (calls/s)", lambda r: _n(r.setup_rate, "{:.1f}"))
    row("CPU ms/call Asterisk", lambda r: _n(r.per_call_ms(r.cpu_pbx)))
    row("CPU ms/call controller", lambda r: _n(r.per_call_ms(r.cpu_ctl)))
    total_p = p.per_call_ms(p.cpu_total) if p else None
    total_n = n.per_call_ms(n.cpu_total) if n else None
    row("CPU ms/call total", lambda r: _n(r.per_call_ms(r.cpu_total)), ratio(total_p, total_n))
    row("peak RSS Asterisk (MB)", lambda r: _mb(r.rss_pbx_kb))
    row("peak RSS controller (MB)", lambda r: _mb(r.rss_ctl_kb))
    row("peak open files Asterisk", lambda r: str(r.fds_pbx))
    row("peak open files controller", lambda r: _n(r.fds_ctl))
    row("greeting after 200 OK p50 / p95 (ms)", lambda r: _latency(r.greeting, r.ok + r.failed))
    row("key 5 (end) to intro p50 / p95 (ms)", lambda r: _latency(r.dtmf, r.ok + r.failed))
    row("/health p50 / p95 (ms)", _health)
    row("queued to wallboard p50 / p95 (ms)", _board)
    row("step duration (s)", lambda r: f"{r.seconds:.0f}")
    head = ("", "product", "native", "product/native")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(4)]
    lines = [f"step {step}: {callers} callers, {rate:g} new calls/s, {hold:g} s in the queue"]
    for r in (head, *rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)
