"""The follow-up worklist over HTTP (admin token; ``ivr-admin followups`` and friends use it).

    GET  /api/followups[?team=&type=&status=&due=]   tasks (due: now, today, YYYY-MM-DD, +2h)
    GET  /api/followups/{id}                          one task with its attempts
    POST /api/followups/{id}/assign      {member}     fix the task to a staff member (or null)
    POST /api/followups/{id}/reschedule  {due}        due again at a time (same forms as ?due)
    POST /api/followups/{id}/close       {outcome}    close it by hand (reached, more_help, ...)
    GET  /api/referrals[?call=&status=]               referrals, newest first
    POST /api/referrals            {call_id, agency, note}  a referral + its monitoring task
    POST /api/referrals/{id}       {status, note}     linked | confirmed | failed
    GET  /api/agencies[?category=&district=]          the partner-agency catalog
    GET  /api/companions[?all=1]                      companion series (active unless all)
    POST /api/companions           {call_id, companion, every, at}  enrol + first task
    POST /api/companions/stop      {target}           a series id or a call id
    GET  /api/dialling                                follow-up dialling per team: paused or on
    POST /api/dialling/pause   {team, reason}         pause a team's calls (every team's if none)
    POST /api/dialling/resume  {team}                 dial again

No answer ever holds a number, clear or sealed (tasks say only ``dialable``). Every read is
on the audit log with who read it (``who`` in the query, ``by`` in a body; ivr-admin sends
the login name) and every change too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from ivr.api import ApiError, json_body
from ivr.audit import audit
from ivr.configs import followup_config
from ivr.crypto import Sealer
from ivr.followup import companions, workdays
from ivr.followup.agencies import AgencyBook
from ivr.followup.closing import task_closed
from ivr.followup.errors import FollowupError, NotFound
from ivr.followup.model import Outcome, Status, Task, TaskType, Team
from ivr.followup.planner import deadline, overdue
from ivr.followup.records import FollowupRecords
from ivr.followup.referrals import Referrals, parse_status, refer
from ivr.followup.series import ScheduleError, parse_schedule
from ivr.followup.workdays import WorkCalendar
from ivr.keys import AGENCIES, CONTROLLER, SECRETS, SETTINGS, STORE, running_controller
from ivr.staff.driver import load_teams
from ivr.staff.roster import RosterError
from ivr.timezone import SEOUL

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]

#: How a task closed by hand ends up, by outcome.
CLOSE_STATUS: dict[Outcome, Status] = {
    Outcome.REACHED: Status.DONE,
    Outcome.MORE_HELP: Status.DONE,
    Outcome.NOT_LINKED: Status.DONE,
    Outcome.UNREACHABLE: Status.UNREACHABLE,
    Outcome.CANCELLED: Status.CANCELLED,
    Outcome.OPTED_OUT: Status.OPTED_OUT,
}
_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([mhd])$")
_UNIT = {"m": 60.0, "h": 3600.0, "d": 86400.0}
_WHO = re.compile(r"[^A-Za-z0-9_.@-]")
E = TypeVar("E", TaskType, Team, Status, Outcome)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/followups", _api(_tasks))
    r.add_get("/api/followups/{id}", _api(_task))
    r.add_post("/api/followups/{id}/{action}", _api(_task_action))
    r.add_get("/api/referrals", _api(_referrals))
    r.add_post("/api/referrals", _api(_referral_add))
    r.add_post("/api/referrals/{id}", _api(_referral_set))
    r.add_get("/api/agencies", _api(_agencies))
    r.add_get("/api/companions", _api(_companions))
    r.add_post("/api/companions", _api(_companion_enrol))
    r.add_post("/api/companions/stop", _api(_companion_stop))
    r.add_get("/api/dialling", _api(_dialling))
    r.add_post("/api/dialling/{action}", _api(_dialling_change))


def _api(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except FollowupError as exc:
            raise ApiError(exc.status, exc.error_id, exc.message, exc.message_ko) from None

    return wrapped


# -- parsing ---------------------------------------------------------------------------------
def parse_when(text: str, now: float) -> float:
    """A time staff type: ``now``, ``+30m``/``+2h``/``+1d``, ``today`` (the end of the Seoul
    day), a date ``2026-12-02`` (its end) or a Seoul date and time ``2026-12-02 10:00``."""
    text = text.strip()
    if text == "now":
        return now
    m = _RELATIVE.match(text)
    if m:
        return now + float(m[1]) * _UNIT[m[2]]
    if text == "today":
        text = dt.datetime.fromtimestamp(now, SEOUL).date().isoformat()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=SEOUL).timestamp()
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise FollowupError(
            f"cannot read the time {text!r}: use now, +2h, today, 2026-12-02 or"
            " '2026-12-02 10:00' (Seoul)",
            "시각을 읽을 수 없습니다",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SEOUL)
    return moment.timestamp()


def _enum(kind: type[E], text: str | None) -> E | None:
    if text is None or text == "":
        return None
    try:
        return kind(text)
    except ValueError:
        raise FollowupError(
            f"unknown {kind.__name__.lower()} {text!r} (one of {', '.join(kind)})",
            "알 수 없는 값입니다",
        ) from None


def _who(value: Any) -> str:
    return _WHO.sub("", str(value or "admin"))[:64] or "admin"


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise NotFound(f"no such id {raw!r}", "없는 번호입니다")
    return int(raw)


def _required(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FollowupError(f"`{key}` is required", f"`{key}` 값이 필요합니다")
    return value.strip()


# -- views -----------------------------------------------------------------------------------
async def _dialable(request: web.Request, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    rows = await request.app[STORE].fetch(
        "SELECT id FROM followup_tasks WHERE number_sealed IS NOT NULL"
        f" AND id IN ({','.join('?' * len(ids))})",
        tuple(ids),
    )
    return {int(r[0]) for r in rows}


def _calendar(request: web.Request) -> WorkCalendar:
    """The social workers' working days: the running controller's teams (reloadable), else
    the teams file of the settings."""
    controller = request.app.get(CONTROLLER)
    if controller is not None:
        return workdays.calendar(controller.staff.teams)
    try:
        return workdays.calendar(load_teams(request.app[SETTINGS]))
    except RosterError as exc:
        log.warning("teams file not read (%s); deadlines counted in Mon-Fri 09-18", exc)
        return WorkCalendar()


def _task_view(task: Task, dialable: set[int], cal: WorkCalendar, now: float) -> dict[str, Any]:
    view = dataclasses.asdict(task)
    view["dialable"] = task.id in dialable
    view["deadline"] = deadline(task, cal)
    view["overdue"] = overdue(task, now, cal)
    return view


def _records(request: web.Request) -> FollowupRecords:
    return FollowupRecords(request.app[STORE])


# -- tasks -----------------------------------------------------------------------------------
async def _tasks(request: web.Request) -> web.Response:
    q, now = request.query, time.time()
    team = _enum(Team, q.get("team"))
    type_ = _enum(TaskType, q.get("type"))
    status = _enum(Status, q.get("status"))
    due = parse_when(q["due"], now) if q.get("due") else None
    tasks = await _records(request).tasks(team=team, type_=type_, status=status, due_before=due)
    dialable = await _dialable(request, [t.id for t in tasks])
    audit.info(
        "follow-up worklist read by %s: %d tasks (team %s, type %s, status %s, due %s)",
        _who(q.get("who")),
        len(tasks),
        team or "-",
        type_ or "-",
        status or "-",
        q.get("due") or "-",
    )
    cal = _calendar(request)
    return web.json_response([_task_view(t, dialable, cal, now) for t in tasks])


async def _task(request: web.Request) -> web.Response:
    records, task_id = _records(request), _id(request)
    task = await records.task(task_id)
    if task is None:
        raise NotFound(f"no follow-up task {task_id}", "후속 전화 작업이 없습니다")
    view = _task_view(task, await _dialable(request, [task.id]), _calendar(request), time.time())
    view["attempts_list"] = await records.attempts(task.id)
    view["contacts"] = await records.contacts(task.caller_hash)
    audit.info(
        "follow-up task %d read by %s (caller %s)",
        task.id,
        _who(request.query.get("who")),
        task.caller_hash,
    )
    return web.json_response(view)


async def _task_action(request: web.Request) -> web.Response:
    records, task_id, now = _records(request), _id(request), time.time()
    action = request.match_info["action"]
    body = await json_body(request)
    by = _who(body.get("by"))
    task = await records.task(task_id)
    if task is None:
        raise NotFound(f"no follow-up task {task_id}", "후속 전화 작업이 없습니다")
    if action not in ("assign", "reschedule", "close"):
        raise ApiError(404, "unknown_action", f"unknown action {action!r}", "알 수 없는 작업입니다")
    if not task.open:
        raise ApiError(
            409, "task_closed", f"task {task_id} is already {task.status}", "이미 닫힌 작업입니다"
        )
    if action in ("reschedule", "close") and task.locked(now):
        raise ApiError(
            409, "task_in_call", f"task {task_id} is being dialled", "통화 중인 작업입니다"
        )
    result: dict[str, Any] = {"id": task_id, "action": action, "by": by}
    if action == "assign":
        member = body.get("member") or None
        if member is not None:
            member = _who(member)
        await records.assign(task_id, member)
        result["member"] = member
        audit.info("follow-up task %d assigned to %s by %s", task_id, member or "-", by)
    elif action == "reschedule":
        due = parse_when(_required(body, "due"), now)
        await records.reschedule(task_id, due)
        result["due_at"] = due
        audit.info("follow-up task %d rescheduled by %s", task_id, by)
    else:
        outcome = _enum(Outcome, _required(body, "outcome"))
        assert outcome is not None
        if outcome is Outcome.OPTED_OUT:
            # The citizen asked (by another way) not to be called: all their tasks close.
            await records.opt_out(task.caller_hash, now, task.call_id, "admin")
        elif not await records.close(task_id, CLOSE_STATUS[outcome], outcome.value, now, by):
            raise ApiError(409, "task_closed", f"task {task_id} is closed", "이미 닫힌 작업입니다")
        closed = await records.task(task_id)
        assert closed is not None
        after = await task_closed(
            records,
            request.app[STORE],
            closed,
            outcome,
            now,
            followup_config(request.app[SETTINGS]),
        )
        result.update(
            status=closed.status.value, outcome=outcome.value, **dataclasses.asdict(after)
        )
        audit.info("follow-up task %d closed %s by %s", task_id, outcome, by)
    return web.json_response(result)


# -- referrals and agencies ------------------------------------------------------------------
def _live(request: web.Request, call_id: str) -> tuple[str | None, Sealer]:
    """The call's number if the call is still up, and the sealer."""
    controller = request.app.get(CONTROLLER)
    if controller is not None:
        call = controller.calls.get(call_id)
        return (call.number if call is not None else None), controller.ctx.sealer
    return None, Sealer(request.app[SECRETS].data_key)


