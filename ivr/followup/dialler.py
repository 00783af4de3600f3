"""The dialler: turns due follow-up tasks into calls (preview dialling, staff first).

On every tick (ivr.controller) it looks at each team's ring group (ivr.staff.driver): the free
members, best first, the same order inbound calls use. The counselors are offered a task only
when no caller waits in their queue, so a callback never goes ahead of people on hold. For each
offer: the task is locked in the database (`FollowupRecords.lock`; refused = someone else has
it), the member counts as ringing in their ring group (`ring_external`), and their phone rings
with the task in `X-IVR120-*` headers (type, due time, attempt, earlier contacts; never the
number). When they answer, an `ActiveCall` is made whose `flow` is the outbound journey
(ivr.followup.journey.FollowupCall): this module carries out its commands — the number is
unsealed in memory only in `DialCitizen`, right before `POST channels` on the trunk, and is
never logged — and records the attempt, the reschedule or the close.

Channels, by their Stasis arguments: ``followup,<task id>`` is the staff leg,
``citizen,<call id>`` the citizen's (its channel id is the call id).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr import configs
from ivr.ari.client import AriError
from ivr.audit import audit
from ivr.config import TRUNK_ENDPOINT
from ivr.context import ActiveCall, CallContext, safe_store
from ivr.flow import call as flow
from ivr.flow.conversation import ConversationParams
from ivr.flow.record import CallEndReason
from ivr.followup import closing, model, planner
from ivr.followup.commands import (
    CloseTask,
    DialCitizen,
    EndFollowup,
    RecordAttempt,
    RecordOptOut,
    RescheduleTask,
    Ringback,
)
from ivr.followup.events import CitizenAnswered, CitizenGone
from ivr.followup.journey import FollowupCall, JourneyConfig
from ivr.followup.records import FollowupRecords
from ivr.staff.driver import INFO_HEADER, StaffDriver
from ivr.staff.ringgroup import EndReason, LegOutcome
from ivr.store_buffer import WriteDeferred
from ivr.timezone import SEOUL

log = logging.getLogger(__name__)

FOLLOWUP_ARG = "followup"
CITIZEN_ARG = "citizen"
#: Seconds the citizen's phone rings before the attempt is `no_answer`.
CITIZEN_RING_SECONDS = 40
RINGBACK = "tone:ring"
#: Seconds between tries of an alert no supervisor could be sent (and between sweeps for
#: unreachable welfare checks nobody was told of).
ALERT_RETRY_SECONDS = 60.0
#: ChannelDestroyed causes of an unanswered staff leg.
STAFF_CAUSE = {17: LegOutcome.BUSY, 21: LegOutcome.REJECTED}


@dataclass
class Offer:
    """A task offered to a staff member: their leg, and the call once they answered."""

    task: model.Task
    member: str
    team: model.Team
    leg_id: str
    call_id: str
    answered: bool = False
    attempt_id: int | None = None


class Dialler:
    #: The journey's record commands: a failed one never ends the call (ivr.effects' policy).
    bookkeeping = (RecordAttempt, RecordOptOut, CloseTask, RescheduleTask, EndFollowup)

    def __init__(self, ctx: CallContext, staff: StaffDriver) -> None:
        self.ctx = ctx
        self.staff = staff
        self.records = FollowupRecords(ctx.store)
        #: The lock owner: this controller run.
        self.owner = ctx.leg_prefix
        self.offers: dict[str, Offer] = {}  # staff leg id -> offer
        self.by_call: dict[str, Offer] = {}  # call id -> offer (answered)
        self.citizens: set[str] = set()  # citizen channels dialled and not gone
        self._alert_tried: dict[int, float] = {}  # task id -> last failed alert
        self._swept = float("-inf")  # the last sweep for untold unreachable welfare checks
        self._seq = 0

    def handlers(self) -> dict[type, Any]:
        return {
            DialCitizen: self._dial_citizen,
            Ringback: self._ringback,
            RecordAttempt: self._record_attempt,
            RecordOptOut: self._record_opt_out,
            CloseTask: self._close_task,
            RescheduleTask: self._reschedule,
            EndFollowup: self._end,
        }

    def config(self) -> model.FollowupConfig:
        """Read at each use: the settings of the moment."""
        return configs.followup_config(self.ctx.settings)

    def journey_config(self) -> JourneyConfig:
        s = self.ctx.settings
        return JourneyConfig(
            followup=self.config(),
            conversation=ConversationParams(s.both_silence_notify, s.caller_silence_notify),
        )

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.offers or channel_id in self.citizens

    def staff_call(self, leg_id: str) -> str | None:
        """The call an answered follow-up staff leg belongs to (for its keys)."""
        offer = self.offers.get(leg_id)
        return offer.call_id if offer is not None and offer.answered else None

    # -- the cycle -----------------------------------------------------------------------
    async def cycle(self) -> None:
        """Offer due tasks to free members (on the controller's tick)."""
        ctx = self.ctx
        if not ctx.settings.followup_enabled:
            return
        now = ctx.clock()
        config = self.config()
        # Ringing, or on a call (which may outlive the staff leg: a crisis hand-over).
        in_flight = {o.task.id for o in (*self.offers.values(), *self.by_call.values())}
        for task_id in in_flight:  # a long call keeps its lock (paused or not)
            await safe_store(self.records.lock(task_id, self.owner, now, config.lock_seconds))
        await self._sweep_untold(now)
        if not ctx.settings.followup_dialling:
            return
        seen = await self.staff.presence()  # a phone with a channel up is not offered a call
        reachable = seen.online
        views: dict[model.Team, planner.TeamView] = {}
        candidates: dict[model.Team, list[model.Task]] = {}
        for team in model.Team:
            group = self.staff.team_group(team.value)
            on_shift = self.staff.team_on_shift(team.value, now)
            free = group.free_members(reachable, now, on_shift, seen.on_a_channel)
            present = {
                m
                for m in group.members
                if m in reachable
                and (on_shift is None or m in on_shift)
                and group.counselor(m).logged_in
                and not group.counselor(m).paused
            }
            views[team] = planner.TeamView(free, present, len(group.waiting))
            candidates[team] = await self.records.due(
                team, now, limit=4 * len(free) + 20, exclude=in_flight
            )
        citizens = {o.task.caller_hash for o in (*self.offers.values(), *self.by_call.values())}
        citizens |= {c.caller for c in ctx.calls.values()}  # on a call, inbound or outbound
        planned = planner.plan(views, candidates, in_flight, now, config, citizens)
        for alert in planned.alerts:
            await self._alert(alert.task_id, str(alert.kind), now)
        for offer in planned.offers:
            task = next(t for t in candidates[offer.team] if t.id == offer.task_id)
            await self._offer(task, offer.member, offer.team, now, config)

    async def _sweep_untold(self, now: float) -> None:
        """Unreachable welfare checks closed without a supervisor told: told now."""
        if now - self._swept < ALERT_RETRY_SECONDS:
            return
        self._swept = now
        try:
            untold = await self.records.untold_unreachable_welfare()
        except Exception:
            log.exception("untold unreachable welfare checks not read")
            return
        for task_id in untold:
            await self._alert(task_id, str(planner.AlertKind.WELFARE_UNREACHABLE), now)

    async def _alert(self, task_id: int, kind: str, now: float) -> None:
        """A supervisor is told (a SIP MESSAGE with the task's id, never the number). Marked
        told only when a message went out; else tried again, at most every
        ALERT_RETRY_SECONDS."""
        if now - self._alert_tried.get(task_id, float("-inf")) < ALERT_RETRY_SECONDS:
            return
        sent = 0
        for supervisor in self.ctx.settings.supervisors:
            sent += await self.ctx.send_message(supervisor, f"ivr120:{kind}:{task_id}")
        if not sent:
            self._alert_tried[task_id] = now
            audit.warning("follow-up task %d: %s; no supervisor could be told", task_id, kind)
            return
        self._alert_tried.pop(task_id, None)
        await safe_store(self.records.mark_alerted(task_id, now))
        audit.info("follow-up task %d: %s; supervisors told", task_id, kind)

    async def _offer(
        self,
        task: model.Task,
        member: str,
        team: model.Team,
        now: float,
        config: model.FollowupConfig,
    ) -> None:
        ctx = self.ctx
        try:
            locked = await self.records.lock(task.id, self.owner, now, config.lock_seconds)
        except Exception:
            log.exception("follow-up task %d: cannot take the lock", task.id)
            return
        if not locked:
            log.info("follow-up task %d: locked elsewhere; skipped", task.id)
            return
        contacts = await self._contacts(task)
        self._seq += 1
        leg = f"{ctx.leg_prefix}fu{self._seq}"
        offer = Offer(task, member, team, leg, f"{leg}-citizen")
        group = self.staff.team_group(team.value)
        group.ring_external(member, leg, now)
        self.offers[leg] = offer
        log.info("follow-up task %d (%s): ringing %s", task.id, task.type, member)
        due = datetime.fromtimestamp(task.due_at, SEOUL).isoformat(timespec="minutes")
        info = {
            "Task": str(task.id),
            "Type": task.type.value,
            "Due": due,
            "Attempt": str(task.attempts + 1),
            "Contacts": str(contacts),
        }
        try:
            await ctx.ari.request(
                "POST",
                "channels",
                params={
                    "endpoint": f"PJSIP/{member}",
                    "app": ctx.settings.ari_app,
                    "appArgs": f"{FOLLOWUP_ARG},{task.id}",
                    "channelId": leg,
                    "timeout": int(ctx.settings.ring_timeout),
                    "callerId": f'"{task.type.value}" <120>',
                },
                body={"variables": {INFO_HEADER.format(k): v for k, v in info.items()}},
            )
        except AriError as exc:
            log.warning("follow-up task %d: could not ring %s: %s", task.id, member, exc)
            self.offers.pop(leg, None)
            group.external_ended(leg, LegOutcome.FAILED, now)
            await safe_store(self.records.unlock(task.id, self.owner))

    async def _contacts(self, task: model.Task) -> int:
        """The citizen's earlier contacts, for the staff phone; 0 when they cannot be read."""
        try:
            return await self.records.contacts(task.caller_hash)
        except Exception:
            log.exception("follow-up task %d: earlier contacts not read", task.id)
            return 0

    # -- the staff leg -------------------------------------------------------------------
    async def staff_answered(self, leg_id: str) -> None:
        ctx = self.ctx
        now = ctx.clock()
        offer = self.offers.get(leg_id)
        group = self.staff.team_group(offer.team.value) if offer else None
        member = group.external_answered(leg_id, now) if group and offer else None
        if offer is None or member is None:
            log.info("follow-up leg %s answered too late; hanging it up", leg_id)
            await ctx.hangup(leg_id)
            return
        offer.answered = True
        try:
            await self._start_call(offer, leg_id, member, now)
        except Exception:
            # Never dead air for the staff member: their leg is hung up (and released).
            log.exception("follow-up task %d: the call could not start", offer.task.id)
            ctx.calls.pop(offer.call_id, None)
            self.by_call.pop(offer.call_id, None)
            await ctx.hangup(leg_id)

    async def _start_call(self, offer: Offer, leg_id: str, member: str, now: float) -> None:
        ctx = self.ctx
        task = offer.task
        contacts = await self._contacts(task)
        journey = FollowupCall(
            offer.call_id, task, leg_id, member, self.journey_config(), now, contacts=contacts
        )
        call = ActiveCall(call_id=offer.call_id, flow=journey, caller=task.caller_hash, number="")
        ctx.calls[call.call_id] = call
        self.by_call[call.call_id] = offer
        log.info("follow-up task %d: %s answered (call %s)", task.id, member, call.call_id)
        await safe_store(
            ctx.store.write(
                "outbound call start",
                "INSERT OR IGNORE INTO calls (call_id, caller_hash, started_at, direction,"
                " task_id) VALUES (?, ?, ?, 'outbound', ?)",
                (call.call_id, task.caller_hash, now, task.id),
            )
        )
        try:
            offer.attempt_id = await self.records.attempt_started(
                task.id, member, call.call_id, now
            )
        except Exception:
            log.exception("follow-up task %d: attempt not recorded", task.id)
        await ctx.feed(call.call_id, flow.StaffAnswered(leg_id, member))

    async def channel_gone(self, channel_id: str, cause: int) -> None:
        """A staff leg or a citizen's channel ended."""
        ctx = self.ctx
        now = ctx.clock()
        if channel_id in self.citizens:
            self.citizens.discard(channel_id)
            if channel_id in ctx.calls:
                await ctx.feed(channel_id, CitizenGone(cause))
            return
        offer = self.offers.pop(channel_id, None)
        if offer is None:
            return
        group = self.staff.team_group(offer.team.value)
        if offer.answered:
            call = ctx.calls.get(offer.call_id)
            abuse = call is not None and call.flow.record.end_reason is CallEndReason.ABUSE
            group.released(offer.member, now, EndReason.ABUSE if abuse else EndReason.NORMAL)
            await self.staff.after_group_change(group.name)
            if call is not None:
                await ctx.feed(offer.call_id, flow.StaffHungUp())
            else:  # the call never started (or is over): the task is free again
                await safe_store(self.records.unlock(offer.task.id, self.owner))
            return
        outcome = STAFF_CAUSE.get(cause, LegOutcome.NO_ANSWER)
        if group.external_ended(channel_id, outcome, now) is not None:
            log.warning("%s paused after repeated unanswered calls", offer.member)
        await self.staff.after_group_change(group.name)
        log.info("follow-up task %d: %s did not answer", offer.task.id, offer.member)
        await self._staff_no_answer(offer, now)

    async def _staff_no_answer(self, offer: Offer, now: float) -> None:
        """Not the citizen's attempt: recorded, not counted; the task is free again."""
        records = self.records
        try:
            attempt = await records.attempt_started(offer.task.id, offer.member, "", now)
            await records.attempt_ended(
                attempt, offer.task.id, model.AttemptResult.STAFF_NO_ANSWER, now, counted=False
            )
        except Exception:
            log.exception("follow-up task %d: attempt not recorded", offer.task.id)
        await safe_store(records.unlock(offer.task.id, self.owner))

    async def citizen_answered(self, channel_id: str) -> None:
        if channel_id not in self.ctx.calls:
            await self.ctx.hangup(channel_id)  # the call ended meanwhile
            return
        log.info("follow-up %s: the citizen answered", channel_id)
        await self.ctx.feed(channel_id, CitizenAnswered())

    # -- the journey's commands ----------------------------------------------------------
    async def _dial_citizen(self, call: ActiveCall, cmd: DialCitizen) -> None:
        ctx = self.ctx
        offer = self.by_call[call.call_id]
        sealed = await self.records.sealed_number(offer.task.id)
        if sealed is None:
            log.warning("follow-up task %d: no number to dial", offer.task.id)
            ctx.post_flow(call.call_id, CitizenGone(0, service=True))
            return
        try:
            number = ctx.sealer.open(*sealed)
        except Exception:
            log.error("follow-up task %d: the number cannot be unsealed", offer.task.id)
            ctx.post_flow(call.call_id, CitizenGone(0, service=True))
            return
        call.number = number  # in memory for the call only (a request made during it)
        self.citizens.add(call.call_id)
        settings = ctx.settings
        try:
            await ctx.ari.request(
                "POST",
                "channels",
                params={
                    "endpoint": f"PJSIP/{number}@{TRUNK_ENDPOINT}",
                    "app": settings.ari_app,
                    "appArgs": f"{CITIZEN_ARG},{call.call_id}",
                    "channelId": call.call_id,
                    "timeout": CITIZEN_RING_SECONDS,
                    "callerId": f'"외로움안녕120" <{settings.service_caller_id}>',
                },
            )
        except AriError as exc:
            # Never the exception text: it may hold the request (the number).
            status = getattr(exc, "status", "?")
            log.warning("follow-up task %d: cannot dial the citizen (%s)", offer.task.id, status)
            self.citizens.discard(call.call_id)
            ctx.post_flow(call.call_id, CitizenGone(0, service=True))
            return
        log.info("follow-up task %d: dialling the citizen %s", offer.task.id, call.caller)

    async def _ringback(self, call: ActiveCall, cmd: Ringback) -> None:
        await self.ctx.ari.post(f"channels/{cmd.leg_id}/play/{cmd.playback_id}", media=RINGBACK)

    async def _record_attempt(self, call: ActiveCall, cmd: RecordAttempt) -> None:
        offer = self.by_call.get(call.call_id)
        if offer is None or offer.attempt_id is None:
            return
        await safe_store(
            self.records.attempt_ended(
                offer.attempt_id,
                offer.task.id,
                cmd.result,
                self.ctx.clock(),
                cmd.sip_cause,
                cmd.talk_seconds,
                counted=cmd.counted,
            )
        )
        log.info("follow-up task %d: attempt %s", offer.task.id, cmd.result.value)

    async def _record_opt_out(self, call: ActiveCall, cmd: RecordOptOut) -> None:
        now = self.ctx.clock()
        await safe_store(self.records.opt_out(call.caller, now, call.call_id, "key"))
        audit.info("follow-up opt-out: caller %s by key, call %s", call.caller, call.call_id)
        offer = self.by_call.get(call.call_id)
        if offer is not None:  # a companion series stops with it
            await self._after_close(offer.task, model.Outcome.OPTED_OUT, now)

    async def _close_task(self, call: ActiveCall, cmd: CloseTask) -> None:
        offer = self.by_call.get(call.call_id)
        if offer is None:
            return
        task, now = offer.task, self.ctx.clock()
        by = offer.member
        try:
            changed = await self.records.close(task.id, cmd.status, cmd.outcome.value, now, by)
        except WriteDeferred as exc:  # kept, written later: it is closed
            log.warning("follow-up task %d: close not written yet: %s", task.id, exc)
            changed = 1
        if changed == 0:  # closed meanwhile (by an administrator): nothing follows twice
            log.info("follow-up task %d was closed already", task.id)
            return
        log.info("follow-up task %d: closed %s (%s)", task.id, cmd.status, cmd.outcome)
        alert = planner.alert_on_close(task, cmd.status)
        if alert is not None:  # a welfare check is never closed silently
            await self._alert(alert.task_id, str(alert.kind), now)
        await self._after_close(task, cmd.outcome, now)

    async def _after_close(self, task: model.Task, outcome: model.Outcome, now: float) -> None:
        """The referral it checked, the companion series' next call, more help (closing)."""
        try:
            closed = await self.records.task(task.id)
            after = await closing.task_closed(
                self.records, self.ctx.store, closed or task, outcome, now, self.config()
            )
        except Exception:
            log.exception("follow-up task %d: what follows its close failed", task.id)
            return
        log.info("follow-up task %d: after the close %s", task.id, after)

    async def _reschedule(self, call: ActiveCall, cmd: RescheduleTask) -> None:
        offer = self.by_call.get(call.call_id)
        if offer is None:
            return
        await safe_store(self.records.reschedule(offer.task.id, cmd.due_at, self.owner))
        when = datetime.fromtimestamp(cmd.due_at, SEOUL).isoformat(timespec="minutes")
        log.info("follow-up task %d: due again %s", offer.task.id, when)

    async def _end(self, call: ActiveCall, cmd: EndFollowup) -> None:
        offer = self.by_call.pop(call.call_id, None)
        if offer is not None:
            await safe_store(self.records.unlock(offer.task.id, self.owner))
        call.number = ""
