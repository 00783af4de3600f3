"""`summary-bench` runs end to end on a short simulated call (a smoke test: the figures in
docs/summaries.md come from a full run)."""

from __future__ import annotations

import re

import pytest

from ivr.summary import bench


def test_summary_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--seconds", "8"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^summary-bench: \d+ cores \(.+\), Python 3\.", out, re.M)
    assert re.search(r"caller track .* RTF \d+\.\d+ wall, \d+\.\d+ CPU", out)
    assert re.search(r"one core summarises ≈ \d+ call-hours per day", out)
