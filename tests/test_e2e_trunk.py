"""End to end against a real Asterisk: the follow-up teams' phones and the outbound trunk
(issue 10: staff teams, the trunk, test 7 "no outside number reachable").

The citizen is a pjsua2 phone where the trunk points (fixture `citizen`). A second ARI
application of the test's own (`TrunkWatch`), subscribed to the trunk endpoint, sees every
channel Asterisk creates on the trunk, however short-lived.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivr.app import SECRETS
from ivr.ari.client import AriClient
from ivr.ari.events import Connected, Event
from ivr.config import TRUNK_ENDPOINT
from ivr.phone.remote import RemotePhone
from ivr.staff.registration import OFF_SHIFT_MESSAGE
from ivr.timezone import SEOUL
from tests.conftest import CITIZEN_NUMBER, COMPANIONS, SOCIAL_WORKERS, Hotline, PhoneFactory
from tests.e2e_ringgroup_support import api, counselor, feature_code, member, rows_where, until
from tests.sip_raw import SipClient, StaffSip

WATCH_APP = "ivr120-trunkwatch"


class TrunkWatch:
    """Every channel event of the trunk endpoint, through an ARI application of the test's own
    (the controller never sees its Stasis channels)."""

    def __init__(self, hotline: Hotline) -> None:
        s = hotline.settings
        self.client = AriClient(s.ari_url, s.ari_user, hotline.app[SECRETS].ari_password, WATCH_APP)
        self.events: list[Event] = []
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async for ev in self.client.events():
            if isinstance(ev, Connected):
                await self.client.post(
                    f"applications/{WATCH_APP}/subscription",
                    eventSource=f"endpoint:PJSIP/{TRUNK_ENDPOINT}",
                )
                self.ready.set()
            self.events.append(ev)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._read(), name="trunk-watch")
        async with asyncio.timeout(10):
            await self.ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    def trunk_channels(self) -> set[str]:
        """Names of the channels seen on the trunk (PJSIP/trunk-0000001a)."""
        names = set()
        for ev in self.events:
            ch = ev.raw.get("channel")
            if isinstance(ch, dict) and str(ch.get("name", "")).startswith("PJSIP/trunk-"):
                names.add(str(ch["name"]))
        return names


@pytest.fixture
async def trunk_watch(hotline: Hotline) -> AsyncIterator[TrunkWatch]:
    watch = TrunkWatch(hotline)
    await watch.start()
    try:
        yield watch
    finally:
        await watch.stop()


def _caller_id(hotline: Hotline) -> str:
    return f'"외로움안녕120" <{hotline.settings.service_caller_id}>'


# ---------------------------------------------------------------------------- the trunk
async def test_originate_on_the_trunk_reaches_the_citizen_with_the_service_number(
    hotline: Hotline, citizen: RemotePhone, trunk_watch: TrunkWatch
) -> None:
    """An ARI originate on PJSIP/<number>@trunk (what the dialler does) rings the citizen's
    phone: the dialled number in the request URI, the service's number as the caller."""
    await hotline.wait_clean()
    service = hotline.settings.service_caller_id
    # Into the trunk's own context (it only hangs up): no Stasis application is involved, so
    # only the endpoint subscription can show the channel to the watcher.
    channel = await hotline.ari.post(
        "channels",
        endpoint=f"PJSIP/{CITIZEN_NUMBER}@{TRUNK_ENDPOINT}",
        context="trunk-in",
        extension="s",
        priority=1,
        callerId=_caller_id(hotline),
        timeout=15,
    )
    incoming = await citizen.wait_for("incoming", timeout=10)
    uri = incoming["request_uri"]
    port = hotline.settings.outbound_trunk_port
    assert uri.startswith(f"sip:{CITIZEN_NUMBER}@127.0.0.1:{port}"), incoming
    # The From user is the service's number (the trunk's from_user, whatever the channel's
    # caller ID: Asterisk then sends no display name).
    assert f"<sip:{service}@" in incoming["from"], incoming
    # The INVITE names no person: only the service's number, in From and any identity header.
    headers = " ".join(incoming["headers"].values())
    assert "counselor" not in headers and "social" not in headers, incoming
    await until(
        lambda: channel["name"] in trunk_watch.trunk_channels(),
        what="the watcher to see the trunk channel",
    )
    # Answered, the call lands in `trunk-in`, which only hangs up.
    await citizen.answer()
    await citizen.wait_for("call_state", state="DISCONNECTED", timeout=10)
    await hotline.wait_clean()


# ---------------------------------------------------------------------------- team phones
@pytest.mark.parametrize("name", [SOCIAL_WORKERS[0], COMPANIONS[0]])
async def test_follow_up_staff_log_out_in_and_pause_with_feature_codes(
    hotline: Hotline, phones: PhoneFactory, tmp_path: Path, name: str
) -> None:
    team = "social_workers" if name in SOCIAL_WORKERS else "companions"
    m = member(hotline, name)
    assert m["team"] == team and m["logged_in"] and not m["paused"], m
    t0 = time.time()
    phone = await counselor(hotline, phones, name)
    try:
        await feature_code(hotline, phone, "*52", tmp_path / "out.wav")
        m = await _status_member(hotline, name)
        assert not m["logged_in"] and m["team"] == team, m
        await feature_code(hotline, phone, "*51", tmp_path / "in.wav")
        assert (await _status_member(hotline, name))["logged_in"]
        await feature_code(hotline, phone, "*532", tmp_path / "pause.wav")
        m = await _status_member(hotline, name)
        assert m["paused"] and m["pause_reason"] == hotline.settings.pause_reasons[1], m
        await feature_code(hotline, phone, "*54", tmp_path / "unpause.wav")
        m = await _status_member(hotline, name)
        assert not m["paused"] and m["logged_in"], m
    finally:
        for action in ("login", "unpause"):
            await api(hotline, "POST", f"/api/counselors/{name}/{action}")
    events = rows_where(
        hotline, "SELECT * FROM counselor_events WHERE member=? AND at>=?", name, t0
    )
    assert [(e["field"], e["new"]) for e in events] == [
        ("logged_in", "false"),
        ("logged_in", "true"),
        ("paused", "true"),
        ("paused", "false"),
    ], events
    await hotline.wait_clean()


