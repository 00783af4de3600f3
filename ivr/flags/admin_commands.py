"""The abuse-flag commands of ``ivr-admin`` (through the running controller's API):

ivr-admin flags                       active abuse flags (hashed callers)
ivr-admin lift-flag CALLER_HASH       lift a caller's abuse flag
"""

from __future__ import annotations

import argparse
from typing import Any

from ivr.admin_client import call_api, table, when
from ivr.config import Settings

COMMANDS = ("flags", "lift-flag")


def add_commands(sub: Any) -> None:
    sub.add_parser("flags")
    sub.add_parser("lift-flag").add_argument("caller_hash")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.cmd == "lift-flag":
        return call_api(args, settings, ("DELETE", f"/api/flags/{args.caller_hash}", None), render)
    return call_api(args, settings, ("GET", "/api/flags", None), render)


def render(cmd: str, data: Any) -> str:
    if cmd == "lift-flag":
        return f"주의 표시 해제 flag lifted: {data['caller_hash']} ({data['lifted']})"
    return table(
        ["발신자 caller", "단계 level", "시작 since", "종료 until"],
        [[f["caller_hash"], f["level"], when(f["created_at"]), when(f["until"])] for f in data],
    )
