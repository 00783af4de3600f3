"""The ARI adapter: turns ARI events into flow events and flow commands into ARI requests.

All decisions live in the pure machines (ivr.flow.call, ivr.flow.ringgroup, ivr.roster); this
module moves data between them, Asterisk and the store. Inputs (websocket events and timer
firings) go through one queue and are handled one at a time, so no two handlers ever interleave.

Safety rule: when carrying out a command fails unexpectedly, the error is logged and the flow is
told (`Failed`), which sends the caller to the dialplan's recovery context (an apology, then a
clean hangup). If even that fails, the caller's channel is hung up. A caller is never left in
silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ivr import roster as rosters
from ivr.ari.client import AriClient, AriError, AriNotFound
from ivr.ari.dedupe import RecentEvents
from ivr.ari.events import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Connected,
    EndpointStateChange,
    Event,
    PlaybackFinished,
    RecordingFinished,
    StasisEnd,
    StasisStart,
)
from ivr.audit import audit
from ivr.config import Settings
from ivr.configs import flow_config, ring_group_config
from ivr.crypto import Sealer
from ivr.features import phone_pause_reason
from ivr.flow import call as flow
from ivr.flow.menu import Menu
from ivr.flow.ringgroup import (
    EndReason,
    LegOutcome,
    RingGroup,
    UnknownMemberError,
)
from ivr.pbx.secrets import Secrets
from ivr.privacy import caller_hash
from ivr.staff import registration
from ivr.staff import states as staff_states
from ivr.store import Store, WriteDeferred
from ivr.summary.capture import Capture
from ivr.tap import TAP_PREFIX, Tap, TapConfig
from ivr.timezone import SEOUL

log = logging.getLogger(__name__)

LEG_ARG = "leg"
CRISIS_ARG = "crisis"
FEATURE_ARG = "feature"
SOUND_PREFIX = "sound:ivr120/"
MOH_CLASS = "default"
INFO_HEADER = "PJSIP_HEADER(add,X-IVR120-{})"
#: ChannelDestroyed causes of an unanswered ring attempt.
CAUSE_OUTCOME = {17: LegOutcome.BUSY, 21: LegOutcome.REJECTED}
#: Commands that only write records: when one fails, the call goes on.
BOOKKEEPING = (
    flow.RecordConsent,
    flow.RecordSilence,
    flow.FlagCaller,
    flow.RequestCallback,
    flow.WithdrawConsent,
)
FEATURE_PROMPTS = {
    "login": "feature_logged_in",
    "logout": "feature_logged_out",
    "pause": "feature_paused",
    "unpause": "feature_unpaused",
}


@dataclass
class ActiveCall:
    call_id: str  # = the caller's channel id
    flow: flow.CallFlow
    caller: str  # hashed number, for logs and records
    number: str  # the clear number, in memory only: sealed when a callback needs it
    repeat: bool = False
    flag_level: int = 0
    holding_bridge: str | None = None
    talk_bridge: str | None = None
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    #: Last QueueStatus sent: (ahead, estimate bucket, anybody reachable).
    reported: tuple[int, int, bool] | None = None
    taps: dict[str, Tap] = field(default_factory=dict)  # party -> audio tap
    channel_name: str = ""
    #: Consent given and not withdrawn: the counseling is being recorded.
    recording: bool = False
    #: The consent row was written: only then may the call be recorded.
    consent_stored: bool = False
    recordings: dict[str, str] = field(default_factory=dict)  # party -> recording name


@dataclass
class Leg:
    call_id: str
    queue: str
    member: str
    answered: bool = False
    abuse: bool = False


Input = tuple[str, Any]  # ("ari", Event) or ("flow", (call_id, FlowEvent)) or ("tick", None)


class ControllerError(Exception):
    """An administrator's request the controller cannot carry out (unknown member, ...)."""


