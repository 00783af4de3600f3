"""Flagging an abusive caller during a call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ivr.audit import audit
from ivr.context import ActiveCall, CallContext
from ivr.flow import call as flow
from ivr.staff.driver import StaffDriver
from ivr.store import WriteDeferred
from ivr.timezone import SEOUL


class Flags:
    def __init__(self, ctx: CallContext, driver: StaffDriver) -> None:
        self.ctx = ctx
        self.driver = driver

    def handlers(self) -> dict[type[flow.Command], Any]:
        return {flow.FlagCaller: self._flag}

    async def _flag(self, call: ActiveCall, cmd: flow.FlagCaller) -> None:
        """Raises when the store refuses the flag (the bookkeeping policy retries it)."""
        member = cmd.member
        self.driver.mark_abuse(cmd.leg_id)  # the counselor gets the longer wrap-up
        if call.caller == "anonymous":
            audit.info("abuse end: call %s by %s; caller withheld the number", call.call_id, member)
            return
        try:
            flag = await self.ctx.store.flag_caller(
                call.caller, call.call_id, member, self.ctx.clock()
            )
        except WriteDeferred as exc:
            audit.info(
                "abuse flag: caller %s, call %s, counselor %s: %s",
                call.caller,
                call.call_id,
                member,
                exc,
            )
            return
        audit.info(
            "abuse flag: caller %s level %d until %s, call %s, counselor %s",
            call.caller,
            flag.level,
            datetime.fromtimestamp(flag.until, SEOUL).isoformat(timespec="minutes"),
            call.call_id,
            member,
        )
