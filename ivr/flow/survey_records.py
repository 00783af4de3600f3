"""The post-call survey, adapter side: stores the caller's answer (ivr.flow.survey). A record
only: a failure never ends the call (the bookkeeping policy, ivr.effects)."""

from __future__ import annotations

import logging
from typing import Any

from ivr.context import ActiveCall, CallContext
from ivr.flow import call as flow
from ivr.flow.commands import RecordSurvey
from ivr.store import WriteDeferred

log = logging.getLogger(__name__)


class SurveyRecords:
    bookkeeping = (RecordSurvey,)
    call_local = (RecordSurvey,)  # a row of its own call (ivr.effects)

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[type[flow.Command], Any]:
        return {RecordSurvey: self._record}

    async def _record(self, call: ActiveCall, cmd: RecordSurvey) -> None:
        """The answer with the call's line and the time; never the caller's number or hash."""
        line = call.flow.record.queue or ""
        now = self.ctx.clock()
        try:
            await self.ctx.store.survey_answer(
                call.call_id, line, cmd.kind, cmd.answer, cmd.answered_by, now
            )
        except WriteDeferred as exc:
            log.warning("record not written yet: %s", exc)
            return
        log.info("call %s: survey answer stored (%s)", call.call_id, cmd.kind)
