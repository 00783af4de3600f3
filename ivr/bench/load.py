"""`ivr-bench load`: the product against the native dialplan baseline, under SIPp callers.

On one machine in one run: the product (`python -m ivr.main`, default settings apart from its
own instance, ports and an RTP range sized for the largest step) and then the native baseline
(ivr/bench/native.py, the same journey in dialplan + app_queue on the same Asterisk with the
same prompts and endpoints) are each driven by SIPp (ivr/bench/sipp.py) at every step of
concurrency. Each step places that many calls at `--rate` new calls a second; every caller
presses 5 after the greeting and option 5, 2 after the consent question, then waits
`--hold` seconds in the queue with music and hangs up. Nobody answers in either system.

Per step it prints ok/failed calls, how many reached the queue (the product: call records with
`queued_at`; the native: ENTERQUEUE lines in the queue_log), the set-up rate, CPU ms per call of
Asterisk and of the controller with its helper processes (from /proc, the load generator
excluded), peak RSS, `/health` latency polled during the step, and the product/native ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import shlex
import socket
import sys
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from secrets import token_urlsafe

import aiohttp

from ivr.bench import procstat
from ivr.bench.capture import Signature, latencies
from ivr.bench.native import NativePbx
from ivr.bench.product import Product, Watched, free_port, hang_up_callers, poll_until, say
from ivr.bench.report import StepResult, step_table
from ivr.bench.sipp import (
    Journey,
    Sipp,
    SippUnavailable,
    pcap_duration_ms,
    raise_open_files_limit,
    write_line_pcap,
)
from ivr.bench.sipp import scenario as caller_scenario
from ivr.bench.wallboard import Wallboards, set_password
from ivr.config import Settings
from ivr.flow.call import CONSENT_PROMPTS
from ivr.flow.menu import Menu, load_menu
from ivr.paths import PROJECT_ROOT, project_file
from ivr.pbx.install import PbxUnavailable, locate
from ivr.pbx.runner import PbxStartError
from ivr.pbx.secrets import load_or_create

#: Asterisk's RTP ports for the benchmark instances (away from the tests' 31000-33999 and the
#: default 10000-19999 of a `make run` on the same machine).
RTP_BASE = 20000
#: A product call holds two RTP sessions (the caller's channel and its audio tap's
#: externalMedia channel), each an even RTP port and the odd RTCP port next to it.
PORTS_PER_CALL = 4
#: The most callers a step may have: the RTP range below and SIPp's media ports must fit.
MAX_CALLERS = 1000
#: SIPp's media ports ([auto_media_port] steps 4 a call from here): above the benchmark's RTP
#: range, below the tests' (31000-33999) and the kernel's ephemeral ports (32768-60999), where
#: the controller's audio taps bind their sockets.
SIPP_MEDIA_BASE = 26000
#: SIPp's media ports end below this (the capture's filter).
SIPP_MEDIA_END = SIPP_MEDIA_BASE + 4 * MAX_CALLERS + 4
#: Seconds between two looks at /health and at the processes' memory during a step.
POLL_SECONDS = 0.5
#: Seconds the product gets after a step's last call to complete its call records.
RECORDS_WAIT = 60.0
#: Seconds SIPp gets beyond the step's nominal length before the calls still up are failed.
SIPP_MARGIN = 120
#: Seconds of idle CPU measured after each system started, before its first step.
IDLE_SECONDS = 5.0
#: A caller presses a key this long after the prompt it waits for ended.
KEY_AFTER_PROMPT_MS = 500


def rtp_range(max_callers: int) -> tuple[int, int]:
    """An RTP port range for `max_callers` product calls with a quarter to spare (at least the
    default's 1000 ports)."""
    ports = max(1000, PORTS_PER_CALL * max_callers * 5 // 4 + 100)
    return RTP_BASE, RTP_BASE + ports - 1


def prompt_ms(sounds: Path, ids: Sequence[str]) -> int:
    """How long the prompts `ids` play, from the instance's built files."""
    total = 0.0
    for pid in ids:
        with wave.open(str(sounds / "ko" / "ivr120" / f"{pid}.wav")) as w:
            total += w.getnframes() / w.getframerate()
    return int(total * 1000)


def default_journey(sounds: Path, menu: Menu, hold_s: float) -> Journey:
    """Keys pressed once the greeting and option 5, then the intro and consent question, have
    been heard (what the issue's measurement did: about 49 s before the queue)."""
    option = next(o for o in menu.options if menu.queues[o.queue].consent)
    upto = menu.option_prompts[: menu.option_prompts.index(option.prompt) + 1]
    queue = menu.queues[option.queue]
    return Journey(
        prompt_ms(sounds, (*menu.greeting, *upto)) + KEY_AFTER_PROMPT_MS,
        prompt_ms(sounds, (queue.intro, *CONSENT_PROMPTS)) + KEY_AFTER_PROMPT_MS,
        int(hold_s * 1000),
    )


def prompt_signatures(sounds: Path, menu: Menu) -> tuple[Signature, Signature]:
    """The greeting's start and the intro's (what a caller hears after pressing 5)."""
    option = next(o for o in menu.options if menu.queues[o.queue].consent)
    files = sounds / "ko" / "ivr120"
    first = (*menu.greeting, *menu.option_prompts)[0]
    intro = menu.queues[option.queue].intro
    return Signature.of(files / f"{first}.wav"), Signature.of(files / f"{intro}.wav")


class Monitor:
    """Polls /health and the processes' memory until stopped."""

    def __init__(self, w: Watched) -> None:
        self.w = w
        self.health: list[float] = []
        self.health_errors = 0
        self.rss_pbx = 0
        self.rss_ctl = 0
        self.fds_pbx = 0
        self.fds_ctl = 0
        self._stop = asyncio.Event()

    def _memory(self) -> None:
        self.rss_pbx = max(self.rss_pbx, procstat.sample(self.w.pbx_pid).rss_kb)
        self.fds_pbx = max(self.fds_pbx, procstat.open_files(self.w.pbx_pid))
        if self.w.ctl_pid is not None:
            exclude = frozenset({self.w.pbx_pid})
            ctl = procstat.sample(self.w.ctl_pid, exclude)
            self.rss_ctl = max(self.rss_ctl, ctl.rss_kb)
            self.fds_ctl = max(self.fds_ctl, procstat.open_files(self.w.ctl_pid, exclude))

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self._stop.is_set():
                self._memory()
                if self.w.health_url is not None:
                    t0 = time.perf_counter()
                    try:
                        async with http.get(self.w.health_url) as r:
                            await r.read()
                            ok = r.status == 200
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    if ok:
                        self.health.append(time.perf_counter() - t0)
                    else:
                        self.health_errors += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), POLL_SECONDS)
        self._memory()

    def stop(self) -> None:
        self._stop.set()


