"""`ivr-softphone`: the counselors' console softphone, on the pjsua2 phone agent.

It registers with the counselor's account, shows each incoming call with what the hotline knows
(line, menu path, wait, whether the number called before, any active flag — never the number
itself), and takes one-key commands followed by Enter:

    a  answer              h  hang up             q  quit
    i  log in (*51)        o  log out (*52)       p  pause (*53)    r  resume (*54)
    x  end for abuse (*9 — the manual's procedure: policy prompt, flag, longer wrap-up)
    t  warm transfer to the crisis line (*7 — you stay on until it answers, then hang up)
    c  ask for a social-worker callback (*8 — after the caller agreed on the call)
    w  the caller withdraws consent to the summary (*6 — recording stops and is deleted)

The keys during a call are sent as DTMF, so any SIP phone can do the same with its keypad.
Line-based input keeps it usable headless (tests drive it through stdin) and in any terminal.
Messages are in Korean (the hotline's values, such as the line and the consent answer, too);
`--lang en` switches to English for administrators.

The SIP password is never taken from the command line (other users see it in `ps`): it is read
from `--password-file FILE`, else from the environment variable IVR120_SIP_PASSWORD, else asked
for at the terminal.

The pjsua2 wheel used here is built without sound-device support, so audio goes to pjsua2's
null device; for a headset, run the agent against a pjsua2 build with audio (docs/pjsua2.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ivr.phone.remote import PhoneError, RemotePhone

INFO_PREFIX = "X-IVR120-"

FEATURES = {"i": "*51", "o": "*52", "p": "*53", "r": "*54"}
IN_CALL = {"x": "*9", "t": "*7", "c": "*8", "w": "*6"}
IN_CALL_WHAT = {"x": "abuse", "t": "crisis", "c": "callback", "w": "withdraw"}
PASSWORD_ENV = "IVR120_SIP_PASSWORD"

#: The hotline's header values as the counselor reads them; unknown values are shown as sent.
VALUES = {
    "ko": {
        "line": {"loneliness": "외로움안녕 상담", "general": "120 일반 상담", "120": "120"},
        "consent": {"yes": "동의함", "no": "동의하지 않음", "pending": "동의 전", "-": "동의 전"},
        "flag": {"abuse-1": "폭언 1단계", "abuse-2": "폭언 2단계", "abuse-3": "폭언 3단계"},
    },
    "en": {
        "line": {"loneliness": "loneliness line", "general": "general 120", "120": "120"},
        "consent": {"yes": "yes", "no": "no", "pending": "not yet", "-": "not yet"},
        "flag": {
            "abuse-1": "abuse level 1",
            "abuse-2": "abuse level 2",
            "abuse-3": "abuse level 3",
        },
    },
}

MESSAGES = {
    "ko": {
        "registering": "등록 중: {user}@{server}",
        "registered": "등록되었습니다. 전화를 기다립니다.",
        "reg_failed": "등록 실패 ({code} {reason})",
        "incoming": "전화가 왔습니다 — {line}",
        "details": "  메뉴 {path} · 대기 {wait}초 · {repeat} · {flag} · 요약 동의: {consent}",
        "repeat_yes": "이전에 전화한 번호",
        "repeat_no": "처음 전화한 번호",
        "flag_none": "주의 표시 없음",
        "flag": "주의: {flag}",
        "connected": "통화 중입니다.",
        "ended": "통화가 끝났습니다.",
        "feature": "기능 코드 {code} 전송",
        "sent": "{what} 요청을 보냈습니다.",
        "abuse": "폭언 종료",
        "crisis": "위기 상담 연결",
        "callback": "사회복지사 콜백",
        "withdraw": "요약 동의 철회",
        "no_call": "진행 중인 통화가 없습니다.",
        "busy": "통화 중에는 사용할 수 없습니다.",
        "unknown": "알 수 없는 명령: {key}  (a 받기, h 끊기, i/o 로그인/아웃, p/r 휴식/재개,"
        " x 폭언 종료, t 위기 연결, c 콜백, w 동의 철회, q 종료)",
        "bye": "종료합니다.",
        "both_silent": "(양쪽 모두 {seconds}초째 말이 없습니다)",
        "caller_silent": "(상대방이 {seconds}초째 말이 없습니다 — 판단은 상담사님께 맡깁니다)",
        "resumed": "(대화가 다시 이어지고 있습니다)",
        "text": "[알림] {body}",
    },
    "en": {
        "registering": "registering: {user}@{server}",
        "registered": "registered; waiting for calls.",
        "reg_failed": "registration failed ({code} {reason})",
        "incoming": "incoming call — {line}",
        "details": "  menu {path} · waited {wait}s · {repeat} · {flag} · consent: {consent}",
        "repeat_yes": "called before",
        "repeat_no": "first call",
        "flag_none": "no flag",
        "flag": "flag: {flag}",
        "connected": "connected.",
        "ended": "call ended.",
        "feature": "feature code {code} sent",
        "sent": "{what} requested.",
        "abuse": "end for abuse",
        "crisis": "crisis transfer",
        "callback": "social-worker callback",
        "withdraw": "consent withdrawal",
        "no_call": "no call in progress.",
        "busy": "not available during a call.",
        "unknown": "unknown command: {key}  (a answer, h hang up, i/o log in/out, p/r pause/"
        "resume, x abuse, t crisis, c callback, w withdraw consent, q quit)",
        "bye": "bye.",
        "both_silent": "(both sides silent for {seconds} s)",
        "caller_silent": "(the caller has been silent for {seconds} s — your call)",
        "resumed": "(speech resumed)",
        "text": "[notice] {body}",
    },
}


def call_info(headers: dict[str, str]) -> dict[str, str]:
    """The hotline's X-IVR120-* headers of an incoming INVITE, keyed without the prefix."""
    out = {}
    for name, value in headers.items():
        if name.lower().startswith(INFO_PREFIX.lower()):
            out[name[len(INFO_PREFIX) :].lower()] = value
    return out