async def _referrals(request: web.Request) -> web.Response:
    q = request.query
    status = parse_status(q["status"]) if q.get("status") else None
    rows = await Referrals(request.app[STORE]).list(call_id=q.get("call") or None, status=status)
    audit.info("referrals read by %s: %d", _who(q.get("who")), len(rows))
    book = request.app[AGENCIES].current
    out = []
    for r in rows:
        agency = book.get(r.agency)
        out.append({**r.view(), "agency_name": agency.name if agency else None})
    return web.json_response(out)


async def _referral_add(request: web.Request) -> web.Response:
    body, now = await json_body(request), time.time()
    by = _who(body.get("by"))
    call_id, agency = _required(body, "call_id"), _required(body, "agency")
    note = body.get("note") or None
    number, sealer = _live(request, call_id)
    done = await refer(
        request.app[STORE],
        _records(request),
        request.app[AGENCIES].current,
        call_id=call_id,
        agency=agency,
        now=now,
        config=followup_config(request.app[SETTINGS]),
        by=by,
        note=str(note) if note else None,
        live_number=number,
        sealer=sealer,
    )
    audit.info(
        "referral %d to %s on call %s (caller %s) by %s; monitoring task %s",
        done.referral.id,
        agency,
        call_id,
        done.referral.caller_hash,
        by,
        done.task_id if done.task_id is not None else done.why_not,
    )
    return web.json_response(
        {
            "referral": done.referral.view(),
            "monitoring_task": done.task_id,
            "merged": done.merged,
            "due_at": done.due_at,
            "dialable": done.dialable,
            "why_not": done.why_not,
        }
    )


