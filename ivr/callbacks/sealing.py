"""Storing a callback request during a call: the number sealed for the follow-up worker."""

from __future__ import annotations

from typing import Any

from ivr.audit import audit
from ivr.context import ActiveCall, CallContext
from ivr.flow import call as flow
from ivr.store import WriteDeferred


class Callbacks:
    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[type[flow.Command], Any]:
        return {flow.RequestCallback: self._request}

    async def _request(self, call: ActiveCall, cmd: flow.RequestCallback) -> None:
        """Raises when the store refuses the request (the bookkeeping policy retries it)."""
        sealed = None
        if call.number:
            sealed = self.ctx.sealer.seal(call.number, f"callback:{call.call_id}")
        try:
            request_id: int | str = await self.ctx.store.add_callback(
                call.call_id,
                call.caller,
                sealed,
                self.ctx.clock(),
                cmd.reason,
                cmd.consent,
                cmd.requested_by,
            )
        except WriteDeferred:
            request_id = "(kept in memory, written when the database can take it)"
        audit.info(
            "callback request %s: call %s, caller %s, reason %s, consent %s, by %s",
            request_id,
            call.call_id,
            call.caller,
            cmd.reason,
            cmd.consent,
            cmd.requested_by or "caller",
        )