def label(lang: str, kind: str, value: str) -> str:
    """A header value (line, consent, flag) in the console's language."""
    return VALUES[lang][kind].get(value, value)


class Console:
    def __init__(self, phone: RemotePhone, args: argparse.Namespace) -> None:
        self.phone = phone
        self.args = args
        self.msg = MESSAGES[args.lang]
        self.in_call = False
        self.ringing = False

    def say(self, message: str, **kw: Any) -> None:
        print(self.msg[message].format(**kw), flush=True)

    async def watch(self) -> None:
        """Print what happens on the phone."""
        seen = 0
        while True:
            await self.phone.wait_any(seen)
            for ev in self.phone.events[seen:]:
                self.show(ev)
            seen = len(self.phone.events)

    def show(self, ev: dict[str, Any]) -> None:
        kind = ev.get("event")
        if kind == "reg_state":
            if ev.get("active"):
                self.say("registered")
            else:
                self.say("reg_failed", code=ev.get("code"), reason=ev.get("reason", ""))
        elif kind == "incoming":
            self.ringing = True
            info = call_info(ev.get("headers") or {})
            lang = self.args.lang
            line = info.get("line", info.get("queue", "120"))
            self.say("incoming", line=label(lang, "line", line))
            repeat = self.msg["repeat_yes" if info.get("repeat") == "yes" else "repeat_no"]
            flag = label(lang, "flag", info.get("flag", ""))
            consent = info.get("consent", "-")
            self.say(
                "details",
                path=info.get("path", "-"),
                wait=info.get("wait", "?"),
                repeat=repeat,
                flag=self.msg["flag"].format(flag=flag) if flag else self.msg["flag_none"],
                consent=label(lang, "consent", consent)
                if line == "loneliness" or consent != "-"
                else "-",
            )
        elif kind == "message":
            # The hotline's notices: "ivr120:<kind>:<seconds>".
            parts = str(ev.get("body", "")).split(":")
            if len(parts) == 3 and parts[0] == "ivr120" and parts[1] in self.msg:
                self.say(parts[1], seconds=parts[2])
            elif parts[0] != "ivr120":  # a notice in words (e.g. "not on shift now")
                self.say("text", body=ev.get("body", ""))
        elif kind == "call_state":
            state = ev.get("state")
            if state == "CONFIRMED" and self.ringing:
                self.ringing, self.in_call = False, True
                self.say("connected")
            elif state == "DISCONNECTED":
                if self.in_call or self.ringing:
                    self.say("ended")
                self.ringing = self.in_call = False

    async def command(self, key: str) -> bool:
        """Carry out one key; False means quit."""
        key = key.strip().lower()
        if not key:
            return True
        try:
            if key == "q":
                return False
            if key == "a":
                await self.phone.answer()
            elif key == "h":
                await self.phone.hangup()
            elif key in FEATURES:
                if self.in_call or self.ringing:
                    self.say("busy")
                else:
                    code = FEATURES[key]
                    await self.phone.call(f"sip:{code}@{self.args.server}")
                    self.say("feature", code=code)
            elif key in IN_CALL:
                if not self.in_call:
                    self.say("no_call")
                else:
                    await self.phone.dtmf(IN_CALL[key])
                    self.say("sent", what=self.msg[IN_CALL_WHAT[key]])
            else:
                self.say("unknown", key=key)
        except PhoneError as exc:
            print(f"! {exc}".splitlines()[0], flush=True)
        return True


