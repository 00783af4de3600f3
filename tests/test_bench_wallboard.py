"""The wallboard latency of `ivr-bench load` (ivr/bench/wallboard.py): the k-th arrival in
the queue is on a screen at its first board with k or more waiting, and only arrivals before
the first departure count. The screens themselves run in tests/test_bench_load.py's smoke run
against the real product."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ivr.bench.wallboard import latencies, queue_times


def test_each_arrival_is_timed_to_the_first_board_that_counts_it() -> None:
    screen = [(10.0, 0), (10.3, 1), (10.6, 1), (11.0, 3)]
    got = latencies([screen], [10.1, 10.5, 10.7], None)
    assert got.arrivals == 3 and got.missed == 0 and got.screens == 1
    assert got.seconds == pytest.approx((0.2, 0.5, 0.3))


def test_a_board_sent_before_the_arrival_does_not_count_for_it() -> None:
    # The first board already said 1 (an earlier board is never a later arrival's).
    got = latencies([[(9.0, 1), (9.5, 2)]], [9.2, 9.4], None)
    assert got.seconds == pytest.approx((0.3, 0.1))


def test_arrivals_after_the_first_departure_are_left_out_and_unshown_ones_counted() -> None:
    screens = [[(1.2, 1)], [(1.1, 1), (2.5, 2)]]
    got = latencies(screens, [1.0, 2.0, 5.0], first_left=3.0)
    assert got.arrivals == 2 and got.screens == 2
    assert got.missed == 1  # the first screen never showed the second arrival
    assert got.seconds == pytest.approx((0.2, 0.1, 0.5))


def test_queue_times_read_the_steps_queued_calls_and_their_first_departure(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ivr.db"
    with sqlite3.connect(db) as con:
        con.execute(
            "CREATE TABLE calls (started_at REAL, queued_at REAL, answered_at REAL, ended_at REAL)"
        )
        con.executemany(
            "INSERT INTO calls VALUES (?, ?, ?, ?)",
            [
                (5.0, 6.0, None, 9.0),  # an earlier step
                (100.0, 104.0, None, 150.0),
                (101.0, 105.0, 120.0, 160.0),  # answered at 120: left the queue then
                (102.0, None, None, 103.0),  # hung up in the menu
            ],
        )
    queued, first_left = queue_times(db, since=99.0)
    assert sorted(queued) == [104.0, 105.0] and first_left == 120.0
