"""A scriptable SIP phone in its own process, built on pjsua2.

Run ``python -m ivr.phone.agent --bind 127.0.0.1``.  Commands arrive as JSON lines on
stdin, events leave as JSON lines on stdout (one object per line, always with an
``"event"`` key).  pjsip logging and diagnostics go to stderr.

Everything that touches pjsua2 runs on the main thread: the library is polled with
``Endpoint.libHandleEvents()`` (no pjsua worker threads, no media worker threads) and a
helper thread does nothing but read stdin lines into a queue.  The only other native
thread is the null sound device's clock, which drives the conference bridge (players
and recorders); no Python callback is run from it except ``AudioMediaPlayer.onEof2``,
which only sets a flag.  See docs/pjsua2.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import queue
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import pjsua2 as pj

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

POLL_MS = 10
SHUTDOWN_STEP_TIMEOUT = 2.0  # seconds to wait for BYE / un-REGISTER answers on quit
WATCHDOG_SECONDS = 8.0
RECORDER_CLOSE_TIMEOUT = 2.0  # hard exit if shutdown is stuck inside the library

_EOF = object()


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


class Agent:
    def __init__(self, args: argparse.Namespace, emit: Emitter) -> None:
        self.args = args
        self.emit = emit
        self.bind: str = args.bind
        self.commands: queue.Queue[object] = queue.Queue()
        self.quitting = False
        self.quit_id: Any = None
        self.quit_reason = ""
        self.ep: Any = None
        self.port = 0
        self.transport_id = -1
        self.user = "citizen"
        self.local_acc: PhoneAccount | None = None
        self.reg_acc: PhoneAccount | None = None
        self.reg_events = 0
        self.call: PhoneCall | None = None  # the one current call
        self.other_calls: list[PhoneCall] = []  # busy-rejected calls until they end
        self.auto_answer = False
        self.auto_answer_delay = 0.0
        self.answer_at: float | None = None
        # playback / recording
        self.play_wav: str | None = None
        self.play_loop = True
        self.player: Player | None = None
        self.record_wav: str | None = None
        self.recorder: Any = None
        self.closing_recordings: list[tuple[str, float]] = []  # (wav, deadline)
        self.player_slot: int | None = None  # conference slot the player feeds
        self.record_slot: int | None = None  # conference slot the recorder listens to

    # ------------------------------------------------------------------ setup
    def start(self) -> None:
        ep = pj.Endpoint()
        self.ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4
        cfg.uaConfig.userAgent = "ivr120-phone-agent"
        cfg.medConfig.threadCnt = 0  # RTP is polled by libHandleEvents as well
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        # Never close the (null) sound device when idle: it is the conference bridge's
        # clock, and pjsua reopens it only on a new bridge connection, not for a new call.
        # A call answered after >1 s idle would then send no RTP at all, keys included.
        cfg.medConfig.sndAutoCloseTime = -1
        cfg.medConfig.clockRate = self.args.clock_rate
        cfg.medConfig.sndClockRate = self.args.clock_rate
        cfg.logConfig.level = self.args.log_level
        cfg.logConfig.consoleLevel = self.args.log_level
        cfg.logConfig.msgLogging = 1 if self.args.log_level >= 4 else 0
        ep.libInit(cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = self.args.sip_port
        tcfg.boundAddress = self.bind
        self.transport_id = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        local_name = ep.transportGetInfo(self.transport_id).localName
        self.port = int(str(local_name).rsplit(":", 1)[1])
        ep.libStart()
        ep.audDevManager().setNullDev()
        self._prefer_codecs()
        self.local_acc = PhoneAccount(self, "local")
        self.local_acc.create(self._local_account_config(), True)

    def _prefer_codecs(self) -> None:
        """G.711 first (what Asterisk speaks by default), speex etc. still allowed."""
        priorities = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}
        for ci in self.ep.codecEnum2():
            if ci.codecId in priorities:
                self.ep.codecSetPriority(ci.codecId, priorities[ci.codecId])

    def _media_config(self, acfg: Any) -> None:
        acfg.sipConfig.transportId = self.transport_id
        acfg.mediaConfig.transportConfig.boundAddress = self.bind
        acfg.mediaConfig.transportConfig.port = self.args.rtp_port_start or 0
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0

    def _local_account_config(self) -> Any:
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{self.user}@{self.bind}:{self.port}"
        self._media_config(acfg)
        return acfg

    # -------------------------------------------------------------- main loop
    def run(self) -> None:
        self.emit("ready", port=self.port)
        while not self.quitting:
            self.ep.libHandleEvents(POLL_MS)
            self._drain_commands()
            self._housekeeping()
        self.shutdown()

    def _drain_commands(self) -> None:
        while not self.quitting:
            try:
                item = self.commands.get_nowait()
            except queue.Empty:
                return
            if item is _EOF:
                self.request_quit("stdin closed")
                return
            assert isinstance(item, str)
            self.handle_line(item)

    def request_quit(self, reason: str) -> None:
        if not self.quitting:
            self.quitting = True
            self.quit_reason = reason

    def handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            msg = json.loads(line)
        except ValueError as e:
            self.emit("error", id=None, message=f"bad JSON: {e}")
            return
        if not isinstance(msg, dict):
            self.emit("error", id=None, message="command must be a JSON object")
            return
        cmd_id = msg.get("id")
        cmd = msg.get("cmd")
        handler = getattr(self, f"cmd_{cmd}", None) if isinstance(cmd, str) else None
        if handler is None:
            self.emit("error", id=cmd_id, message=f"unknown command: {cmd!r}")
            return
        try:
            handler(msg)
        except CommandError as e:
            self.emit("error", id=cmd_id, message=str(e))
            return
        except pj.Error as e:
            self.emit("error", id=cmd_id, message=f"pjsua2: {e.info()}")
            return
        except Exception as e:  # noqa: BLE001 - report, never crash
            log(traceback.format_exc())
            self.emit("error", id=cmd_id, message=f"{type(e).__name__}: {e}")
            return
        if cmd != "quit":  # quit replies after shutdown (see shutdown())
            self.emit("ok", id=cmd_id)
        else:
            self.quit_id = cmd_id

    def _housekeeping(self) -> None:
        if self.answer_at is not None and time.monotonic() >= self.answer_at:
            self.answer_at = None
            call = self.call
            if call is not None and not call.disconnected:
                try:
                    self._answer(call, 200)
                except pj.Error as e:
                    log(f"auto answer failed: {e.info()}")
        if self.player is not None and self.player.eof and not self.play_loop:
            self.emit("play_done", wav=self.play_wav)
            self._stop_player()
            self.play_wav = None
        # drop calls that have ended, outside of their own callbacks
        if self.call is not None and self.call.disconnected:
            self._end_call(self.call)
            self.call = None
        for c in [c for c in self.other_calls if c.disconnected]:
            self.other_calls.remove(c)
        if self.closing_recordings:
            self._flush_recordings()

    # -------------------------------------------------------------- callbacks
    def on_incoming_call(self, acc: PhoneAccount, prm: Any) -> None:
        call = PhoneCall(self, acc, prm.callId)
        info = call.getInfo()
        headers: dict[str, str] = {}
        request_uri = ""
        try:
            whole = str(prm.rdata.wholeMsg)
            headers = parse_headers(whole)
            request_uri = request_line_uri(whole)
        except Exception:  # noqa: BLE001
            log(traceback.format_exc())
        if self.call is not None:
            call.busy_reject = True
            self.other_calls.append(call)
            op = pj.CallOpParam()
            op.statusCode = 486
            call.hangup(op)
            self.emit("busy_rejected", **{"from": str(info.remoteUri), "code": 486})
            return
        self.call = call
        op = pj.CallOpParam()
        op.statusCode = 180
        call.answer(op)
        self.emit(
            "incoming",
            **{"from": str(info.remoteUri), "headers": headers, "request_uri": request_uri},
        )
        if self.auto_answer:
            self.answer_at = time.monotonic() + self.auto_answer_delay

    def on_call_state(self, call: PhoneCall) -> None:
        info = call.getInfo()
        state = CALL_STATES.get(info.state, str(info.stateText))
        if state == "DISCONNECTED":
            call.disconnected = True
            call.audio = None
        if call.busy_reject:
            return
        self.emit(
            "call_state",
            state=state,
            code=int(info.lastStatusCode),
            reason=str(info.lastReason),
        )
        if state == "DISCONNECTED" and call is self.call:
            # stop media users now so "recorded" follows the DISCONNECTED event
            self._end_call(call)

    def on_call_media_state(self, call: PhoneCall) -> None:
        if call.busy_reject or call is not self.call:
            return
        info = call.getInfo()
        audio = None
        for mi in info.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = call.getAudioMedia(mi.index)
                break
        was_active = call.audio is not None
        call.audio = audio
        # A media update may have re-created the call's conference port: connect again
        # (a connection that still exists only costs a warning in the pjsip log).
        self.player_slot = None
        self.record_slot = None
        if audio is not None:
            self._connect_media()
        if (audio is not None) != was_active:
            self.emit("media", active=audio is not None)

    # ------------------------------------------------------------------ media
    def _connect_media(self) -> None:
        call = self.call
        if call is None or call.audio is None:
            return
        slot = call.audio.getPortId()
        if self.play_wav is not None:
            if self.player is None:
                player = Player()
                options = 0 if self.play_loop else pj.PJMEDIA_FILE_NO_LOOP
                player.createPlayer(self.play_wav, options)
                self.player = player
            if self.player_slot != slot:
                self.player.startTransmit(call.audio)
                self.player_slot = slot
        if self.record_wav is not None:
            if self.recorder is None:
                recorder = pj.AudioMediaRecorder()
                recorder.createRecorder(self.record_wav)
                self.recorder = recorder
            if self.record_slot != slot:
                call.audio.startTransmit(self.recorder)
                self.record_slot = slot

    def _stop_player(self) -> None:
        player = self.player
        self.player = None
        self.player_slot = None
        if player is None:
            return
        call = self.call
        if call is not None and call.audio is not None:
            try:
                player.stopTransmit(call.audio)
            except pj.Error:
                pass
        del player  # destroys the file port

    def _stop_recorder(self) -> None:
        wav = self.record_wav
        rec = self.recorder
        self.record_wav = None
        self.recorder = None
        self.record_slot = None
        if wav is None:
            return
        if rec is not None:
            call = self.call
            if call is not None and call.audio is not None:
                try:
                    call.audio.stopTransmit(rec)
                except pj.Error:
                    pass
            # Dropping the last reference destroys the recorder.  The conference bridge
            # removes ports asynchronously (on its clock thread) and the WAV writer
            # flushes and fixes up its header only then, so "recorded" is emitted by
            # _flush_recordings() once the file is complete.  (No waiting here: this
            # may run inside a pjsua callback, where polling again must be avoided.)
            del rec
        self.closing_recordings.append((wav, time.monotonic() + RECORDER_CLOSE_TIMEOUT))

    def _flush_recordings(self, force: bool = False) -> None:
        """Emit "recorded" for recordings whose file is complete (or timed out)."""
        now = time.monotonic()
        for item in list(self.closing_recordings):
            wav, deadline = item
            complete = wav_finalized(wav)
            if complete or force or now >= deadline:
                self.closing_recordings.remove(item)
                self.emit("recorded", wav=wav, complete=complete)

    def _end_call(self, call: PhoneCall) -> None:
        """Release media users of the current call (idempotent)."""
        if call is not self.call:
            return
        self._stop_recorder()
        self._stop_player()
        self.play_wav = None
        self.answer_at = None

    def _answer(self, call: PhoneCall, code: int) -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        call.answer(op)

    # --------------------------------------------------------------- commands
    def _current_call(self) -> PhoneCall:
        if self.call is None or self.call.disconnected:
            raise CommandError("no active call")
        return self.call

    def _outgoing_account(self) -> PhoneAccount:
        if self.reg_acc is not None:
            return self.reg_acc
        assert self.local_acc is not None
        return self.local_acc

    def cmd_ping(self, msg: JsonDict) -> None:
        pass

    def cmd_identity(self, msg: JsonDict) -> None:
        user = msg.get("user")
        if not isinstance(user, str) or not user or any(c in user for c in "@:<>; "):
            raise CommandError("identity needs a plain 'user' string")
        self.user = user
        assert self.local_acc is not None
        self.local_acc.modify(self._local_account_config())

    def cmd_register(self, msg: JsonDict) -> None:
        user = msg.get("user")
        domain = msg.get("domain")
        if not isinstance(user, str) or not isinstance(domain, str):
            raise CommandError("register needs 'user' and 'domain'")
        password = str(msg.get("password", ""))
        expires = int(msg.get("expires", 120))
        if self.reg_acc is not None:
            if self.call is not None and self.call.acc is self.reg_acc:
                raise CommandError("cannot re-register while a call uses the account")
            self._drop_reg_account()
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{user}@{domain}"
        acfg.regConfig.registrarUri = f"sip:{domain}"
        acfg.regConfig.timeoutSec = expires
        acfg.regConfig.retryIntervalSec = 0  # report failures, don't retry forever
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        self._media_config(acfg)
        acc = PhoneAccount(self, "registered")
        acc.create(acfg, False)
        self.reg_acc = acc

    def _drop_reg_account(self) -> None:
        """Delete the registered account by dropping its wrapper.

        Never call Account.shutdown() and keep the wrapper: shutdown() does not clear
        the wrapper's id, so its destructor later deletes whichever new account reused
        that id.  The destructor calls shutdown() itself (unregistering if needed).
        """
        self.reg_acc = None
        gc.collect()

    def cmd_unregister(self, msg: JsonDict) -> None:
        if self.reg_acc is None:
            raise CommandError("not registered")
        self.reg_acc.setRegistration(False)

    def cmd_call(self, msg: JsonDict) -> None:
        uri = msg.get("uri")
        if not isinstance(uri, str) or not uri:
            raise CommandError("call needs 'uri'")
        if self.call is not None and not self.call.disconnected:
            raise CommandError("a call is already in progress")
        if self.call is not None:
            self._end_call(self.call)
        acc = self._outgoing_account()
        call = PhoneCall(self, acc)
        op = pj.CallOpParam(True)
        headers = msg.get("headers") or {}
        for name, value in dict(headers).items():
            h = pj.SipHeader()
            h.hName = str(name)
            h.hValue = str(value)
            op.txOption.headers.append(h)
        self.call = call
        try:
            call.makeCall(uri, op)
        except pj.Error:
            self.call = None
            raise

    def cmd_answer(self, msg: JsonDict) -> None:
        call = self._current_call()
        self.answer_at = None
        self._answer(call, int(msg.get("code", 200)))

    def cmd_auto_answer(self, msg: JsonDict) -> None:
        self.auto_answer = bool(msg.get("enabled", True))
        self.auto_answer_delay = max(0.0, float(msg.get("delay_ms", 0)) / 1000.0)

    def cmd_reject(self, msg: JsonDict) -> None:
        call = self._current_call()
        op = pj.CallOpParam()
        op.statusCode = int(msg.get("code", 486))
        self.answer_at = None
        call.hangup(op)

    def cmd_hangup(self, msg: JsonDict) -> None:
        call = self._current_call()
        self.answer_at = None
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
        self._stop_player()
        self.play_wav = wav
        self.play_loop = bool(msg.get("loop", True))
        try:
            self._connect_media()  # otherwise starts when call audio becomes active
        except pj.Error:
            self._stop_player()
            self.play_wav = None
            raise

    def cmd_stop_play(self, msg: JsonDict) -> None:
        self._stop_player()
        self.play_wav = None

    def cmd_record(self, msg: JsonDict) -> None:
        wav = msg.get("wav")
        if not isinstance(wav, str) or not wav:
            raise CommandError("record needs 'wav'")
        if not Path(wav).parent.is_dir():
            raise CommandError(f"directory of {wav!r} does not exist")
        if self.record_wav is not None:
            raise CommandError("already recording; send stop_record first")
        self.record_wav = wav
        try:
            self._connect_media()  # otherwise starts when call audio becomes active
        except pj.Error:
            self.record_wav = None
            self.recorder = None
            raise

    def cmd_stop_record(self, msg: JsonDict) -> None:
        if self.record_wav is None:
            raise CommandError("not recording")
        self._stop_recorder()

    def cmd_quit(self, msg: JsonDict) -> None:
        self.request_quit("quit command")

    # --------------------------------------------------------------- shutdown
    def _pump_until(self, done: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.ep.libHandleEvents(POLL_MS)

    def shutdown(self) -> None:
        log(f"shutting down ({self.quit_reason})")
        # Never hang: if the library gets stuck below, exit hard.
        watchdog = threading.Timer(WATCHDOG_SECONDS, _watchdog_exit)
        watchdog.daemon = True
        watchdog.start()
        self._hangup_all()
        self._unregister()
        self._release_objects()
        self._pump_until(
            lambda: all(wav_finalized(w) for w, _ in self.closing_recordings),
            RECORDER_CLOSE_TIMEOUT,
        )
        gc.collect()  # no pjsua2 wrapper may be finalised after libDestroy()
        live = [o for o in gc.get_objects() if isinstance(o, PhoneCall | PhoneAccount)]
        if live:
            log(f"warning: {len(live)} call/account wrappers still alive at libDestroy")
        del live
        # calls were hung up and the account unregistered above
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        self.ep = None
        self._flush_recordings(force=True)
        if self.quit_id is not None:
            self.emit("ok", id=self.quit_id)
        self.emit("bye")
        watchdog.cancel()

    # The helpers below keep pjsua2 objects in locals only; those die when they
    # return.  A Call or Account wrapper that outlives libDestroy() aborts the
    # process in its C++ destructor (pjsua_call_set_user_data assertion).
    def _hangup_all(self) -> None:
        if self.call is not None:
            self._end_call(self.call)
        calls = [c for c in [self.call, *self.other_calls] if c is not None]
        for call in calls:
            if not call.disconnected:
                try:
                    call.hangup(pj.CallOpParam(True))
                except pj.Error as e:
                    log(f"hangup on quit: {e.info()}")
        self._pump_until(lambda: all(c.disconnected for c in calls), SHUTDOWN_STEP_TIMEOUT)

    def _unregister(self) -> None:
        acc = self.reg_acc
        if acc is None:
            return
        try:
            if acc.getInfo().regIsActive:
                before = self.reg_events
                acc.setRegistration(False)
                self._pump_until(lambda: self.reg_events > before, SHUTDOWN_STEP_TIMEOUT)
        except pj.Error as e:
            log(f"unregister on quit: {e.info()}")

    def _release_objects(self) -> None:
        self._stop_player()
        self._stop_recorder()
        self.call = None
        self.other_calls.clear()
        gc.collect()  # calls first: they refer to their account
        self.reg_acc = None
        self.local_acc = None


def _watchdog_exit() -> None:
    log("shutdown watchdog fired; exiting hard")
    os._exit(3)


def _stdin_reader(fd: int, q: queue.Queue[object]) -> None:
    """Reads raw stdin and queues decoded lines; never touches pjsua2."""
    buf = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            if buf.strip():
                q.put(buf.decode("utf-8", "replace"))
            q.put(_EOF)
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            q.put(line.decode("utf-8", "replace"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ivr-phone", description=__doc__.split("\n")[0])
    p.add_argument("--bind", default="127.0.0.1", help="address for SIP (UDP) and RTP")
    p.add_argument("--sip-port", type=int, default=0, help="SIP UDP port, 0 = any free one")
    p.add_argument("--rtp-port-start", type=int, default=0, help="first RTP port (0 = any)")
    p.add_argument("--log-level", type=int, default=1, help="pjsip log level to stderr (0-6)")
    p.add_argument(
        "--clock-rate", type=int, default=8000, help="conference bridge / recording rate"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # stdout belongs to the JSON protocol: keep a private copy of fd 1 and point fd 1
    # (where pjsip's console log writer and any stray C/Python prints go) at stderr.
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1)
    emit = Emitter(out)

    agent = Agent(args, emit)
    signal.signal(signal.SIGTERM, lambda *_: agent.request_quit("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: agent.request_quit("SIGINT"))

    reader = threading.Thread(
        target=_stdin_reader, args=(0, agent.commands), name="stdin", daemon=True
    )
    try:
        agent.start()
    except pj.Error as e:
        emit("error", id=None, message=f"startup failed: {e.info()}")
        return 1
    reader.start()
    try:
        agent.run()
    except BaseException:
        # A bug in the loop: still hang up and destroy the library (shutdown() has a
        # watchdog, so this cannot hang either).
        log(traceback.format_exc())
        if agent.ep is not None:
            agent.shutdown()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
