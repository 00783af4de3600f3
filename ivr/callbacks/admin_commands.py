"""The callback commands of ``ivr-admin`` (through the running controller's API):

ivr-admin callbacks                   open callback requests
"""

from __future__ import annotations

import argparse
from typing import Any

from ivr.admin_client import call_api, table, when
from ivr.config import Settings

COMMANDS = ("callbacks",)


def add_commands(sub: Any) -> None:
    sub.add_parser("callbacks")


def run(args: argparse.Namespace, settings: Settings) -> int:
    return call_api(args, settings, ("GET", "/api/callbacks", None), render)


def render(cmd: str, data: Any) -> str:
    return table(
        ["번호 id", "요청 requested", "사유 reason", "동의 consent", "요청자 by", "발신자 caller"],
        [
            [
                c["id"],
                when(c["requested_at"]),
                c["reason"],
                c["consent"],
                c["requested_by"],
                c["caller_hash"][:10],
            ]
            for c in data
        ],
    )
