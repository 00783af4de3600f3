"""Helpers for the end-to-end ring group tests (tests/test_e2e_ringgroup_*.py) and the admin
tests: callers dialling 120 and choosing the line, counselors' phones, the flow spy
(the observer seam, `Hotline.watch`), the database rows, the admin API and `ivr-admin`, and
feature codes dialled from a phone.

Counselors' state lasts for the whole session (a 300 s abuse wrap-up, a pause), so each test
has its own counselors or leaves them as it found them:
    counselor01-03  ring order, shift change        counselor04  no-answer pause, feature codes
    counselor05     no-answer partner, warm transfer counselor06  console softphone (abuse)
    counselor07     abuse end (wrap-up)              counselor08  admin CLI, flagged re-call
    counselor09     the web desk's counselor screen (abuse end from the desk)
    counselor10     the desk's callback, withdrawal and crisis buttons
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.app import SECRETS
from ivr.ari.client import AriNotFound
from ivr.flow import call as flow
from ivr.paths import PROJECT_ROOT
from ivr.phone.audio import read_wav, tone_ratio
from ivr.phone.remote import RemotePhone
from tests.conftest import TEST_CALLER_NUMBER, Hotline, PhoneFactory

CONNECTED = flow.State.CONNECTED
WAITING = flow.State.WAITING

#: A tone counts as heard with this share of the received power at its frequency (two
#: parties mixed give about half each); a tone not heard stays far below NOT_HEARD.
HEARD = 0.15
NOT_HEARD = 0.03


class Spy:
    """A spy (see `Hotline.watch`): it records every command the controller carries out,
    with the wall-clock time (the controller's clock)."""

    def __init__(self) -> None:
        self.commands: list[tuple[float, flow.Command]] = []

    def __call__(self, cmd: flow.Command) -> None:
        self.commands.append((time.time(), cmd))

    def plays(self, call_id: str, target: flow.Target | None = None) -> list[flow.Play]:
        return [
            c
            for _, c in self.commands
            if isinstance(c, flow.Play)
            and c.playback_id.startswith(f"{call_id}-pb")
            and (target is None or c.target is target)
        ]


def announcements(spy: Spy, call_id: str) -> list[flow.Play]:
    """The waiting caller's announcements (not the line's intro / consent question)."""
    return [
        p for p in spy.plays(call_id, flow.Target.HOLDING) if "loneliness_intro" not in p.prompts
    ]


@contextlib.contextmanager
def spying(hotline: Hotline) -> Iterator[Spy]:
    spy = Spy()
    with hotline.watch(spy):
        yield spy


async def until(
    check: Callable[[], Any], timeout: float = 10, what: str = "condition", step: float = 0.1
) -> Any:
    """Poll `check` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


async def record_for(phone: RemotePhone, path: Path, seconds: float) -> Path:
    await phone.record(path)
    await asyncio.sleep(seconds)
    return Path(await phone.stop_record())


async def hears(
    phone: RemotePhone, tmp_path: Path, name: str, tones: tuple[float, ...], timeout: float = 15
) -> Any:
    """Record the phone in 1.5 s spans until every tone is heard in one span; that span."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        n += 1
        wav = read_wav(await record_for(phone, tmp_path / f"{name}-{n}.wav", 1.5))
        ratios = {f: tone_ratio(wav.samples, wav.rate, f) for f in tones}
        if all(r >= HEARD for r in ratios.values()):
            return wav
        if time.monotonic() > deadline:
            pytest.fail(f"{name}: not all of {tones} heard within {timeout} s: {ratios}")


async def dial(
    hotline: Hotline, phones: PhoneFactory, name: str, number: str = TEST_CALLER_NUMBER
) -> tuple[RemotePhone, str]:
    """A caller dials 120 and is answered; returns the phone and the controller's call id."""
    before = set(hotline.controller.calls)
    caller = await phones(name)
    await caller.identity(number)
    await caller.call(hotline.uri_120)
    await caller.wait_for("call_state", state="CONFIRMED", timeout=10)
    new = await until(
        lambda: [c for c in hotline.controller.calls if c not in before],
        what=f"the controller to see {name}'s call",
    )
    return caller, new[0]


async def choose_line(hotline: Hotline, caller: RemotePhone, call_id: str) -> None:
    """The caller presses 5 (the loneliness line). If the line then asks for consent to keep a
    summary of the counseling, the caller answers 2 (no) as soon as it is asked."""
    await caller.dtmf("5")
    task = asyncio.create_task(_decline_summary(hotline, caller, call_id))
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()


async def _decline_summary(hotline: Hotline, caller: RemotePhone, call_id: str) -> None:
    consent = getattr(flow.State, "CONSENT", None)
    before = (flow.State.MENU_PLAYING, flow.State.MENU_WAITING, flow.State.INTRO)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(60):
            while consent is not None:
                call = hotline.controller.calls.get(call_id)
                if call is None:
                    return
                if call.flow.state is consent:
                    await caller.dtmf("2")
                    return
                if call.flow.state not in before:
                    return
                await asyncio.sleep(0.05)


async def counselor(
    hotline: Hotline,
    phones: PhoneFactory,
    endpoint: str,
    *,
    auto_answer: bool = False,
    delay_ms: int = 0,
) -> RemotePhone:
    phone = await phones(endpoint)
    if auto_answer:
        await phone.auto_answer(delay_ms=delay_ms)
    reg = await phone.register(endpoint, hotline.password(endpoint), hotline.domain)
    assert reg["code"] == 200 and reg["active"], reg
    await hotline.wait_endpoint(endpoint, "online")
    return phone


def member(hotline: Hotline, name: str) -> dict[str, Any]:
    return next(m for m in hotline.controller.members() if m["member"] == name)


def ring_attempts(hotline: Hotline, call_ids: list[str]) -> list[dict[str, Any]]:
    marks = ",".join("?" * len(call_ids))
    sql = f"SELECT * FROM ring_attempts WHERE call_id IN ({marks}) ORDER BY started_at, rowid"
    return rows_where(hotline, sql, *call_ids)


def rows_where(hotline: Hotline, sql: str, *args: Any) -> list[dict[str, Any]]:
    import sqlite3

    db = sqlite3.connect(hotline.settings.state_path(hotline.settings.database))
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(sql, args)]
    finally:
        db.close()


