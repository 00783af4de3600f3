"""The staff commands of ``ivr-admin`` (through the running controller's API):

ivr-admin counselors                  every staff member with their team (counselors, agents,
                                      social workers, companions): on shift (the roster, or
                                      the teams' working hours), phone registered, logged in,
                                      paused (each since when), busy, wrap-up
ivr-admin login|logout ID             log a counselor in or out
ivr-admin pause ID --reason TEXT      pause a counselor (a break, training, ...)
ivr-admin unpause ID
ivr-admin reload-roster               read the roster and the teams' hours again (no restart)
ivr-admin reload                      apply menu, roster and prompt changes (no restart)
"""

from __future__ import annotations

import argparse
from typing import Any

from ivr.admin_client import Route, call_api, table, when, yes_no
from ivr.config import Settings

COMMANDS = ("counselors", "login", "logout", "pause", "unpause", "reload", "reload-roster")
#: What a counselor action did, in Korean and English.
ACTIONS = {
    "login": ("로그인했습니다", "logged in"),
    "logout": ("로그아웃했습니다", "logged out"),
    "pause": ("휴식 중으로 바꿨습니다", "paused"),
    "unpause": ("휴식을 끝냈습니다", "unpaused"),
}


#: The staff teams' names for the listing.
TEAMS = {
    "counselors": "상담사",
    "agents": "120 상담원",
    "social_workers": "사회복지사",
    "companions": "동행단",
}


def add_commands(sub: Any) -> None:
    sub.add_parser("counselors")
    sub.add_parser("reload", help="apply menu, roster, prompt and agency changes without a restart")
    for name in ("login", "logout", "unpause"):
        sub.add_parser(name).add_argument("member")
    pause = sub.add_parser("pause")
    pause.add_argument("member")
    pause.add_argument("--reason", default="break")
    sub.add_parser("reload-roster", help="read the roster file again without a restart")


def route(args: argparse.Namespace) -> Route:
    if args.cmd in ACTIONS:
        body = {"reason": getattr(args, "reason", None) or "admin"}
        return "POST", f"/api/counselors/{args.member}/{args.cmd}", body
    if args.cmd == "reload-roster":
        return "POST", "/api/roster/reload", None
    if args.cmd == "reload":
        return "POST", "/api/reload", None
    return "GET", "/api/counselors", None


def run(args: argparse.Namespace, settings: Settings) -> int:
    return call_api(args, settings, route(args), render)


def render(cmd: str, data: Any) -> str:
    if cmd == "counselors":
        return table(
            [
                "상담사 member",
                "팀 team",
                "근무 on shift",
                "전화 phone",
                "로그인 logged in",
                "휴식 paused",
                "사유 reason",
                "상태 state",
                "통화 calls",
            ],
            [
                [
                    m["member"],
                    TEAMS.get(m.get("team") or "", m.get("team")),
                    yes_no(m["on_shift"]),
                    _since(
                        "등록 online" if m.get("registered") else "미등록 offline",
                        m.get("registered_since"),
                    ),
                    _since(yes_no(m["logged_in"]), m.get("logged_in_since")),
                    _since(yes_no(m["paused"]), m.get("paused_since")),
                    m.get("pause_reason"),
                    m["state"],
                    m.get("calls", 0),
                ]
                for m in data
            ],
        )
    if cmd == "reload":
        return (
            f"다시 읽었습니다 reloaded: 메뉴 menu {data['menu']}, 근무표 roster {data['roster']},"
            f" 안내 음성 prompts v{data['catalog_version']} ({data['prompts']}),"
            f" 연계 기관 agencies {data.get('agencies', '-')}"
        )
    if cmd == "reload-roster":
        return f"근무표를 다시 읽었습니다 roster reloaded: {data['reloaded']}"
    ko, en = ACTIONS[cmd]
    line = f"{ko} {en}: {data['member']}"
    if cmd == "pause":
        line += f" (사유 reason: {data.get('reason')})"
    return line


def _since(text: str, ts: float | None) -> str:
    """A state with since when ("예 · 04-02 09:12:03")."""
    return text if ts is None else f"{text} · {when(ts)}"
