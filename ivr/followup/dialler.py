"""The dialler: turns due follow-up tasks into calls (preview dialling, staff first).

On every tick (ivr.controller) it looks at each team's ring group (ivr.staff.driver): the free
members, best first, the same order inbound calls use. The counselors are offered a task only
when no caller waits in their queue, so a callback never goes ahead of people on hold. For each
offer: the task is locked in the database (`FollowupRecords.lock`; refused = someone else has
it), the member counts as ringing in their ring group (`ring_external`), and their phone rings
with the task in `X-IVR120-*` headers (type, due time, attempt, earlier contacts; never the
number). When they answer, an `ActiveCall` is made whose `flow` is the outbound journey
(ivr.followup.journey.FollowupCall); its commands are carried out by ivr.followup.effects (the
citizen dialled, the records), and supervisors are told by ivr.followup.alerts.

Channels, by their Stasis arguments: ``followup,<task id>`` is the staff leg,
``citizen,<call id>`` the citizen's (its channel id is the call id).
"""

from __future__ import annotations

import logging
from datetime import datetime

from ivr import configs
from ivr.ari import events
from ivr.ari.client import AriError
from ivr.context import ActiveCall, CallContext, safe_store
from ivr.flow import call as flow
from ivr.flow.conversation import ConversationParams
from ivr.flow.record import CallEndReason
from ivr.followup import model, planner
from ivr.followup.alerts import SupervisorAlerts
from ivr.followup.control import DiallingControl
from ivr.followup.effects import CITIZEN_ARG, FollowupEffects
from ivr.followup.events import CitizenAnswered, CitizenGone
from ivr.followup.journey import FollowupCall, JourneyConfig
from ivr.followup.offers import Offer, Offers
from ivr.followup.records import FollowupRecords
from ivr.staff.driver import INFO_HEADER, StaffDriver
from ivr.staff.ringgroup import EndReason, LegOutcome
from ivr.timezone import SEOUL

log = logging.getLogger(__name__)

#: The staff leg's first Stasis argument.
FOLLOWUP_ARG = "followup"
__all__ = ["CITIZEN_ARG", "FOLLOWUP_ARG", "Dialler"]
#: ChannelDestroyed causes of an unanswered staff leg.
STAFF_CAUSE = {17: LegOutcome.BUSY, 21: LegOutcome.REJECTED}


class Dialler:
    def __init__(self, ctx: CallContext, staff: StaffDriver) -> None:
        self.ctx = ctx
        self.staff = staff
        self.records = FollowupRecords(ctx.store)
        #: The lock owner: this controller run.
        self.owner = ctx.leg_prefix
        self.book = Offers()
        self.offers = self.book.by_leg  # staff leg id -> offer
        self.alerts = SupervisorAlerts(ctx, self.records)
        #: The journey's commands; a room of the controller's effects table.
        self.effects = FollowupEffects(ctx, self.records, self.book, self.alerts, self.owner)
        #: Dialling paused or on per team (loaded at start by the controller).
        self.control = DiallingControl(ctx.store, ctx.settings.followup_dialling)
        self._seq = 0

    def config(self) -> model.FollowupConfig:
        """Read at each use: the settings of the moment."""
        return configs.followup_config(self.ctx.settings)

    def journey_config(self) -> JourneyConfig:
        s = self.ctx.settings
        return JourneyConfig(
            followup=self.config(),
            teams=self.staff.teams,
            conversation=ConversationParams(s.both_silence_notify, s.caller_silence_notify),
            ask_consent=s.followup_summary_consent,
            consent_timeout=s.consent_timeout,
        )

    def owns(self, channel_id: str) -> bool:
        return channel_id in self.offers or channel_id in self.book.citizens

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
        in_flight = {o.task.id for o in self.book.in_flight()}
        for task_id in in_flight:  # a long call keeps its lock (paused or not)
            await safe_store(self.records.lock(task_id, self.owner, now, config.lock_seconds))
        await self.alerts.sweep_untold(now)
        if not self.control.loaded:  # its read at start failed: tried again
            await self.control.load(now)
        dialling = self.control.dialling()  # `ivr-admin followup pause|resume`, in memory
        if not dialling:
            return
        seen = await self.staff.presence()  # a phone with a channel up is not offered a call
        reachable = seen.online
        views: dict[model.Team, planner.TeamView] = {}
        candidates: dict[model.Team, list[model.Task]] = {}
        for team in model.Team:
            if team not in dialling:
                continue
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
            group.set_presence(reachable, on_shift)  # for its snapshot and wait estimates
            candidates[team] = await self.records.due(
                team, now, limit=4 * len(free) + 20, exclude=in_flight
            )
        citizens = {o.task.caller_hash for o in self.book.in_flight()}
        citizens |= {c.caller for c in ctx.calls.values()}  # on a call, inbound or outbound
        planned = planner.plan(views, candidates, in_flight, now, config, citizens)
        for alert in planned.alerts:
            await self.alerts.alert(alert.task_id, str(alert.kind), now)
        for offer in planned.offers:
            task = next(t for t in candidates[offer.team] if t.id == offer.task_id)
            await self._offer(task, offer.member, offer.team, now, config)

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
            self.book.by_call.pop(offer.call_id, None)
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
        self.book.by_call[call.call_id] = offer
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

    def hangup_requested(self, ev: events.ChannelHangupRequest) -> None:
        offer = self.offers.get(ev.channel.id)
        if offer is not None and offer.answered and ev.by_channel_driver:
            offer.lost = True

    async def channel_gone(self, channel_id: str, cause: int) -> None:
        """A staff leg or a citizen's channel ended."""
        ctx = self.ctx
        now = ctx.clock()
        if channel_id in self.book.citizens:
            self.book.citizens.discard(channel_id)
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
            until = group.released(
                offer.member, now, EndReason.ABUSE if abuse else EndReason.NORMAL
            )
            await self.staff.after_group_change(group.name)
            if call is not None:
                if offer.lost:
                    log.warning("follow-up %s: %s's phone was lost", offer.call_id, offer.member)
                await ctx.feed(offer.call_id, flow.StaffHungUp(lost=offer.lost))
            else:  # the call never started (or is over): the task is free again
                await safe_store(self.records.unlock(offer.task.id, self.owner))
            if until is not None:
                await safe_store(ctx.store.call_wrapup(offer.call_id, until - now))
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

    async def citizen_answered(self, channel_id: str, name: str = "") -> None:
        call = self.ctx.calls.get(channel_id)
        if call is None:
            await self.ctx.hangup(channel_id)  # the call ended meanwhile
            return
        call.channel_name = name  # the consent record names the channel that answered
        log.info("follow-up %s: the citizen answered", channel_id)
        await self.ctx.feed(channel_id, CitizenAnswered())
