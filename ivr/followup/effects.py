"""The outbound journey's commands (ivr.followup.commands) carried out: the citizen dialled on
the trunk (the number unsealed in memory only here, right before `POST channels`, and never
logged), the ringback, and the records — the attempt, the opt-out, the close and what follows
it (ivr.followup.closing), the reschedule, the end. The offer cycle that starts these calls is
ivr.followup.dialler; both share the offers in flight (ivr.followup.offers)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ivr import configs
from ivr.ari.client import AriError
from ivr.audit import audit
from ivr.config import TRUNK_ENDPOINT
from ivr.context import ActiveCall, CallContext, safe_store
from ivr.followup import closing, model, planner
from ivr.followup.alerts import SupervisorAlerts
from ivr.followup.commands import (
    CloseTask,
    DialCitizen,
    EndFollowup,
    RecordAttempt,
    RecordOptOut,
    RescheduleTask,
    Ringback,
)
from ivr.followup.events import CitizenGone
from ivr.followup.offers import Offers
from ivr.followup.records import FollowupRecords
from ivr.store_buffer import WriteDeferred
from ivr.timezone import SEOUL

log = logging.getLogger(__name__)

#: The citizen's channel's first Stasis argument (its channel id is the call id).
CITIZEN_ARG = "citizen"
#: Seconds the citizen's phone rings before the attempt is `no_answer`.
CITIZEN_RING_SECONDS = 40
RINGBACK = "tone:ring"


class FollowupEffects:
    #: The journey's record commands: a failed one never ends the call (ivr.effects' policy).
    bookkeeping = (RecordAttempt, RecordOptOut, CloseTask, RescheduleTask, EndFollowup)

    def __init__(
        self,
        ctx: CallContext,
        records: FollowupRecords,
        offers: Offers,
        alerts: SupervisorAlerts,
        owner: str,
    ) -> None:
        self.ctx = ctx
        self.records = records
        self.offers = offers
        self.alerts = alerts
        #: The lock owner: this controller run.
        self.owner = owner

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

    async def _dial_citizen(self, call: ActiveCall, cmd: DialCitizen) -> None:
        ctx = self.ctx
        offer = self.offers.by_call[call.call_id]
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
        self.offers.citizens.add(call.call_id)
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
            self.offers.citizens.discard(call.call_id)
            ctx.post_flow(call.call_id, CitizenGone(0, service=True))
            return
        log.info("follow-up task %d: dialling the citizen %s", offer.task.id, call.caller)

    async def _ringback(self, call: ActiveCall, cmd: Ringback) -> None:
        await self.ctx.ari.post(f"channels/{cmd.leg_id}/play/{cmd.playback_id}", media=RINGBACK)

    async def _record_attempt(self, call: ActiveCall, cmd: RecordAttempt) -> None:
        offer = self.offers.by_call.get(call.call_id)
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
        offer = self.offers.by_call.get(call.call_id)
        if offer is not None:  # a companion series stops with it
            await self._after_close(offer.task, model.Outcome.OPTED_OUT, now)

    async def _close_task(self, call: ActiveCall, cmd: CloseTask) -> None:
        offer = self.offers.by_call.get(call.call_id)
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
            await self.alerts.alert(alert.task_id, str(alert.kind), now)
        await self._after_close(task, cmd.outcome, now)

    async def _after_close(self, task: model.Task, outcome: model.Outcome, now: float) -> None:
        """The referral it checked, the companion series' next call, more help (closing)."""
        try:
            closed = await self.records.task(task.id)
            config = configs.followup_config(self.ctx.settings)
            after = await closing.task_closed(
                self.records, self.ctx.store, closed or task, outcome, now, config
            )
        except Exception:
            log.exception("follow-up task %d: what follows its close failed", task.id)
            return
        log.info("follow-up task %d: after the close %s", task.id, after)

    async def _reschedule(self, call: ActiveCall, cmd: RescheduleTask) -> None:
        offer = self.offers.by_call.get(call.call_id)
        if offer is None:
            return
        await safe_store(self.records.reschedule(offer.task.id, cmd.due_at, self.owner))
        when = datetime.fromtimestamp(cmd.due_at, SEOUL).isoformat(timespec="minutes")
        log.info("follow-up task %d: due again %s", offer.task.id, when)

    async def _end(self, call: ActiveCall, cmd: EndFollowup) -> None:
        offer = self.offers.by_call.pop(call.call_id, None)
        if offer is not None:
            await safe_store(self.records.unlock(offer.task.id, self.owner))
        call.number = ""
