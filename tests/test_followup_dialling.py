"""Dialling paused or on (ivr.followup.control): `ivr-admin followup pause|resume|dialling`
through the real API (token and all) against a controller on the fake ARI of
tests/test_adapter_effects.py with real SQLite: a paused team is offered nothing, the pause
outlives a restart, it is audited and shown in /status; a new database takes the setting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr import admin
from ivr.api import ADMIN_TOKEN, auth_middleware
from ivr.config import load_settings
from ivr.controller import Controller
from ivr.flow import http as flow_http
from ivr.followup import http as followup_http
from ivr.followup import model
from ivr.followup.control import SETTINGS_BY, DiallingControl
from ivr.keys import CONTROLLER, SETTINGS, STORE
from ivr.pbx.secrets import load_or_create
from ivr.staff.roster import load_roster
from ivr.store import Store
from tests.test_adapter_effects import Rig, rig  # noqa: F401 - the fixture
from tests.test_followup_adapter import add_task, fu, staff_rings  # noqa: F401 - the fixture

Cli = Callable[..., Awaitable[tuple[int, str]]]


@contextlib.asynccontextmanager
async def running(controller: Controller, tmp_path: Path) -> AsyncIterator[Cli]:
    """The controller started (its state loaded, its input loop turning) behind the API, and
    `ivr-admin` pointed at it: cli(*argv) -> (exit code, output)."""
    await controller.followup.control.load(controller.clock())  # as Controller.run does

    async def loop() -> None:
        while True:
            await controller._handle(await controller._inputs.get())

    turning = asyncio.create_task(loop())
    secrets = load_or_create(tmp_path / "secrets.json", controller.settings.staff_endpoints)
    app = web.Application(middlewares=[auth_middleware])
    app[ADMIN_TOKEN] = secrets.admin_token
    app[CONTROLLER], app[STORE], app[SETTINGS] = controller, controller.store, controller.settings
    followup_http.add_routes(app)
    flow_http.add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    # ivr-admin reads the token from state_dir/secrets.json (the rig keeps it in tmp_path).
    settings = load_settings(env={}, overrides={"state_dir": tmp_path, "status_port": server.port})

    async def cli(*argv: str) -> tuple[int, str]:
        out = _Capture()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                args = admin.parse_args(argv)
            except SystemExit as exc:  # argparse refused the line
                return int(exc.code or 0), out.getvalue()
            code = await asyncio.to_thread(admin.run, args, settings)
        return code, out.getvalue()

    try:
        yield cli
    finally:
        await server.close()
        turning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await turning


class _Capture(list[str]):
    def write(self, text: str) -> int:
        self.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self)


async def cli_json(cli: Cli, *argv: str) -> Any:
    code, out = await cli("--json", *argv)
    assert code == 0, out
    return json.loads(out)


def restarted(fu: Rig, store: Store, tmp_path: Path) -> Controller:  # noqa: F811
    """A new controller over the same database (a restart: nothing kept in memory)."""
    c, settings = fu.controller, fu.controller.ctx.settings  # the fixture's calling hours
    secrets = load_or_create(tmp_path / "secrets.json", settings.staff_endpoints)
    return Controller(c.ari, store, settings, c.menu, secrets, load_roster(settings.roster_file))


async def test_a_paused_team_is_offered_nothing_across_a_restart_until_resumed(
    fu: Rig,  # noqa: F811
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    ctrl = fu.controller
    async with running(ctrl, tmp_path) as cli:
        state = await cli_json(cli, "followup", "dialling")
        assert state["paused"] is False
        assert {t["by"] for t in state["teams"].values()} == {SETTINGS_BY}  # a new database
        task_id = await add_task(fu)
        code, out = await cli(
            "followup", "pause", "--team", "counselors", "--reason", "통신사\n점검", "--by", "sup01"
        )
        assert code == 0, out
        assert out.startswith("전화 걸기를 멈췄습니다 paused: 상담사"), out
        assert "통신사 점검" in out and "sup01" in out, out
        audited = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
        assert "follow-up dialling for counselors paused by sup01: 통신사 점검" in audited
        again = await cli_json(cli, "followup", "pause", "--team", "counselors", "--by", "sup02")
        assert again["changed"] == []  # already paused: who paused it, and why, are kept
        counselors = again["teams"]["counselors"]
        assert (counselors["paused"], counselors["by"]) == (True, "sup01")
        assert counselors["reason"] == "통신사 점검"
        assert again["teams"]["companions"]["paused"] is False and again["paused"] is False
        await ctrl.submit(ctrl.followup.cycle)
        assert staff_rings(fu) == [] and not ctrl.followup.offers
        status = await cli_json(cli, "status")
        assert status["followup_dialling"]["teams"]["counselors"] == counselors
        code, out = await cli("status")
        assert "후속 전화 걸기 follow-up dialling: 일부 멈춤 partly paused (상담사)" in out, out
        (line,) = [x for x in out.splitlines() if x.startswith("상담사 ")]
        assert "멈춤 paused" in line and "sup01" in line and line.endswith("통신사 점검"), out
        code, out = await cli("followups")
        assert out.splitlines()[0].startswith("번호 id"), out  # the worklist first, then:
        assert "멈춤 paused" in out and "통신사 점검" in out, out
        assert json.loads((await cli("followups", "--json"))[1])[0]["id"] == task_id

    store = await Store.open(ctrl.settings.state_path(ctrl.settings.database))
    try:
        again_up = restarted(fu, store, tmp_path)
        async with running(again_up, tmp_path) as cli:
            state = await cli_json(cli, "followup", "dialling")
            assert state["teams"]["counselors"] == counselors  # since, by and reason too
            await again_up.submit(again_up.followup.cycle)
            assert staff_rings(fu) == []
            resumed = await cli_json(cli, "followup", "resume", "--by", "sup02")
            assert resumed["changed"] == ["counselors"]  # the others were dialling
            assert resumed["teams"]["counselors"]["by"] == "sup02"
            assert resumed["teams"]["counselors"]["reason"] is None
            await again_up.submit(again_up.followup.cycle)
            (ring,) = staff_rings(fu)
            assert ring["appArgs"] == f"followup,{task_id}"
    finally:
        await store.close()
    db = sqlite3.connect(ctrl.settings.state_path(ctrl.settings.database))
    rows = list(db.execute("SELECT team, paused, by FROM followup_dialling ORDER BY id"))
    db.close()
    assert rows[3:] == [("counselors", 1, "sup01"), ("counselors", 0, "sup02")]


async def test_pause_without_a_team_stops_them_all_and_bad_requests_are_refused(
    fu: Rig,  # noqa: F811
    tmp_path: Path,
) -> None:
    ctrl = fu.controller
    async with running(ctrl, tmp_path) as cli:
        paused = await cli_json(cli, "followup", "pause")
        assert paused["paused"] is True
        assert sorted(paused["changed"]) == sorted(t.value for t in model.Team)
        assert ctrl.followup.control.dialling() == frozenset()
        code, out = await cli("followup", "pause", "3")
        assert code == 2 and "takes no task id" in out, out
        code, out = await cli("followup", "show")
        assert code == 2 and "needs the task id" in out, out
        code, out = await cli("followup", "resume", "--team", "plumbers")
        assert code == 2, out  # argparse refuses it before any request
        resumed = await cli_json(cli, "followup", "resume", "--team", "companions")
        assert resumed["changed"] == ["companions"]
        assert ctrl.followup.control.dialling() == frozenset({model.Team.COMPANIONS})
        code, out = await cli("followup", "dialling")
        want = "후속 전화 걸기 follow-up dialling: 일부 멈춤 partly paused (상담사, 사회복지사)"
        assert out.startswith(want), out
        assert (await cli("followup", "resume"))[1].startswith("다시 겁니다 resumed: 상담사, 사회")
        code, out = await cli("followup", "dialling")
        assert out.startswith("후속 전화 걸기 follow-up dialling: 전화 거는 중 dialling"), out


async def test_the_api_refuses_an_unknown_team_or_action(
    fu: Rig,  # noqa: F811
    tmp_path: Path,
) -> None:
    ctrl = fu.controller
    await ctrl.followup.control.load(ctrl.clock())  # as Controller.run does
    app = web.Application()
    app[CONTROLLER], app[STORE], app[SETTINGS] = ctrl, ctrl.store, ctrl.settings
    followup_http.add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            url = str(server.make_url("/api/dialling/"))
            async with http.post(url + "stop", json={}) as r:
                assert r.status == 404 and (await r.json())["error_id"] == "unknown_action"
            async with http.post(url + "pause", json={"team": "plumbers"}) as r:
                assert r.status == 400
            async with http.post(url + "pause", data="not json") as r:
                assert r.status == 400 and (await r.json())["error_id"] == "bad_json"
    finally:
        await server.close()
    assert ctrl.followup.control.dialling() == frozenset(model.Team)  # nothing changed


async def test_a_new_database_takes_the_setting_then_keeps_its_own_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        fresh = DiallingControl(store, fresh_dialling=False)
        assert fresh.dialling() == frozenset()  # paused before it is even loaded
        await fresh.load(100.0)
        view = fresh.view()
        assert view["paused"] is True
        assert {(t["since"], t["by"], t["reason"]) for t in view["teams"].values()} == {
            (100.0, SETTINGS_BY, "followup_dialling = false")
        }
        # The setting changed to true: the database's state holds (paused).
        later = DiallingControl(store, fresh_dialling=True)
        await later.load(200.0)
        assert later.dialling() == frozenset() and later.view() == view
        await later.change(list(model.Team), False, "sup01", "ignored when resuming", 300.0)
        # The setting back to false on a database that dials: it dials, with a warning.
        caplog.set_level(logging.WARNING, logger="ivr.followup.control")
        third = DiallingControl(store, fresh_dialling=False)
        await third.load(400.0)
        assert third.dialling() == frozenset(model.Team)
        assert third.teams[model.Team.COUNSELORS].reason is None
        assert "state of a new database only" in caplog.text
        rows = await store.fetch("SELECT COUNT(*) FROM followup_dialling")
        assert rows == [(6,)]  # three from the setting, three resumed; none by the loads
    finally:
        await store.close()


async def test_a_state_that_cannot_be_read_at_start_dials_nobody_until_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        before = DiallingControl(store, fresh_dialling=True)
        await before.load(100.0)
        await before.change([model.Team.COMPANIONS], True, "sup01", "통신사 점검", 150.0)
        # Restarted, and the first read fails (a locked or broken database, say): the setting
        # (dialling) must not undo the operator's pause — nobody is dialled.
        after = DiallingControl(store, fresh_dialling=True)
        real_fetch = store.fetch

        async def broken(*args: Any, **kw: Any) -> Any:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(store, "fetch", broken)
        await after.load(200.0)
        assert not after.loaded and after.dialling() == frozenset()
        monkeypatch.setattr(store, "fetch", real_fetch)
        await after.load(210.0)  # the dialler's next tick tries again
        assert after.loaded
        assert after.dialling() == frozenset(model.Team) - {model.Team.COMPANIONS}
        assert after.teams[model.Team.COMPANIONS].reason == "통신사 점검"
    finally:
        await store.close()


def test_the_worklist_stands_when_the_dialling_state_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ivr-admin followups` with no controller behind the API: the list was printed, the
    dialling footer is a 503 — the command still succeeds (fake answers: a real API without a
    controller is what this stands for)."""
    from ivr.followup import admin_commands

    answers = iter([0, 1])
    monkeypatch.setattr(admin_commands, "call_api", lambda *a, **kw: next(answers))
    args = admin.parse_args(["followups"])
    assert admin_commands.run(args, load_settings(env={})) == 0
    assert "dialling state unknown" in capsys.readouterr().err
