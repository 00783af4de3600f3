"""`ivr-bench failover`: a smoke run of the real command (a pair of `ivr-run` on the project's
Asterisk, a pjsua2 caller in the queue, one SIGKILL), so the benchmark cannot rot; its pure
parts; and the warm standby it measures (the speech model loaded while waiting)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ivr.bench.failover import Round, first_after, percentile, report, stamp
from ivr.config import Settings
from ivr.lease.standby import warm_up
from ivr.paths import PROJECT_ROOT
from speech import recognizer


def test_smoke_run_the_caller_is_taken_back_after_the_kill() -> None:
    cmd = [sys.executable, "-m", "ivr.bench.load", "failover", "--rounds", "1"]
    proc = subprocess.run(
        cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^machine: .+ cores, .+ RAM, Linux ", out, re.M), out
    assert "ha_lease_seconds = 2.0, ha_renew_seconds = 0.5" in out, out
    found = re.search(r"^\s+1\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.M)
    assert found, out
    lease, call, health = (float(v) for v in found.groups())
    # The order of what happened, not how fast (no timing bound on a shared machine).
    assert 0 < lease <= call, out
    assert health > 0, out


def test_log_lines_are_timed_by_their_own_stamp(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    log.write_text(
        "2026-12-03 18:00:00,100 INFO    x: lease: standby -> active (token 1)\n"
        "2026-12-03 18:00:05,250 INFO    ivr.lease.keeper: lease: standby -> active (token 2)\n"
        "not a log line\n"
        "2026-12-03 18:00:05,500 WARNING ivr.resume: call c: taken back after a restart as x\n"
    )
    offset = len(log.read_text().splitlines(keepends=True)[0].encode())
    lease = first_after(log, offset, "lease: standby -> active")
    call = first_after(log, offset, "taken back after a restart")
    assert lease is not None and call is not None
    assert round(call - lease, 3) == 0.25
    assert stamp("not a log line") is None


def test_the_report_has_each_round_and_the_percentiles() -> None:
    rounds = [Round(2.0, 2.2, 2.4), Round(1.6, 1.8, 2.0), Round(2.4, 2.6, 2.9)]
    lines = report(rounds, 2.0, 0.5)
    assert lines[1].startswith("machine: ")
    assert lines[-3].split() == ["p50", "2.00", "2.20", "2.40"]
    assert lines[-1].split() == ["max", "2.40", "2.60", "2.90"]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_a_standby_loads_the_speech_model_while_it_waits() -> None:
    assert warm_up(Settings(voice_answers=False)) is None
    thread = warm_up(Settings())
    assert thread is not None
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert recognizer.default_model_path().resolve() in recognizer._models  # loaded, kept