class Controller:
    def __init__(
        self,
        ari: AriClient,
        store: Store,
        settings: Settings,
        menu: Menu,
        secrets_: Secrets,
        roster: rosters.Roster,
        clock: Callable[[], float] = time.time,
        model: Any = None,
        prompt_texts: dict[str, str] | None = None,
        catalog_version: int = 0,
    ) -> None:
        self.ari = ari
        self.store = store
        self.settings = settings
        self.menu = menu
        self.hash_key = secrets_.caller_hash_key
        self.sealer = Sealer(secrets_.data_key)
        self.roster = roster
        self.clock = clock
        #: The Korean recognition model (loaded once per process), or None: keys only.
        self.model = model
        self.prompt_texts = prompt_texts or {}
        self.catalog_version = catalog_version
        self.audio_dir = settings.state_dir / "audio"
        #: Fetches the recordings of consented calls once Asterisk has finished them.
        self.capture = Capture(ari, store, self.audio_dir, clock)
        self.tap_config = TapConfig(
            app=settings.ari_app,
            thresholds=tuple(
                sorted({settings.both_silence_notify, settings.caller_silence_notify})
            ),
        )
        self.flow_config = flow_config(settings, menu)
        group_config = ring_group_config(settings)
        members = {"counselors": settings.counselors, "agents": settings.agents}
        self._members = members
        self.groups = {
            name: RingGroup(name, members[q.members], group_config)
            for name, q in menu.queues.items()
        }
        #: Queues answered by the rostered counselors (the others have no shift plan).
        self._rostered = {n for n, q in menu.queues.items() if q.members == "counselors"}
        self._staff = frozenset(settings.staff_endpoints)
        self.registrations = registration.Registrations(settings.staff_endpoints)
        self.calls: dict[str, ActiveCall] = {}
        self.legs: dict[str, Leg] = {}
        self.crisis_legs: dict[str, str] = {}  # leg id -> call id
        self.features: dict[str, str] = {}  # playback id -> staff channel (feature codes)
        self.playbacks: dict[str, str] = {}
        self._inputs: asyncio.Queue[Input] = asyncio.Queue()
        self._leg_prefix = f"ivr-{secrets.token_hex(3)}-"
        self._crisis_seq = 0
        self.connected = asyncio.Event()
        self._recent = RecentEvents()  # drops events delivered twice (two subscriptions)
        self.fault_hook: Callable[[flow.Command], None] | None = None  # tests inject faults

    # -- main loops ----------------------------------------------------------------------
    async def run(self) -> None:
        """Read ARI events and timer firings until cancelled."""
        await staff_states.restore(self.store, self.groups.values())
        reader = asyncio.create_task(self._read_events(), name="ari-events")
        ticker = asyncio.create_task(self._tick(), name="ring-retry")
        try:
            while True:
                kind, payload = await self._inputs.get()
                try:
                    if kind == "ari":
                        await self._on_ari(payload)
                    elif kind == "flow":
                        call_id, event = payload
                        await self._feed(call_id, event)
                    elif kind == "tick":
                        await self._plan_all()
                    elif kind == "call":
                        func, fut = payload
                        try:
                            fut.set_result(await func())
                        except Exception as exc:
                            fut.set_exception(exc)
                except Exception:
                    log.exception("unexpected error handling %s input", kind)
        finally:
            for t in (reader, ticker):
                t.cancel()
            for t in (reader, ticker):
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _read_events(self) -> None:
        async for event in self.ari.events():
            await self._inputs.put(("ari", event))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ring_retry_interval)
            await self._inputs.put(("tick", None))

    async def submit(self, func: Callable[[], Any]) -> Any:
        """Run `func` (a coroutine function) inside the input loop, in turn with the events."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._inputs.put(("call", (func, fut)))
        return await fut

    # -- ARI events ----------------------------------------------------------------------
    async def _on_ari(self, ev: Event) -> None:
        if self._recent.seen(ev):
            log.debug("dropped a second copy of %s", ev.type)
            return
        if isinstance(ev, StasisStart | StasisEnd | ChannelDestroyed) and ev.channel.id.startswith(
            TAP_PREFIX
        ):
            return  # the audio taps' own channels
        if isinstance(ev, Connected):
            await self._resync()
            self.connected.set()
        elif isinstance(ev, StasisStart):
            kind = ev.args[:1]
            if kind == (LEG_ARG,):
                await self._leg_answered(ev.channel.id)
            elif kind == (CRISIS_ARG,):
                await self._crisis_answered(ev.channel.id)
            elif kind == (FEATURE_ARG,):
                await self._feature(ev.channel.id, ev.channel.endpoint, ev.args[1:])
            elif ev.channel.id not in self.calls:
                await self._new_call(ev)
        elif isinstance(ev, ChannelDtmfReceived):
            cid = ev.channel.id
            if cid in self.calls:
                await self._feed(cid, flow.Digit(ev.digit))
            elif cid in self.legs and self.legs[cid].answered:
                await self._feed(self.legs[cid].call_id, flow.StaffDigit(ev.digit))
        elif isinstance(ev, PlaybackFinished):
            if ev.playback_id in self.features:
                await self._hangup(self.features.pop(ev.playback_id))
                return
            call_id = self.playbacks.pop(ev.playback_id, None)
            if call_id is not None:
                await self._feed(call_id, flow.PlaybackDone(ev.playback_id))
        elif isinstance(ev, StasisEnd | ChannelDestroyed):
            cid = ev.channel.id
            cause = ev.cause if isinstance(ev, ChannelDestroyed) else 0
            if cid in self.legs or cid in self.crisis_legs:
                await self._leg_gone(cid, cause)
            elif cid in self.calls:
                await self._feed(cid, flow.CallerHungUp())
        elif isinstance(ev, RecordingFinished):
            self.capture.finished(ev.name)
        elif isinstance(ev, EndpointStateChange):
            if ev.resource in self._staff:
                log.info("endpoint %s is %s", ev.resource, ev.state)
                change = self.registrations.update(ev.resource, ev.state, self.clock())
                if change is not None and change.online:
                    await self._tell_if_off_shift(change.member)
                await self._plan_all()

    async def _resync(self) -> None:
        """After (re)connecting: subscribe to endpoint states, reconcile channels, and collect
        recordings a previous run left in Asterisk."""
        with contextlib.suppress(Exception):
            pending: dict[str, dict[str, str]] = {}
            for name, call_id, party in await self.store.recordings_to_collect():
                if call_id not in self.calls:
                    pending.setdefault(call_id, {})[party] = name
            for call_id, recs in pending.items():
                self.capture.collect_later(call_id, recs)
        with contextlib.suppress(AriError):
            await self.ari.post(
                f"applications/{self.settings.ari_app}/subscription", eventSource="endpoint:PJSIP"
            )
        with contextlib.suppress(AriError):
            self.registrations.seed(await self._reachable(), self.clock())
        try:
            channels = await self.ari.get("channels")
        except AriError as exc:
            log.warning("could not list channels after connecting: %s", exc)
            return
        present = {c.get("id") for c in channels}
        for call_id in [c for c in self.calls if c not in present]:
            await self._feed(call_id, flow.CallerHungUp())
        for leg_id in [leg for leg in (*self.legs, *self.crisis_legs) if leg not in present]:
            await self._leg_gone(leg_id, 0)
        for c in channels:
            cid = c.get("id", "")
            dp = c.get("dialplan") or {}
            in_app = dp.get("app_name") == "Stasis" and str(dp.get("app_data", "")).startswith(
                self.settings.ari_app
            )
            known = cid in self.calls or cid in self.legs or cid in self.crisis_legs
            if cid.startswith(TAP_PREFIX) and not any(
                t.snoop_id == cid or t.media_id == cid
                for c in self.calls.values()
                for t in c.taps.values()
            ):
                await self._hangup(cid)  # a tap left over from before a restart
                continue
            if known or not in_app or cid.startswith(TAP_PREFIX):
                continue
            # A caller we lost track of (the controller restarted): apologise and let go.
            log.warning("recovering orphaned channel %s", cid)
            await self._recover(cid)

    async def _new_call(self, ev: StasisStart) -> None:
        now = self.clock()
        hashed = caller_hash(ev.channel.caller_number, self.hash_key)
        call = ActiveCall(
            call_id=ev.channel.id,
            flow=flow.CallFlow(ev.channel.id, self.flow_config, now),
            caller=hashed,
            number=ev.channel.caller_number,
            channel_name=ev.channel.name,
        )
        self.calls[call.call_id] = call
        log.info("call %s: new call from caller %s", call.call_id, call.caller)
        await self._safe_store(self.store.call_started(call.call_id, call.caller, now))
        try:
            if hashed != "anonymous":
                call.repeat = await self.store.previous_calls(hashed, call.call_id) > 0
                flag = await self.store.active_flag(hashed, now)
                call.flag_level = flag.level if flag else 0
        except Exception:
            log.exception("call %s: could not store or look up the call", call.call_id)
        if call.flag_level:
            log.info("call %s: caller has an active abuse flag", call.call_id)
        await self._feed(call.call_id, flow.Started(flagged=call.flag_level > 0))

    # -- ring group legs -----------------------------------------------------------------
    async def _leg_answered(self, leg_id: str) -> None:
        now = self.clock()
        leg = self.legs.get(leg_id)
        result = self.groups[leg.queue].answered(leg_id, now) if leg else None
        if leg is None or result is None:
            log.info("leg %s answered too late; hanging it up", leg_id)
            await self._hangup(leg_id)
            return
        call_id, member, others = result
        leg.answered = True
        log.info("call %s: %s answered", call_id, member)
        await self._safe_store(self.store.ring_ended(leg_id, now, "answered"))
        for other in others:
            await self._cancel_leg(other)
        await self._feed(call_id, flow.StaffAnswered(leg_id, member))
        await self._after_group_change(leg.queue)

    async def _crisis_answered(self, leg_id: str) -> None:
        call_id = self.crisis_legs.get(leg_id)
        if call_id is None or call_id not in self.calls:
            await self._hangup(leg_id)
            return
        log.info("call %s: the crisis line answered", call_id)
        await self._feed(call_id, flow.CrisisAnswered(leg_id))

    async def _leg_gone(self, leg_id: str, cause: int) -> None:
        now = self.clock()
        crisis_call = self.crisis_legs.pop(leg_id, None)
        if crisis_call is not None:
            await self._feed(crisis_call, flow.CrisisEnded())
            return
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return
        group = self.groups[leg.queue]
        if leg.answered:
            reason = EndReason.ABUSE if leg.abuse else EndReason.NORMAL
            group.released(leg.member, now, reason)
            call = self.calls.get(leg.call_id)
            if call is not None and call.flow.state in (
                flow.State.CONNECTING,
                flow.State.CONNECTED,
            ):
                await self._feed(leg.call_id, flow.StaffHungUp())
        else:
            outcome = CAUSE_OUTCOME.get(cause, LegOutcome.NO_ANSWER)
            paused = group.leg_ended(leg_id, outcome, now)
            log.info("call %s: %s did not answer (%s)", leg.call_id, leg.member, outcome.value)
            await self._safe_store(self.store.ring_ended(leg_id, now, outcome.value))
            if paused is not None:
                log.warning("%s paused after repeated unanswered calls", leg.member)
        await self._after_group_change(leg.queue)

    async def _reachable(self) -> set[str]:
        try:
            endpoints = await self.ari.get("endpoints/PJSIP")
        except AriError as exc:
            log.warning("cannot list endpoints: %s", exc)
            return set()
        return {e["resource"] for e in endpoints if e.get("state") == "online"}

    def on_shift(self, queue: str, now: float) -> frozenset[str] | None:
        """Who is on shift for a queue now (None: the queue has no shift plan)."""
        if queue not in self._rostered:
            return None
        return rosters.on_shift(self.roster, datetime.fromtimestamp(now, SEOUL))

    async def _plan_all(self) -> None:
        for name in self.groups:
            await self._plan(name)

    async def _plan(self, queue: str) -> None:
        group = self.groups[queue]
        if not group.waiting:
            return
        now = self.clock()
        reachable = await self._reachable()
        rings = group.plan(reachable, self._leg_prefix, now, self.on_shift(queue, now))
        for ring in rings:
            call = self.calls.get(ring.call_id)
            self.legs[ring.leg_id] = Leg(ring.call_id, queue, ring.member)
            log.info("call %s: ringing %s", ring.call_id, ring.member)
            await self._safe_store(
                self.store.ring_started(ring.leg_id, ring.call_id, ring.member, now)
            )
            try:
                await self.ari.request(
                    "POST",
                    "channels",
                    params={
                        "endpoint": f"PJSIP/{ring.member}",
                        "app": self.settings.ari_app,
                        "appArgs": f"{LEG_ARG},{ring.call_id}",
                        "channelId": ring.leg_id,
                        "timeout": int(self.settings.ring_timeout),
                        "callerId": f'"{queue}" <120>',
                    },
                    body={"variables": self._call_info(call, queue, now)},
                )
            except AriError as exc:
                log.warning("call %s: could not ring %s: %s", ring.call_id, ring.member, exc)
                self.legs.pop(ring.leg_id, None)
                group.leg_ended(ring.leg_id, LegOutcome.FAILED, now)
                await self._safe_store(self.store.ring_ended(ring.leg_id, now, "failed"))
        await self._after_group_change(queue)

    def _call_info(self, call: ActiveCall | None, queue: str, now: float) -> dict[str, str]:
        """SIP headers for the counselor's phone: what the hotline knows, never the number."""
        if call is None:
            return {}
        rec = call.flow.record
        info = {
            "Line": queue,
            "Call": call.call_id,
            "Path": "".join(rec.menu_path) or "-",
            "Wait": str(int(now - (rec.queued_at or now))),
            "Repeat": "yes" if call.repeat else "no",
            "Consent": call.flow.consent or "-",  # "pending": the question is still open
        }
        if call.flag_level:
            info["Flag"] = f"abuse-{call.flag_level}"
        return {INFO_HEADER.format(k): v for k, v in info.items()}

    async def _after_group_change(self, queue: str) -> None:
        """Record member state changes and tell waiting callers where they stand."""
        group = self.groups[queue]
        for change in group.drain_changes():
            log.info(
                "%s: %s %s -> %s (%s)",
                change.member,
                change.field,
                change.old,
                change.new,
                change.reason or "-",
            )
            await self._safe_store(
                self.store.counselor_event(
                    change.member,
                    change.at,
                    change.field,
                    str(change.old).lower(),
                    str(change.new).lower(),
                    change.reason or "",
                )
            )
            state = staff_states.state_of(group, change.member)
            await self._safe_store(self.store.save_member_state(state))
        now = self.clock()
        reachable = group.reachable()
        for ahead, call_id in enumerate(group.waiting):
            call = self.calls.get(call_id)
            if call is None:
                continue
            estimate = group.estimated_wait(call_id, now)
            bucket = -1 if estimate is None else int(estimate // 30)
            if call.reported != (ahead, bucket, reachable > 0):
                call.reported = (ahead, bucket, reachable > 0)
                await self._feed(call_id, flow.QueueStatus(ahead, estimate, reachable))

    # -- staff state across restarts, registrations ----------------------------------------
    async def _tell_if_off_shift(self, member: str) -> None:
        """A counselor registered while off shift: their phone reads that they are."""
        now = self.clock()
        shifts = [self.on_shift(q, now) for q in self._rostered if member in self.groups[q].members]
        if not shifts or any(s is None or member in s for s in shifts):
            return
        log.info("%s registered while off shift; telling their phone", member)
        await self._send_message(member, registration.OFF_SHIFT_MESSAGE)

    async def _send_message(self, member: str, body: str) -> None:
        try:
            await self.ari.request(
                "PUT",
                "endpoints/sendMessage",
                params={"to": f"pjsip:{member}", "from": "sip:ivr120@127.0.0.1", "body": body},
            )
        except AriError as exc:
            log.warning("cannot send a message to %s: %s", member, exc)

    # -- feature codes from staff phones ---------------------------------------------------
    async def _feature(self, channel_id: str, member: str, args: tuple[str, ...]) -> None:
        action = args[0] if args else ""
        prompt = FEATURE_PROMPTS.get(action, "feature_denied")
        reason = phone_pause_reason(args[1:], self.settings.pause_reasons)
        try:
            if reason is None:
                raise ControllerError(f"no pause reason number {args[1]!r}")
            await self.member_action(member, action, reason)
        except ControllerError as exc:
            log.info("feature code %s from %s refused: %s", action, member, exc)
            prompt = "feature_denied"
        try:
            await self.ari.post(f"channels/{channel_id}/answer")
            pid = f"feat-{channel_id}"
            self.features[pid] = channel_id
            await self.ari.post(
                f"channels/{channel_id}/play/{pid}", media=SOUND_PREFIX + prompt, lang="ko"
            )
        except AriError:
            log.exception("feature code %s: cannot confirm to %s", action, member)
            await self._hangup(channel_id)

    def _group_of(self, member: str) -> str:
        for name, group in self.groups.items():
            if member in group.members:
                return name
        raise ControllerError(f"{member!r} is not a counselor or agent")

    async def member_action(self, member: str, action: str, reason: str) -> None:
        """Log in/out, pause or unpause a member (from a feature code or the admin API)."""
        queue = self._group_of(member)
        group = self.groups[queue]
        now = self.clock()
        try:
            if action == "login":
                group.login(member, now, reason)
                legs: list[str] = []
            elif action == "logout":
                legs = group.logout(member, now, reason)
            elif action == "pause":
                legs = group.pause(member, reason, now)
            elif action == "unpause":
                group.unpause(member, now, reason)
                legs = []
            else:
                raise ControllerError(f"unknown action {action!r}")
        except UnknownMemberError as exc:
            raise ControllerError(str(exc)) from None
        for leg in legs:
            await self._cancel_leg(leg)
        await self._after_group_change(queue)
        await self._plan(queue)

    # -- flow ----------------------------------------------------------------------------
    async def _feed(self, call_id: str, event: flow.FlowEvent) -> None:
        call = self.calls.get(call_id)
        if call is None:
            return
        commands = call.flow.handle(event, self.clock())
        await self._run(call, commands)

    async def _run(self, call: ActiveCall, commands: list[flow.Command]) -> None:
        for cmd in commands:
            try:
                if self.fault_hook is not None:
                    self.fault_hook(cmd)
                await self._execute(call, cmd)
            except AriNotFound as exc:
                # The channel went away under us; its hangup event is on its way.
                log.info("call %s: %s skipped, object gone (%s)", call.call_id, cmd, exc.path)
            except Exception as exc:
                log.exception("call %s: %s failed", call.call_id, type(cmd).__name__)
                if isinstance(cmd, BOOKKEEPING):
                    continue  # a record that could not be written never ends a call
                if call.flow.ended:
                    # Already ending: just make sure nothing of the call is left behind.
                    self.calls.pop(call.call_id, None)
                    await self._hangup(call.call_id)
                    continue
                more = call.flow.handle(flow.Failed(f"{type(cmd).__name__}: {exc}"), self.clock())
                await self._run(call, more)
                return

    async def _execute(self, call: ActiveCall, cmd: flow.Command) -> None:
        cid = call.call_id
        if isinstance(cmd, flow.Answer):
            await self.ari.post(f"channels/{cid}/answer")
        elif isinstance(cmd, flow.Play):
            media = ",".join(SOUND_PREFIX + p for p in cmd.prompts)
            self.playbacks[cmd.playback_id] = cid
            if cmd.target is flow.Target.LEG and cmd.leg_id:
                target = f"channels/{cmd.leg_id}"
            else:
                # Announcements to a waiting caller play on their own channel: it hears them
                # instead of the bridge's music, which goes on underneath. (Playing into the
                # holding bridge needs its single announcer slot, which the music holds.)
                target = f"channels/{cid}"
            await self.ari.post(f"{target}/play/{cmd.playback_id}", media=media, lang="ko")
        elif isinstance(cmd, flow.StopPlayback):
            self.playbacks.pop(cmd.playback_id, None)
            with contextlib.suppress(AriNotFound):
                await self.ari.delete(f"playbacks/{cmd.playback_id}")
        elif isinstance(cmd, flow.StartTimer):
            self._cancel_timer(call, cmd.name)
            call.timers[cmd.name] = asyncio.get_running_loop().call_later(
                cmd.seconds, self._inputs.put_nowait, ("flow", (cid, flow.TimerFired(cmd.name)))
            )
        elif isinstance(cmd, flow.CancelTimer):
            self._cancel_timer(call, cmd.name)
        elif isinstance(cmd, flow.Hold):
            bridge = f"hold-{cid}"
            await self.ari.post("bridges", type="holding", bridgeId=bridge, name=bridge)
            call.holding_bridge = bridge
            await self.ari.post(f"bridges/{bridge}/addChannel", channel=cid, role="participant")
            await self.ari.post(f"bridges/{bridge}/moh", mohClass=MOH_CLASS)
        elif isinstance(cmd, flow.Enqueue):
            self.groups[cmd.queue].enqueue(cid, cmd.since)
            await self._plan(cmd.queue)
        elif isinstance(cmd, flow.Dequeue):
            for leg in self.groups[cmd.queue].dequeue(cid):
                await self._cancel_leg(leg)
            await self._after_group_change(cmd.queue)
        elif isinstance(cmd, flow.Connect):
            await self._connect(call, cmd)
        elif isinstance(cmd, flow.JoinTalk):
            if call.talk_bridge:
                await self.ari.post(f"bridges/{call.talk_bridge}/addChannel", channel=cmd.leg_id)
        elif isinstance(cmd, flow.HangupLeg):
            await self._hangup(cmd.leg_id)
        elif isinstance(cmd, flow.HangupCaller):
            await self._hangup(cid)
        elif isinstance(cmd, flow.Recover):
            await self._destroy_bridges(call)
            await self._recover(cid)
        elif isinstance(cmd, flow.FlagCaller):
            await self._flag(call)
        elif isinstance(cmd, flow.RequestCallback):
            await self._request_callback(call, cmd)
        elif isinstance(cmd, flow.RingCrisis):
            await self._ring_crisis(call)
        elif isinstance(cmd, flow.StartListening):
            await self._start_listening(call, cmd.party)
        elif isinstance(cmd, flow.Listen):
            tap = call.taps.get("caller")
            if tap is not None:
                await tap.listen(cmd.phrases)
        elif isinstance(cmd, flow.NotifyStaff):
            await self._notify_staff(call, cmd)
        elif isinstance(cmd, flow.RecordSilence):
            await self._safe_store(
                self.store.silence_event(
                    cid, cmd.party, self.clock() - cmd.seconds, cmd.seconds, cmd.action
                )
            )
            log.info("call %s: %s silent %.0f s -> %s", cid, cmd.party, cmd.seconds, cmd.action)
        elif isinstance(cmd, flow.RecordConsent):
            await self._record_consent(call, cmd)
        elif isinstance(cmd, flow.StartRecording):
            if not call.consent_stored:  # no stored consent, no recording
                log.warning("call %s: consent could not be stored; not recording", cid)
                return
            call.recording = True
            for party in list(call.taps):
                await self._record_party(call, party)
        elif isinstance(cmd, flow.WithdrawConsent):
            await self._withdraw_during_call(call, cmd.by or "counselor")
        elif isinstance(cmd, flow.Finish):
            await self._finish(call, cmd.outcome)

    async def _connect(self, call: ActiveCall, cmd: flow.Connect) -> None:
        cid = call.call_id
        bridge = f"talk-{cid}"
        await self.ari.post("bridges", type="mixing", bridgeId=bridge, name=bridge)
        call.talk_bridge = bridge
        if call.holding_bridge:
            held, call.holding_bridge = call.holding_bridge, None
            with contextlib.suppress(AriNotFound):
                await self.ari.delete(f"bridges/{held}")
        await self.ari.post(f"bridges/{bridge}/addChannel", channel=f"{cid},{cmd.leg_id}")
        if "caller" in call.taps:
            call.taps["caller"].restart_silence()  # silence with the counselor counts from now

    async def _start_listening(self, call: ActiveCall, party: str) -> None:
        """Open an audio tap; without one the call goes on with keys only (logged)."""
        if party in call.taps:
            return
        channel = call.call_id
        if party == "staff":
            leg = next(
                (
                    lid
                    for lid, leg in self.legs.items()
                    if leg.call_id == call.call_id and leg.answered
                ),
                None,
            )
            if leg is None:
                return
            channel = leg
        call_id = call.call_id

        def deliver(event: flow.FlowEvent) -> None:
            self._inputs.put_nowait(("flow", (call_id, event)))

        tap = Tap(self.ari, self.tap_config, channel, party, deliver, self.model)
        try:
            await tap.open()
        except Exception as exc:
            log.warning("call %s: cannot listen to the %s (%s); keys only", call_id, party, exc)
            return
        if call_id not in self.calls:  # the caller left while the tap was being set up
            await tap.close()
            return
        call.taps[party] = tap
        await self._record_party(call, party)

    # -- consent and recording -------------------------------------------------------------
    def consent_version(self, prompts: tuple[str, ...]) -> str:
        """Which exact words the caller heard: catalog version + hash of the Korean text."""
        text = "\n".join(self.prompt_texts.get(p, f"<{p}>") for p in prompts)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"catalog-v{self.catalog_version}:{digest}"

    async def _record_consent(self, call: ActiveCall, cmd: flow.RecordConsent) -> None:
        call.consent_stored = await self._safe_store(
            self.store.record_consent(
                call.call_id,
                cmd.answer,
                cmd.answered_by,
                self.clock(),
                ",".join(cmd.prompts),
                self.consent_version(cmd.prompts),
                call.channel_name,
            )
        )
        audit.info(
            "consent: call %s caller %s answered %s by %s%s",
            call.call_id,
            call.caller,
            cmd.answer,
            cmd.answered_by,
            "" if call.consent_stored else " (not stored: nothing will be recorded)",
        )

    async def _record_party(self, call: ActiveCall, party: str) -> None:
        """Record one party's voice (their tap's bridge holds only that voice)."""
        tap = call.taps.get(party)
        if not call.recording or tap is None or party in call.recordings:
            return
        name = f"ivr120-{call.call_id}-{party}"
        try:
            await self.ari.post(
                f"bridges/{tap.id}/record",
                name=name,
                format="wav",
                ifExists="overwrite",
                beep=False,
                terminateOn="none",
            )
        except AriError as exc:
            log.warning("call %s: cannot record the %s: %s", call.call_id, party, exc)
            return
        call.recordings[party] = name
        await self._safe_store(
            self.store.recording_started(name, call.call_id, party, self.clock())
        )
        log.info("call %s: recording the %s (consent given)", call.call_id, party)

    async def _withdraw_during_call(self, call: ActiveCall, by: str) -> None:
        call.recording = False
        for name in call.recordings.values():
            with contextlib.suppress(AriNotFound):
                await self.ari.delete(f"recordings/live/{name}")  # stop and discard
            await self._safe_store(self.store.recording_status(name, "deleted"))
        call.recordings.clear()
        await self._safe_store(self.store.withdraw_consent(call.call_id, by, self.clock()))
        audit.info("consent withdrawn during call %s by %s; recording discarded", call.call_id, by)

    async def _notify_staff(self, call: ActiveCall, cmd: flow.NotifyStaff) -> None:
        """A SIP MESSAGE to the counselor's phone; the softphone shows it."""
        member = call.flow.record.member
        if not member:
            return
        body = f"ivr120:{cmd.kind}:{int(cmd.seconds)}"
        try:
            await self.ari.request(
                "PUT",
                "endpoints/sendMessage",
                params={"to": f"pjsip:{member}", "from": "sip:ivr120@127.0.0.1", "body": body},
            )
        except AriError as exc:
            log.warning("call %s: cannot tell %s about silence: %s", call.call_id, member, exc)

    async def _flag(self, call: ActiveCall) -> None:
        member = call.flow.record.member
        for leg in self.legs.values():
            if leg.call_id == call.call_id and leg.answered:
                leg.abuse = True  # the counselor gets the longer wrap-up
        if call.caller == "anonymous":
            audit.info("abuse end: call %s by %s; caller withheld the number", call.call_id, member)
            return
        try:
            flag = await self.store.flag_caller(call.caller, call.call_id, member, self.clock())
        except WriteDeferred as exc:
            audit.info(
                "abuse flag: caller %s, call %s, counselor %s: %s",
                call.caller,
                call.call_id,
                member,
                exc,
            )
            return
        except Exception:
            log.exception("call %s: could not flag the caller", call.call_id)
            return
        audit.info(
            "abuse flag: caller %s level %d until %s, call %s, counselor %s",
            call.caller,
            flag.level,
            datetime.fromtimestamp(flag.until, SEOUL).isoformat(timespec="minutes"),
            call.call_id,
            member,
        )

    async def _request_callback(self, call: ActiveCall, cmd: flow.RequestCallback) -> None:
        sealed = None
        if call.number:
            sealed = self.sealer.seal(call.number, f"callback:{call.call_id}")
        try:
            request_id: int | str = await self.store.add_callback(
                call.call_id,
                call.caller,
                sealed,
                self.clock(),
                cmd.reason,
                cmd.consent,
                cmd.requested_by,
            )
        except WriteDeferred:
            request_id = "(kept in memory, written when the database can take it)"
        except Exception:
            log.exception("call %s: could not store the callback request", call.call_id)
            request_id = "(NOT STORED)"
        audit.info(
            "callback request %s: call %s, caller %s, reason %s, consent %s, by %s",
            request_id,
            call.call_id,
            call.caller,
            cmd.reason,
            cmd.consent,
            cmd.requested_by or "caller",
        )

    async def _ring_crisis(self, call: ActiveCall) -> None:
        self._crisis_seq += 1
        leg = f"{self._leg_prefix}crisis-{self._crisis_seq}"
        self.crisis_legs[leg] = call.call_id
        log.info("call %s: warm transfer, ringing the crisis line", call.call_id)
        try:
            await self.ari.post(
                "channels",
                endpoint=self.settings.crisis_target,
                app=self.settings.ari_app,
                appArgs=f"{CRISIS_ARG},{call.call_id}",
                channelId=leg,
                timeout=int(self.settings.crisis_ring_timeout),
                callerId='"ivr120" <120>',
            )
        except AriError as exc:
            log.warning("call %s: cannot ring the crisis line: %s", call.call_id, exc)
            self.crisis_legs.pop(leg, None)
            await self._feed(call.call_id, flow.CrisisEnded())

    async def _finish(self, call: ActiveCall, outcome: flow.Outcome) -> None:
        for name in list(call.timers):
            self._cancel_timer(call, name)
        for tap in call.taps.values():
            await tap.close()  # destroying the tap bridges also ends their recordings
        call.taps.clear()
        if call.recordings:
            self.capture.collect_later(call.call_id, dict(call.recordings))
            call.recordings.clear()
        await self._destroy_bridges(call)
        for pb in [p for p, c in self.playbacks.items() if c == call.call_id]:
            del self.playbacks[pb]
        for leg, call_id in list(self.crisis_legs.items()):
            if call_id == call.call_id:  # still ringing: nobody to hand over to any more
                await self._hangup(leg)
        self.calls.pop(call.call_id, None)
        rec = call.flow.record
        log.info(
            "call %s: ended (%s), menu %s, queue %s, wait %s s, talk %s s",
            call.call_id,
            outcome.value,
            "".join(rec.menu_path) or "-",
            rec.queue or "-",
            _secs(rec.wait_seconds),
            _secs(rec.talk_seconds),
        )
        await self._safe_store(self.store.call_ended(call.call_id, rec))

    async def _destroy_bridges(self, call: ActiveCall) -> None:
        for attr in ("holding_bridge", "talk_bridge"):
            bridge = getattr(call, attr)
            if bridge:
                setattr(call, attr, None)
                with contextlib.suppress(AriError):
                    await self.ari.delete(f"bridges/{bridge}")

    async def _recover(self, channel_id: str) -> None:
        try:
            await self.ari.post(
                f"channels/{channel_id}/continue",
                context="ivr120-recover",
                extension="s",
                priority=1,
            )
        except AriNotFound:
            return
        except AriError:
            log.exception("cannot hand %s to the recovery context; hanging up", channel_id)
            await self._hangup(channel_id)

    async def _cancel_leg(self, leg_id: str) -> None:
        """Stop ringing a leg we no longer need (no penalty for the member)."""
        if leg_id in self.legs and not self.legs[leg_id].answered:
            self.legs.pop(leg_id)
            await self._safe_store(self.store.ring_ended(leg_id, self.clock(), "cancelled"))
        await self._hangup(leg_id)

    async def _hangup(self, channel_id: str) -> None:
        try:
            await self.ari.delete(f"channels/{channel_id}")
        except AriNotFound:
            pass
        except AriError:
            log.exception("cannot hang up %s", channel_id)

    async def _safe_store(self, op: Any) -> bool:
        """A record that cannot be written (full disk, ...) is logged; the call goes on.
        True when it was written (not just kept in memory for later)."""
        try:
            await op
        except WriteDeferred as exc:
            log.warning("record not written yet: %s", exc)
            return False
        except Exception:
            log.exception("could not write a record")
            return False
        return True

    @staticmethod
    def _cancel_timer(call: ActiveCall, name: str) -> None:
        handle = call.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    # -- administration ------------------------------------------------------------------
    async def reload_roster(self, path: Any) -> None:
        """Replace the shift plan (an administrator edited it); calls in progress go on."""
        new = rosters.load_roster(path)
        unknown = {c.endpoint for c in new.counselors.values()} - set(self.settings.counselors)
        if unknown:
            raise ControllerError(f"roster names endpoints that are not counselors: {unknown}")
        self.roster = new
        log.info("roster reloaded from %s", path)
        await self._plan_all()

    def check_menu(self, menu: Menu) -> None:
        """Refuse a new menu that would change who answers an existing queue (restart)."""
        for name, q in menu.queues.items():
            group = self.groups.get(name)
            wanted = tuple(dict.fromkeys(self._members[q.members]))
            if group is not None and group.members != wanted:
                raise ControllerError(f"queue {name!r}: changing its members needs a restart")

    async def apply_config(
        self, menu: Menu, roster: rosters.Roster, prompt_texts: dict[str, str], version: int
    ) -> None:
        """A reloaded menu, roster and catalog (ivr.reload): for new calls only; each call in
        progress keeps the FlowConfig (and so the menu) it started with."""
        self.check_menu(menu)
        for name, q in menu.queues.items():
            if name not in self.groups:  # a new queue: members as they are elsewhere
                config = next(iter(self.groups.values())).config
                group = RingGroup(name, self._members[q.members], config)
                staff_states.seed_from(group, self.groups.values())
                self.groups[name] = group
            if q.members == "counselors":
                self._rostered.add(name)
        self.menu = menu
        self.flow_config = dataclasses.replace(self.flow_config, menu=menu)
        self.prompt_texts, self.catalog_version = prompt_texts, version
        self.roster = roster
        log.info("menu, roster and prompts reloaded (catalog v%d)", version)
        await self._plan_all()

    async def shutdown(self, grace: float) -> None:
        """End every call in progress as an error: the caller hears the apology from the
        dialplan and the record is completed. Waits up to `grace` seconds for the channels."""
        for call_id in list(self.calls):
            await self._feed(call_id, flow.Failed("the controller is stopping"))
        for leg_id in [*self.legs, *self.crisis_legs]:
            await self._hangup(leg_id)
        # Recordings being fetched: finish, or they are fetched at the next start.
        await self.capture.wait(grace)
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            try:
                if not await self.ari.get("channels"):
                    return
            except AriError:
                return
            await asyncio.sleep(0.2)

    def members(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for name, group in self.groups.items():
            shift = self.on_shift(name, now)
            for m in group.snapshot(now):
                out.append(
                    {
                        "member": m.member,
                        "queue": name,
                        "state": m.activity.value,
                        "on_shift": shift is None or m.member in shift,
                        "logged_in": m.logged_in,
                        "paused": m.paused,
                        "pause_reason": m.pause_reason,
                        "calls": m.calls_taken,
                        "blocked_for": round(m.blocked_for, 1),
                        **self._member_times(m.member, m.logged_in_since, m.paused_since),
                    }
                )
        return out

    def _member_times(
        self, member: str, logged_in_since: float | None, paused_since: float | None
    ) -> dict[str, Any]:
        reg = self.registrations.get(member)
        return {
            "registered": reg.online,
            "registered_since": reg.since,
            "logged_in_since": logged_in_since,
            "paused_since": paused_since,
        }

    def status(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "calls": [
                {
                    "call_id": c.call_id,
                    "caller": c.caller,
                    "state": c.flow.state.value,
                    "queue": c.flow.record.queue,
                    "member": c.flow.record.member,
                    "seconds": round(now - c.flow.record.started_at, 1),
                }
                for c in self.calls.values()
            ],
            "queues": {
                name: {
                    "waiting": len(g.waiting),
                    "ringing": sorted(g.ringing_members()),
                    "busy": sorted(g.busy_members()),
                }
                for name, g in self.groups.items()
            },
            "counselors": self.members(),
        }


def _secs(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
