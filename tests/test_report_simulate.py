"""The what-if simulation (ivr.report.simulate, `ivr-report simulate`): callers replayed
through the product's own RingGroup and roster on a simulated clock.

- A hand-computed case (2 counselors, 3 callers) is exact.
- A recorded month reproduces: ivr.report.synthetic.generate_queued writes a month through
  the store whose waits come from one first-come-first-served queue for two counselors (its own
  few lines, not the ring group); replayed with a roster of the same two counselors, the
  simulation gives the measured service level within 20 s and 60 s and the measured
  abandonment within 0.01 (stated tolerance; in a faithful replay they are equal but for
  events at the same instant).
- Two more counselors at night (21:00–09:00) raise the night's simulated service level and
  leave the day's as it was.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import random
import re
import sqlite3
from pathlib import Path

import pytest

from ivr.config import Settings
from ivr.configs import ring_group_config
from ivr.report import simulate as sim
from ivr.report.cli import main
from ivr.report.reader import connect, read_calls
from ivr.report.rows import CallRow, Period
from ivr.report.synthetic import Params, generate_queued
from ivr.staff.roster import Roster, load_roster
from ivr.store import Store
from ivr.timezone import SEOUL

CONFIG = ring_group_config(Settings())  # the product's defaults: 30 s wrap-up, 300 s after abuse
FIRST = dt.date(2026, 11, 1)
PERIOD = Period(FIRST, dt.date(2026, 11, 30))
PARAMS = Params(calls_per_day=80, callers=500, mean_patience=120.0, mean_talk=900.0)


def write_roster(path: Path, teams: dict[str, list[str]], shift_hours: int = 24) -> Path:
    ids = [c for members in teams.values() for c in members]
    parts = [f'[[counselor]]\nid = "{c}"\nname = "상담사 {c}"\nendpoint = "{c}"\n' for c in ids]
    parts.append("[teams]\n" + "".join(f"{t} = {members!r}\n" for t, members in teams.items()))
    cycle = list(teams)
    parts.append(
        f'[rotation]\nstart = 2026-10-01\nshift_start = "09:00"\nshift_hours = {shift_hours}\n'
        f"cycle = {cycle!r}\n"
    )
    path.write_text("\n".join(parts).replace("'", '"'), encoding="utf-8")
    return path


def test_two_counselors_three_callers_by_hand(tmp_path: Path) -> None:
    roster = load_roster(write_roster(tmp_path / "r.toml", {"A": ["a", "b"]}))
    t0 = dt.datetime(2026, 11, 2, 10, tzinfo=SEOUL).timestamp()
    callers = [
        sim.Arrival("x", t0, 100.0, 1e9),
        sim.Arrival("y", t0 + 10, 100.0, 1e9),
        sim.Arrival("z", t0 + 20, 50.0, 200.0),
    ]
    # x rings a (both never called: member order) at 0, answered at 5 (wait 5), ends 105,
    # wrap-up to 135; y rings b at 10, answered 15 (wait 5), free at 145; z waits until a is
    # free at 135, answered at 140: a wait of 120 s, within its patience of 200 s.
    got = sim.simulate(callers, roster, CONFIG, t0 - 3600, t0 + 3600, sim.Rings(5.0))
    assert [(c.call_id, c.wait, c.answered, c.member) for c in got] == [
        ("x", 5.0, True, "a"),
        ("y", 5.0, True, "b"),
        ("z", 120.0, True, "a"),
    ]
    s = sim.summary(got)
    assert (s["service_level_20s"], s["service_level_60s"]) == (2 / 3, 2 / 3)
    assert (s["abandonment"], s["p50_wait_s"]) == (0.0, 5.0)
    # With a patience of 100 s z hangs up at 120 s: abandonment 1/3, the same service levels.
    callers[2] = dataclasses.replace(callers[2], patience=100.0)
    got = sim.simulate(callers, roster, CONFIG, t0 - 3600, t0 + 3600, sim.Rings(5.0))
    assert got[2] == sim.SimCall("z", t0 + 20, 100.0, False)
    s = sim.summary(got)
    assert (s["abandonment"], s["service_level_20s"], s["p95_wait_s"]) == (1 / 3, 2 / 3, 5.0)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("sim") / "ivr.db"

    async def fill() -> None:
        store = await Store.open(db)
        try:
            await generate_queued(store, FIRST, 30, 5, ("c1", "c2"), CONFIG, PARAMS)
        finally:
            await store.close()

    asyncio.run(fill())
    return db


def _calls(db: Path) -> list[CallRow]:
    con = connect(db)
    try:
        return read_calls(con, PERIOD, "loneliness")
    finally:
        con.close()


def test_the_recorded_month_is_reproduced(month: Path, tmp_path: Path) -> None:
    calls = _calls(month)
    want = sim.measured(calls)
    roster: Roster = load_roster(write_roster(tmp_path / "r.toml", {"A": ["c1", "c2"]}))
    callers = sim.arrivals(calls, random.Random(1))
    got = sim.summary(sim.simulate(callers, roster, CONFIG, PERIOD.start, PERIOD.end))
    assert want["offered"] == got["offered"] == 80 * 30
    assert 0.2 < float(want["abandonment"] or 0) < 0.6  # a month with real queueing
    for key in ("service_level_20s", "service_level_60s", "abandonment"):
        assert got[key] == pytest.approx(want[key], abs=0.01), key


def test_two_more_counselors_at_night(month: Path, tmp_path: Path) -> None:
    calls = _calls(month)
    now = load_roster(
        write_roster(tmp_path / "a.toml", {"day": ["c1", "c2"], "night": ["c3", "c4"]}, 12)
    )
    more = {"day": ["c1", "c2"], "night": ["c3", "c4", "c5", "c6"]}
    candidate = load_roster(write_roster(tmp_path / "b.toml", more, 12))

    def by_time(roster: Roster) -> tuple[dict, dict]:
        callers = sim.arrivals(calls, random.Random(1))
        got = sim.simulate(callers, roster, CONFIG, PERIOD.start, PERIOD.end)
        night = [c for c in got if sim.night(c.at)]
        day = [c for c in got if not sim.night(c.at)]
        return sim.summary(night), sim.summary(day)

    night_now, day_now = by_time(now)
    night_more, day_more = by_time(candidate)
    assert night_more["service_level_20s"] > night_now["service_level_20s"] + 0.1
    assert night_more["abandonment"] < night_now["abandonment"]
    assert day_more["service_level_20s"] == pytest.approx(day_now["service_level_20s"], abs=0.02)


def test_the_command_prints_simulated_figures(
    month: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = write_roster(tmp_path / "r.toml", {"A": ["c1", "c2"]})
    argv = ["simulate", "--from", "2026-11-01", "--to", "2026-11-30", "--db", str(month)]
    assert main([*argv, "--roster", str(roster)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("시뮬레이션 (모의 결과, 실제 통화 아님)")
    row = re.search(r"20초 이내 응답률\s+([\d.]+) %\s+([\d.]+) %", out)
    assert row is not None and abs(float(row[1]) - float(row[2])) <= 1.0
    assert re.search(r"시뮬레이션 속도: 30 d / [\d.]+ s = \d+ 일/초", out)
    assert main([*argv, "--roster", str(roster), "--lang", "en"]) == 0
    assert capsys.readouterr().out.startswith("SIMULATION (simulated figures")
    assert main([*argv, "--roster", str(tmp_path / "none.toml")]) == 2
    assert "roster not found" in capsys.readouterr().err


def test_the_report_has_erlang_a_with_the_measured_patience(month: Path, tmp_path: Path) -> None:
    # The patience in the Erlang A table is the rows' own: all seconds waited by the callers
    # offered / the callers who left unanswered (counted here in SQL), per hour of the day
    # (Seoul) where 10 or more left in that hour, else the period's.
    roster = write_roster(tmp_path / "r.toml", {"A": ["c1", "c2"]})
    argv = ["--from", "2026-11-01", "--to", "2026-11-30", "--db", str(month)]
    out, tables = tmp_path / "r.html", tmp_path / "csv"
    assert main([*argv, "--roster", str(roster), "--out", str(out), "--csv", str(tables)]) == 0
    sums = (
        "SELECT SUM(wait_seconds), SUM(answered_at IS NULL) FROM calls WHERE queued_at IS NOT NULL"
    )
    hour = "CAST(((queued_at + 32400) % 86400) / 3600 AS INTEGER)"
    with sqlite3.connect(month) as con:
        waited, left = con.execute(sums).fetchone()
        per_hour = {
            h: (w, n)
            for h, w, n in con.execute(
                f"SELECT {hour}, SUM(wait_seconds), SUM(answered_at IS NULL) FROM calls"
                f" WHERE queued_at IS NOT NULL GROUP BY {hour}"
            )
        }
    con.close()
    with (tables / "staffing_erlang_a.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with (tables / "abandonment_by_wait_hour.csv").open(encoding="utf-8") as fh:
        hours = {int(r["hour"]): r for r in csv.DictReader(fh)}
    assert len(rows) == 168 and len(hours) == 24
    for r in rows:
        w, n = per_hour.get(int(r["hour"]), (0, 0))
        own = n >= 10
        assert hours[int(r["hour"])]["patience_used"] == ("hour" if own else "period")
        assert int(hours[int(r["hour"])]["left"]) == n
        if r["patience_s"]:
            assert float(r["patience_s"]) == pytest.approx(w / n if own else waited / left)
    evening = next(r for r in rows if (r["weekday"], r["hour"]) == ("0", "20"))
    assert per_hour[20][1] >= 10  # the seeded month's evening has its own patience
    assert float(evening["patience_s"]) == pytest.approx(per_hour[20][0] / per_hour[20][1])
    assert int(evening["needed_erlang_a"]) <= int(evening["needed_erlang_c"])
    assert evening["verdict"] in ("under", "ok", "over")
    assert "얼랑 A" in out.read_text(encoding="utf-8")


def test_unanswered_rings_go_through_leg_ended(tmp_path: Path) -> None:
    # Nobody picks up: a rings 0–20 s (cooldown to 80), b 20–40 (to 100), a again 80–100;
    # the caller's patience ends at 100 s: hung up, never answered.
    roster = load_roster(write_roster(tmp_path / "r.toml", {"A": ["a", "b"]}))
    t0 = dt.datetime(2026, 11, 2, 10, tzinfo=SEOUL).timestamp()
    rings = sim.Rings(no_answer=1.0, ring_timeout=20.0)
    got = sim.simulate([sim.Arrival("x", t0, 60.0, 100.0)], roster, CONFIG, t0, t0 + 60, rings)
    assert got == [sim.SimCall("x", t0, 100.0, False)]
    with pytest.raises(ValueError, match="share"):
        sim.Rings(no_answer=1.5)


async def test_the_ring_behaviour_is_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ivr.db"
    store = await Store.open(db)
    try:
        await generate_queued(store, FIRST, 1, 3, ("c1",), CONFIG, Params(calls_per_day=6))
        ids = [r[0] for r in await store.fetch("SELECT call_id FROM calls ORDER BY call_id")]
        for n, (outcome, seconds) in enumerate(
            [("answered", 4.0), ("answered", 6.0), ("no_answer", 20.0)]
        ):
            await store.ring_started(f"leg{n}", ids[n], "c1", 1000.0)
            await store.ring_ended(f"leg{n}", 1000.0 + seconds, outcome)
    finally:
        await store.close()
    roster = write_roster(tmp_path / "r.toml", {"A": ["c1"]})
    argv = ["simulate", "--from", "2026-11-01", "--to", "2026-11-01", "--db", str(db)]
    assert main([*argv, "--roster", str(roster), "--lang", "en"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        "assumed: counselors pick up after 5.0 s (measured), 33.3 % of rings not answered"
        " (measured)"
    )
    assert main([*argv, "--roster", str(roster), "--lang", "en", "--no-answer", "0"]) == 0
    assert "0.0 % of rings not answered (given)" in capsys.readouterr().out


def test_scaled_arrivals_keep_the_hours(month: Path) -> None:
    calls = _calls(month)
    once = sim.arrivals(calls, random.Random(1))
    twice = sim.arrivals(calls, random.Random(1), scale=2.0)
    assert len(twice) == 2 * len(once)

    def per_hour(xs: list[sim.Arrival]) -> dict[int, int]:
        hours: dict[int, int] = {}
        for a in xs:
            hours[int(a.at // 3600)] = hours.get(int(a.at // 3600), 0) + 1
        return hours

    assert per_hour(twice) == {h: 2 * n for h, n in per_hour(once).items()}
    half = sim.arrivals(calls, random.Random(1), scale=0.5)
    assert 0.45 * len(once) < len(half) < 0.55 * len(once)
    with pytest.raises(ValueError, match="scale"):
        sim.arrivals(calls, random.Random(1), scale=-1)
