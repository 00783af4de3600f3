"""The desk's command of ``ivr-admin``: on the database file, no controller needed.

    ivr-admin desk-password MEMBER [--by NAME]   set (or replace) a member's desk password

The password is read twice from the terminal, or once from standard input when that is not a
terminal (scripts: ``printf '%s\\n' "$PW" | ivr-admin desk-password counselor01``). Only its
scrypt hash is stored; the change is audited. A member who signs in with the old password
afterwards is refused; sessions already open stay until sign-out, and do not come back after
the next restart (ivr/web/session_store.py).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
import time
from typing import Any

from ivr.audit import audit
from ivr.config import Settings
from ivr.store import Store
from ivr.web.auth import MIN_PASSWORD, hash_password, role_of

COMMANDS = ("desk-password",)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("desk-password", help="set a staff member's web desk password")
    p.add_argument("member", help="the staff account (e.g. counselor01)")
    p.add_argument("--by", default=getpass.getuser(), help="who sets it (recorded)")


def _read_password() -> str | None:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("새 비밀번호 (new password): ")
    if getpass.getpass("비밀번호 확인 (again): ") != first:
        print("ivr-admin: 비밀번호가 서로 다릅니다 (the passwords differ)", file=sys.stderr)
        return None
    return first


async def _store(settings: Settings, member: str, hashed: str, by: str) -> None:
    store = await Store.open(settings.state_path(settings.database))
    try:
        await store.change(
            "INSERT INTO desk_passwords (member, hash, set_at, set_by) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (member) DO UPDATE SET hash = excluded.hash,"
            " set_at = excluded.set_at, set_by = excluded.set_by",
            (member, hashed, time.time(), by),
        )
        # Sessions signed in with the old password do not come back at the next start.
        await store.change("DELETE FROM desk_sessions WHERE member = ?", (member,))
    finally:
        await store.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    role = role_of(settings, args.member)
    if role is None:
        print(
            f"ivr-admin: {args.member!r} has no desk account (not a counselor, social worker, "
            "companion, supervisor or wall screen) (데스크 계정이 없는 사용자입니다)",
            file=sys.stderr,
        )
        return 2
    password = _read_password()
    if password is None:
        return 1
    if len(password) < MIN_PASSWORD:
        print(
            f"ivr-admin: at least {MIN_PASSWORD} characters (비밀번호는 {MIN_PASSWORD}자 이상)",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_store(settings, args.member, hash_password(password), args.by))
    audit.info("desk password set: %s (%s) by %s", args.member, role.value, args.by)
    print(f"{args.member}: 데스크 비밀번호를 설정했습니다 (desk password set; role {role.value})")
    return 0
