"""Storing a callback request during a call: it becomes a follow-up task (ivr/followup/requests.py:
created, or merged into the citizen's open task of the same team), and the `callbacks` row, with
the number sealed for this request, is linked to it."""

from __future__ import annotations

from typing import Any

from ivr.audit import audit
from ivr.context import ActiveCall, CallContext
from ivr.flow import call as flow
from ivr.followup.requests import FollowupRequests, Requested, describe
from ivr.store import WriteDeferred


class Callbacks:
    call_local = (flow.RequestCallback,)  # rows of its own call (ivr.effects)

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[type[flow.Command], Any]:
        return {flow.RequestCallback: self._request}

    async def _request(self, call: ActiveCall, cmd: flow.RequestCallback) -> None:
        """Raises when the store refuses the request (the bookkeeping policy retries it)."""
        now = self.ctx.clock()
        task: Requested | None = None
        if self.ctx.settings.followup_enabled:
            task = await FollowupRequests(self.ctx.store, self.ctx.sealer).task_for(
                call.call_id,
                call.caller,
                call.number,
                cmd.reason,
                cmd.consent,
                cmd.requested_by,
                now,
            )
        sealed = None
        if call.number:
            sealed = self.ctx.sealer.seal(call.number, f"callback:{call.call_id}")
        try:
            request_id: int | str = await self.ctx.store.add_callback(
                call.call_id,
                call.caller,
                sealed,
                now,
                cmd.reason,
                cmd.consent,
                cmd.requested_by,
                task.task_id if task else None,
            )
        except WriteDeferred:
            request_id = "(kept in memory, written when the database can take it)"
        audit.info(
            "callback request %s: call %s, caller %s, reason %s, consent %s, by %s: %s",
            request_id,
            call.call_id,
            call.caller,
            cmd.reason,
            cmd.consent,
            cmd.requested_by or "caller",
            describe(task),
        )
