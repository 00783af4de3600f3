"""`ivr-admin`: supervisors' and administrators' commands against the running controller.

    ivr-admin status                      calls in progress and queues
    ivr-admin counselors                  roster: on shift, phone registered, logged in, paused
                                          (each since when), busy, wrap-up
    ivr-admin login|logout ID             log a counselor in or out
    ivr-admin pause ID --reason TEXT      pause a counselor (a break, training, ...)
    ivr-admin unpause ID
    ivr-admin calls [--limit N]           recent call records
    ivr-admin flags                       active abuse flags (hashed callers)
    ivr-admin lift-flag CALLER_HASH       lift a caller's abuse flag
    ivr-admin callbacks                   open callback requests
    ivr-admin reload-roster               read the roster file again (no restart)
    ivr-admin reload                      apply menu, roster and prompt changes (no restart)

It talks to the controller's API on loopback with the admin token from state_dir/secrets.json
(whoever can read that file is an administrator). Output is Korean with English headings;
`--json` (before or after the subcommand) prints the raw answer for scripts.

Consented call summaries (ivr.summary.admin_commands; on the database file, no controller
needed; reads, exports, notes and withdrawals are audited):

    ivr-admin consent CALL_ID                      the call's consent record
    ivr-admin summary CALL_ID [--who NAME]         read a call summary
    ivr-admin export CALL_ID --out FILE [--who N]  export it as JSON for a follow-up worker
    ivr-admin note CALL_ID --text TEXT [--by NAME] add or replace the counselor's wrap-up note
    ivr-admin withdraw CALL_ID [--by NAME]         withdraw consent: delete transcripts+summary
    ivr-admin purge                                delete what is older than retention_days
    ivr-admin jobs                                 transcription jobs pending/running/failed
    ivr-admin retry CALL_ID                        a failed transcription job pending again
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from ivr.config import ConfigError, load_settings
from ivr.pbx.secrets import load_existing
from ivr.summary import admin_commands
from ivr.timezone import SEOUL


class AdminError(RuntimeError):
    pass


async def request(
    url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            aiohttp.ClientSession(headers=headers) as http,
            http.request(method, url + path, json=body, timeout=aiohttp.ClientTimeout(10)) as r,
        ):
            data = await r.json(content_type=None)
            if r.status >= 300:
                raise AdminError(
                    f"{data.get('message_ko', '')} ({data.get('error_id')}: {data.get('message')})"
                )
            return data
    except aiohttp.ClientConnectionError as exc:
        raise AdminError(
            f"컨트롤러에 연결할 수 없습니다 — is ivr-run running? ({url}: {exc})"
        ) from None


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, SEOUL).strftime("%m-%d %H:%M:%S")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[("-" if c is None else str(c)) for c in r] for r in rows]]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        lines.append("  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def _width(text: str) -> int:
    """Display width: Hangul and other wide characters take two columns."""
    return sum(2 if ord(ch) >= 0x1100 else 1 for ch in text)


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
        return "\n".join(lines)
    if cmd == "counselors":
        return table(
            [
                "상담사 member",
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
                    _yn(m["on_shift"]),
                    _since(
                        "등록 online" if m.get("registered") else "미등록 offline",
                        m.get("registered_since"),
                    ),
                    _since(_yn(m["logged_in"]), m.get("logged_in_since")),
                    _since(_yn(m["paused"]), m.get("paused_since")),
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
            f" 안내 음성 prompts v{data['catalog_version']} ({data['prompts']})"
        )
    if cmd == "calls":
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
    if cmd == "flags":
        return table(
            ["발신자 caller", "단계 level", "시작 since", "종료 until"],
            [[f["caller_hash"], f["level"], when(f["created_at"]), when(f["until"])] for f in data],
        )
    if cmd == "callbacks":
        return table(
            [
                "번호 id",
                "요청 requested",
                "사유 reason",
                "동의 consent",
                "요청자 by",
                "발신자 caller",
            ],
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
    if cmd in ACTIONS:
        ko, en = ACTIONS[cmd]
        line = f"{ko} {en}: {data['member']}"
        if cmd == "pause":
            line += f" (사유 reason: {data.get('reason')})"
        return line
    if cmd == "lift-flag":
        return f"주의 표시 해제 flag lifted: {data['caller_hash']} ({data['lifted']})"
    if cmd == "reload-roster":
        return f"근무표를 다시 읽었습니다 roster reloaded: {data['reloaded']}"
    return json.dumps(data, ensure_ascii=False, indent=2)


#: What a counselor action did, in Korean and English.
ACTIONS = {
    "login": ("로그인했습니다", "logged in"),
    "logout": ("로그아웃했습니다", "logged out"),
    "pause": ("휴식 중으로 바꿨습니다", "paused"),
    "unpause": ("휴식을 끝냈습니다", "unpaused"),
}


def _yn(v: bool) -> str:
    return "예" if v else "아니요"


def _since(text: str, ts: float | None) -> str:
    """A state with since when ("예 · 04-02 09:12:03")."""
    return text if ts is None else f"{text} · {when(ts)}"


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}s"


def _shared_options(p: argparse.ArgumentParser, default: Any) -> None:
    """Options that work before and after the subcommand. Subcommands get them with a
    suppressed default, so that `--json status` is not undone by the subparser."""
    p.add_argument(
        "--config", type=Path, default=default, help="TOML settings file (also IVR120_CONFIG)"
    )
    p.add_argument(
        "--json",
        action="store_true",
        default=False if default is None else default,
        help="print the raw JSON answer",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ivr-admin", description=__doc__.splitlines()[0])
    _shared_options(p, None)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("status", "counselors", "flags", "callbacks"):
        sub.add_parser(name)
    sub.add_parser("reload", help="apply menu, roster and prompt changes without a restart")
    sub.add_parser("calls").add_argument("--limit", type=int, default=20)
    for name in ("login", "logout", "unpause"):
        sub.add_parser(name).add_argument("member")
    pause = sub.add_parser("pause")
    pause.add_argument("member")
    pause.add_argument("--reason", default="break")
    sub.add_parser("lift-flag").add_argument("caller_hash")
    sub.add_parser("reload-roster", help="read the roster file again without a restart")
    admin_commands.add_commands(sub)
    for subparser in sub.choices.values():
        _shared_options(subparser, argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 2
    if args.cmd in admin_commands.COMMANDS:
        return admin_commands.run(args, settings)
    try:
        token = load_existing(settings.state_dir / "secrets.json")
    except RuntimeError as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 2
    url = f"http://127.0.0.1:{settings.status_port}"
    method, path, body = "GET", "/status", None
    if args.cmd in ("counselors", "flags", "callbacks"):
        path = f"/api/{args.cmd}"
    elif args.cmd == "calls":
        path = f"/api/calls?limit={args.limit}"
    elif args.cmd in ("login", "logout", "pause", "unpause"):
        method, path = "POST", f"/api/counselors/{args.member}/{args.cmd}"
        body = {"reason": getattr(args, "reason", None) or "admin"}
    elif args.cmd == "lift-flag":
        method, path = "DELETE", f"/api/flags/{args.caller_hash}"
    elif args.cmd == "reload-roster":
        method, path = "POST", "/api/roster/reload"
    elif args.cmd == "reload":
        method, path = "POST", "/api/reload"
    try:
        data = asyncio.run(request(url, token.admin_token, method, path, body))
    except AdminError as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else render(args.cmd, data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