async def _referral_set(request: web.Request) -> web.Response:
    body, now = await json_body(request), time.time()
    by = _who(body.get("by"))
    status = parse_status(_required(body, "status"))
    note = body.get("note") or None
    referral = await Referrals(request.app[STORE]).set_status(
        _id(request), status, now, by, str(note) if note else None
    )
    audit.info("referral %d set %s by %s", referral.id, status, by)
    return web.json_response(referral.view())


async def _agencies(request: web.Request) -> web.Response:
    book: AgencyBook = request.app[AGENCIES]
    q = request.query
    chosen = book.current.select(q.get("category") or None, q.get("district") or None)
    return web.json_response([a.view() for a in chosen])


# -- companions ------------------------------------------------------------------------------
async def _companions(request: web.Request) -> web.Response:
    q = request.query
    rows = await companions.CompanionSeries(request.app[STORE]).list(
        active_only=q.get("all") not in ("1", "true", "yes")
    )
    audit.info("companion series read by %s: %d", _who(q.get("who")), len(rows))
    return web.json_response([s.view() for s in rows])


async def _companion_enrol(request: web.Request) -> web.Response:
    body, now = await json_body(request), time.time()
    by = _who(body.get("by"))
    call_id, member = _required(body, "call_id"), _required(body, "companion")
    try:
        schedule = parse_schedule(_required(body, "every"), _required(body, "at"))
    except ScheduleError as exc:
        raise ApiError(400, "bad_schedule", str(exc), "동행 일정 오류") from None
    number, sealer = _live(request, call_id)
    settings = request.app[SETTINGS]
    known = settings.companions  # a series is always served by one of the companions team
    done = await companions.enrol(
        request.app[STORE],
        _records(request),
        call_id=call_id,
        member=member,
        schedule=schedule,
        now=now,
        by=by,
        companions=known,
        live_number=number,
        sealer=sealer,
    )
    audit.info(
        "companion series %d: caller %s with %s (%s) by %s; first task %d",
        done.series.id,
        done.series.caller_hash,
        member,
        schedule.describe(),
        by,
        done.task_id,
    )
    return web.json_response(
        {"series": done.series.view(), "task": done.task_id, "due_at": done.due_at}
    )


