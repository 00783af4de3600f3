"""The load generator: SIPp callers who dial 120, press 5, answer the consent question with 2
and wait in the queue, sending real RTP (a quiet line) and RFC 2833 DTMF.

SIPp is Debian's `sip-tester`, installed in the PBX root next to Asterisk (ivr/pbx/install.py
ROOT_PACKAGES) and run chrooted in it, so nothing from sid touches the host; with a system
Asterisk (no root) a host `sipp` on PATH is used. The caller's audio is a pcap written here (A-law
line noise at about -60 dBFS: a caller who listens and says nothing); the digits are the pcaps
that ship with sip-tester. SIPp replays both from the call's own media port ([auto_media_port]).
"""

from __future__ import annotations

import asyncio
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from ivr.pbx.install import AsteriskInstall

#: Where sip-tester keeps its DTMF pcaps (the same in the root and on a Debian host).
SIPP_SHARE = "/usr/share/sip-tester"
SIPP_BIN = "/usr/bin/sipp"
#: A-law codes of the smallest sample values: a quiet, not digitally silent, line.
_QUIET_ALAW = (0xD5, 0x55, 0xD4, 0x54)
FRAME_MS = 20


class SippUnavailable(RuntimeError):
    """No SIPp in the PBX root nor on the host."""


@dataclass(frozen=True)
class Journey:
    """What each caller does, in milliseconds after the call was answered (200 OK)."""

    #: From the answer until the caller presses 5 (the greeting and option 5 heard).
    menu_wait_ms: int
    #: From pressing 5 until the caller presses 2 (intro and consent question heard).
    consent_wait_ms: int
    #: In the queue, with music, before the caller hangs up.
    hold_ms: int


def write_line_pcap(path: Path, seconds: float, seed: int = 120) -> None:
    """An RTP (PCMA, payload type 8) pcap of `seconds` of quiet line noise, 20 ms a packet."""
    rng = random.Random(seed)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    src, dst = bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    for n in range(int(seconds * 1000 / FRAME_MS)):
        payload = bytes(rng.choice(_QUIET_ALAW) for _ in range(8 * FRAME_MS))
        rtp = struct.pack("!BBHII", 0x80, 8 | (0x80 if n == 0 else 0), n & 0xFFFF, n * 160, 0x1200)
        udp_len = 8 + len(rtp) + len(payload)
        udp = struct.pack("!HHHH", 6000, 6000, udp_len, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, n & 0xFFFF, 0, 64, 17, 0, src, dst)
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp + rtp + payload
        usec = n * FRAME_MS * 1000
        out += struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))


