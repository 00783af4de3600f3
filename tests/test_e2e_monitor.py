"""End to end: a supervisor listens to, whispers into and barges into a live call from the
wallboard (POST /wallboard/monitor over HTTP), on a real pjsua2 phone, against the real product.
Each party plays its own tone (caller 600 Hz, counselor 1000 Hz, supervisor 1400 Hz), so what
each phone receives tells who is heard. Every test ends with nothing left in Asterisk."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.desk.http import SCREENS
from ivr.keys import STORE
from ivr.phone.audio import tone_ratio
from ivr.phone.remote import RemotePhone
from ivr.wallboard.monitor import MONITOR_PREFIX
from ivr.wallboard.monitoring import MONITORS, Monitors
from ivr.web.auth import hash_password
from ivr.web.site import DESK_APP
from tests.conftest import (
    CALLER_TONE,
    COUNSELOR_TONE,
    CRISIS_TONE,
    Hotline,
    PhoneFactory,
)
from tests.e2e_ringgroup_support import (
    CONNECTED,
    NOT_HEARD,
    choose_line,
    counselor,
    dial,
    hears,
    until,
)

SUPERVISOR = "supervisor01"
SUPERVISOR_PW = "monitor-e2e-password"
SUPERVISOR_TONE = CRISIS_TONE
#: Left logged in and unpaused by the other tests (as in tests/test_e2e_wallboard.py).
COUNSELOR = "counselor02"


@pytest.fixture
def supervisor_tone(tmp_path: Path) -> Path:
    from ivr.phone.audio import write_tone_wav

    return write_tone_wav(tmp_path / "supervisor.wav", SUPERVISOR_TONE, seconds=2.0)


def monitors(hotline: Hotline) -> Monitors:
    return hotline.app[DESK_APP][MONITORS]


class Wallboard:
    """The supervisor signed in to the desk over HTTP (aiohttp keeps the cookie)."""

    def __init__(self, hotline: Hotline) -> None:
        self.base = f"http://127.0.0.1:{hotline.settings.desk_port}"
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def csrf(self, path: str) -> str:
        async with self.http.get(f"{self.base}{path}") as resp:
            assert resp.status == 200, resp.status
            found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert found is not None
        return found.group(1)

    async def sign_in(self) -> None:
        form = {"csrf": await self.csrf("/signin"), "member": SUPERVISOR, "password": SUPERVISOR_PW}
        async with self.http.post(f"{self.base}/signin", data=form) as resp:
            assert resp.status == 200 and resp.url.path == "/wallboard", resp.url

    async def post(self, path: str, **form: str) -> tuple[int, str]:
        data = {"csrf": await self.csrf("/wallboard"), **form}
        async with self.http.post(f"{self.base}{path}", data=data, allow_redirects=False) as r:
            return r.status, r.headers.get("Location", "")


async def setup(
    hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    name: str,
    supervisor_answers: bool = True,
) -> tuple[RemotePhone, RemotePhone, RemotePhone, str, Wallboard]:
    """A caller talking with COUNSELOR (each playing its tone), the supervisor's phone
    registered (auto-answer unless told otherwise) and the supervisor signed in to the
    wallboard."""
    await hotline.app[STORE].change(
        "INSERT OR REPLACE INTO desk_passwords (member, hash, set_at, set_by)"
        " VALUES (?, ?, 0, 'test')",
        (SUPERVISOR, hash_password(SUPERVISOR_PW)),
    )
    sup = await counselor(hotline, phones, SUPERVISOR, auto_answer=supervisor_answers)
    staff = await counselor(hotline, phones, COUNSELOR, auto_answer=True)
    caller, call_id = await dial(hotline, phones, name)
    await choose_line(hotline, caller, call_id)
    await hotline.wait_state(call_id, CONNECTED, timeout=40)
    await caller.play(tones["caller"])
    await staff.play(tones["counselor"])
    board = Wallboard(hotline)
    try:
        await board.sign_in()
    except BaseException:
        await board.http.close()
        raise
    return caller, staff, sup, call_id, board


async def start(
    hotline: Hotline, board: Wallboard, sup: RemotePhone, call_id: str, mode: str
) -> str:
    status, location = await board.post("/wallboard/monitor", call_id=call_id, mode=mode)
    assert (status, location) == (303, f"/wallboard?done={mode}")
    await sup.wait_for("call_state", state="CONFIRMED", timeout=15)
    plan = await until(
        lambda: (
            (p := monitors(hotline).active.get(SUPERVISOR))
            and p.id in monitors(hotline).connected
            and p
        ),
        what=f"the {mode} connected",
    )
    return str(plan.id)


def audited(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]


async def no_monitor_left(hotline: Hotline) -> None:
    """Wait until the monitoring has ended: none of its channels or bridges left in Asterisk
    and the supervisor no longer monitoring."""

    async def left() -> list[str]:
        chans = [c["id"] for c in await hotline.ari.get("channels")]
        bridges = [b["id"] for b in await hotline.ari.get("bridges")]
        found = [x for x in (*chans, *bridges) if x.startswith(MONITOR_PREFIX)]
        return found + ([SUPERVISOR] if SUPERVISOR in monitors(hotline).active else [])

    deadline = time.monotonic() + 10
    while found := await left():
        if time.monotonic() > deadline:
            pytest.fail(f"monitoring left behind: {found}")
        await asyncio.sleep(0.1)


async def test_a_supervisor_listens_and_hears_both_parties_the_counselor_is_told(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    caller, staff, sup, call_id, board = await setup(hotline, phones, tones, "listened-caller")
    try:
        await start(hotline, board, sup, call_id, "listen")
        await hears(sup, tmp_path, "supervisor", (CALLER_TONE, COUNSELOR_TONE))
        screens = hotline.app[DESK_APP][SCREENS]
        view = await screens.view(COUNSELOR, time.time())
        assert view["monitored"] == "상담 감독 중"
        assert any(
            m == f"monitor: {SUPERVISOR} started listen on call {call_id} (counselor {COUNSELOR})"
            for m in audited(caplog)
        ), audited(caplog)

        await caller.hangup()  # the call ends: the monitoring ends with it
        await sup.wait_for("call_state", state="DISCONNECTED", timeout=10)
        await staff.wait_for("call_state", state="DISCONNECTED", timeout=10)
        await no_monitor_left(hotline)
        assert f"monitor: {SUPERVISOR} ended listen on call {call_id} (the call ended)" in audited(
            caplog
        )
        assert (await screens.view(COUNSELOR, time.time())).get("monitored") is None
    finally:
        await board.http.close()


def silent_at(wav: Any, freq: float) -> bool:
    return tone_ratio(wav.samples, wav.rate, freq) < NOT_HEARD


async def test_a_whisper_is_heard_by_the_counselor_only_and_ends_on_stop(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    supervisor_tone: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    caller, staff, sup, call_id, board = await setup(hotline, phones, tones, "whispered-caller")
    try:
        await start(hotline, board, sup, call_id, "whisper")
        await sup.play(supervisor_tone)
        await hears(sup, tmp_path, "supervisor", (CALLER_TONE, COUNSELOR_TONE))
        await hears(staff, tmp_path, "counselor", (CALLER_TONE, SUPERVISOR_TONE))
        # Meanwhile the caller hears the counselor and never the supervisor.
        by_caller = await hears(caller, tmp_path, "caller", (COUNSELOR_TONE,))
        assert silent_at(by_caller, SUPERVISOR_TONE), tone_ratio(
            by_caller.samples, by_caller.rate, SUPERVISOR_TONE
        )

        assert await board.post("/wallboard/monitor/stop") == (303, "/wallboard?done=stopped")
        await sup.wait_for("call_state", state="DISCONNECTED", timeout=10)
        await no_monitor_left(hotline)
        assert (
            f"monitor: {SUPERVISOR} ended whisper on call {call_id} (stopped by the supervisor)"
            in audited(caplog)
        )
        # The call goes on, the two parties still hear each other.
        assert hotline.controller.calls[call_id].flow.state is CONNECTED
        await hears(caller, tmp_path, "caller-after", (COUNSELOR_TONE,))
        await hears(staff, tmp_path, "counselor-after", (CALLER_TONE,))
        await caller.hangup()
        await staff.wait_for("call_state", state="DISCONNECTED", timeout=10)
    finally:
        await board.http.close()


async def test_a_barge_is_heard_by_both_and_ends_when_the_supervisor_hangs_up(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    supervisor_tone: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    caller, staff, sup, call_id, board = await setup(hotline, phones, tones, "barged-caller")
    try:
        await start(hotline, board, sup, call_id, "barge")
        await sup.play(supervisor_tone)
        await hears(sup, tmp_path, "supervisor", (CALLER_TONE, COUNSELOR_TONE))
        await hears(staff, tmp_path, "counselor", (CALLER_TONE, SUPERVISOR_TONE))
        await hears(caller, tmp_path, "caller", (COUNSELOR_TONE, SUPERVISOR_TONE))

        await sup.hangup()
        await no_monitor_left(hotline)
        assert (
            f"monitor: {SUPERVISOR} ended barge on call {call_id} (the supervisor hung up)"
            in audited(caplog)
        )
        talk = hotline.controller.calls[call_id].talk_bridge
        assert talk in {b["id"] for b in await hotline.ari.get("bridges")}  # the call's, kept
        await hears(caller, tmp_path, "caller-after", (COUNSELOR_TONE,))
        await caller.hangup()
        await staff.wait_for("call_state", state="DISCONNECTED", timeout=10)
    finally:
        await board.http.close()


async def _nothing() -> None:
    return None


async def handled_so_far(hotline: Hotline) -> None:
    """Return once the controller has handled every input queued before (they go in turn)."""
    await hotline.controller.submit(_nothing)


async def owned_in_asterisk(hotline: Hotline, plan_id: str) -> set[str]:
    chans = {c["id"] for c in await hotline.ari.get("channels")}
    bridges = {b["id"] for b in await hotline.ari.get("bridges")}
    return {x for x in chans | bridges if x.startswith(plan_id)}


async def test_a_reconnect_to_ari_keeps_a_live_listen_and_its_snoop(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    hotline = clean_hotline
    caller, staff, sup, call_id, board = await setup(hotline, phones, tones, "reconnect-caller")
    try:
        plan_id = await start(hotline, board, sup, call_id, "listen")
        owned = {f"{plan_id}-sup", f"{plan_id}-snoop", plan_id}
        assert await owned_in_asterisk(hotline, plan_id) == owned

        # The websocket drops (the client's HTTP session closed under it, as a network failure
        # would); the controller reconnects and reconciles against Asterisk's channels.
        ari, before = hotline.ari, hotline.ari.connects
        await ari.close()
        await until(lambda: ari.connects > before and ari.ws_connected, what="ARI reconnected")
        await handled_so_far(hotline)  # the Connected event's reconcile is done

        recovered = [r.getMessage() for r in caplog.records if r.name == "ivr.recovery"]
        assert not [m for m in recovered if plan_id in m], recovered
        assert await owned_in_asterisk(hotline, plan_id) == owned
        assert monitors(hotline).active[SUPERVISOR].id == plan_id
        await handled_so_far(hotline)
        assert plan_id in monitors(hotline).connected
        await hears(sup, tmp_path, "supervisor-after", (CALLER_TONE, COUNSELOR_TONE))

        assert await board.post("/wallboard/monitor/stop") == (303, "/wallboard?done=stopped")
        await sup.wait_for("call_state", state="DISCONNECTED", timeout=10)
        await no_monitor_left(hotline)
        ended = [m for m in audited(caplog) if m.startswith(f"monitor: {SUPERVISOR} ended")]
        assert ended == [
            f"monitor: {SUPERVISOR} ended listen on call {call_id} (stopped by the supervisor)"
        ]
        await caller.hangup()
        await staff.wait_for("call_state", state="DISCONNECTED", timeout=10)
    finally:
        await board.http.close()


async def ring_only(board: Wallboard, sup: RemotePhone, call_id: str, mode: str) -> None:
    """Ask for `mode` on the call; the supervisor's phone rings (not answered)."""
    status, location = await board.post("/wallboard/monitor", call_id=call_id, mode=mode)
    assert (status, location) == (303, f"/wallboard?done={mode}")
    await sup.wait_for("incoming", timeout=15)


