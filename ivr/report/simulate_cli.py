"""`ivr-report simulate`: what a candidate roster would have given over a recorded period.

    ivr-report simulate --from 2026-11-01 --to 2026-11-30 --roster candidate.toml
                        [--line loneliness] [--scale 1.0] [--seed 1] [--answer-seconds S]
                        [--no-answer SHARE] [--db PATH] [--lang ko|en]

Reads the period's calls (read only), replays the line's offered calls through the product's
ring group with the candidate roster and the settings' wrap-up rules and ring timeout
(ivr.report.simulate), the counselors picking up after the period's median ring-to-answer
time and missing the period's share of rings (both measured from `ring_attempts`; 5 s and none
when the period has no ring attempts, or as given), and prints the measured figures beside
the SIMULATED ones (service level within 20 s and 60 s, abandonment, wait percentiles; overall
and per hour of the day) and the simulation's speed. Every simulated figure is labelled
시뮬레이션 / simulated. Exit 0, or 2 with the reason (no database, a bad roster, a bad
setting).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ivr.report import simulate as sim
from ivr.report.figures import percentile
from ivr.report.reader import ReportError, connect, read_calls
from ivr.report.rows import Period, seoul

log = logging.getLogger(__name__)

TEXT = {
    "ko": {
        "head": "시뮬레이션 (모의 결과, 실제 통화 아님)",
        "measured": "측정",
        "simulated": "시뮬레이션",
        "offered": "대기열에 들어온 전화 (건)",
        "answered": "응답 (건)",
        "abandoned": "응답 전 끊음 (건)",
        "abandonment": "포기율",
        "service_level_20s": "20초 이내 응답률",
        "service_level_60s": "60초 이내 응답률",
        "p50_wait_s": "응답 대기 50% (초)",
        "p80_wait_s": "응답 대기 80% (초)",
        "p90_wait_s": "응답 대기 90% (초)",
        "p95_wait_s": "응답 대기 95% (초)",
        "by_hour": "시간대별 시뮬레이션 (서울 시간): 시, 전화, 20초 이내, 60초 이내, 포기율",
        "assumed": "가정: 상담사가 {answer:.1f}초 만에 받음 ({a_src}), 받지 않은 호출 {miss:.1f}% "
        "({m_src})",
        "measured_src": "측정",
        "default_src": "기본값",
        "given_src": "지정",
        "speed": "시뮬레이션 속도",
        "days_per_s": "일/초",
    },
    "en": {
        "head": "SIMULATION (simulated figures, not measured calls)",
        "measured": "measured",
        "simulated": "simulated",
        "offered": "calls offered (queued)",
        "answered": "answered",
        "abandoned": "left before an answer",
        "abandonment": "abandonment",
        "service_level_20s": "answered within 20 s",
        "service_level_60s": "answered within 60 s",
        "p50_wait_s": "wait to answer, 50 % (s)",
        "p80_wait_s": "wait to answer, 80 % (s)",
        "p90_wait_s": "wait to answer, 90 % (s)",
        "p95_wait_s": "wait to answer, 95 % (s)",
        "by_hour": "Simulated by hour of the day (Seoul): hour, calls, within 20 s, within 60 s, "
        "abandonment",
        "assumed": "assumed: counselors pick up after {answer:.1f} s ({a_src}), {miss:.1f} % of "
        "rings not answered ({m_src})",
        "measured_src": "measured",
        "default_src": "default",
        "given_src": "given",
        "speed": "simulation speed",
        "days_per_s": "simulated days/s",
    },
}


def _pad(text: str, width: int, right: bool = False) -> str:
    """`text` padded to `width` terminal columns (Hangul takes two)."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    fill = " " * max(0, width - cols)
    return fill + text if right else text + fill


def _fmt(key: str, v: float | int | None) -> str:
    if v is None:
        return "–"
    if key in ("abandonment",) or key.startswith("service_level"):
        return f"{100 * v:.1f} %"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def lines(
    measured: dict[str, float | int | None],
    simulated: Sequence[sim.SimCall],
    t: dict[str, str],
) -> list[str]:
    """The printed comparison (measured | simulated) and the simulated hours of the day."""
    result = sim.summary(simulated)
    head = _pad("", 34) + _pad(t["measured"], 14, True) + _pad(t["simulated"], 14, True)
    out = [t["head"], head]
    for key, value in result.items():
        both = _pad(_fmt(key, measured.get(key)), 14, True) + _pad(_fmt(key, value), 14, True)
        out.append(_pad(t[key], 34) + both)
    out.append(t["by_hour"])
    for hour in range(24):
        part = sim.summary([c for c in simulated if seoul(c.at).hour == hour])
        cells = (part["offered"], part["service_level_20s"], part["service_level_60s"])
        sl20, sl60 = _fmt("service_level", cells[1]), _fmt("service_level", cells[2])
        ab = _fmt("abandonment", part["abandonment"])
        out.append(f"  {hour:02d}  {cells[0]:>6}  {sl20:>8}  {sl60:>8}  {ab:>8}")
    return out