async def wait_channel_gone(
    hotline: Hotline, channel_id: str, what: str, timeout: float = 5
) -> None:
    deadline = time.monotonic() + timeout
    while channel_id in {c["id"] for c in await hotline.ari.get("channels")}:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} ({channel_id}) is still up in Asterisk after {timeout} s")
        await asyncio.sleep(0.1)


async def playback_state(hotline: Hotline, playback_id: str) -> str:
    """An ARI playback's state, or "gone" once Asterisk has finished (or failed) it."""
    try:
        return str((await hotline.ari.get(f"playbacks/{playback_id}"))["state"])
    except AriNotFound:
        return "gone"


def header(headers: dict[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


async def api(
    hotline: Hotline, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    token = hotline.app[SECRETS].admin_token
    url = f"http://127.0.0.1:{hotline.settings.status_port}{path}"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.request(method, url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as r,
    ):
        return r.status, await r.json(content_type=None)


def no_busy_member_rung(hotline: Hotline, since: float) -> None:
    """No ring attempt started for a member while that member was on a call (talking)."""
    attempts = rows_where(hotline, "SELECT * FROM ring_attempts WHERE started_at >= ?", since)
    calls = rows_where(
        hotline,
        "SELECT * FROM calls WHERE answered_at IS NOT NULL AND started_at >= ?",
        since - 120,
    )
    for a in attempts:
        for c in calls:
            if c["member"] != a["member"] or c["call_id"] == a["call_id"]:
                continue
            end = c["ended_at"] if c["ended_at"] is not None else float("inf")
            assert not (c["answered_at"] < a["started_at"] < end), (
                f"{a['member']} was rung for {a['call_id']} while talking on {c['call_id']}"
            )


async def feature_code(hotline: Hotline, phone: RemotePhone, code: str, wav: Path) -> float:
    """Dial a feature code from a registered phone; returns the seconds until the PBX hung up."""
    await phone.call(f"sip:{code}@{hotline.domain}")
    await phone.record(wav)
    await phone.wait_for("call_state", state="CONFIRMED", timeout=10)
    start = time.monotonic()
    await phone.wait_for("call_state", state="DISCONNECTED", timeout=15)
    await phone.wait_for("recorded", timeout=10)
    return time.monotonic() - start


async def ivr_admin(hotline: Hotline, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ)
    env["IVR120_STATE_DIR"] = str(hotline.settings.state_dir)
    env["IVR120_STATUS_PORT"] = str(hotline.settings.status_port)
    env["PYTHONPATH"] = str(PROJECT_ROOT)  # this checkout's code, not the installed script's
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivr.admin",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=PROJECT_ROOT,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
