"""The ring group's driver: rings staff legs for waiting callers, and tells the pure ring
groups (ivr.staff.ringgroup) what became of them.

It owns the legs in progress and the member actions (log in/out, pause, from a feature code
or the admin API). Member state changes are stored; waiting callers hear where they stand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ivr.ari import events
from ivr.ari.client import AriError
from ivr.context import ActiveCall, CallContext, safe_store
from ivr.flow import call as flow
from ivr.flow.menu import Menu
from ivr.paths import project_file
from ivr.staff import registration
from ivr.staff import roster as rosters
from ivr.staff import states as staff_states
from ivr.staff import teams as staff_teams
from ivr.staff.ringgroup import (
    EndReason,
    LegOutcome,
    RingGroup,
    RingGroupConfig,
    UnknownMemberError,
)
from ivr.timezone import SEOUL

log = logging.getLogger(__name__)

LEG_ARG = "leg"
INFO_HEADER = "PJSIP_HEADER(add,X-IVR120-{})"
#: ChannelDestroyed causes of an unanswered ring attempt.
CAUSE_OUTCOME = {17: LegOutcome.BUSY, 21: LegOutcome.REJECTED}
#: Q.850 causes of an answered staff leg that mean its phone was lost, not hung up: 44 is
#: what Asterisk sets when no media came for `rtp_timeout` seconds (a phone that lost power
#: or its network); 18 a SIP session refresh nobody answered; 27, 38 and 41 network failures.
#: A counselor's own hang-up is 16.
LOST_CAUSES = frozenset({18, 27, 38, 41, 44})
ACTIONS = ("login", "logout", "pause", "unpause")
#: The staff team whose ring group is the menu queue they answer (the others have their own).
COUNSELORS = "counselors"


class StaffError(Exception):
    """An administrator's request that cannot be carried out (unknown member, ...)."""


@dataclass
class Leg:
    call_id: str
    queue: str
    member: str
    answered: bool = False
    abuse: bool = False
    #: The cause of the hang-up Asterisk announced (ChannelHangupRequest): the StasisEnd that
    #: ends the leg here carries none.
    hangup_cause: int = 0
    #: Asterisk's channel driver ended the leg (no media, a failed session): the phone is lost.
    lost: bool = False


def load_teams(settings: Any) -> staff_teams.Teams:
    """The follow-up teams' working hours (`teams_file`), checked against the settings."""
    staff = {"social_workers": settings.social_workers, "companions": settings.companions}
    return staff_teams.load_checked(project_file(settings.teams_file), staff)


