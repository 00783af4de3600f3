"""The phone agent's JSON commands (ivr.phone.agent): one ``cmd_<name>`` per command, and
the line handler that parses a command, runs it and answers ``ok`` or ``error``.

The :class:`ivr.phone.agent.Agent` owns one; everything runs on the main thread."""

from __future__ import annotations

import gc
import json
import re
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import pjsua2 as pj

from ivr.phone.pjobjects import CommandError, JsonDict, PhoneAccount, PhoneCall, log

if TYPE_CHECKING:
    from ivr.phone.agent import Agent


class Commands:
    """The commands, carried out on `agent`."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            msg = json.loads(line)
        except ValueError as e:
            self.agent.emit("error", id=None, message=f"bad JSON: {e}")
            return
        if not isinstance(msg, dict):
            self.agent.emit("error", id=None, message="command must be a JSON object")
            return
        cmd_id = msg.get("id")
        cmd = msg.get("cmd")
        handler = getattr(self, f"cmd_{cmd}", None) if isinstance(cmd, str) else None
        if handler is None:
            self.agent.emit("error", id=cmd_id, message=f"unknown command: {cmd!r}")
            return
        try:
            handler(msg)
        except CommandError as e:
            self.agent.emit("error", id=cmd_id, message=str(e))
            return
        except pj.Error as e:
            self.agent.emit("error", id=cmd_id, message=f"pjsua2: {e.info()}")
            return
        except Exception as e:  # noqa: BLE001 - report, never crash
            log(traceback.format_exc())
            self.agent.emit("error", id=cmd_id, message=f"{type(e).__name__}: {e}")
            return
        if cmd != "quit":  # quit replies after shutdown (see shutdown())
            self.agent.emit("ok", id=cmd_id)
        else:
            self.agent.quit_id = cmd_id

    def _current_call(self) -> PhoneCall:
        if self.agent.call is None or self.agent.call.disconnected:
            raise CommandError("no active call")
        return self.agent.call

    def _outgoing_account(self) -> PhoneAccount:
        if self.agent.reg_acc is not None:
            return self.agent.reg_acc
        assert self.agent.local_acc is not None
        return self.agent.local_acc

    def cmd_ping(self, msg: JsonDict) -> None:
        pass

    def cmd_identity(self, msg: JsonDict) -> None:
        user = msg.get("user")
        if not isinstance(user, str) or not user or any(c in user for c in "@:<>; "):
            raise CommandError("identity needs a plain 'user' string")
        self.agent.user = user
        assert self.agent.local_acc is not None
        self.agent.local_acc.modify(self.agent.local_account_config())

    def cmd_register(self, msg: JsonDict) -> None:
        user = msg.get("user")
        domain = msg.get("domain")
        if not isinstance(user, str) or not isinstance(domain, str):
            raise CommandError("register needs 'user' and 'domain'")
        password = str(msg.get("password", ""))
        expires = int(msg.get("expires", 120))
        if self.agent.reg_acc is not None:
            if self.agent.call is not None and self.agent.call.acc is self.agent.reg_acc:
                raise CommandError("cannot re-register while a call uses the account")
            self._drop_reg_account()
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{domain}"
        acfg.regConfig.registrarUri = f"sip:{domain}"
        acfg.regConfig.timeoutSec = expires
        acfg.regConfig.retryIntervalSec = 0  # report failures, don't retry forever
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        self.agent.media_config(acfg)
        acc = PhoneAccount(self.agent, "registered")
        acc.create(acfg, False)
        self.agent.reg_acc = acc

    def _drop_reg_account(self) -> None:
        """Delete the registered account by dropping its wrapper.

        Never call Account.shutdown() and keep the wrapper: shutdown() does not clear
        the wrapper's id, so its destructor later deletes whichever new account reused
        that id.  The destructor calls shutdown() itself (unregistering if needed).
        """
        self.agent.reg_acc = None
        gc.collect()

    def cmd_unregister(self, msg: JsonDict) -> None:
        if self.agent.reg_acc is None:
            raise CommandError("not registered")
        self.agent.reg_acc.setRegistration(False)

    def cmd_call(self, msg: JsonDict) -> None:
        uri = msg.get("uri")
        if not isinstance(uri, str) or not uri:
            raise CommandError("call needs 'uri'")
        if self.agent.call is not None and not self.agent.call.disconnected:
            raise CommandError("a call is already in progress")
        if self.agent.call is not None:
            self.agent.end_call(self.agent.call)
        acc = self._outgoing_account()
        call = PhoneCall(self.agent, acc)
        op = pj.CallOpParam(True)
        headers = msg.get("headers") or {}
        for name, value in dict(headers).items():
            h = pj.SipHeader()
            h.hName = str(name)
            h.hValue = str(value)
            op.txOption.headers.append(h)
        self.agent.call = call
        try:
            call.makeCall(uri, op)
        except pj.Error:
            self.agent.call = None
            raise

    def cmd_answer(self, msg: JsonDict) -> None:
        call = self._current_call()
        self.agent.answer_at = None
        self.agent.answer(call, int(msg.get("code", 200)))

    def cmd_auto_answer(self, msg: JsonDict) -> None:
        self.agent.auto_answer = bool(msg.get("enabled", True))
        self.agent.auto_answer_delay = max(0.0, float(msg.get("delay_ms", 0)) / 1000.0)

    def cmd_reject(self, msg: JsonDict) -> None:
        call = self._current_call()
        op = pj.CallOpParam()
        op.statusCode = int(msg.get("code", 486))
        self.agent.answer_at = None
        call.hangup(op)

    def cmd_hangup(self, msg: JsonDict) -> None:
        call = self._current_call()
        self.agent.answer_at = None
        call.hangup(pj.CallOpParam(True))

    def cmd_dtmf(self, msg: JsonDict) -> None:
        digits = msg.get("digits")
        if not isinstance(digits, str) or not re.fullmatch(r"[0-9A-Da-d*#]+", digits):
            raise CommandError("dtmf needs 'digits' from 0-9 A-D * #")
        call = self._current_call()
        if call.audio is None:
            raise CommandError("call has no active audio")
        call.dialDtmf(digits)

    def cmd_play(self, msg: JsonDict) -> None:
        wav = msg.get("wav")
        if not isinstance(wav, str) or not Path(wav).is_file():
            raise CommandError(f"play needs an existing 'wav' file, got {wav!r}")
        self.agent.stop_player()
        self.agent.play_wav = wav
        self.agent.play_loop = bool(msg.get("loop", True))
        try:
            self.agent.connect_media()  # otherwise starts when call audio becomes active
        except pj.Error:
            self.agent.stop_player()
            self.agent.play_wav = None
            raise

    def cmd_stop_play(self, msg: JsonDict) -> None:
        self.agent.stop_player()
        self.agent.play_wav = None

    def cmd_record(self, msg: JsonDict) -> None:
        wav = msg.get("wav")
        if not isinstance(wav, str) or not wav:
            raise CommandError("record needs 'wav'")
        if not Path(wav).parent.is_dir():
            raise CommandError(f"directory of {wav!r} does not exist")
        if self.agent.record_wav is not None:
            raise CommandError("already recording; send stop_record first")
        self.agent.record_wav = wav
        try:
            self.agent.connect_media()  # otherwise starts when call audio becomes active
        except pj.Error:
            self.agent.record_wav = None
            self.agent.recorder = None
            raise

    def cmd_stop_record(self, msg: JsonDict) -> None:
        if self.agent.record_wav is None:
            raise CommandError("not recording")
        self.agent.stop_recorder()

    def cmd_quit(self, msg: JsonDict) -> None:
        self.agent.request_quit("quit command")