async def test_the_supervisors_phone_stops_ringing_when_the_call_ends_first(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    caller, staff, sup, call_id, board = await setup(
        hotline, phones, tones, "ended-first-caller", supervisor_answers=False
    )
    try:
        await ring_only(board, sup, call_id, "listen")

        await caller.hangup()
        # Cancelled on the call's end, long before the origination's 30 s ring time.
        await sup.wait_for("call_state", state="DISCONNECTED", timeout=5)
        await no_monitor_left(hotline)
        mine = [m for m in audited(caplog) if m.startswith(f"monitor: {SUPERVISOR}")]
        assert mine == [
            f"monitor: {SUPERVISOR} rang for listen on call {call_id} (counselor {COUNSELOR})",
            f"monitor: {SUPERVISOR} ended listen on call {call_id}"
            " (the call ended before the supervisor answered)",
        ]
        await staff.wait_for("call_state", state="DISCONNECTED", timeout=10)
    finally:
        await board.http.close()


async def test_a_barge_ends_on_the_event_of_the_counselor_hanging_up(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    supervisor_tone: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    caller, staff, sup, call_id, board = await setup(hotline, phones, tones, "barge-left-caller")
    try:
        plan_id = await start(hotline, board, sup, call_id, "barge")
        await sup.play(supervisor_tone)
        await hears(caller, tmp_path, "caller", (COUNSELOR_TONE, SUPERVISOR_TONE))
        leg = monitors(hotline).active[SUPERVISOR].target.leg_id

        await staff.hangup()
        await until(lambda: leg not in hotline.controller.legs, what="the counselor's leg gone")
        await handled_so_far(hotline)
        # Over on the leg's own event: the supervisor is not left alone with the caller.
        assert plan_id not in monitors(hotline).connected
        await sup.wait_for("call_state", state="DISCONNECTED", timeout=10)
        await no_monitor_left(hotline)
        assert (
            f"monitor: {SUPERVISOR} ended barge on call {call_id} (the counselor left the call)"
            in audited(caplog)
        )
        await caller.wait_for("call_state", state="DISCONNECTED", timeout=10)  # call completed
    finally:
        await board.http.close()


async def test_a_supervisor_declining_the_ring_ends_the_monitoring_at_once(
    clean_hotline: Hotline,
    phones: PhoneFactory,
    tones: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    hotline = clean_hotline
    caller, staff, sup, call_id, board = await setup(
        hotline, phones, tones, "declined-caller", supervisor_answers=False
    )
    try:
        await ring_only(board, sup, call_id, "whisper")
        await sup.reject(486)
        await no_monitor_left(hotline)  # within its 10 s, not at the end of the ring time
        assert (
            f"monitor: {SUPERVISOR} ended whisper on call {call_id}"
            " (the supervisor's phone did not answer)" in audited(caplog)
        )
        assert hotline.controller.calls[call_id].flow.state is CONNECTED  # the call goes on
        await caller.hangup()
        await staff.wait_for("call_state", state="DISCONNECTED", timeout=10)
    finally:
        await board.http.close()
