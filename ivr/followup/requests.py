"""A request stored during a call becomes a follow-up task: the callbacks room (ivr/callbacks/
sealing.py) calls `FollowupRequests.task_for` before it writes its `callbacks` row, and links
the row to the task.

- The task's type comes from the request's reason (model.REQUEST_TYPE): a waiting caller's key 1
  is a `callback`, a silent line a `welfare` check, the counselor's `*8` an `in_depth` call.
  All are due at once; the planner keeps them to the calling hours (an in-depth call's "within
  one working day" is measured from `created_at`).
- The number is sealed for the citizen (`model.seal_purpose`), so any later task of theirs can
  be dialled with it; it is never logged.
- A citizen with an open task of the same team gets no second one: the request merges into it
  (the earlier due time and the more urgent type win).
- A request that cannot be served is kept as a task closed at once, so that it is seen in the
  worklist and the reports instead of vanishing: an anonymous line (no number to dial) is
  closed `unreachable` — a welfare check among them is a supervisor's matter, the planner's
  `alert_on_close` says so.
- A citizen who opted out (key 9 on a follow-up call, or staff closing a task `opted_out`):
  * a request they did not make — a welfare check of a silent line — is kept closed
    `opted_out` at once (the worklist shows it arrived; nobody calls);
  * a request they made themselves on a later call — their key 1 (or 네) in the queue, or
    agreeing to the counselor's `*8` — is a fresh wish to be called, newer than the opt-out:
    the opt-out is lifted and the task is dialled as any other. The whole opt-out goes, not
    only for this request: it was one wish ("no more calls") and the citizen has just taken
    it back by asking for a call; what the opt-out closed stays closed (a stopped companion
    series needs a new enrolment), and every follow-up call starts with the key 9 notice, so
    they can stop the calls again at once;
  * but a request made on the very call on which they opted out (the staff member's `*8`
    after the citizen pressed 9 on a follow-up call) does not lift it: the citizen's own key
    stands over the staff member's, and the request is kept closed `opted_out`.
- Retried after a failure (the bookkeeping policy, ivr/effects.py), the same call's request
  finds the task it already became instead of making a second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ivr.audit import audit
from ivr.crypto import Sealer
from ivr.flow.commands import CallbackConsent, CallbackReason
from ivr.followup.model import REQUEST_TYPE, Outcome, Status, TaskType, seal_purpose
from ivr.followup.records import FollowupRecords
from ivr.store import Store, WriteDeferred

log = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
#: Notes on the tasks that are closed at once (read by staff: Korean).
NO_NUMBER_NOTE = "발신번호가 없어 전화할 수 없습니다 (발신번호 표시 제한)"
OPTED_OUT_NOTE = "시민이 후속 전화를 원하지 않습니다 (수신 거부)"
#: A chat's callback for a number that opted out: the number was typed, not verified (anyone
#: may type anyone's number), so the opt-out stands; the counselor decides (e.g. in the chat).
CHAT_OPTED_OUT_NOTE = (
    "채팅에서 입력한 번호(본인 확인 안 됨)가 후속 전화 수신 거부 상태입니다. "
    "거부는 유지되었습니다. 필요하면 채팅으로 확인해 주세요."
)


@dataclass(frozen=True)
class Requested:
    """What a request became. `task_id` None: the database could not take it now (the store
    keeps it and writes it later, unlinked from the callbacks row)."""

    task_id: int | None
    type: TaskType
    merged: bool = False
    status: Status = Status.OPEN


class FollowupRequests:
    def __init__(self, store: Store, sealer: Sealer) -> None:
        self.records = FollowupRecords(store)
        self.sealer = sealer

    async def task_for(
        self,
        call_id: str,
        caller_hash: str,
        number: str,
        reason: CallbackReason,
        consent: CallbackConsent,
        requested_by: str | None,
        now: float,
    ) -> Requested:
        """The task for a request of this call (created, merged or found again). Raises when
        the database refuses it (the bookkeeping policy retries); a deferred write is no
        error."""
        type_ = REQUEST_TYPE[reason]
        by = requested_by or ("system" if reason is CallbackReason.WELFARE_SILENCE else "caller")
        found = await self.records.task_for_call(call_id, type_)
        if found is not None:  # this request again (a retry after a failure)
            task = await self.records.task(found)
            return Requested(found, type_, status=task.status if task else Status.OPEN)
        try:
            if not number or caller_hash == ANONYMOUS:
                return await self._closed(
                    type_, caller_hash, now, Status.UNREACHABLE, call_id, by, NO_NUMBER_NOTE
                )
            optout = await self.records.opt_out_of(caller_hash)
            if optout is not None:
                # A chat's number is typed, not the line's caller id: it never lifts it.
                typed = consent is CallbackConsent.CITIZEN_CHAT
                stands = (
                    consent is CallbackConsent.NONE_WELFARE_CHECK
                    or optout.call_id == call_id
                    or typed
                )
                if stands:
                    audit.info(
                        "follow-up request of call %s for caller %s kept closed: they opted out"
                        " (call %s)",
                        call_id,
                        caller_hash,
                        optout.call_id or "-",
                    )
                    note = CHAT_OPTED_OUT_NOTE if typed else OPTED_OUT_NOTE
                    return await self._closed(
                        type_, caller_hash, now, Status.OPTED_OUT, call_id, by, note
                    )
                try:
                    await self.records.lift_opt_out(caller_hash)
                except WriteDeferred:
                    pass  # the store writes the lift later; the request is not lost meanwhile
                audit.info(
                    "follow-up opt-out of caller %s lifted: they asked for a call (call %s)",
                    caller_hash,
                    call_id,
                )
            purpose = seal_purpose(caller_hash)
            task_id, merged = await self.records.add_or_merge(
                type_,
                caller_hash,
                self.sealer.seal(number, purpose),
                purpose,
                now,
                now,
                call_id=call_id,
                requested_by=by,
            )
        except WriteDeferred:
            return Requested(None, type_)
        return Requested(task_id, type_, merged)

    async def _closed(
        self,
        type_: TaskType,
        caller_hash: str,
        now: float,
        status: Status,
        call_id: str,
        by: str,
        note: str,
    ) -> Requested:
        outcome = Outcome.UNREACHABLE if status is Status.UNREACHABLE else Outcome.OPTED_OUT
        task_id = await self.records.add_closed(
            type_,
            caller_hash,
            now,
            status,
            outcome.value,
            call_id=call_id,
            requested_by=by,
            note=note,
        )
        return Requested(task_id, type_, status=status)


def describe(requested: Requested | None) -> str:
    """For the audit line of the request (no personal data)."""
    if requested is None:
        return "no follow-up task (follow-up off)"
    if requested.task_id is None:
        return f"{requested.type} task kept in memory (written when the database can take it)"
    if requested.merged:
        return f"merged into task {requested.task_id}"
    if requested.status is not Status.OPEN:
        return f"{requested.type} task {requested.task_id} closed {requested.status}"
    return f"{requested.type} task {requested.task_id}"