async def _companion_stop(request: web.Request) -> web.Response:
    body, now = await json_body(request), time.time()
    by = _who(body.get("by"))
    stopped = await companions.stop(
        request.app[STORE], _records(request), _required(body, "target"), now, by
    )
    for s in stopped:
        audit.info("companion series %d stopped by %s", s.series_id, by)
    return web.json_response([dataclasses.asdict(s) for s in stopped])


# -- dialling paused or on -------------------------------------------------------------------
async def _dialling(request: web.Request) -> web.Response:
    return web.json_response(running_controller(request).followup.control.view())


async def _dialling_change(request: web.Request) -> web.Response:
    controller = running_controller(request)
    action = request.match_info["action"]
    if action not in ("pause", "resume"):
        raise ApiError(404, "unknown_action", f"unknown action {action!r}", "알 수 없는 작업입니다")
    body = await json_body(request)
    by = _who(body.get("by"))
    team = _enum(Team, body.get("team"))
    teams = [team] if team is not None else list(Team)
    reason = body.get("reason")
    control = controller.followup.control

    async def change() -> list[Team]:  # in turn with the dialler's cycle: the next one obeys
        return await control.change(teams, action == "pause", by, reason, controller.clock())

    changed = await controller.submit(change)
    return web.json_response(
        {**control.view(), "action": action, "changed": [t.value for t in changed]}
    )
