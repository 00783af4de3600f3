"""Supervisors told of a follow-up task that needs a person: a SIP MESSAGE to each supervisor
with the task's id and the kind (never the number), marked told in the task once a message went
out, else tried again later. Used by the offer cycle (ivr.followup.dialler: a companion away past
the grace, an assigned member away) and on a close (ivr.followup.effects: a welfare check closed
unreachable)."""

from __future__ import annotations

import logging

from ivr.audit import audit
from ivr.context import CallContext, safe_store
from ivr.followup import planner
from ivr.followup.records import FollowupRecords

log = logging.getLogger(__name__)

#: Seconds between tries of an alert no supervisor could be sent (and between sweeps for
#: unreachable welfare checks nobody was told of).
ALERT_RETRY_SECONDS = 60.0


class SupervisorAlerts:
    def __init__(self, ctx: CallContext, records: FollowupRecords) -> None:
        self.ctx = ctx
        self.records = records
        self._tried: dict[int, float] = {}  # task id -> last failed alert
        self._swept = float("-inf")  # the last sweep for untold unreachable welfare checks

    async def sweep_untold(self, now: float) -> None:
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
            await self.alert(task_id, str(planner.AlertKind.WELFARE_UNREACHABLE), now)

    async def alert(self, task_id: int, kind: str, now: float) -> None:
        """A supervisor is told. Marked told only when a message went out; else tried again,
        at most every ALERT_RETRY_SECONDS."""
        if now - self._tried.get(task_id, float("-inf")) < ALERT_RETRY_SECONDS:
            return
        sent = 0
        for supervisor in self.ctx.settings.supervisors:
            sent += await self.ctx.send_message(supervisor, f"ivr120:{kind}:{task_id}")
        if not sent:
            self._tried[task_id] = now
            audit.warning("follow-up task %d: %s; no supervisor could be told", task_id, kind)
            return
        self._tried.pop(task_id, None)
        await safe_store(self.records.mark_alerted(task_id, now))
        audit.info("follow-up task %d: %s; supervisors told", task_id, kind)
