"""End to end against a real Asterisk, the controller and pjsua2 phones, the counselor's and
the administrator's tools: feature codes on the phone, `ivr-admin`, the console softphone.

Each test asserts what really happened (ring attempts, counselor events, database rows, what
the phones saw and heard, what the controller reports). Counselors' state lasts for the
whole session; which test uses which counselors is listed in tests/e2e_ringgroup_support.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

from ivr.paths import PROJECT_ROOT
from ivr.phone.audio import is_silent, read_wav
from tests.conftest import COUNSELORS, Hotline, PhoneFactory
from tests.e2e_ringgroup_support import (
    CONNECTED,
    api,
    choose_line,
    counselor,
    dial,
    feature_code,
    ivr_admin,
    member,
    rows_where,
    until,
)


# --------------------------------------------------------------------------- 8. feature codes
async def test_feature_codes_pause_and_unpause_from_the_phone(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    name = "counselor04"
    t0 = time.time()
    k = await counselor(hotline, phones, name)
    try:
        took = await feature_code(hotline, k, "*53", tmp_path / "pause.wav")
        heard = read_wav(tmp_path / "pause.wav")
        assert took > 1.5 and heard.seconds > 1.5 and not is_silent(heard.samples), took
        m = member(hotline, name)
        assert m["paused"] and m["pause_reason"] == "phone" and m["state"] == "paused", m

        took = await feature_code(hotline, k, "*54", tmp_path / "unpause.wav")
        heard = read_wav(tmp_path / "unpause.wav")
        assert took > 1.5 and heard.seconds > 1.5 and not is_silent(heard.samples), took
        m = member(hotline, name)
        assert not m["paused"] and m["state"] == "idle", m
    finally:
        if member(hotline, name)["paused"]:
            await api(hotline, "POST", f"/api/counselors/{name}/unpause")
    events = rows_where(
        hotline, "SELECT * FROM counselor_events WHERE member=? AND at>=?", name, t0
    )
    assert [(e["field"], e["old"], e["new"], e["reason"]) for e in events] == [
        ("paused", "false", "true", "phone"),
        ("paused", "true", "false", "phone"),
    ], events
    assert not (await hotline.ari.get("channels"))


# --------------------------------------------------------------------------- 9. admin CLI
async def test_admin_cli_lists_pauses_and_unpauses(clean_hotline: Hotline) -> None:
    hotline = clean_hotline
    secrets_file = hotline.settings.state_dir / "secrets.json"
    secrets_before = secrets_file.read_bytes()
    t0 = time.time()

    rc, out, err = await ivr_admin(hotline, "counselors")
    assert rc == 0, err
    assert "상담사 member" in out and "휴식 paused" in out and "상태 state" in out, out
    for c in (*COUNSELORS, "agent01"):
        assert c in out, out

    try:
        rc, out, err = await ivr_admin(hotline, "pause", "counselor08", "--reason", "training")
        assert rc == 0, err
        m = member(hotline, "counselor08")
        assert m["paused"] and m["pause_reason"] == "training" and m["state"] == "paused", m
        rc, out, err = await ivr_admin(hotline, "counselors")
        line = next(x for x in out.splitlines() if x.startswith("counselor08"))
        assert "training" in line and "paused" in line, line
    finally:
        rc, out, err = await ivr_admin(hotline, "unpause", "counselor08")
    assert rc == 0, err
    m = member(hotline, "counselor08")
    assert not m["paused"] and m["state"] == "idle", m
    events = rows_where(
        hotline, "SELECT * FROM counselor_events WHERE member=? AND at>=?", "counselor08", t0
    )
    assert [(e["new"], e["reason"]) for e in events] == [("true", "training"), ("false", "admin")]

    rc, out, err = await ivr_admin(hotline, "pause", "counselor99")
    assert rc == 1, (rc, out, err)
    assert "counselor99" in err and "없는 상담사" in err, err

    # A tool that reads the admin token must not rewrite the service's secrets file.
    assert secrets_file.read_bytes() == secrets_before, "ivr-admin rewrote secrets.json"


# --------------------------------------------------------------------------- 10. softphone
class Console:
    """The console softphone as a subprocess, read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    async def expect(self, text: str, timeout: float = 15) -> str:
        def found() -> str | None:
            return next((x for x in self.lines if text in x), None)

        try:
            return await until(found, timeout=timeout, what=f"softphone line {text!r}")  # type: ignore[no-any-return]
        except BaseException:
            print("\n".join(self.lines))
            raise

    async def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader
        if self.proc.stdin is not None:
            self.proc.stdin.close()


async def test_console_softphone_headless_answer_and_abuse_end(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    number = "0299991010"
    name = "counselor06"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("IVR120_SIP_PASSWORD", None)
    password_file = tmp_path / "sip-password"
    password_file.write_text(hotline.password(name) + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivr.phone.softphone",
        "--user",
        name,
        "--password-file",
        str(password_file),
        "--server",
        hotline.domain,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=PROJECT_ROOT,
    )
    console = Console(proc)
    hashed = None
    try:
        await console.expect("등록되었습니다", timeout=20)
        await hotline.wait_endpoint(name, "online")
        c1, id1 = await dial(hotline, phones, "caller", number=number)
        await choose_line(hotline, c1, id1)
        incoming = await console.expect("전화가 왔습니다", timeout=30)
        details = await console.expect("메뉴 ")

        await console.send("a")
        await console.expect("통화 중입니다.")
        await hotline.wait_state(id1, CONNECTED, timeout=10)
        assert member(hotline, name)["state"] == "busy"

        await console.send("x")
        await console.expect("폭언 종료")
        await c1.wait_for("call_state", state="DISCONNECTED", timeout=20)
        await console.expect("통화가 끝났습니다.")
        row = await hotline.wait_row(id1)
        hashed = row["caller_hash"]
        assert row["outcome"] == "abuse_ended" and row["member"] == name, row
        assert rows_where(hotline, "SELECT * FROM caller_flags WHERE call_id=?", id1)

        await console.send("q")
        rc = await asyncio.wait_for(proc.wait(), 15)
        assert rc == 0
        await console.expect("종료합니다.")
        output = "\n".join(console.lines)
        assert number not in output and number[1:] not in output, output
        # What the hotline knows about the call, from the INVITE's X-IVR120-* headers.
        assert "외로움안녕 상담" in incoming and "loneliness" not in incoming, incoming
        assert "메뉴 5" in details and "대기 " in details and "초" in details, details
        assert "처음 전화한 번호" in details and "주의 표시 없음" in details, details
    finally:
        await console.stop()
        if hashed:
            await api(hotline, "DELETE", f"/api/flags/{hashed}")
