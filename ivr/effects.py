"""Carrying out commands: one small function per command type, found in a table, and the two
failure policies.

- A failed *call-control* command (play, hold, bridge, answer, recover, ...) is logged and the
  flow is told (`Failed`), which sends the caller to the dialplan's recovery context (an
  apology, then a clean hangup). If even that fails, the caller's channel is hung up. A caller
  is never left in silence. A 404 (the channel or bridge went away under us) is skipped: its
  hangup event is on its way.
- A failed *bookkeeping* command (a record: consent, silence, flag, callback, withdrawal) never
  ends a call. It is tried again a few times with a short backoff — each retry is an input on
  the queue, so nothing blocks the loop and the retry runs in turn with the events — every
  failure is an audit line, and when the last try fails the counselor's phone reads
  "저장하지 못했습니다". (A record the database only deferred — a full disk, a lock — is kept by
  the store and written later: that is not a failure here.)

Calls' commands run in their calls' lanes (ivr.lanes), side by side; a command a room has not
declared `call_local` holds the shared part, so the ring groups, staff legs and the follow-up
dialler still see one command at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ivr.ari.client import AriConnectionError, AriNotFound
from ivr.audit import audit
from ivr.context import ActiveCall, CallContext
from ivr.flow import call as flow
from ivr.flow.record import CallEndReason
from ivr.inputs import RetryBookkeeping
from ivr.lanes import Shared

log = logging.getLogger(__name__)

Handler = Callable[[ActiveCall, Any], Awaitable[None]]

#: Commands that only write records: when one fails, the call goes on.
BOOKKEEPING: tuple[type[flow.Command], ...] = (
    flow.RecordConsent,
    flow.RecordSilence,
    flow.FlagCaller,
    flow.RequestCallback,
    flow.WithdrawConsent,
)
#: Seconds before each retry of a failed bookkeeping command.
RETRY_DELAYS = (0.5, 1.0, 2.0)
#: What the counselor's phone shows when a record could not be saved.
NOT_SAVED = "저장하지 못했습니다"
NOT_SAVED_WHAT = {
    "RecordConsent": "요약 동의 기록",
    "RecordSilence": "침묵 기록",
    "FlagCaller": "폭언 표시",
    "RequestCallback": "콜백 요청",
    "WithdrawConsent": "동의 철회 기록",
}


class Effects:
    def __init__(
        self,
        ctx: CallContext,
        table: Mapping[type[flow.Command], Handler],
        bookkeeping: tuple[type[Any], ...] = (),
        call_local: frozenset[type[Any]] = frozenset(),
        shared: Shared | None = None,
    ) -> None:
        self.ctx = ctx
        self.table = dict(table)
        #: The commands with the bookkeeping policy: these, and those the rooms declare.
        self.bookkeeping: tuple[type[Any], ...] = BOOKKEEPING + tuple(bookkeeping)
        #: The commands that touch only their own call (its channel, bridges, timers, taps and
        #: rows), as the rooms declare them: carried out in the call's lane beside other
        #: calls'. Every other command holds `shared` (ivr.lanes), one lane at a time.
        self.call_local = call_local
        self.shared = shared or Shared()
        self.retry_delays = RETRY_DELAYS
        #: Notices sent off the loop (a slow phone must not hold up the calls).
        self._notices: set[asyncio.Task[bool]] = set()

    async def run(self, call: ActiveCall, commands: list[flow.Command]) -> None:
        for cmd in commands:
            self.ctx.tell_listeners(call, cmd)
            try:
                await self._carry_out(call, cmd)
            except AriNotFound as exc:
                # The channel went away under us; its hangup event is on its way.
                log.info("call %s: %s skipped, object gone (%s)", call.call_id, cmd, exc.path)
            except Exception as exc:
                if isinstance(cmd, self.bookkeeping):
                    self._bookkeeping_failed(call, cmd, exc, attempt=0)
                    continue  # a record that could not be written never ends a call
                self.ctx.tallies["command"] += 1
                log.exception("call %s: %s failed", call.call_id, type(cmd).__name__)
                if call.flow.ended:
                    # Already ending: just make sure nothing of the call is left behind.
                    self.ctx.calls.pop(call.call_id, None)
                    await self.ctx.hangup(call.call_id)
                    continue
                if isinstance(exc, AriConnectionError) and call.flow.record.end_reason is None:
                    call.flow.record.end_reason = CallEndReason.PBX_LOST  # Asterisk is gone
                failed = flow.Failed(f"{type(cmd).__name__}: {exc}")
                await self.run(call, call.flow.handle(failed, self.ctx.clock()))
                return

    async def _carry_out(self, call: ActiveCall, cmd: flow.Command) -> None:
        observer = self.ctx.observer
        try:
            if type(cmd) in self.call_local:
                await self.table[type(cmd)](call, cmd)
            else:
                async with self.shared.hold():
                    await self.table[type(cmd)](call, cmd)
        except BaseException as exc:
            if observer is not None:
                observer(cmd, exc)
            raise
        if observer is not None:
            observer(cmd, None)

    # -- the bookkeeping policy --------------------------------------------------------------
    async def retry(self, job: RetryBookkeeping) -> None:
        """A failed record, tried again (an input of the loop)."""
        try:
            await self._carry_out(job.call, job.command)
        except Exception as exc:
            self._bookkeeping_failed(job.call, job.command, exc, job.attempt)
        else:
            audit.info(
                "call %s: %s written on retry %d", job.call.call_id, _name(job.command), job.attempt
            )

    def _bookkeeping_failed(
        self, call: ActiveCall, cmd: flow.Command, exc: Exception, attempt: int
    ) -> None:
        name = _name(cmd)
        self.ctx.tallies["bookkeeping"] += 1
        if attempt < len(self.retry_delays):
            audit.warning(
                "call %s: %s not written (%s: %s); retrying",
                call.call_id,
                name,
                type(exc).__name__,
                exc,
            )
            delay = self.retry_delays[attempt]
            asyncio.get_running_loop().call_later(
                delay, self.ctx.post, RetryBookkeeping(call, cmd, attempt + 1)
            )
            return
        log.error("call %s: %s could not be written: %r", call.call_id, name, exc)
        audit.error(
            "call %s: %s NOT STORED after %d tries (%s: %s); the call goes on",
            call.call_id,
            name,
            attempt + 1,
            type(exc).__name__,
            exc,
        )
        member = call.flow.record.member
        if member:
            what = NOT_SAVED_WHAT.get(name, "기록")
            task = asyncio.create_task(self.ctx.send_message(member, f"{what}: {NOT_SAVED}"))
            self._notices.add(task)
            task.add_done_callback(self._notices.discard)


def _name(cmd: flow.Command) -> str:
    return type(cmd).__name__