class PasswordError(RuntimeError):
    """No SIP password could be read."""


def read_password(password_file: Path | None, env: Mapping[str, str], ask: Any = None) -> str:
    """The SIP password: from the file, else the environment, else asked with `ask` (a
    terminal prompt such as getpass; None when stdin is not a terminal, as stdin carries the
    console's commands)."""
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PasswordError(
                f"cannot read {password_file}: {exc.strerror} (비밀번호 파일을 읽을 수 없습니다)"
            ) from None
        if not text:
            raise PasswordError(f"{password_file} is empty (비밀번호 파일이 비어 있습니다)")
        return text.splitlines()[0]
    if env.get(PASSWORD_ENV):
        return env[PASSWORD_ENV]
    text = ""
    if ask is not None:
        with contextlib.suppress(EOFError, OSError):
            text = str(ask("SIP 비밀번호 password: "))
    if not text:
        raise PasswordError(
            f"no password: give --password-file FILE, set {PASSWORD_ENV} or type it at a terminal"
            " (비밀번호가 필요합니다)"
        )
    return text


async def run(args: argparse.Namespace) -> int:
    phone = await RemotePhone.start(name=args.user, bind=args.bind)
    console = Console(phone, args)
    watcher = asyncio.create_task(console.watch())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        console.say("registering", user=args.user, server=args.server)
        await phone.send(
            "register", user=args.user, password=args.password_value, domain=args.server
        )
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while not stop.is_set():
            line_task = asyncio.ensure_future(reader.readline())
            stop_task = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({line_task, stop_task}, return_when="FIRST_COMPLETED")
            for t in (line_task, stop_task):
                if t not in done:
                    t.cancel()
            if stop_task in done:
                break
            line = line_task.result()
            if not line or not await console.command(line.decode(errors="replace")):
                break
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await phone.close()
        console.say("bye")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="ivr-softphone",
        description="Counselor console softphone",
        allow_abbrev=False,  # `--password` must not pass as `--password-file`
    )
    p.add_argument("--user", required=True, help="SIP account, e.g. counselor01")
    p.add_argument(
        "--password-file",
        type=Path,
        help=f"file with the SIP password (ivr-pbx credentials); else ${PASSWORD_ENV}, else asked",
    )
    p.add_argument("--server", default="127.0.0.1:5060", help="PBX host:port")
    p.add_argument("--bind", default="127.0.0.1", help="local address for SIP and RTP")
    p.add_argument("--lang", choices=sorted(MESSAGES), default="ko")
    args = p.parse_args(argv)
    try:
        ask = getpass.getpass if sys.stdin.isatty() else None
        args.password_value = read_password(args.password_file, os.environ, ask)
    except PasswordError as exc:
        print(f"ivr-softphone: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
