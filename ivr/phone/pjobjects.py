"""The pjsua2 side of the phone agent (ivr.phone.agent): the library's call, account and
player objects (their callbacks go to the Agent), and the small helpers they and the agent
share: the JSON event writer, SIP message text, WAV completeness. See docs/pjsua2.md."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import pjsua2 as pj

if TYPE_CHECKING:
    from ivr.phone.agent import Agent

JsonDict = dict[str, Any]

CALL_STATES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}


def log(msg: str) -> None:
    """Diagnostics to stderr (never stdout)."""
    sys.stderr.write(f"[agent] {msg}\n")
    sys.stderr.flush()


def parse_headers(whole_msg: str) -> dict[str, str]:
    """Header fields of a SIP message text (first line and body skipped).

    Repeated headers are joined with ", "; compact forms are left as they are.
    """
    head = re.split(r"\r?\n\r?\n", whole_msg, maxsplit=1)[0]
    lines = head.splitlines()[1:]
    out: dict[str, str] = {}
    last: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and last is not None:  # folded continuation
            out[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        value = value.strip()
        if name in out:
            out[name] += ", " + value
        else:
            out[name] = value
        last = name
    return out


def request_line_uri(whole_msg: str) -> str:
    """The Request-URI of a SIP request's first line ("INVITE sip:... SIP/2.0")."""
    parts = whole_msg.split("\n", 1)[0].split()
    return parts[1] if len(parts) == 3 else ""


def wav_finalized(path: str) -> bool:
    """True once a WAV file's RIFF and data lengths match its size (writer closed)."""
    try:
        with open(path, "rb") as f:
            head = f.read(44)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(head) < 44 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    riff_len = int.from_bytes(head[4:8], "little")
    data_len = int.from_bytes(head[40:44], "little")
    return riff_len == size - 8 and data_len == size - 44


class Emitter:
    """Writes one JSON object per line to the private stdout file."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, event: str, **fields: Any) -> None:
        obj: JsonDict = {"event": event}
        obj.update(fields)
        line = json.dumps(obj, ensure_ascii=False, default=str)
        with self._lock:
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # controller went away; keep going until quit/EOF


class CommandError(Exception):
    """A command could not be carried out; reported as an error event."""


def guarded(fn: Callable[..., None]) -> Callable[..., None]:
    """Never let a Python exception escape into a SWIG director callback."""

    def wrapper(*args: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            log(f"warning: callback {fn.__name__} on thread {threading.current_thread().name}")
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - logged, must not propagate into C++
            log(f"exception in callback {fn.__name__}:\n{traceback.format_exc()}")

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


class PhoneAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, agent: Agent, kind: str) -> None:
        super().__init__()
        self.agent = agent
        self.kind = kind  # "local" or "registered"

    @guarded
    def onRegState(self, prm: Any) -> None:  # noqa: N802 - pjsua2 API name
        info = self.getInfo()
        self.agent.emit(
            "reg_state",
            code=int(prm.code),
            active=bool(info.regIsActive),
            reason=str(prm.reason),
            expires=int(prm.expiration),
        )
        self.agent.reg_events += 1

    @guarded
    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        self.agent.on_incoming_call(self, prm)

    @guarded
    def onInstantMessage(self, prm: Any) -> None:  # noqa: N802
        """A SIP MESSAGE (the hotline tells the counselor about silence this way)."""
        self.agent.emit("message", **{"from": str(prm.fromUri), "body": str(prm.msgBody)})


class PhoneCall(pj.Call):  # type: ignore[misc]
    def __init__(self, agent: Agent, acc: PhoneAccount, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(acc, call_id)
        self.agent = agent
        self.acc = acc
        self.disconnected = False
        self.audio: Any = None  # pj.AudioMedia of the call while media is active
        self.busy_reject = False  # second incoming call that we turned away

    @guarded
    def onCallState(self, prm: Any) -> None:  # noqa: N802
        self.agent.on_call_state(self)

    @guarded
    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        self.agent.on_call_media_state(self)

    @guarded
    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        self.agent.emit("dtmf", digit=str(prm.digit))


class Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A WAV player; onEof2 comes from the media clock thread, so it only sets a flag."""

    def __init__(self) -> None:
        super().__init__()
        self.eof = False

    def onEof2(self) -> None:  # noqa: N802
        self.eof = True
