"""End to end: the staff's side across restarts and reloads (issue 8, items 5 and 7).

Its own product (a real Asterisk, the controller, SQLite) on its own state directory, because
these tests restart it and change its menu; the session `hotline` is left alone. Administrators'
actions go through `ivr-admin` in its own process, as a supervisor would run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ivr.app import PBX, SECRETS, build_app
from ivr.config import load_settings
from ivr.flow import call as flow
from ivr.paths import PROJECT_ROOT
from ivr.prompts.build import prompt_paths
from ivr.staff.registration import OFF_SHIFT_MESSAGE
from tests.conftest import Hotline, PhoneFactory, free_port, observed_options, write_roster
from tests.test_e2e_calls import counselor, dial_120

ON_SHIFT = ("counselor01", "counselor02", "counselor03")
OFF_SHIFT = ("counselor04",)
MENU = (PROJECT_ROOT / "config" / "menu.toml").read_text(encoding="utf-8")


#: The default menu changed: option 3 removed, the loneliness line (5) announced first.
CHANGED_MENU = """
greeting = ["welcome"]
repeat_hint = "menu_repeat"

[[option]]
digit = "5"
prompt = "menu_5"
queue = "loneliness"

[[option]]
digit = "1"
prompt = "menu_1"
queue = "general"

[[option]]
digit = "0"
prompt = "menu_0"
queue = "general"

[queues.loneliness]
intro = "loneliness_intro"
members = "counselors"
whisper = "counselor_whisper_loneliness"
consent = true

