"""`ivr-admin` parsing and output, and the API's token check, without a running hotline
(tests/test_e2e_admin.py drives the same commands against a real one)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr import admin
from ivr.api import ADMIN_TOKEN, auth_middleware


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "status"],
        ["status", "--json"],
        ["pause", "counselor01", "--json", "--reason", "training"],
        ["summary", "call-1", "--json"],
        ["jobs", "--json"],
    ],
)
def test_json_works_before_and_after_the_subcommand(argv: list[str]) -> None:
    assert admin.parse_args(argv).json is True


def test_config_works_after_the_subcommand_and_defaults_stay() -> None:
    args = admin.parse_args(["calls", "--config", "x.toml"])
    assert str(args.config) == "x.toml" and args.limit == 20 and args.json is False
    args = admin.parse_args(["--config", "y.toml", "--json", "counselors"])
    assert str(args.config) == "y.toml" and args.json is True


@pytest.mark.parametrize(
    ("cmd", "data", "want"),
    [
        ("login", {"member": "c1", "reason": "admin"}, "로그인했습니다 logged in: c1"),
        ("logout", {"member": "c1", "reason": "admin"}, "로그아웃했습니다 logged out: c1"),
        ("unpause", {"member": "c1", "reason": "admin"}, "휴식을 끝냈습니다 unpaused: c1"),
        (
            "pause",
            {"member": "c1", "action": "pause", "reason": "training"},
            "휴식 중으로 바꿨습니다 paused: c1 (사유 reason: training)",
        ),
        ("lift-flag", {"caller_hash": "ab12", "lifted": 1}, "주의 표시 해제 flag lifted: ab12 (1)"),
        (
            "reload-roster",
            {"reloaded": "/x/roster.toml"},
            "근무표를 다시 읽었습니다 roster reloaded: /x/roster.toml",
        ),
    ],
)  # fmt: skip
def test_actions_print_a_korean_line_not_json(cmd: str, data: dict[str, object], want: str) -> None:
    out = admin.render(cmd, data)
    assert out == want
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_calls_show_the_call_id() -> None:
    row = {
        "call_id": "1712345678.42",
        "caller_hash": "0123456789abcdef",
        "started_at": 1712345678.0,
        "menu_path": "5",
        "queue": "loneliness",
        "member": "counselor01",
        "wait_seconds": 3.0,
        "talk_seconds": 61.0,
        "ended_at": 1712345750.0,
        "outcome": "answered",
    }
    out = admin.render("calls", [row])
    header, line = out.splitlines()
    assert header.startswith("통화 call")
    assert line.startswith("1712345678.42 ")


@pytest.fixture
async def api_server() -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(middlewares=[auth_middleware])
    app[ADMIN_TOKEN] = "s3cret"
    for path in ("/health", "/status", "/api/calls"):
        app.router.add_get(path, ok)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url(""))
    finally:
        await server.close()


async def test_everything_but_health_needs_the_admin_token(api_server: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(api_server + "/health") as r:
            assert r.status == 200
        for path in ("/status", "/api/calls"):
            async with http.get(api_server + path) as r:
                assert r.status == 401, path
                assert (await r.json())["error_id"] == "unauthorized"
            async with http.get(api_server + path, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401, path
            async with http.get(api_server + path, headers={"Authorization": "Bearer s3cret"}) as r:
                assert r.status == 200, path
