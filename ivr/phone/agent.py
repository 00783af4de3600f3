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

This module is the process and the phone's state (calls, media, shutdown); the pjsua2
objects whose callbacks land here are in ivr.phone.pjobjects, the JSON commands in
ivr.phone.commands (names used by importers are re-exported here).
"""

from __future__ import annotations

import argparse
import gc
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from ivr.phone.commands import Commands
from ivr.phone.pjobjects import (
    CALL_STATES,
    CommandError,
    Emitter,
    JsonDict,
    PhoneAccount,
    PhoneCall,
    Player,
    guarded,
    log,
    parse_headers,
    request_line_uri,
    wav_finalized,
)

__all__ = [
    "CALL_STATES",
    "Agent",
    "CommandError",
    "Emitter",
    "JsonDict",
    "PhoneAccount",
    "PhoneCall",
    "Player",
    "guarded",
    "log",
    "main",
    "parse_args",
    "parse_headers",
    "request_line_uri",
    "wav_finalized",
]

POLL_MS = 10
SHUTDOWN_STEP_TIMEOUT = 2.0  # seconds to wait for BYE / un-REGISTER answers on quit
WATCHDOG_SECONDS = 8.0
RECORDER_CLOSE_TIMEOUT = 2.0  # hard exit if shutdown is stuck inside the library

_EOF = object()


class Agent:
    def __init__(self, args: argparse.Namespace, emit: Emitter) -> None:
        self.args = args
        self.emit = emit
        self.bind: str = args.bind
        self.commands: queue.Queue[object] = queue.Queue()
        self.cmd = Commands(self)  # what the command lines are carried out by
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
        self.local_acc.create(self.local_account_config(), True)

    def _prefer_codecs(self) -> None:
        """G.711 first (what Asterisk speaks by default), speex etc. still allowed."""
        priorities = {"PCMU/8000/1": 255, "PCMA/8000/1": 254}
        for ci in self.ep.codecEnum2():
            if ci.codecId in priorities:
                self.ep.codecSetPriority(ci.codecId, priorities[ci.codecId])

    def media_config(self, acfg: Any) -> None:
        acfg.sipConfig.transportId = self.transport_id
        acfg.mediaConfig.transportConfig.boundAddress = self.bind
        acfg.mediaConfig.transportConfig.port = self.args.rtp_port_start or 0
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0

    def local_account_config(self) -> Any:
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{self.user}@{self.bind}:{self.port}"
        self.media_config(acfg)
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
            self.cmd.handle_line(item)

    def request_quit(self, reason: str) -> None:
        if not self.quitting:
            self.quitting = True
            self.quit_reason = reason

    def _housekeeping(self) -> None:
        if self.answer_at is not None and time.monotonic() >= self.answer_at:
            self.answer_at = None
            call = self.call
            if call is not None and not call.disconnected:
                try:
                    self.answer(call, 200)
                except pj.Error as e:
                    log(f"auto answer failed: {e.info()}")
        if self.player is not None and self.player.eof and not self.play_loop:
            self.emit("play_done", wav=self.play_wav)
            self.stop_player()
            self.play_wav = None
        # drop calls that have ended, outside of their own callbacks
        if self.call is not None and self.call.disconnected:
            self.end_call(self.call)
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
            self.end_call(call)

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
            self.connect_media()
        if (audio is not None) != was_active:
            self.emit("media", active=audio is not None)

    # ------------------------------------------------------------------ media
    def connect_media(self) -> None:
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

    def stop_player(self) -> None:
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

    def stop_recorder(self) -> None:
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

    def end_call(self, call: PhoneCall) -> None:
        """Release media users of the current call (idempotent)."""
        if call is not self.call:
            return
        self.stop_recorder()
        self.stop_player()
        self.play_wav = None
        self.answer_at = None

    def answer(self, call: PhoneCall, code: int) -> None:
        op = pj.CallOpParam()
        op.statusCode = code
        call.answer(op)

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
            self.end_call(self.call)
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
        self.stop_player()
        self.stop_recorder()
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