@dataclass(frozen=True)
class Plan:
    steps: tuple[int, ...]
    rate: float
    hold: float
    menu_wait: float | None
    consent_wait: float | None
    keep: bool
    capture: bool = True
    #: Wallboard screens open on the product's desk during its steps (ivr/bench/wallboard.py).
    wallboards: int = 0

    def journey(self, sounds: Path, menu: Menu) -> Journey:
        j = default_journey(sounds, menu, self.hold)
        if self.menu_wait is not None:
            j = replace(j, menu_wait_ms=int(self.menu_wait * 1000))
        if self.consent_wait is not None:
            j = replace(j, consent_wait_ms=int(self.consent_wait * 1000))
        return j


async def run_step(
    system: str,
    callers: int,
    plan: Plan,
    journey: Journey,
    sipp: Sipp,
    target: tuple[str, int],
    w: Watched,
    queued: Callable[[float], Awaitable[tuple[int, int | None]]],
    dtmf_ms: int,
    signatures: tuple[Signature, Signature] | None,
    screens: Wallboards | None = None,
) -> StepResult:
    text = caller_scenario(journey, sipp.inner("line.pcap"), dtmf_ms)
    call_s = (journey.menu_wait_ms + journey.consent_wait_ms + journey.hold_ms) / 1000
    timeout = int(callers / plan.rate + call_s + SIPP_MARGIN)
    exclude = frozenset({w.pbx_pid})
    since = time.time()
    pbx0 = procstat.sample(w.pbx_pid)
    ctl0 = procstat.sample(w.ctl_pid, exclude) if w.ctl_pid is not None else None
    records = sipp.dir / f"{system}-{callers}-capture.bin"
    cap = await start_capture(records, target[1]) if signatures is not None else None
    monitor = Monitor(w)
    watching = asyncio.create_task(monitor.run())
    t0 = time.monotonic()
    board = None
    try:
        if screens is not None:
            await screens.start()
        res = await sipp.run(
            f"{system}-{callers}", target, text, callers, plan.rate, SIPP_MEDIA_BASE, timeout
        )
        if res.exit_code != 0:
            left = await hang_up_callers(w.pbx)
            if left:
                say(f"{system}: {left} calls still up when SIPp's time ran out; hung up")
        reached, still_open = await queued(since)
        if screens is not None:
            board = await screens.finish(since)
    finally:
        if screens is not None:
            await screens.close()
        monitor.stop()
        await watching
        if cap is not None:
            await stop_capture(cap)
    found = latencies(records, *signatures) if signatures is not None else None
    seconds = time.monotonic() - t0
    pbx1 = procstat.sample(w.pbx_pid)
    ctl1 = procstat.sample(w.ctl_pid, exclude) if w.ctl_pid is not None else None
    return StepResult(
        system=system,
        calls=callers,
        ok=res.ok,
        failed=res.failed,
        queued=reached,
        records_open=still_open,
        concurrent=res.concurrent,
        setup_rate=res.setup_rate,
        cpu_pbx=pbx1.cpu_since(pbx0),
        cpu_ctl=ctl1.cpu_since(ctl0) if ctl1 is not None and ctl0 is not None else None,
        rss_pbx_kb=monitor.rss_pbx,
        rss_ctl_kb=monitor.rss_ctl if w.ctl_pid is not None else None,
        answered=len(res.answers),
        fds_pbx=monitor.fds_pbx,
        fds_ctl=monitor.fds_ctl if w.ctl_pid is not None else None,
        health=tuple(monitor.health),
        health_errors=monitor.health_errors,
        seconds=seconds,
        greeting=found.greeting if found is not None else None,
        dtmf=found.dtmf if found is not None else None,
        board=board,
    )


