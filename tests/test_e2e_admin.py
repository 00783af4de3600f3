"""End to end: `ivr-admin` (run from this checkout) and a counselor's phone against the real
hotline — the parts of issue 8 items 11 and 13 that need one: the pause reason chosen with
*53 + a digit, `--json` after the subcommand, Korean lines for actions, call ids in `calls`,
`reload-roster`, and `/status` only with the admin token."""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp

from tests.conftest import Hotline, PhoneFactory
from tests.e2e_ringgroup_support import (
    api,
    counselor,
    dial,
    feature_code,
    ivr_admin,
    member,
    rows_where,
)


async def test_star_53_and_a_digit_pauses_with_that_reason(
    clean_hotline: Hotline, phones: PhoneFactory, tmp_path: Path
) -> None:
    hotline = clean_hotline
    name = "counselor04"
    reasons = hotline.settings.pause_reasons
    assert reasons[1] == "training", reasons
    t0 = time.time()
    k = await counselor(hotline, phones, name)
    try:
        await feature_code(hotline, k, "*532", tmp_path / "pause.wav")
        m = member(hotline, name)
        assert m["paused"] and m["pause_reason"] == "training" and m["state"] == "paused", m
        await feature_code(hotline, k, "*54", tmp_path / "unpause.wav")
        assert not member(hotline, name)["paused"]
    finally:
        if member(hotline, name)["paused"]:
            await api(hotline, "POST", f"/api/counselors/{name}/unpause")
    events = rows_where(
        hotline, "SELECT * FROM counselor_events WHERE member=? AND at>=?", name, t0
    )
    assert [(e["field"], e["new"], e["reason"]) for e in events] == [
        ("paused", "true", "training"),
        ("paused", "false", "phone"),
    ], events


async def test_admin_cli_output_options_and_roster_reload(
    clean_hotline: Hotline, phones: PhoneFactory
) -> None:
    hotline = clean_hotline
    name = "counselor08"

    caller, call_id = await dial(hotline, phones, "caller")
    await caller.hangup()
    await hotline.wait_row(call_id)
    rc, out, err = await ivr_admin(hotline, "calls", "--limit", "5")
    assert rc == 0, err
    assert out.splitlines()[0].startswith("통화 call"), out
    assert any(line.startswith(call_id + " ") for line in out.splitlines()), out

    try:
        rc, out, err = await ivr_admin(hotline, "pause", name, "--reason", "meeting")
        assert rc == 0, err
        assert out.strip() == f"휴식 중으로 바꿨습니다 paused: {name} (사유 reason: meeting)", out
        rc, out, err = await ivr_admin(hotline, "unpause", name, "--json")  # --json after
        assert rc == 0, err
        assert json.loads(out) == {"member": name, "action": "unpause", "reason": "admin"}
        rc, out, err = await ivr_admin(hotline, "logout", name)
        assert rc == 0 and out.strip() == f"로그아웃했습니다 logged out: {name}", (out, err)
        assert not member(hotline, name)["logged_in"]
    finally:
        rc, out, err = await ivr_admin(hotline, "login", name)
    assert rc == 0 and out.strip() == f"로그인했습니다 logged in: {name}", (out, err)
    assert member(hotline, name)["logged_in"] and not member(hotline, name)["paused"]

    rc, out, err = await ivr_admin(hotline, "reload-roster")
    assert rc == 0, err
    assert out.startswith("근무표를 다시 읽었습니다 roster reloaded: "), out
    assert str(hotline.settings.roster_file) in out, out

    rc, out, err = await ivr_admin(hotline, "status", "--json")
    assert rc == 0, err
    assert "calls" in json.loads(out)


async def test_status_needs_the_admin_token(clean_hotline: Hotline) -> None:
    base = f"http://127.0.0.1:{clean_hotline.settings.status_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/status") as r:
            assert r.status == 401, await r.text()
        async with http.get(base + "/health") as r:
            assert r.status == 200
    status, body = await api(clean_hotline, "GET", "/status")
    assert status == 200 and "calls" in body