_RINGS = """
SELECT r.outcome, r.ended_at - r.started_at FROM ring_attempts r JOIN calls c USING (call_id)
WHERE c.started_at >= ? AND c.started_at < ? AND r.ended_at IS NOT NULL
"""
#: Ring outcomes a counselor caused (cancelled and failed legs are not theirs).
_MISSED = ("no_answer", "busy", "rejected")


def ring_behaviour(
    db: sqlite3.Connection, period: Period, line: str | None
) -> tuple[float | None, float | None]:
    """(median seconds from ring to answer, share of rings the counselor missed) of the
    period's ring attempts (None, None when there are none)."""
    sql, args = _RINGS, list[Any]([period.start, period.end])
    if line is not None:
        sql += " AND c.queue = ?"
        args.append(line)
    rows = db.execute(sql, args).fetchall()
    answered = [float(d) for o, d in rows if o == "answered"]
    missed = sum(1 for o, _d in rows if o in _MISSED)
    if not answered and not missed:
        return None, None
    return percentile(answered, 50), missed / (len(answered) + missed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivr-report simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="first", required=True)
    parser.add_argument("--to", dest="last", required=True)
    parser.add_argument("--roster", type=Path, required=True, help="the candidate roster")
    parser.add_argument("--line", default="loneliness", help="the rostered line (queue name)")
    parser.add_argument("--scale", type=float, default=1.0, help="arrivals × this (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--answer-seconds", type=float, help="ring to answer (default: measured)")
    parser.add_argument("--no-answer", type=float, help="share of rings missed (default: measured)")
    parser.add_argument("--db", type=Path, help="the database (default: from the settings)")
    parser.add_argument("--lang", choices=sorted(TEXT), default="ko")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ReportError, ValueError) as exc:  # RosterError and ConfigError are ValueErrors
        print(f"ivr-report simulate: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from ivr.config import load_settings
    from ivr.configs import ring_group_config
    from ivr.staff.roster import load_roster

    period = Period(dt.date.fromisoformat(args.first), dt.date.fromisoformat(args.last))
    if args.scale < 0:
        raise ValueError("--scale must be >= 0")
    settings = load_settings()
    roster = load_roster(args.roster)
    db = connect(args.db or settings.state_path(settings.database))
    try:
        calls = read_calls(db, period, args.line)
        answer, miss = ring_behaviour(db, period, args.line)
    finally:
        db.close()
    t = TEXT[args.lang]
    a_src = "given_src" if args.answer_seconds is not None else "measured_src"
    m_src = "given_src" if args.no_answer is not None else "measured_src"
    if args.answer_seconds is None and answer is None:
        a_src = "default_src"
    if args.no_answer is None and miss is None:
        m_src = "default_src"
    rings = sim.Rings(
        answer_seconds=next(
            v for v in (args.answer_seconds, answer, sim.ANSWER_SECONDS) if v is not None
        ),
        no_answer=next(v for v in (args.no_answer, miss, 0.0) if v is not None),
        ring_timeout=settings.ring_timeout,
        seed=args.seed,
    )
    callers = sim.arrivals(calls, random.Random(args.seed), args.scale, args.line)
    t0 = time.monotonic()
    result = sim.simulate(
        callers, roster, ring_group_config(settings), period.start, period.end, rings
    )
    took = time.monotonic() - t0
    out = lines(sim.measured(calls, args.line), result, t)
    assumed = t["assumed"].format(
        answer=rings.answer_seconds, a_src=t[a_src], miss=100 * rings.no_answer, m_src=t[m_src]
    )
    for line in [out[0], assumed, *out[1:]]:
        print(line)
    days = (period.end - period.start) / 86400
    speed = days / took if took > 0 else float("inf")
    print(f"{t['speed']}: {days:.0f} d / {took:.2f} s = {speed:.0f} {t['days_per_s']}")
    return 0
