"""Shared fixtures. The end-to-end fixtures start the real product: a real Asterisk (system or
cached Debian root) with the project's generated configuration, the controller, and pjsua2
phones in their own processes. Nothing here skips: a missing piece fails the test run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ivr.app import ARI, CONTROLLER, PBX, SECRETS, Options, build_app
from ivr.ari.client import AriClient
from ivr.config import Settings, load_settings
from ivr.controller import Controller
from ivr.pbx.runner import Pbx
from ivr.phone.audio import write_tone_wav
from ivr.phone.remote import RemotePhone
from ivr.store import Store

# The suite captures INFO (pyproject: log_level) to show the product's lines on a failure; the
# fake servers' access lines would carry request URLs (a dialled test number among them) into
# the privacy tests' captured text.
logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

#: A made-up caller number (never a real one): the tests check it is never stored in clear.
TEST_CALLER_NUMBER = "0299990000"
COUNSELORS = tuple(f"counselor{n:02d}" for n in range(1, 11))
#: The follow-up teams and the supervisor of the session's hotline.
SOCIAL_WORKERS = ("social01", "social02")
COMPANIONS = ("companion01", "companion02", "companion03")
SUPERVISORS = ("supervisor01",)
#: A made-up number the citizen phone on the trunk answers (never a real one).
CITIZEN_NUMBER = "0299990001"


def write_teams(path: Path, hours: dict[str, list[str]] | None = None) -> Path:
    """A teams file: both follow-up teams on duty round the clock (time-independent tests),
    plus members' own `hours` ("mon-fri 09:00-18:00" entries)."""
    always = '["mon-sun 00:00-24:00"]'
    lines = [
        "[team.social_workers]",
        f"hours = {always}",
        "[team.companions]",
        f"hours = {always}",
        "[member]",
    ]
    for member, entries in (hours or {}).items():
        lines.append(f"{member} = {json.dumps(entries, ensure_ascii=False)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_roster(path: Path, on_shift: tuple[str, ...], off_shift: tuple[str, ...] = ()) -> Path:
    """A roster where `on_shift` work every shift (one team, a 24-hour rotation) and
    `off_shift` are in no team (never on shift)."""
    lines = []
    for c in (*on_shift, *off_shift):
        lines += ["[[counselor]]", f'id = "{c}"', f'name = "{c}"', f'endpoint = "{c}"', ""]
    team = ", ".join(f'"{c}"' for c in on_shift)
    lines += [
        "[teams]",
        f"A = [{team}]",
        "",
        "[rotation]",
        "start = 2025-04-01",
        'shift_start = "09:00"',
        "shift_hours = 24",
        'cycle = ["A"]',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Observers:
    """The product's observer seam (`Options(observer=...)`): hands every command the
    controller carried out to the spies a test is watching with."""

    def __init__(self) -> None:
        self.spies: list[Callable[[Any], None]] = []

    def __call__(self, command: Any, error: BaseException | None) -> None:
        for spy in list(self.spies):
            spy(command)


def observed_options(**kw: Any) -> Options:
    """Options for a product the tests watch (see `Hotline.watch`)."""
    return Options(observer=Observers(), **kw)


@dataclass
class Hotline:
    """The running product, as the end-to-end tests see it."""

    settings: Settings
    app: web.Application
    tmp: Path

    @property
    def ari(self) -> AriClient:
        return self.app[ARI]

    @property
    def controller(self) -> Controller:
        return self.app[CONTROLLER]

    @property
    def pbx(self) -> Pbx:
        return self.app[PBX]

    @contextlib.contextmanager
    def watch(self, spy: Callable[[Any], None]) -> Iterator[None]:
        """Call `spy` with every command the controller carries out while inside."""
        observers = self.controller.ctx.observer
        assert isinstance(observers, Observers), "build the app with observed_options()"
        observers.spies.append(spy)
        try:
            yield
        finally:
            observers.spies.remove(spy)

    @property
    def uri_120(self) -> str:
        return f"sip:120@127.0.0.1:{self.settings.sip_port}"

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self.settings.sip_port}"

    def password(self, endpoint: str) -> str:
        return self.app[SECRETS].sip_passwords[endpoint]

    def rows(self, sql: str = "SELECT * FROM calls ORDER BY started_at") -> list[dict[str, Any]]:
        """Read the call records from the database file, as an administrator would."""
        db = sqlite3.connect(self.settings.state_path(self.settings.database))
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql)]
        finally:
            db.close()

    async def wait_row(self, call_id: str, timeout: float = 10) -> dict[str, Any]:
        """The finished record of one call (outcome set)."""
        async with asyncio.timeout(timeout):
            while True:
                rows = [r for r in self.rows() if r["call_id"] == call_id and r["outcome"]]
                if rows:
                    return rows[0]
                await asyncio.sleep(0.1)

    async def wait_clean(self, timeout: float = 10) -> None:
        """Wait until Asterisk has no channel and no bridge left, and the controller no call."""
        channels: Any = None
        bridges: Any = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    channels = await self.ari.get("channels")
                    bridges = await self.ari.get("bridges")
                    if not channels and not bridges and not self.controller.calls:
                        return
                    await asyncio.sleep(0.1)
        except TimeoutError:
            pytest.fail(
                f"left behind: channels={[c['name'] for c in channels or []]} "
                f"bridges={[b['id'] for b in bridges or []]} calls={list(self.controller.calls)}"
            )

    async def sweep(self) -> None:
        """Before a test: wait until idle; what an earlier test left behind (that test failed
        at its teardown for it) is hung up and deleted, so it fails no test after it."""
        try:
            await self.wait_clean()
            return
        except pytest.fail.Exception as exc:
            log.warning("an earlier test %s: hanging it up", exc)
        for ch in await self.ari.get("channels"):
            with contextlib.suppress(Exception):
                await self.ari.delete(f"channels/{ch['id']}")
        for b in await self.ari.get("bridges"):
            with contextlib.suppress(Exception):
                await self.ari.delete(f"bridges/{b['id']}")
        await self.wait_clean()

    async def wait_endpoint(self, endpoint: str, state: str, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while True:
                ep = await self.ari.get(f"endpoints/PJSIP/{endpoint}")
                if ep.get("state") == state:
                    return
                await asyncio.sleep(0.1)

    async def wait_state(self, call_id: str, state: Any, timeout: float = 20) -> None:
        """Wait until the controller's flow for `call_id` is in `state`."""
        async with asyncio.timeout(timeout):
            while self.controller.calls[call_id].flow.state is not state:
                await asyncio.sleep(0.05)

    async def wait_listening(self, call_id: str, word: str, timeout: float = 30) -> None:
        """Wait until the caller's audio tap is recognising a question with `word` among its
        phrases and its audio is arriving (the Listen command carried out, and RTP frames
        received after that was seen, not only earlier in the call — after a counselor left,
        say): a word spoken from then on reaches the recognizer."""
        listening_at: int | None = None  # frames received when the word was first listened for
        async with asyncio.timeout(timeout):
            while True:
                call = self.controller.calls.get(call_id)
                tap = call.taps.get("caller") if call is not None else None
                if (
                    tap is not None
                    and word in tap._phrases  # noqa: SLF001 - what the tap listens for
                    and tap.receiver is not None
                ):
                    frames = tap.receiver.stats.frames
                    if listening_at is None:
                        listening_at = frames
                    elif frames > listening_at:
                        return
                else:
                    listening_at = None
                await asyncio.sleep(0.05)

    async def press_5(self, caller: Any, call_id: str, consent: str | None = "2") -> None:
        """Choose the loneliness line (queued at once), then answer the summary consent
        question (2 = no) while it is asked — unless a counselor answered first."""
        from ivr.flow.call import State

        await caller.dtmf("5")
        flow = self.controller.calls[call_id].flow
        async with asyncio.timeout(20):
            while flow.state in (State.MENU_PLAYING, State.MENU_WAITING):
                await asyncio.sleep(0.05)
        if flow.state is State.CONSENT and consent is not None:
            await caller.dtmf(consent)  # keys answer at any moment of the question
            async with asyncio.timeout(20):
                while flow.state is State.CONSENT:
                    await asyncio.sleep(0.05)

    async def wait_play(
        self, spy: list[Any], call_id: str, prompt: str, timeout: float = 60
    ) -> Any:
        """Wait until the controller carried out a Play with `prompt` for the call; return it.
        `spy` is a list a `watch` appends to."""
        from ivr.flow.call import Play

        async with asyncio.timeout(timeout):
            while True:
                for cmd in spy:
                    if (
                        isinstance(cmd, Play)
                        and cmd.playback_id.startswith(f"{call_id}-")
                        and prompt in cmd.prompts
                    ):
                        return cmd
                await asyncio.sleep(0.05)

    async def last_call_id(self, timeout: float = 10) -> str:
        async with asyncio.timeout(timeout):
            while True:
                if self.controller.calls:
                    return list(self.controller.calls)[-1]
                await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def hotline(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hotline]:
    tmp = tmp_path_factory.mktemp("hotline")
    roster = write_roster(tmp / "roster.toml", COUNSELORS)
    teams = write_teams(tmp / "teams.toml")
    settings = load_settings(
        env={},
        overrides={
            "instance": f"test{os.getpid()}",
            "state_dir": tmp / "state",
            "sip_bind": "127.0.0.1",
            "sip_port": free_port(socket.SOCK_DGRAM),
            "http_port": free_port(),
            "status_port": free_port(),
            "desk_port": free_port(),
            "rtp_port_start": 31000,
            "rtp_port_end": 31999,
            # A phone that vanished without a BYE is hung up after this (tests/
            # test_e2e_vanished_phone.py); every phone of the tests sends RTP all along.
            "rtp_timeout": 15,
            "counselors": ",".join(COUNSELORS),
            "agents": "agent01",
            "social_workers": ",".join(SOCIAL_WORKERS),
            "companions": ",".join(COMPANIONS),
            "supervisors": ",".join(SUPERVISORS),
            "teams_file": teams,
            "outbound_trunk_port": free_port(socket.SOCK_DGRAM),
            "menu_input_timeout": 3.0,
            "hold_reassurance_interval": 4.0,
            "ring_timeout": 15,
            "ring_retry_interval": 1.0,
            "roster_file": roster,
            "wrapup_seconds": 0,
            "no_answer_cooldown_seconds": 5,
            "callback_offer_after": 8,
            # Every browser of the session's tests comes from 127.0.0.1: more chats than one
            # citizen's address may start in ten minutes (ivr.chat.limits).
            "chat_starts_per_address": 100,
            # The dialler calls only in the follow-up tests (a new database starts paused;
            # tests/test_e2e_followup.py resumes it with `ivr-admin followup resume` and pauses
            # it again): tasks other tests leave (a callback request, a `*8`) must not ring
            # their staff phones.
            "followup_dialling": False,
            "both_silence_notify": 4,
            "caller_silence_notify": 8,
            # The wallboard's wellbeing mark within a test's call (tests/test_e2e_wallboard.py).
            "wallboard_wellbeing_minutes": 0.05,
            "log_level": "INFO",
        },
    )
    app = build_app(settings, observed_options(serve_desk=True))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", settings.status_port)
    await site.start()
    try:
        yield Hotline(settings, app, tmp)
    finally:
        pbx = app.get(PBX)
        await runner.cleanup()
        if pbx is not None:
            # Keep Asterisk's log with the test's files for diagnosis, then drop the instance.
            with contextlib.suppress(OSError):
                shutil.copy(pbx.log_file, tmp / "asterisk-messages.log")
            pbx.remove_instance()


PhoneFactory = Callable[..., Awaitable[RemotePhone]]


@pytest.fixture
async def phones() -> AsyncIterator[PhoneFactory]:
    """Start pjsua2 phones; all are closed (hung up, unregistered) at the end of the test."""
    started: list[RemotePhone] = []

    async def start(name: str = "phone") -> RemotePhone:
        phone = await RemotePhone.start(name=name)
        started.append(phone)
        return phone

    try:
        yield start
    finally:
        for phone in started:
            # Shown with a failure only (pytest shows a test's output then): what each phone
            # saw and said, the first thing to read when a call did not go as asserted.
            print(phone.diagnostics())
            with contextlib.suppress(Exception):
                await phone.close()


@pytest.fixture
async def citizen(hotline: Hotline) -> AsyncIterator[RemotePhone]:
    """The citizen: a pjsua2 phone where the outbound trunk points (127.0.0.1 at
    `outbound_trunk_port`), not registered anywhere, ready to be called. Closed at the end."""
    phone = await RemotePhone.start(name="citizen", sip_port=hotline.settings.outbound_trunk_port)
    try:
        yield phone
    finally:
        with contextlib.suppress(Exception):
            await phone.close()


@pytest.fixture
async def db_store(tmp_path: Path) -> AsyncIterator[Store]:
    """A real SQLite store in the test's directory (`ivr.db`, migrated), closed at the end."""
    db = await Store.open(tmp_path / "ivr.db")
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def clean_hotline(hotline: Hotline) -> AsyncIterator[Hotline]:
    """The hotline, checked to be idle before and after the test (nothing left behind)."""
    for ep in COUNSELORS:
        await hotline.wait_endpoint(ep, "offline", timeout=15)
    await hotline.sweep()
    yield hotline
    await hotline.wait_clean()


#: The tones the parties of an end-to-end call play, to tell by ear who is heard.
CALLER_TONE = 600.0
COUNSELOR_TONE = 1000.0
CRISIS_TONE = 1400.0


@pytest.fixture
def tones(tmp_path: Path) -> dict[str, Path]:
    return {
        "caller": write_tone_wav(tmp_path / "caller.wav", CALLER_TONE, seconds=2.0),
        "counselor": write_tone_wav(tmp_path / "counselor.wav", COUNSELOR_TONE, seconds=2.0),
        "crisis": write_tone_wav(tmp_path / "crisis.wav", CRISIS_TONE, seconds=2.0),
    }


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium driven through chromedriver (tests/desk_support.py); fails, never
    skips, when either is missing."""
    from tests.desk_support import start_browser

    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()