async def start_capture(out: Path, sip_port: int) -> asyncio.subprocess.Process:
    """The capture helper (ivr/bench/capture.py), once its filtered socket is listening."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.bench.capture", "--out", str(out),
        "--sip-port", str(sip_port),
        "--media-lo", str(SIPP_MEDIA_BASE), "--media-hi", str(SIPP_MEDIA_END),
        cwd=PROJECT_ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if line.strip() != b"ready":
        await proc.wait()
        raise RuntimeError(f"the capture helper did not start ({proc.returncode})")
    return proc


async def stop_capture(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    await proc.wait()


async def idle_cpu(w: Watched) -> tuple[float, float | None]:
    """CPU ms a second of Asterisk and the controller with no calls, over IDLE_SECONDS."""
    exclude = frozenset({w.pbx_pid})
    pbx0 = procstat.sample(w.pbx_pid)
    ctl0 = procstat.sample(w.ctl_pid, exclude) if w.ctl_pid is not None else None
    await asyncio.sleep(IDLE_SECONDS)  # the measuring interval itself
    pbx = procstat.sample(w.pbx_pid).cpu_since(pbx0) * 1000 / IDLE_SECONDS
    if w.ctl_pid is None or ctl0 is None:
        return pbx, None
    ctl = procstat.sample(w.ctl_pid, exclude).cpu_since(ctl0) * 1000 / IDLE_SECONDS
    return pbx, ctl


async def run(plan: Plan, out: Callable[[str], None] = print) -> int:
    nofile = raise_open_files_limit()
    defaults = Settings()
    install = await asyncio.to_thread(locate, defaults.pbx_mode, defaults.pbx_cache_dir)
    name = f"ivr120-bench-{os.getpid()}"
    sipp = Sipp(install, name)
    work = sipp.dir / "state"
    work.mkdir(mode=0o700, exist_ok=True)
    menu = load_menu(project_file(defaults.menu_file))
    dtmf_ms = pcap_duration_ms(sipp.host_share("dtmf_2833_5.pcap"))
    rtp = rtp_range(max(plan.steps))
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    results: dict[tuple[str, int], StepResult] = {}
    idle: dict[str, tuple[float, float | None]] = {}
    product = Product(work, install, rtp, plan.wallboards)
    native: NativePbx | None = None
    journey: Journey | None = None
    try:
        say(f"starting the product (instance {product.settings.instance}, RTP {rtp[0]}-{rtp[1]})")
        w = await product.start()
        screens = None
        if plan.wallboards:
            password = token_urlsafe(18)
            await asyncio.to_thread(set_password, product.settings.state_dir, password)
            screens = Wallboards(product.desk_url, plan.wallboards, password, product.database)
        idle["product"] = await idle_cpu(w)
        journey = plan.journey(product.sounds, menu)
        longest = max(journey.menu_wait_ms, journey.consent_wait_ms, journey.hold_ms) / 1000
        write_line_pcap(sipp.dir / "line.pcap", longest + 5)
        signatures = prompt_signatures(product.sounds, menu) if plan.capture else None

        async def product_queued(since: float) -> tuple[int, int | None]:
            def ended() -> bool:
                started_n, ended_n, _ = product.counts(since)
                return ended_n == started_n

            try:
                await poll_until(ended, RECORDS_WAIT, "the product's call records completed")
            except TimeoutError as exc:
                started_n, ended_n, _ = product.counts(since)
                say(f"{exc}: {started_n - ended_n} of {started_n} still open; counted as they are")
            started_n, ended_n, queued_n = product.counts(since)
            return queued_n, started_n - ended_n

        target = ("127.0.0.1", product.settings.sip_port)
        for n in plan.steps:
            say(f"product: {n} callers")
            results["product", n] = await run_step(
                "product", n, plan, journey, sipp, target, w, product_queued, dtmf_ms, signatures,
                screens,
            )  # fmt: skip
        await product.stop()

        s = replace(
            product.settings,
            instance=f"benchn{os.getpid()}",
            state_dir=work / "native",
            sip_port=free_port(socket.SOCK_DGRAM),
            http_port=free_port(socket.SOCK_STREAM),
        )
        s.state_dir.mkdir(mode=0o700, exist_ok=True)
        secrets = load_or_create(s.secrets_path, s.staff_endpoints)
        native = NativePbx(s, secrets, install, menu, product.sounds)
        say(f"starting the native baseline (instance {s.instance})")
        await asyncio.to_thread(native.prepare)
        await native.start()
        pid = int((native.host(native.dirs.run) / "asterisk.pid").read_text().strip())
        nw = Watched(pid, None, None, native)
        idle["native"] = await idle_cpu(nw)
        nat = native

        for n in plan.steps:
            before = nat.entered_queue()

            async def native_queued(since: float, before: int = before) -> tuple[int, int | None]:
                return nat.entered_queue() - before, None

            say(f"native: {n} callers")
            r = await run_step(
                "native", n, plan, journey, sipp, ("127.0.0.1", s.sip_port), nw,
                native_queued, dtmf_ms, signatures,
            )  # fmt: skip
            results["native", n] = r
    finally:
        await product.stop()
        if native is not None:
            await native.stop()
        if not plan.keep:
            if product.pbx is not None:
                product.pbx.remove_instance()
            if native is not None:
                native.remove_instance()
            sipp.cleanup()
        else:
            say(f"kept {sipp.dir}")

    assert journey is not None
    out(f"ivr-bench load, {started}")
    out(f"machine: {procstat.machine()}")
    load_after = os.getloadavg()
    out(
        "load average (1/5/15 min, everything on the machine) at the start "
        + " ".join(f"{v:.2f}" for v in load_before)
        + ", at the end "
        + " ".join(f"{v:.2f}" for v in load_after)
    )
    out(
        f"journey: 5 pressed {journey.menu_wait_ms / 1000:.1f} s after the answer, 2 pressed "
        f"{journey.consent_wait_ms / 1000:.1f} s later, {plan.hold:g} s in the queue; "
        f"product RTP ports {rtp[0]}-{rtp[1]}; open files limit {nofile}"
    )
    for system, (pbx_ms, ctl_ms) in idle.items():
        ctl = f", controller {ctl_ms:.0f}" if ctl_ms is not None else ""
        out(f"idle before the steps ({system}), CPU ms/s: Asterisk {pbx_ms:.0f}{ctl}")
    if plan.capture:
        out(
            "latencies from a capture on lo: the prompt's start found by its level envelope in "
            "the RTP the caller received"
        )
    for i, n in enumerate(plan.steps, 1):
        out("")
        p, nat_r = results.get(("product", n)), results.get(("native", n))
        out(step_table(i, n, plan.rate, plan.hold, p, nat_r))
    return 0


def parse_steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not steps or any(not 1 <= n <= MAX_CALLERS for n in steps):
        raise argparse.ArgumentTypeError(f"steps must be 1 to {MAX_CALLERS} callers")
    return steps


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--steps",
        type=parse_steps,
        default=(10, 25, 50),
        help="concurrent callers per step, comma-separated (default 10,25,50)",
    )
    p.add_argument("--rate", type=float, default=20.0, help="new calls a second (default 20)")
    p.add_argument(
        "--hold",
        type=float,
        default=10.0,
        help="seconds each caller waits in the queue before hanging up (default 10)",
    )
    p.add_argument(
        "--menu-wait",
        type=float,
        default=None,
        help="seconds from the answer to key 5 (default: greeting + option 5 heard)",
    )
    p.add_argument(
        "--consent-wait",
        type=float,
        default=None,
        help="seconds from key 5 to key 2 (default: intro + consent question heard)",
    )
    p.add_argument(
        "--no-capture",
        action="store_true",
        help="no packet capture (no greeting and DTMF latencies)",
    )
    p.add_argument(
        "--wallboards",
        type=int,
        default=50,
        help="wallboard screens open on the product's desk during its steps (default 50; 0: none)",
    )
    p.add_argument("--keep", action="store_true",
                   help="keep the instances, SIPp files and logs afterwards")  # fmt: skip


def main_load(args: argparse.Namespace) -> int:
    plan = Plan(
        args.steps, args.rate, args.hold, args.menu_wait, args.consent_wait, args.keep,
        capture=not args.no_capture, wallboards=max(0, args.wallboards),
    )  # fmt: skip
    if os.geteuid() != 0:
        say("warning: not root; the PBX root and SIPp in it need root")
    say("command: ivr-bench " + shlex.join(sys.argv[1:]))
    try:
        return asyncio.run(run(plan))
    except (PbxUnavailable, PbxStartError, SippUnavailable, TimeoutError) as exc:
        print(f"ivr-bench: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ivr-bench", description="Benchmarks of the whole product.")
    sub = p.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="the product against the native dialplan under SIPp load")
    add_arguments(load)
    fo = sub.add_parser("failover", help="a standby replacing a killed active controller")
    fo.add_argument("--rounds", type=int, default=10, help="kills to measure (default 10)")
    fo.add_argument("--lease", type=float, default=Settings().ha_lease_seconds)
    fo.add_argument("--renew", type=float, default=Settings().ha_renew_seconds)
    fo.add_argument("--logs", type=Path, help="keep the two controllers' logs in this directory")
    args = p.parse_args(argv)
    if args.command == "failover":
        return main_failover(args)
    return main_load(args)


def main_failover(args: argparse.Namespace) -> int:
    from ivr.bench import failover

    say("command: ivr-bench " + shlex.join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="ivr120-failover-") as tmp:
        work = Path(tmp)
        work.chmod(0o700)
        try:
            rounds = max(1, args.rounds)
            return asyncio.run(failover.run(rounds, args.lease, args.renew, work, args.logs))
        except (PbxUnavailable, PbxStartError, TimeoutError, RuntimeError) as exc:
            print(f"ivr-bench: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
