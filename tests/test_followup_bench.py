"""`followup-bench` runs end to end on a few thousand tasks (a smoke test: the figures quoted in
docs come from a full run of 100,000)."""

from __future__ import annotations

import re

import pytest

from ivr.followup import bench


def test_followup_bench_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--tasks", "3000", "--cycles", "20"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^followup-bench: \d+ cores \(.+\), Python 3\..*, SQLite 3\.", out, re.M)
    assert re.search(r"3000 open tasks written .* [\d.]+ MB per 100,000 tasks", out)
    ms = r"p50 [\d.]+ ms, p95 [\d.]+ ms, max [\d.]+ ms"
    assert len(re.findall(rf"^cycle, .*, 20 cycles: {ms}$", out, re.M)) == 2
    assert len(re.findall(rf"^  CPU .*: {ms}$", out, re.M)) == 2
    assert len(re.findall(rf"^  of which plan: {ms}; [\d.]+ offers per cycle$", out, re.M)) == 2
    assert re.search(r"target under 10 ms per cycle .*: (met|MISSED)$", out, re.M)
