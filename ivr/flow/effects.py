"""The caller's journey, adapter side: carries out the flow's call-control commands on the
caller's channel (answer, play, hold, bridge, timers, audio taps, the crisis line, the end).

Each command has one small function; `handlers()` is this room's part of the command table
(ivr.effects). A failure raises: the table's caller applies the call-control policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from secrets import token_hex
from typing import Any

from ivr.ari.client import AriConnectionError, AriError, AriNotFound
from ivr.ari.events import StasisStart
from ivr.context import ActiveCall, CallContext, safe_store
from ivr.flow import call as flow
from ivr.privacy import caller_hash
from ivr.store import WriteDeferred
from ivr.summary.consent import ConsentRecorder
from ivr.tap import Tap, TapConfig
from speech.pool import RecognizerPool

log = logging.getLogger(__name__)

CRISIS_ARG = "crisis"
SOUND_PREFIX = "sound:ivr120/"
MOH_CLASS = "default"


class CallEffects:
    #: What touches only the call's own channel, bridges, timers, taps and rows (ivr.effects):
    #: carried out beside other calls'. Connecting and hanging up staff legs and the crisis
    #: line touch what calls share.
    call_local = (
        flow.Answer,
        flow.Play,
        flow.StopPlayback,
        flow.StartTimer,
        flow.CancelTimer,
        flow.Hold,
        flow.HangupCaller,
        flow.Recover,
        flow.StartListening,
        flow.StopListening,
        flow.Listen,
        flow.NotifyStaff,
        flow.RecordSilence,
        flow.Finish,
    )

    def __init__(
        self,
        ctx: CallContext,
        flow_config: flow.FlowConfig,
        consent: ConsentRecorder,
        model: Any = None,
    ) -> None:
        self.ctx = ctx
        #: Each new call starts with this (a reload replaces it; calls keep theirs).
        self.flow_config = flow_config
        self.consent = consent
        #: The Korean recognition model (loaded once per process), or None: keys only.
        self.model = model
        settings = ctx.settings
        #: The callers' grammar recognizers, shared and bounded (speech.pool); None: keys only.
        self.recognizers = (
            RecognizerPool(model, capacity=settings.max_recognizers) if model is not None else None
        )
        self.tap_config = TapConfig(
            app=settings.ari_app,
            thresholds=tuple(
                sorted({settings.both_silence_notify, settings.caller_silence_notify})
            ),
            rtp_bind=settings.tap_rtp_bind,
            rtp_address=settings.tap_rtp_target,
        )
        self.playbacks: dict[str, str] = {}  # playback id -> call id
        self.crisis_legs: dict[str, str] = {}  # leg id -> call id
        self._crisis_seq = 0

    def handlers(self) -> dict[type[flow.Command], Any]:
        return {
            flow.Answer: self._answer,
            flow.Play: self._play,
            flow.StopPlayback: self._stop_playback,
            flow.StartTimer: self._start_timer,
            flow.CancelTimer: self._cancel_timer,
            flow.Hold: self._hold,
            flow.Connect: self._connect,
            flow.JoinTalk: self._join_talk,
            flow.HangupLeg: self._hangup_leg,
            flow.HangupCaller: self._hangup_caller,
            flow.Recover: self._recover_cmd,
            flow.RingCrisis: self._ring_crisis,
            flow.StartListening: self._start_listening,
            flow.StopListening: self._stop_listening,
            flow.Listen: self._listen,
            flow.NotifyStaff: self._notify_staff,
            flow.RecordSilence: self._record_silence,
            flow.Finish: self._finish,
        }

    def close(self) -> None:
        """The controller stopped: release the recognizers' threads."""
        if self.recognizers is not None:
            self.recognizers.close()

    # -- a new call ----------------------------------------------------------------------
    async def new_call(self, ev: StasisStart) -> None:
        ctx = self.ctx
        now = ctx.clock()
        hashed = caller_hash(ev.channel.caller_number, ctx.hash_key)
        call = ActiveCall(
            call_id=ev.channel.id,
            flow=flow.CallFlow(ev.channel.id, self.flow_config, now),
            caller=hashed,
            number=ev.channel.caller_number,
            channel_name=ev.channel.name,
        )
        ctx.calls[call.call_id] = call
        log.info("call %s: new call from caller %s", call.call_id, call.caller)
        await safe_store(ctx.store.call_started(call.call_id, call.caller, now))
        try:
            if hashed != "anonymous":
                call.repeat = await ctx.store.previous_calls(hashed, call.call_id) > 0
                flag = await ctx.store.active_flag(hashed, now)
                call.flag_level = flag.level if flag else 0
        except Exception:
            log.exception("call %s: could not store or look up the call", call.call_id)
        if call.flag_level:
            log.info("call %s: caller has an active abuse flag", call.call_id)
        await ctx.feed(call.call_id, flow.Started(flagged=call.flag_level > 0))

    def playback_finished(self, playback_id: str) -> str | None:
        """The call a finished playback belonged to (None: not one of ours)."""
        return self.playbacks.pop(playback_id, None)

    # -- call control --------------------------------------------------------------------
    async def _answer(self, call: ActiveCall, cmd: flow.Answer) -> None:
        await self.ctx.ari.post(f"channels/{call.call_id}/answer")
        # Music under the prompts from the first second (issue 14): the caller waits in their
        # own holding bridge from the answer on, and every prompt plays on their channel over
        # it. A prompt that ends while no controller runs (killed, restarting) is followed by
        # music, never by dead air. Without the bridge the call goes on (logged): silence
        # after a prompt is then possible only while the controller is down.
        try:
            await self._hold(call, flow.Hold())
        except (AriNotFound, AriConnectionError):
            raise  # the caller or Asterisk is gone
        except AriError as exc:
            log.warning("call %s: no music under the menu (%s)", call.call_id, exc)
            await self.destroy_bridges(call)  # queueing tries again (Hold)

    async def _play(self, call: ActiveCall, cmd: flow.Play) -> None:
        media = ",".join(SOUND_PREFIX + p for p in cmd.prompts)
        self.playbacks[cmd.playback_id] = call.call_id
        if cmd.target is flow.Target.LEG and cmd.leg_id:
            target = f"channels/{cmd.leg_id}"
        else:
            # Announcements to a waiting caller play on their own channel: it hears them
            # instead of the bridge's music, which goes on underneath. (Playing into the
            # holding bridge needs its single announcer slot, which the music holds.)
            target = f"channels/{call.call_id}"
        await self.ctx.ari.post(f"{target}/play/{cmd.playback_id}", media=media, lang="ko")

    async def _stop_playback(self, call: ActiveCall, cmd: flow.StopPlayback) -> None:
        self.playbacks.pop(cmd.playback_id, None)
        with contextlib.suppress(AriNotFound):
            await self.ctx.ari.delete(f"playbacks/{cmd.playback_id}")

    async def _start_timer(self, call: ActiveCall, cmd: flow.StartTimer) -> None:
        call.cancel_timer(cmd.name)
        call.timers[cmd.name] = asyncio.get_running_loop().call_later(
            cmd.seconds, self.ctx.post_flow, call.call_id, flow.TimerFired(cmd.name)
        )

    async def _cancel_timer(self, call: ActiveCall, cmd: flow.CancelTimer) -> None:
        call.cancel_timer(cmd.name)

    async def _hold(self, call: ActiveCall, cmd: flow.Hold) -> None:
        ari, cid = self.ctx.ari, call.call_id
        # After a conversation (music under the survey, or waiting again for a counselor after
        # one's phone was lost) a bridge of its own: the first one, deleted at the connect, may
        # still hold its id for a moment (409 "already exists").
        bridge = f"hold-{cid}" if call.talk_bridge is None else f"hold-{cid}-{token_hex(3)}"
        if call.holding_bridge is not None:
            return  # in one already (since the answer, or since a conversation), with its music
        await ari.post("bridges", type="holding", bridgeId=bridge, name=bridge)
        call.holding_bridge = bridge
        await ari.post(f"bridges/{bridge}/addChannel", channel=cid, role="participant")
        await ari.post(f"bridges/{bridge}/moh", mohClass=MOH_CLASS)

    async def _connect(self, call: ActiveCall, cmd: flow.Connect) -> None:
        ari, cid = self.ctx.ari, call.call_id
        bridge = call.talk_bridge  # a caller connected again keeps their talk bridge
        if bridge is None:
            bridge = f"talk-{cid}"
            await ari.post("bridges", type="mixing", bridgeId=bridge, name=bridge)
            call.talk_bridge = bridge
        # The caller moves straight from the holding bridge into the talk bridge (ARI moves a
        # channel that is in another bridge), and only then is the emptied holding bridge
        # deleted. Deleting it first, with the caller still in it, and re-bridging the caller
        # at once crashed Asterisk 22 once in our runs (SIGSEGV in the addChannel; a known
        # class of bridge teardown races, docs/asterisk.md).
        await ari.post(f"bridges/{bridge}/addChannel", channel=f"{cid},{cmd.leg_id}")
        if call.holding_bridge:
            held, call.holding_bridge = call.holding_bridge, None
            with contextlib.suppress(AriNotFound):
                await ari.delete(f"bridges/{held}")
        if "caller" in call.taps:
            call.taps["caller"].restart_silence()  # silence with the counselor counts from now

    async def _join_talk(self, call: ActiveCall, cmd: flow.JoinTalk) -> None:
        if call.talk_bridge:
            await self.ctx.ari.post(f"bridges/{call.talk_bridge}/addChannel", channel=cmd.leg_id)

    async def _hangup_leg(self, call: ActiveCall, cmd: flow.HangupLeg) -> None:
        await self.ctx.hangup(cmd.leg_id)

    async def _hangup_caller(self, call: ActiveCall, cmd: flow.HangupCaller) -> None:
        await self.ctx.hangup(call.call_id)

    async def _recover_cmd(self, call: ActiveCall, cmd: flow.Recover) -> None:
        await self.destroy_bridges(call)
        await self.recover(call.call_id)

    async def recover(self, channel_id: str) -> None:
        """Hand a caller to the dialplan's recovery context (an apology, then a hangup)."""
        try:
            await self.ctx.ari.post(
                f"channels/{channel_id}/continue",
                context="ivr120-recover",
                extension="s",
                priority=1,
            )
        except AriNotFound:
            return
        except AriError:
            log.exception("cannot hand %s to the recovery context; hanging up", channel_id)
            await self.ctx.hangup(channel_id)

    async def destroy_bridges(self, call: ActiveCall) -> None:
        for attr in ("holding_bridge", "talk_bridge"):
            bridge = getattr(call, attr)
            if bridge:
                setattr(call, attr, None)
                with contextlib.suppress(AriError):
                    await self.ctx.ari.delete(f"bridges/{bridge}")

    # -- listening and notices -----------------------------------------------------------
    async def _start_listening(self, call: ActiveCall, cmd: flow.StartListening) -> None:
        """Open an audio tap; without one the call goes on with keys only (logged)."""
        party = cmd.party
        if party in call.taps:
            return
        channel = call.call_id
        if party == flow.Party.STAFF:
            if cmd.leg_id is None:
                return
            channel = cmd.leg_id
        call_id = call.call_id

        def deliver(event: flow.FlowEvent) -> None:
            self.ctx.post_flow(call_id, event)

        call.taps_opened[party] += 1
        tap = Tap(
            self.ctx.ari,
            self.tap_config,
            channel,
            party,
            deliver,
            self.recognizers,
            opened=call.taps_opened[party],
        )
        try:
            await tap.open()
        except Exception as exc:
            log.warning("call %s: cannot listen to the %s (%s); keys only", call_id, party, exc)
            return
        if call_id not in self.ctx.calls:  # the caller left while the tap was being set up
            await tap.close()
            return
        call.taps[party] = tap
        await self.consent.record_party(call, party)

    async def _stop_listening(self, call: ActiveCall, cmd: flow.StopListening) -> None:
        tap = call.taps.pop(cmd.party, None)
        if tap is not None:
            await tap.close()  # its snoop, external-media channel, bridge and socket

    async def _listen(self, call: ActiveCall, cmd: flow.Listen) -> None:
        tap = call.taps.get("caller")
        if tap is not None:
            await tap.listen(cmd.phrases)

    async def _notify_staff(self, call: ActiveCall, cmd: flow.NotifyStaff) -> None:
        """A SIP MESSAGE to the counselor's phone; the softphone shows it."""
        if cmd.member:
            await self.ctx.send_message(cmd.member, f"ivr120:{cmd.kind}:{int(cmd.seconds)}")

    async def _record_silence(self, call: ActiveCall, cmd: flow.RecordSilence) -> None:
        cid = call.call_id
        started = self.ctx.clock() - cmd.seconds
        try:
            await self.ctx.store.silence_event(cid, cmd.party, started, cmd.seconds, cmd.action)
        except WriteDeferred as exc:
            log.warning("record not written yet: %s", exc)
        log.info("call %s: %s silent %.0f s -> %s", cid, cmd.party, cmd.seconds, cmd.action)

    # -- the crisis line -----------------------------------------------------------------
    async def _ring_crisis(self, call: ActiveCall, cmd: flow.RingCrisis) -> None:
        ctx = self.ctx
        self._crisis_seq += 1
        leg = f"{ctx.leg_prefix}crisis-{self._crisis_seq}"
        self.crisis_legs[leg] = call.call_id
        log.info("call %s: warm transfer, ringing the crisis line", call.call_id)
        try:
            await ctx.ari.post(
                "channels",
                endpoint=ctx.settings.crisis_target,
                app=ctx.settings.ari_app,
                appArgs=f"{CRISIS_ARG},{call.call_id}",
                channelId=leg,
                timeout=int(ctx.settings.crisis_ring_timeout),
                callerId='"ivr120" <120>',
            )
        except AriError as exc:
            log.warning("call %s: cannot ring the crisis line: %s", call.call_id, exc)
            self.crisis_legs.pop(leg, None)
            await ctx.feed(call.call_id, flow.CrisisEnded())

    async def crisis_answered(self, leg_id: str) -> None:
        call_id = self.crisis_legs.get(leg_id)
        if call_id is None or call_id not in self.ctx.calls:
            await self.ctx.hangup(leg_id)
            return
        log.info("call %s: the crisis line answered", call_id)
        await self.ctx.feed(call_id, flow.CrisisAnswered(leg_id))

    async def crisis_gone(self, leg_id: str) -> None:
        call_id = self.crisis_legs.pop(leg_id, None)
        if call_id is not None:
            await self.ctx.feed(call_id, flow.CrisisEnded())

    # -- the end -------------------------------------------------------------------------
    async def _finish(self, call: ActiveCall, cmd: flow.Finish) -> None:
        for name in list(call.timers):
            call.cancel_timer(name)
        for tap in call.taps.values():
            await tap.close()  # destroying the tap bridges also ends their recordings
        call.taps.clear()
        self.consent.collect(call)
        await self.destroy_bridges(call)
        for pb in [p for p, c in self.playbacks.items() if c == call.call_id]:
            del self.playbacks[pb]
        for leg, call_id in list(self.crisis_legs.items()):
            if call_id == call.call_id:  # still ringing: nobody to hand over to any more
                await self.ctx.hangup(leg)
        self.ctx.calls.pop(call.call_id, None)
        rec = call.flow.record
        log.info(
            "call %s: ended (%s), menu %s, queue %s, wait %s s, talk %s s",
            call.call_id,
            cmd.outcome.value,
            "".join(rec.menu_path) or "-",
            rec.queue or "-",
            _secs(rec.wait_seconds),
            _secs(rec.talk_seconds),
        )
        await safe_store(self.ctx.store.call_ended(call.call_id, rec))


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