def pcap_duration_ms(path: Path) -> int:
    """Time from the first to the last packet of a (little- or big-endian) pcap."""
    data = path.read_bytes()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    pos, stamps = 24, []
    while pos + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack(endian + "IIII", data[pos : pos + 16])
        stamps.append(sec * 1000 + usec // 1000)
        pos += 16 + incl
    return (stamps[-1] - stamps[0]) if stamps else 0


_SDP = """v=0
o=caller 1 1 IN IP4 [media_ip]
s=ivr120 bench
c=IN IP4 [media_ip]
t=0 0
m=audio [auto_media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
"""

_HEADERS = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:caller[call_number]@[local_ip]:[local_port]>;tag=[pid]T[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
Contact: <sip:caller[call_number]@[local_ip]:[local_port]>
Max-Forwards: 70"""


def _play(pcap: str) -> str:
    return f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'


def _log(what: str) -> str:
    return f'  <nop><action><log message="[clock_tick] {what} [call_number]"/></action></nop>\n'


def scenario(journey: Journey, line_pcap: str, dtmf_ms: int) -> str:
    """The caller's SIPp scenario. A BYE from the PBX before the caller's own is a failed call
    (SIPp's default behaviour answers it and counts the call as failed)."""
    digit_gap = dtmf_ms + 100  # let the digit's packets go out before the line noise resumes

    def digit(d: str, then_ms: int) -> str:
        return (
            _play(f"{SIPP_SHARE}/dtmf_2833_{d}.pcap")
            + f'  <pause milliseconds="{digit_gap}"/>\n'
            + _log(f"digit{d}")
            + _play(line_pcap)
            + f'  <pause milliseconds="{max(then_ms - digit_gap, 1)}"/>\n'
        )

    sdp = _SDP.replace("\n", "\r\n")
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        '<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        '<scenario name="ivr120 caller">\n' + _log("invite") + '  <send retrans="500"><![CDATA[\n'
        "INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n"
        f"{_HEADERS}\nCSeq: 1 INVITE\nContent-Type: application/sdp\n"
        "Content-Length: [len]\n\n"
        f"{sdp}]]></send>\n"
        '  <recv response="100" optional="true"/>\n'
        '  <recv response="180" optional="true"/>\n'
        '  <recv response="183" optional="true"/>\n'
        '  <recv response="200" rtd="true" timeout="30000">\n'
        '    <action><log message="[clock_tick] answered [call_number]"/></action>\n'
        "  </recv>\n"
        "  <send><![CDATA[\n"
        "ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n"
        f"{_HEADERS}\nCSeq: 1 ACK\nContent-Length: 0\n\n]]></send>\n"
        + _play(line_pcap)
        + f'  <pause milliseconds="{journey.menu_wait_ms}"/>\n'
        + digit("5", journey.consent_wait_ms)
        + digit("2", journey.hold_ms)
        + _log("bye")
        + '  <send retrans="500"><![CDATA[\n'
        "BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0\n"
        f"{_HEADERS}\nCSeq: 2 BYE\nContent-Length: 0\n\n]]></send>\n"
        '  <recv response="200" crlf="true"/>\n'
        "</scenario>\n"
    )


@dataclass(frozen=True)
class SippResult:
    ok: int
    failed: int
    #: The most calls up at once.
    concurrent: int
    #: Seconds (SIPp's clock) each call was answered, and when its INVITE went out.
    invites: tuple[float, ...]
    answers: tuple[float, ...]
    exit_code: int

    @property
    def setup_rate(self) -> float | None:
        """Answered calls per second, from the first INVITE to the last answer."""
        if len(self.answers) < 2 or not self.invites:
            return None
        span = max(self.answers) - min(self.invites)
        return len(self.answers) / span if span > 0 else None


class Sipp:
    """SIPp in the PBX root (chrooted) or on the host; files go to a work directory it sees."""

    def __init__(self, install: AsteriskInstall, name: str) -> None:
        self.root = install.root
        if self.root is not None and (self.root / SIPP_BIN.lstrip("/")).exists():
            self.inner_dir = f"/tmp/{name}"
            self.dir = self.root / self.inner_dir.lstrip("/")
        elif shutil.which("sipp"):
            self.root = None
            self.dir = Path("/tmp") / name
            self.inner_dir = str(self.dir)
        else:
            where = f"in {install.root}" if install.root else "on this host"
            raise SippUnavailable(
                f"SIPp (Debian package sip-tester) is not installed {where}: "
                + (
                    f"chroot {install.root} apt-get install sip-tester"
                    if install.root
                    else "apt-get install sip-tester"
                )
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)

    def inner(self, name: str) -> str:
        return f"{self.inner_dir}/{name}"

    def host_share(self, name: str) -> Path:
        return (self.root / SIPP_SHARE.lstrip("/") if self.root else Path(SIPP_SHARE)) / name

    def _command(self, args: list[str]) -> list[str]:
        if self.root is None:
            return ["sipp", *args]
        return ["chroot", str(self.root), SIPP_BIN, *args]

    async def run(
        self,
        tag: str,
        target: tuple[str, int],
        scenario_text: str,
        calls: int,
        rate: float,
        media_port: int,
        timeout_s: int,
    ) -> SippResult:
        """Place `calls` calls at `rate` a second, all up at once, and wait for SIPp to end."""
        files = {k: f"{tag}-{k}" for k in ("scenario.xml", "stat.csv", "logs.log", "errors.log")}
        (self.dir / files["scenario.xml"]).write_text(scenario_text, encoding="ascii")
        for k in ("stat.csv", "logs.log", "errors.log"):
            (self.dir / files[k]).unlink(missing_ok=True)
        args = [
            f"{target[0]}:{target[1]}",
            "-sf", self.inner(files["scenario.xml"]),
            "-s", "120",
            "-i", "127.0.0.1",
            "-mi", "127.0.0.1",
            "-mp", str(media_port),
            "-m", str(calls),
            "-l", str(calls),
            "-r", f"{rate:g}",
            "-rp", "1000",
            "-nostdin",
            "-trace_stat", "-stf", self.inner(files["stat.csv"]), "-fd", "1",
            "-trace_logs", "-log_file", self.inner(files["logs.log"]),
            "-trace_err", "-error_file", self.inner(files["errors.log"]),
            "-timeout", f"{timeout_s}s", "-timeout_error",
        ]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *self._command(args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        code = proc.returncode if proc.returncode is not None else -1
        stats = _final_counts(self.dir / files["stat.csv"])
        invites, answers = _events(self.dir / files["logs.log"])
        if stats is None or not invites:
            raise RuntimeError(f"sipp exited with {code}: {err.decode(errors='replace')[-800:]}")
        ok, _, peak = stats
        # A call still up when SIPp's time ran out (-timeout) is failed, like one that failed.
        return SippResult(ok, calls - ok, peak, invites, answers, code)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _final_counts(stat: Path) -> tuple[int, int, int] | None:
    """Successful and failed calls (the last line of SIPp's statistics file) and the most
    calls up at once (its CurrentCall column, sampled every second)."""
    try:
        lines = [ln for ln in stat.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    if len(lines) < 2:
        return None
    col = {name: i for i, name in enumerate(lines[0].split(";"))}
    last = lines[-1].split(";")
    rows = [ln.split(";") for ln in lines[1:]]
    peak = max(int(r[col["CurrentCall"]]) for r in rows)
    return int(last[col["SuccessfulCall(C)"]]), int(last[col["FailedCall(C)"]]), peak


def _events(log: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    invites: list[float] = []
    answers: list[float] = []
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return (), ()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit():
            if parts[1] == "invite":
                invites.append(int(parts[0]) / 1000)
            elif parts[1] == "answered":
                answers.append(int(parts[0]) / 1000)
    return tuple(invites), tuple(answers)


def raise_open_files_limit() -> int:
    """Raise this process's open-files soft limit to the hard limit (children inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