async def test_working_hours_reload_without_a_restart(
    hotline: Hotline, phones: PhoneFactory
) -> None:
    """`ivr-admin reload-roster` (POST /api/roster/reload) reads the teams file again; a team
    member whose phone registers outside their hours is told so, like a counselor."""
    path = hotline.settings.teams_file
    before = path.read_text(encoding="utf-8")
    name = COMPANIONS[-1]
    assert (await _status_member(hotline, name))["on_shift"]
    try:
        # Hours on another day than today (Seoul time) only: off duty now.
        day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[
            (datetime.now(SEOUL).weekday() + 3) % 7
        ]
        path.write_text(before + f'{name} = ["{day} 10:00-11:00"]\n', encoding="utf-8")
        status, data = await api(hotline, "POST", "/api/roster/reload")
        assert status == 200, data
        assert not (await _status_member(hotline, name))["on_shift"]
        phone = await counselor(hotline, phones, name)
        message = await phone.wait_for("message", timeout=15)
        assert message["body"] == OFF_SHIFT_MESSAGE, message
        await phone.close()
        path.write_text(before + f'{name} = ["mon 25:00-26:00"]\n', encoding="utf-8")
        status, data = await api(hotline, "POST", "/api/roster/reload")
        assert status == 400 and "not a time of day" in str(data), data
    finally:
        path.write_text(before, encoding="utf-8")
        status, data = await api(hotline, "POST", "/api/roster/reload")
    assert status == 200, data
    assert (await _status_member(hotline, name))["on_shift"]


async def _status_member(hotline: Hotline, name: str) -> dict[str, Any]:
    """The member as GET /status shows them to an administrator."""
    status, data = await api(hotline, "GET", "/status")
    assert status == 200, data
    return next(m for m in data["counselors"] if m["member"] == name)


# ------------------------------------------------------------------ 7. no outside number
#: Outside numbers: a Seoul landline, a mobile, international prefixes, emergency numbers, an
#: E.164 number, the citizen's own number on the trunk, and the trunk's name.
OUTSIDE = (
    "0299990000",
    "01099990000",
    "9011829999000",
    "00182299990000",
    "112",
    "119",
    "109",
    "+82299990000",
    CITIZEN_NUMBER,
    TRUNK_ENDPOINT,
)


async def test_no_outside_number_is_reachable_from_the_carrier_or_any_staff_endpoint(
    hotline: Hotline, citizen: RemotePhone, trunk_watch: TrunkWatch
) -> None:
    await hotline.wait_clean()
    t0 = time.time()
    server = ("127.0.0.1", hotline.settings.sip_port)
    results: dict[tuple[str, str], int | None] = {}

    def carrier_calls() -> None:
        # From the carrier's address: the `public` context has 120 only.
        for number in OUTSIDE:
            sip = SipClient("127.0.0.1", server)
            try:
                r = sip.invite(number, "citizen")
                results[("carrier", number)] = None if r is None else r.status
            finally:
                sip.close()
        # Posing as the trunk (From: trunk) from elsewhere: no endpoint lets it in.
        sip = SipClient("127.0.0.2", server)
        try:
            r = sip.invite(CITIZEN_NUMBER, TRUNK_ENDPOINT)
            results[("trunk-spoof", CITIZEN_NUMBER)] = None if r is None else r.status
        finally:
            sip.close()

    def staff_calls() -> None:
        # Every SIP account with a secret, authenticated: the `staff` context has feature
        # codes only; anything else is the feature-denied prompt (answered, hung up at once).
        for ep in hotline.settings.staff_endpoints:
            for number in OUTSIDE:
                sip = StaffSip("127.0.0.1", server)
                try:
                    r = sip.call(number, ep, hotline.password(ep))
                    results[(ep, number)] = None if r is None else r.status
                finally:
                    sip.close()

    await asyncio.to_thread(carrier_calls)
    await asyncio.to_thread(staff_calls)

    # Asterisk never had a channel on the trunk, and the citizen's phone never rang.
    assert not trunk_watch.trunk_channels(), (trunk_watch.trunk_channels(), results)
    assert not [e for e in citizen.events if e.get("event") == "incoming"], citizen.events
    for (who, number), status in results.items():
        assert status is not None, (who, number, "no final response")
        if who in ("carrier", "trunk-spoof"):
            assert status >= 400, (who, number, status)
        else:
            # 200: the feature-denied prompt (staff-fallback); else a refusal (404 for +...)
            assert status == 200 or status >= 400, (who, number, status)
    assert len(results) == len(OUTSIDE) * (1 + len(hotline.settings.staff_endpoints)) + 1
    await hotline.wait_clean()
    assert not trunk_watch.trunk_channels(), trunk_watch.trunk_channels()
    # None of them became a call of the hotline's either (staff-fallback answers outside Stasis).
    assert not rows_where(hotline, "SELECT * FROM calls WHERE started_at >= ?", t0)
    trunk = await hotline.ari.get(f"endpoints/PJSIP/{TRUNK_ENDPOINT}")
    assert not trunk.get("channel_ids"), trunk