class StaffDriver:
    def __init__(
        self,
        ctx: CallContext,
        menu: Menu,
        roster: rosters.Roster,
        config: RingGroupConfig,
        teams: staff_teams.Teams | None = None,
    ) -> None:
        self.ctx = ctx
        #: The members' stored states are seeded (restore): the groups may take work from now.
        self.restored = False
        settings = ctx.settings
        self.roster = roster
        self._members = {
            "counselors": settings.counselors,
            "agents": settings.agents,
            "social_workers": settings.social_workers,
            "companions": settings.companions,
        }
        self.groups = {
            name: RingGroup(name, self._members[q.members], config)
            for name, q in menu.queues.items()
        }
        self._queue_team = {name: q.members for name, q in menu.queues.items()}
        #: The follow-up teams' own ring groups (no inbound queue: they take follow-up calls).
        #: Their members start logged in like the counselors; their working hours decide
        #: when they are offered calls (see team_on_shift).
        self.team_groups = {
            team: RingGroup(team, self._members[team], config)
            for team in staff_teams.FOLLOWUP_TEAMS
        }
        self.teams = teams if teams is not None else load_teams(settings)
        #: Queues answered by the rostered counselors (the others have no shift plan).
        self._rostered = {n for n, q in menu.queues.items() if q.members == "counselors"}
        self._staff = frozenset(settings.staff_endpoints)
        self.registrations = registration.Registrations(settings.staff_endpoints)
        self.legs: dict[str, Leg] = {}

    def handlers(self) -> dict[type[flow.Command], Any]:
        return {flow.Enqueue: self._enqueue, flow.Dequeue: self._dequeue}

    async def _enqueue(self, call: ActiveCall, cmd: flow.Enqueue) -> None:
        self.groups[cmd.queue].enqueue(call.call_id, cmd.since)
        await self.plan(cmd.queue)

    async def _dequeue(self, call: ActiveCall, cmd: flow.Dequeue) -> None:
        for leg in self.groups[cmd.queue].dequeue(call.call_id):
            await self.cancel_leg(leg)
        await self.after_group_change(cmd.queue)

    async def restore(self) -> None:
        await staff_states.restore(self.ctx.store, self._all_groups().values())
        self.restored = True

    def mark_abuse(self, leg_id: str | None) -> None:
        """The counselor on `leg_id` ended an abusive call: they get the longer wrap-up."""
        leg = self.legs.get(leg_id or "")
        if leg is not None and leg.answered:
            leg.abuse = True

    # -- legs ----------------------------------------------------------------------------
    async def leg_answered(self, leg_id: str) -> None:
        now = self.ctx.clock()
        leg = self.legs.get(leg_id)
        result = self.groups[leg.queue].answered(leg_id, now) if leg else None
        if leg is None or result is None:
            log.info("leg %s answered too late; hanging it up", leg_id)
            await self.ctx.hangup(leg_id)
            return
        call_id, member, others = result
        leg.answered = True
        log.info("call %s: %s answered", call_id, member)
        await safe_store(self.ctx.store.ring_ended(leg_id, now, "answered"))
        for other in others:
            await self.cancel_leg(other)
        await self.ctx.feed(call_id, flow.StaffAnswered(leg_id, member))
        await self.after_group_change(leg.queue)

    def hangup_requested(self, ev: events.ChannelHangupRequest) -> None:
        leg = self.legs.get(ev.channel.id)
        if leg is None:
            return
        if ev.by_channel_driver:
            leg.lost = True
        elif not ev.soft and ev.cause:
            leg.hangup_cause = ev.cause

    async def leg_gone(self, leg_id: str, cause: int) -> None:
        now = self.ctx.clock()
        leg = self.legs.pop(leg_id, None)
        if leg is None:
            return
        cause = cause or leg.hangup_cause
        group = self.groups[leg.queue]
        if leg.answered:
            reason = EndReason.ABUSE if leg.abuse else EndReason.NORMAL
            until = group.released(leg.member, now, reason)
            call = self.ctx.calls.get(leg.call_id)
            if call is not None and call.flow.state in (
                flow.State.CONNECTING,
                flow.State.CONNECTED,
            ):
                lost = leg.lost or cause in LOST_CAUSES
                if lost:
                    member, call_id = leg.member, leg.call_id
                    why = f"cause {cause}" if cause else "no media, or its SIP session failed"
                    log.warning("call %s: %s's phone was lost (%s)", call_id, member, why)
                await self.ctx.feed(leg.call_id, flow.StaffHungUp(lost=lost))
            if until is not None:  # after the caller is told: bookkeeping never delays them
                await safe_store(self.ctx.store.call_wrapup(leg.call_id, until - now))
        else:
            outcome = CAUSE_OUTCOME.get(cause, LegOutcome.NO_ANSWER)
            paused = group.leg_ended(leg_id, outcome, now)
            log.info("call %s: %s did not answer (%s)", leg.call_id, leg.member, outcome.value)
            await safe_store(self.ctx.store.ring_ended(leg_id, now, outcome.value))
            if paused is not None:
                log.warning("%s paused after repeated unanswered calls", leg.member)
        await self.after_group_change(leg.queue)

    async def cancel_leg(self, leg_id: str) -> None:
        """Stop ringing a leg we no longer need (no penalty for the member)."""
        if leg_id in self.legs and not self.legs[leg_id].answered:
            self.legs.pop(leg_id)
            await safe_store(self.ctx.store.ring_ended(leg_id, self.ctx.clock(), "cancelled"))
        await self.ctx.hangup(leg_id)

    async def reachable(self) -> set[str]:
        return set((await self.presence()).online)

    async def presence(self) -> registration.Presence:
        """Who is registered, and whose phone has a channel up (not to be rung)."""
        try:
            endpoints = await self.ctx.ari.get("endpoints/PJSIP")
        except AriError as exc:
            log.warning("cannot list endpoints: %s", exc)
            return registration.Presence(frozenset(), frozenset())
        return registration.Presence.of(endpoints)

    def on_shift(self, queue: str, now: float) -> frozenset[str] | None:
        """Who is on shift for a queue now (None: the queue has no shift plan)."""
        if queue in self.team_groups:
            return self.team_on_shift(queue, now)
        if queue not in self._rostered:
            return None
        return rosters.on_shift(self.roster, datetime.fromtimestamp(now, SEOUL))

    # -- teams ---------------------------------------------------------------------------
    def team_group(self, team: str) -> RingGroup:
        """The ring group of a staff team: the follow-up teams' own, and for the counselors
        (and agents) the menu queue they answer, so follow-up calls share their state."""
        if team in self.team_groups:
            return self.team_groups[team]
        for name, members in self._queue_team.items():
            if members == team:
                return self.groups[name]
        raise StaffError(f"no ring group for team {team!r}")

    def team_on_shift(self, team: str, now: float) -> frozenset[str] | None:
        """Who of a team works now: the roster for the counselors, the working hours of
        `teams_file` for the follow-up teams (None: the team has no plan, always on)."""
        when = datetime.fromtimestamp(now, SEOUL)
        if team == COUNSELORS:
            return rosters.on_shift(self.roster, when)
        if team in self.team_groups:
            return self.teams.on_duty_members(team, self.team_groups[team].members, when)
        return None

    def team_of(self, group: str) -> str:
        """The staff team of a ring group (a menu queue's or a team's own)."""
        return self._queue_team.get(group, group)

    def _all_groups(self) -> dict[str, RingGroup]:
        return {**self.groups, **self.team_groups}

    def _group(self, name: str) -> RingGroup:
        group = self.groups.get(name) or self.team_groups.get(name)
        if group is None:
            raise StaffError(f"no ring group {name!r}")
        return group

    def apply_teams(self, teams: staff_teams.Teams) -> None:
        """New working hours (an administrator edited `teams_file`); calls go on."""
        self.teams = teams
        log.info("follow-up teams' working hours reloaded")

    async def plan_all(self) -> None:
        for name in self.groups:
            await self.plan(name)

    async def plan(self, queue: str) -> None:
        group = self.groups[queue]
        if not group.waiting:
            return
        ctx = self.ctx
        now = ctx.clock()
        seen = await self.presence()
        rings = group.plan(
            seen.online, ctx.leg_prefix, now, self.on_shift(queue, now), seen.on_a_channel
        )
        for ring in rings:
            call = ctx.calls.get(ring.call_id)
            self.legs[ring.leg_id] = Leg(ring.call_id, queue, ring.member)
            log.info("call %s: ringing %s", ring.call_id, ring.member)
            await safe_store(ctx.store.ring_started(ring.leg_id, ring.call_id, ring.member, now))
            try:
                await ctx.ari.request(
                    "POST",
                    "channels",
                    params={
                        "endpoint": f"PJSIP/{ring.member}",
                        "app": ctx.settings.ari_app,
                        "appArgs": f"{LEG_ARG},{ring.call_id}",
                        "channelId": ring.leg_id,
                        "timeout": int(ctx.settings.ring_timeout),
                        "callerId": f'"{queue}" <120>',
                    },
                    body={"variables": self._call_info(call, queue, now)},
                )
            except AriError as exc:
                log.warning("call %s: could not ring %s: %s", ring.call_id, ring.member, exc)
                self.legs.pop(ring.leg_id, None)
                group.leg_ended(ring.leg_id, LegOutcome.FAILED, now)
                await safe_store(ctx.store.ring_ended(ring.leg_id, now, "failed"))
        await self.after_group_change(queue)

    @staticmethod
    def _call_info(call: ActiveCall | None, queue: str, now: float) -> dict[str, str]:
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

    async def after_group_change(self, queue: str) -> None:
        """Record member state changes and tell waiting callers where they stand."""
        ctx = self.ctx
        group = self._group(queue)
        for change in group.drain_changes():
            log.info(
                "%s: %s %s -> %s (%s)",
                change.member,
                change.field,
                change.old,
                change.new,
                change.reason or "-",
            )
            await safe_store(
                ctx.store.counselor_event(
                    change.member,
                    change.at,
                    change.field,
                    str(change.old).lower(),
                    str(change.new).lower(),
                    change.reason or "",
                )
            )
            state = staff_states.state_of(group, change.member)
            await safe_store(ctx.store.save_member_state(state))
        now = ctx.clock()
        reachable = group.reachable()
        for ahead, call_id in enumerate(group.waiting):
            call = ctx.calls.get(call_id)
            if call is None:
                continue
            estimate = group.estimated_wait(call_id, now)
            bucket = -1 if estimate is None else int(estimate // 30)
            if call.reported != (ahead, bucket, reachable > 0):
                call.reported = (ahead, bucket, reachable > 0)
                await ctx.feed(call_id, flow.QueueStatus(ahead, estimate, reachable))

    # -- registrations -------------------------------------------------------------------
    def is_staff(self, endpoint: str) -> bool:
        """`endpoint` is a staff phone (its state changes who can be rung)."""
        return endpoint in self._staff

    async def endpoint_changed(self, endpoint: str, state: str) -> None:
        if endpoint not in self._staff:
            return
        change = self.registrations.update(endpoint, state, self.ctx.clock())
        # Asterisk repeats the endpoint's state with every channel that comes or goes on it
        # (each call from an unregistered phone, too): only a change is worth a log line.
        if change is not None:
            log.info("endpoint %s is %s", endpoint, state)
            if change.online:
                await self._tell_if_off_shift(change.member)
        await self.plan_all()

    async def seed_registrations(self) -> None:
        self.registrations.seed(await self.reachable(), self.ctx.clock())

    async def _tell_if_off_shift(self, member: str) -> None:
        """A counselor registered while off shift: their phone reads that they are."""
        now = self.ctx.clock()
        shifts = [self.on_shift(q, now) for q in self._rostered if member in self.groups[q].members]
        shifts += [
            self.on_shift(t, now) for t, g in self.team_groups.items() if member in g.members
        ]
        if not shifts or any(s is None or member in s for s in shifts):
            return
        log.info("%s registered while off shift; telling their phone", member)
        await self.ctx.send_message(member, registration.OFF_SHIFT_MESSAGE)

    # -- member actions and configuration ------------------------------------------------
    async def member_action(self, member: str, action: str, reason: str) -> None:
        """Log in/out, pause or unpause a member (from a feature code or the admin API)."""
        queue = self._group_of(member)
        group = self._group(queue)
        now = self.ctx.clock()
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
                raise StaffError(f"unknown action {action!r}")
        except UnknownMemberError as exc:
            raise StaffError(str(exc)) from None
        for leg in legs:
            await self.cancel_leg(leg)
        await self.after_group_change(queue)
        if queue in self.groups:
            await self.plan(queue)

    def _group_of(self, member: str) -> str:
        for name, group in self._all_groups().items():
            if member in group.members:
                return name
        raise StaffError(f"{member!r} is not a counselor, agent, social worker or companion")

    async def reload_roster(self, path: Any) -> None:
        """Replace the shift plan and the follow-up teams' working hours (an administrator
        edited them); calls in progress go on. Nothing changes if either file is wrong."""
        new = rosters.load_roster(path)
        unknown = {c.endpoint for c in new.counselors.values()} - set(self.ctx.settings.counselors)
        if unknown:
            raise StaffError(f"roster names endpoints that are not counselors: {unknown}")
        self.teams = load_teams(self.ctx.settings)
        self.roster = new
        log.info("roster reloaded from %s", path)
        await self.plan_all()

    def check_menu(self, menu: Menu) -> None:
        """Refuse a new menu that would change who answers an existing queue (restart)."""
        for name, q in menu.queues.items():
            group = self.groups.get(name)
            wanted = tuple(dict.fromkeys(self._members[q.members]))
            if group is not None and group.members != wanted:
                raise StaffError(f"queue {name!r}: changing its members needs a restart")

    def apply_menu(self, menu: Menu, roster: rosters.Roster) -> None:
        """New queues of a reloaded menu get their groups (members as they are elsewhere)."""
        self.check_menu(menu)
        for name, q in menu.queues.items():
            if name not in self.groups:
                config = next(iter(self.groups.values())).config
                group = RingGroup(name, self._members[q.members], config)
                staff_states.seed_from(group, self.groups.values())
                self.groups[name] = group
                self._queue_team[name] = q.members
            if q.members == "counselors":
                self._rostered.add(name)
        self.roster = roster

    def members(self) -> list[dict[str, Any]]:
        now = self.ctx.clock()
        out = []
        for name, group in self._all_groups().items():
            shift = self.on_shift(name, now)
            for m in group.snapshot(now):
                reg = self.registrations.get(m.member)
                out.append(
                    {
                        "member": m.member,
                        "team": self.team_of(name),
                        "queue": name if name in self.groups else None,
                        "state": m.activity.value,
                        "on_shift": shift is None or m.member in shift,
                        "logged_in": m.logged_in,
                        "paused": m.paused,
                        "pause_reason": m.pause_reason,
                        "calls": m.calls_taken,
                        "blocked_for": round(m.blocked_for, 1),
                        "registered": reg.online,
                        "registered_since": reg.since,
                        "logged_in_since": m.logged_in_since,
                        "paused_since": m.paused_since,
                    }
                )
        return out

    def queues(self) -> dict[str, Any]:
        return {
            name: {
                "waiting": len(g.waiting),
                "ringing": sorted(g.ringing_members()),
                "busy": sorted(g.busy_members()),
            }
            for name, g in self.groups.items()
        }