[queues.general]
intro = "general_intro"
members = "agents"
whisper = "counselor_whisper_general"
"""


class Product:
    """The hotline, started and stopped (and restarted) by the tests themselves."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.menu_file = tmp / "menu.toml"
        self.menu_file.write_text(MENU, encoding="utf-8")
        self.catalog_file = tmp / "catalog.toml"
        shutil.copy(PROJECT_ROOT / "prompts" / "catalog.toml", self.catalog_file)
        self.roster_file = write_roster(tmp / "roster.toml", ON_SHIFT, OFF_SHIFT)
        self.settings = load_settings(
            env={},
            overrides={
                "instance": f"staff{os.getpid()}",
                "state_dir": tmp / "state",
                "sip_bind": "127.0.0.1",
                "sip_port": free_port(socket.SOCK_DGRAM),
                "http_port": free_port(),
                "status_port": free_port(),
                "rtp_port_start": 33000,
                "rtp_port_end": 33999,
                "counselors": ",".join((*ON_SHIFT, *OFF_SHIFT)),
                "agents": "agent01",
                "menu_input_timeout": 3.0,
                "ring_retry_interval": 1.0,
                "roster_file": self.roster_file,
                "menu_file": self.menu_file,
                "prompt_catalog": self.catalog_file,
                "wrapup_seconds": 0,
                "log_level": "INFO",
            },
        )
        self.config_file = tmp / "admin.toml"  # what ivr-admin needs to find the controller
        self.config_file.write_text(
            f'state_dir = "{self.settings.state_dir}"\nstatus_port = {self.settings.status_port}\n',
            encoding="utf-8",
        )
        self.app: web.Application | None = None
        self.runner: web.AppRunner | None = None

    @property
    def hotline(self) -> Hotline:
        assert self.app is not None
        return Hotline(self.settings, self.app, self.tmp)

    async def start(self) -> None:
        self.app = build_app(self.settings, observed_options())
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.status_port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def admin(self, *args: str) -> tuple[int, str, str]:
        """Run `ivr-admin` (this checkout's) as a supervisor would: exit code, stdout, stderr."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR120_")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.admin",
            "--config",
            str(self.config_file),
            *args,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def counselors(self) -> dict[str, dict[str, Any]]:
        rc, out, err = await self.admin("--json", "counselors")
        assert rc == 0, err
        return {m["member"]: m for m in json.loads(out)}


@pytest.fixture(scope="module")
async def product(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Product]:
    tmp = tmp_path_factory.mktemp("staff")
    p = Product(tmp)
    await p.start()
    try:
        yield p
    finally:
        pbx = p.app.get(PBX) if p.app is not None else None
        await p.stop()
        if pbx is not None:
            with contextlib.suppress(OSError):
                shutil.copy(pbx.log_file, tmp / "asterisk-messages.log")
            pbx.remove_instance()


@pytest.fixture
def spy(product: Product) -> Iterator[list[flow.Command]]:
    """Every command the controller carries out during the test."""
    seen: list[flow.Command] = []
    with product.hotline.watch(seen.append):
        yield seen


async def test_a_pause_and_a_logout_survive_a_restart(product: Product) -> None:
    rc, _, err = await product.admin("pause", "counselor02", "--reason", "training")
    assert rc == 0, err
    rc, _, err = await product.admin("logout", "counselor03")
    assert rc == 0, err
    before = await product.counselors()

    await product.restart()

    after = await product.counselors()
    got = {
        m: (after[m]["logged_in"], after[m]["paused"], after[m]["pause_reason"]) for m in ON_SHIFT
    }
    assert got == {
        "counselor01": (True, False, None),
        "counselor02": (True, True, "training"),
        "counselor03": (False, False, None),
    }
    assert after["counselor02"]["paused_since"] == before["counselor02"]["paused_since"]
    assert after["counselor03"]["logged_in_since"] == before["counselor03"]["logged_in_since"]
    # Back to work, for the tests that follow.
    for args in (("unpause", "counselor02"), ("login", "counselor03")):
        rc, _, err = await product.admin(*args)
        assert rc == 0, err


async def test_counselors_shows_registration_and_an_off_shift_phone_is_told(
    product: Product, phones: PhoneFactory
) -> None:
    hotline = product.hotline
    off = await counselor(hotline, phones, "counselor04")
    message = await off.wait_for("message", timeout=15)
    assert message["body"] == OFF_SHIFT_MESSAGE

    on = await counselor(hotline, phones, "counselor01")
    async with asyncio.timeout(10):  # the controller has seen the registration
        while not hotline.controller.registrations.get("counselor01").online:
            await asyncio.sleep(0.05)
    members = await product.counselors()
    seen = {
        m: (members[m]["on_shift"], members[m]["registered"])
        for m in ("counselor01", "counselor02", "counselor04")
    }
    assert seen == {
        "counselor01": (True, True),
        "counselor02": (True, False),
        "counselor04": (False, True),
    }
    assert members["counselor04"]["registered_since"] is not None
    rc, table, err = await product.admin("counselors")
    assert rc == 0, err
    assert "등록 online" in table and "미등록 offline" in table
    rc, status, err = await product.admin("--json", "status")
    assert rc == 0, err
    assert {m["member"] for m in json.loads(status)["counselors"] if m["registered"]} == {
        "counselor01",
        "counselor04",
    }
    # The on-shift counselor got no such notice (their registration was handled above).
    assert [e for e in on.events if e.get("event") == "message"] == []


async def wait_for_menu_play(spy: list[flow.Command], call_id: str) -> flow.Play:
    async with asyncio.timeout(20):
        while True:
            for c in spy:
                if (
                    isinstance(c, flow.Play)
                    and c.playback_id.startswith(call_id)
                    and "menu_repeat" in c.prompts
                ):
                    return c
            await asyncio.sleep(0.05)


async def test_reload_changes_the_menu_for_new_calls_only(
    product: Product, phones: PhoneFactory, spy: list[flow.Command]
) -> None:
    hotline = product.hotline
    old_caller = await dial_120(hotline, phones, "old-caller")
    old_id = await hotline.last_call_id()
    old_menu = await wait_for_menu_play(spy, old_id)
    assert "menu_3" in old_menu.prompts

    product.menu_file.write_text(CHANGED_MENU, encoding="utf-8")
    rc, out, err = await product.admin("reload")
    assert rc == 0, err
    assert "reloaded" in out

    new_caller = await dial_120(hotline, phones, "new-caller")
    new_id = next(c for c in hotline.controller.calls if c != old_id)
    new_menu = await wait_for_menu_play(spy, new_id)
    assert new_menu.prompts[-4:] == ("menu_5", "menu_1", "menu_0", "menu_repeat")

    # The call that started before the reload still has option 3; the new one does not.
    await old_caller.dtmf("3")
    await hotline.wait_state(old_id, flow.State.WAITING, timeout=30)
    assert hotline.controller.calls[old_id].flow.record.menu_path == ["3"]
    await new_caller.dtmf("3")
    new_flow = hotline.controller.calls[new_id].flow
    async with asyncio.timeout(10):
        while new_flow.failures < 1:
            await asyncio.sleep(0.05)
    assert new_flow.record.menu_path == []

    await old_caller.hangup()
    await new_caller.hangup()
    await hotline.wait_clean()


async def test_a_broken_menu_file_is_refused_and_the_old_menu_stays(product: Product) -> None:
    controller = product.hotline.controller
    menu = controller.menu
    good = product.menu_file.read_text(encoding="utf-8")
    product.menu_file.write_text(good.replace('digit = "1"', 'digit = "11"'), encoding="utf-8")
    try:
        token = product.hotline.app[SECRETS].admin_token
        url = f"http://127.0.0.1:{product.settings.status_port}/api/reload"
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            status, body = r.status, await r.json()
        assert status == 400
        assert body["error_id"] == "bad_config" and "digit" in body["message"]
        rc, _, err = await product.admin("reload")
        assert rc == 1 and "digit" in err
        assert controller.menu is menu
        assert controller.flow_config.menu is menu
    finally:
        product.menu_file.write_text(good, encoding="utf-8")


async def test_reload_applies_a_changed_roster(product: Product) -> None:
    write_roster(product.roster_file, (*ON_SHIFT, *OFF_SHIFT))  # counselor04 joins the shift
    try:
        rc, _, err = await product.admin("reload")
        assert rc == 0, err
        assert (await product.counselors())["counselor04"]["on_shift"] is True
    finally:
        write_roster(product.roster_file, ON_SHIFT, OFF_SHIFT)
        rc, _, err = await product.admin("reload")
        assert rc == 0, err


async def test_reload_rebuilds_a_changed_prompt_into_the_pbx(product: Product) -> None:
    sounds = product.hotline.pbx.sounds_dir
    files = prompt_paths(sounds, "menu_repeat")
    before = [f.read_bytes() for f in files]
    text = product.catalog_file.read_text(encoding="utf-8")
    changed = re.sub(
        r"^version = (\d+)",
        lambda m: f"version = {int(m[1]) + 1}",
        text.replace("다시 들으시려면 별표를", "다시 들으시려면 지금 별표를"),
        count=1,
        flags=re.MULTILINE,
    )
    assert changed.count("지금 별표") == 1
    product.catalog_file.write_text(changed, encoding="utf-8")
    rc, out, err = await product.admin("--json", "reload")
    assert rc == 0, err
    answer = json.loads(out)
    assert answer["prompts"].startswith("built 1,"), answer
    assert [f.read_bytes() for f in files] != before
    assert product.hotline.controller.catalog_version == answer["catalog_version"]
