"""What every ``ivr-admin`` command that talks to the running controller shares: the API call
on loopback with the admin token, and the Korean/English tables it prints."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp

from ivr.config import Settings
from ivr.pbx.secrets import load_existing
from ivr.timezone import SEOUL

#: A command's API request: (method, path, JSON body or None).
Route = tuple[str, str, dict[str, Any] | None]


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
            try:
                data = await r.json(content_type=None)
            except ValueError:  # not the controller's API (a proxy, another program)
                raise AdminError(
                    f"컨트롤러가 아닌 응답입니다 — not the controller's API ({url}{path}: "
                    f"HTTP {r.status})"
                ) from None
            if r.status >= 300:
                raise AdminError(
                    f"{data.get('message_ko', '')} ({data.get('error_id')}: {data.get('message')})"
                )
            return data
    except aiohttp.ClientConnectionError as exc:
        raise AdminError(
            f"컨트롤러에 연결할 수 없습니다 — is ivr-run running? ({url}: {exc})"
        ) from None


def call_api(
    args: argparse.Namespace, settings: Settings, route: Route, render: Callable[[str, Any], str]
) -> int:
    """Send one command's request and print the answer (Korean, or JSON with --json)."""
    try:
        token = load_existing(settings.secrets_path)
    except RuntimeError as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 2
    url = f"http://127.0.0.1:{settings.status_port}"
    try:
        data = asyncio.run(request(url, token.admin_token, *route))
    except AdminError as exc:
        print(f"ivr-admin: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else render(args.cmd, data))
    return 0


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


def yes_no(v: bool) -> str:
    return "예" if v else "아니요"
