"""The call views of ``ivr-admin`` (through the running controller's API):

ivr-admin status                      calls in progress and queues
ivr-admin calls [--limit N]           recent call records (with the call id)
"""

from __future__ import annotations

import argparse
from typing import Any

from ivr.admin_client import call_api, table, when
from ivr.config import Settings
from ivr.followup.admin_commands import render_dialling

COMMANDS = ("status", "calls")


def add_commands(sub: Any) -> None:
    sub.add_parser("status")
    sub.add_parser("calls").add_argument("--limit", type=int, default=20)


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/api/calls?limit={args.limit}" if args.cmd == "calls" else "/status"
    return call_api(args, settings, ("GET", path, None), render)


def render(cmd: str, data: Any) -> str:
    if cmd == "status":
        lines = [f"진행 중인 통화 calls in progress: {len(data['calls'])}"]
        lines.append(
            table(
                ["통화 call", "상태 state", "대기열 queue", "상담사 member", "초 secs"],
                [
                    [c["call_id"], c["state"], c["queue"], c["member"], c["seconds"]]
                    for c in data["calls"]
                ],
            )
        )
        lines.append("")
        lines.append(
            table(
                ["대기열 queue", "대기 waiting", "호출 중 ringing", "통화 중 busy"],
                [
                    [q, v["waiting"], ",".join(v["ringing"]), ",".join(v["busy"])]
                    for q, v in data["queues"].items()
                ],
            )
        )
        if "followup_dialling" in data:  # paused or dialling (ivr-admin followup pause|resume)
            lines += ["", render_dialling(data["followup_dialling"])]
        return "\n".join(lines)
    return _calls(data)


def _calls(data: Any) -> str:
    return table(
        [
            "통화 call",
            "시작 started",
            "발신자 caller",
            "메뉴 menu",
            "대기열 queue",
            "상담사 member",
            "대기 wait",
            "통화 talk",
            "결과 outcome",
        ],
        [
            [
                c["call_id"],
                when(c["started_at"]),
                c["caller_hash"][:10],
                c["menu_path"],
                c["queue"],
                c["member"],
                _secs(c["wait_seconds"]),
                _secs(c["talk_seconds"]),
                c["outcome"],
            ]
            for c in data
        ],
    )


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}s"
