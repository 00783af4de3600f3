"""The counselor screen's desk routes: the page, its live stream and its forms.

    GET  /desk           the screen (counselors, social workers, companions: their OWN contact)
    GET  /desk/events    text/event-stream: the contact and the member's state, on change
    POST /desk/call      action=abuse|crisis|callback|withdraw, call_id: the in-call feature code
    POST /desk/member    action=login|logout|pause|unpause [reason]: the phone's *51-*54
    POST /desk/wrapup    call_id, note, needs (repeated), agency, outcome: the wrap-up form

Supervisors and administrators are not served this page (403 in Korean): they have the
wallboard, and a contact belongs to the counselor on the line. Every button goes through the
controller's input loop (`Controller.submit`) to the same code the phone's keys reach: the call
gets `StaffDigit("*")` + the key, the member action is `StaffDriver.member_action`. What those
do is audited where it is done (a flag, a callback request, a consent withdrawal); the desk adds
one audit line naming the screen as the source, and audits the worklist read and the contact's
history shown (n-th contact), once per contact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.audit import audit
from ivr.configs import followup_config
from ivr.context import ActiveCall, CallContext
from ivr.controller import Controller
from ivr.crypto import Sealer
from ivr.desk import screen
from ivr.flow import call as flow
from ivr.flow.conversation import STAFF_ARM, WITH_STAFF
from ivr.flow.conversation import State as TalkState
from ivr.followup.admin_commands import TYPE_KO
from ivr.followup.model import Status, Team
from ivr.followup.records import FollowupRecords
from ivr.followup.referrals import Referrals, refer
from ivr.keys import AGENCIES, CONTROLLER, SECRETS
from ivr.staff.driver import StaffError
from ivr.summary import jobs, records
from ivr.summary.needs import NeedList, load_needs
from ivr.timezone import SEOUL
from ivr.wallboard.monitoring import MONITORS
from ivr.web.auth import Role
from ivr.web.sessions import Session
from ivr.web.site import DESK, SESSION, Desk, desk_of, redirect, requires
from ivr.web.streams import view_stream

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
#: Seconds between two looks at the controller (a new contact is on screen within this).
TICK = 0.25
#: A comment line at least this often keeps proxies from closing an idle stream.
KEEPALIVE = 15.0
#: The roles served: each sees their own contact only.
SERVED = frozenset({Role.COUNSELOR, Role.SOCIAL_WORKER, Role.COMPANION})
TEAM_OF = {
    Role.COUNSELOR: Team.COUNSELORS,
    Role.SOCIAL_WORKER: Team.SOCIAL_WORKERS,
    Role.COMPANION: Team.COMPANIONS,
}
#: Contacts' counts remembered before those of ended calls are dropped.
NTH_KEPT = 1000
#: Worklist rows shown at most.
WORKLIST_MAX = 50
#: What the page says after a form (by key: never text from the request).
DONE_KO = {
    "abuse": "통화를 종료했습니다. 발신자에게 이용 정책 안내가 나갑니다.",
    "crisis": "위기 상담 전화를 연결하고 있습니다.",
    "callback": "콜백(심층 상담) 요청을 접수했습니다.",
    "withdraw": "동의 철회를 기록했습니다. 녹음은 중단되고 삭제됩니다.",
    "login": "로그인했습니다.",
    "logout": "로그아웃했습니다 (전화 받기 중지).",
    "pause": "휴식을 시작했습니다.",
    "unpause": "휴식을 끝냈습니다.",
    "wrapup": "후처리를 저장했습니다.",
}
ERROR_KO = {
    "no_call": "지금 연결된 통화가 없습니다 (이미 끝났거나 다른 통화입니다).",
    "not_now": "지금은 이 기능을 쓸 수 없습니다.",
    "no_consent": "녹음·요약에 동의한 통화가 아닙니다.",
    "no_controller": "제어기가 실행 중이 아닙니다. 잠시 후 다시 시도해 주세요.",
    "refused": "요청이 받아들여지지 않았습니다.",
    "not_yours": "내가 받은 통화가 아닙니다.",
    "note_no_consent": "동의하지 않은 통화에는 메모를 남길 수 없습니다 (메모를 비우고 저장).",
    "not_saved": "저장하지 못했습니다. 잠시 후 다시 시도해 주세요.",
}


def _seoul(at: float | None) -> str:
    return "–" if at is None else datetime.fromtimestamp(at, SEOUL).strftime("%m-%d %H:%M")


@dataclass
class Screens:
    """What every counselor screen of the desk shares: the notices sent to the phones, each
    contact's count of contacts, and each member's last contact (for the wrap-up)."""

    desk: Desk
    notices: screen.Notices = field(default_factory=screen.Notices)
    needs: NeedList = field(default_factory=load_needs)
    _attached: CallContext | None = None
    _nth: dict[str, int | None] = field(default_factory=dict)
    _last: dict[str, str] = field(default_factory=dict)
    _checked: set[str] = field(default_factory=set)
    #: "상담 감독 중" while a supervisor monitors the member's call (ivr.wallboard.monitoring).
    monitored: Callable[[str], str | None] | None = None

    def controller(self) -> Controller | None:
        """The running controller, its phone notices heard by `notices` (from the first look)."""
        c = self.desk.main.get(CONTROLLER)
        if c is not None and c.ctx is not self._attached:
            c.ctx.message_listeners.append(self.notices)
            self._attached = c.ctx
        return c

    @staticmethod
    def live_call(controller: Controller, member: str) -> ActiveCall | None:
        """The call the member is on now (their counselor leg answered and still there)."""
        for call in controller.calls.values():
            talk = getattr(call.flow, "conversation", None)
            if talk is None or talk.state not in WITH_STAFF:
                continue
            if call.flow.record.member == member:
                return call
        return None

    async def _contacts(self, call: ActiveCall, member: str) -> int | None:
        if call.call_id not in self._nth:
            n = None
            if self.desk.store is not None and call.caller != "anonymous":
                n = await FollowupRecords(self.desk.store).contacts(call.caller) or None
            self._nth[call.call_id] = n
            audit.info(
                "desk: contact shown to %s: call %s (caller %s, contact %s)",
                member,
                call.call_id,
                call.caller,
                n if n is not None else "-",
            )
        return self._nth[call.call_id]

    async def last_contact(self, member: str, fresh: bool = False) -> str | None:
        """The member's latest contact (live or ended): as seen here, read from the store once
        (and again when `fresh`: a page load, as contacts may have come and gone unseen)."""
        store = self.desk.store
        if store is None or (member in self._checked and not fresh):
            return self._last.get(member)
        rows = await store.fetch(
            "SELECT call_id, MAX(at) FROM (SELECT call_id, started_at AS at FROM ring_attempts"
            " WHERE member=? AND outcome='answered' UNION ALL SELECT call_id, started_at FROM"
            " calls WHERE member=?) GROUP BY call_id ORDER BY MAX(at) DESC LIMIT 1",
            (member, member),
        )
        self._checked.add(member)
        if rows:
            self._last[member] = str(rows[0][0])
        return self._last.get(member)

    async def took(self, member: str, call_id: str) -> bool:
        """Whether the member answered the call (only they wrap it up)."""
        if self._last.get(member) == call_id:
            return True
        if self.desk.store is None:
            return False
        rows = await self.desk.store.fetch(
            "SELECT 1 FROM ring_attempts WHERE call_id=? AND member=? AND outcome='answered'"
            " UNION ALL SELECT 1 FROM calls WHERE call_id=? AND member=?",
            (call_id, member, call_id, member),
        )
        return bool(rows)

    async def view(self, member: str, now: float, fresh: bool = False) -> dict[str, Any]:
        controller = self.controller()
        if controller is None:
            return {
                "connected": False,
                "member": screen.member_view(None, now),
                "contact": None,
                "monitored": None,
                "wrapup_call": await self.last_contact(member, fresh),
            }
        if len(self._nth) > NTH_KEPT:  # only the calls in progress need theirs
            self._nth = {k: v for k, v in self._nth.items() if k in controller.calls}
        mine = next((m for m in controller.members() if m["member"] == member), None)
        call = self.live_call(controller, member)
        contact = None
        if call is not None:
            self._last[member] = call.call_id
            rec = call.flow.record
            talk = getattr(call.flow, "conversation", None)
            contact = screen.Contact(
                call_id=call.call_id,
                line=rec.queue,
                menu_path=tuple(rec.menu_path),
                queued_at=rec.queued_at,
                answered_at=rec.answered_at,
                nth=await self._contacts(call, member),
                repeat=call.repeat,
                flag_level=call.flag_level,
                consent=call.flow.consent,
                phase=talk.state.value if talk is not None else None,
            )
        start = contact.answered_at if contact and contact.answered_at else now
        notices = self.notices.since(member, start) if contact else []
        last = await self.last_contact(member, fresh)
        return {
            "connected": True,
            "member": screen.member_view(mine, now),
            "contact": screen.contact_view(contact, notices, now),
            "monitored": self.monitored(member) if self.monitored and contact else None,
            "wrapup_call": None if contact is not None and last == contact.call_id else last,
        }


SCREENS = web.AppKey("desk_screens", Screens)


def _member(request: web.Request) -> tuple[str, Role]:
    s: Session = request[SESSION]
    assert s.member is not None and s.role is not None  # @requires
    return s.member, s.role


async def _worklist(desk: Desk, member: str, role: Role) -> list[dict[str, Any]]:
    """The member's open follow-up tasks: their team's, not fixed to someone else (the same
    query as GET /api/followups?team=&status=open); audited as a worklist read."""
    if desk.store is None:
        return []
    tasks = await FollowupRecords(desk.store).tasks(team=TEAM_OF[role], status=Status.OPEN)
    mine = [t for t in tasks if t.member in (None, member)][:WORKLIST_MAX]
    audit.info(
        "follow-up worklist read by %s (desk): %d tasks (team %s)", member, len(mine), TEAM_OF[role]
    )
    now = time.time()
    return [
        {
            "id": t.id,
            "type": TYPE_KO.get(t.type.value, t.type.value),
            "due": _seoul(t.due_at),
            "overdue": t.due_at < now,
            "attempts": t.attempts,
            "mine": t.member == member,
        }
        for t in mine
    ]


@requires(SERVED)
async def page(request: web.Request) -> web.StreamResponse:
    desk, screens = desk_of(request), request.app[SCREENS]
    member, role = _member(request)
    q = request.query
    view = await screens.view(member, time.time(), fresh=True)
    saved = None
    if view["wrapup_call"] and desk.store is not None:
        rows = await desk.store.fetch(
            "SELECT needs, outcome, at FROM call_wrapups WHERE call_id=? AND member=?",
            (view["wrapup_call"], member),
        )
        if rows:
            needs, outcome, at = rows[0]
            saved = {"needs": str(needs).split(","), "outcome": outcome, "at": _seoul(at)}
    return desk.render(
        request,
        "desk.html",
        view=view,
        saved=saved,
        worklist=await _worklist(desk, member, role),
        done=DONE_KO.get(q.get("done", "")),
        error=ERROR_KO.get(q.get("error", "")),
        actions=screen.ACTION_KO,
        member_actions=screen.MEMBER_ACTIONS,
        pause_reasons=[(r, screen.pause_ko(r)) for r in desk.settings.pause_reasons],
        needs=[(c.key, c.ko) for c in screens.needs.categories],
        agencies=[(a.id, f"{a.name} · {a.category} · {a.district}") for a in _agencies(desk)],
        outcomes=screen.OUTCOMES,
    )


def _agencies(desk: Desk) -> list[Any]:
    book = desk.main.get(AGENCIES)
    return list(book.current) if book is not None else []


@requires(SERVED)
async def events(request: web.Request) -> web.StreamResponse:
    screens = request.app[SCREENS]
    member, _ = _member(request)
    return await view_stream(
        request, SERVED, lambda now: screens.view(member, now), tick=TICK, keepalive=KEEPALIVE
    )


def _back(done: str | None = None, error: str | None = None) -> web.Response:
    return redirect(f"/desk?done={done}" if done else f"/desk?error={error}")


@requires(SERVED)
async def call_action(request: web.Request) -> web.StreamResponse:
    """A button of the call: the feature code's keys, fed to the member's own live call."""
    screens = request.app[SCREENS]
    member, _ = _member(request)
    form = await request.post()
    action, call_id = str(form.get("action", "")), str(form.get("call_id", ""))
    key = screen.ACTIONS.get(action)
    controller = screens.controller()
    if key is None:
        return _back(error="refused")
    if controller is None:
        return _back(error="no_controller")

    async def press() -> str | None:
        call = screens.live_call(controller, member)
        if call is None or call.call_id != call_id:
            return "no_call"
        talk = getattr(call.flow, "conversation", None)
        if action == "crisis" and (talk is None or talk.state is not TalkState.TALKING):
            return "not_now"
        if action == "withdraw" and call.flow.consent is not flow.ConsentAnswer.YES:
            return "no_consent"
        audit.info("desk: %s pressed %s (*%s) on call %s", member, action, key, call_id)
        await controller.ctx.feed(call_id, flow.StaffDigit(STAFF_ARM))
        await controller.ctx.feed(call_id, flow.StaffDigit(key))
        return None

    error = await controller.submit(press)
    return _back(error=error) if error else _back(done=action)


@requires(SERVED)
async def member_action(request: web.Request) -> web.StreamResponse:
    """Log in/out, pause (with a reason of `pause_reasons`), unpause: as the feature codes."""
    desk, screens = desk_of(request), request.app[SCREENS]
    member, _ = _member(request)
    form = await request.post()
    action = str(form.get("action", ""))
    reason = "desk"
    if action == "pause":
        reason = str(form.get("reason", ""))
        if reason not in desk.settings.pause_reasons:
            return _back(error="refused")
    if action not in screen.MEMBER_ACTIONS:
        return _back(error="refused")
    controller = screens.controller()
    if controller is None:
        return _back(error="no_controller")
    try:
        await controller.submit(lambda: controller.staff.member_action(member, action, reason))
    except StaffError as exc:
        log.info("desk: %s %s refused: %s", member, action, exc)
        return _back(error="refused")
    audit.info("desk: %s %s (%s)", member, action, reason)
    return _back(done=action)


@requires(SERVED)
async def wrapup(request: web.Request) -> web.StreamResponse:
    """The wrap-up form: the note (as `ivr-admin note`), needs and outcome, a referral (as
    `ivr-admin referral add`)."""
    desk, screens = desk_of(request), request.app[SCREENS]
    member, _ = _member(request)
    store = desk.store
    agencies = desk.main[AGENCIES].current if AGENCIES in desk.main else None
    form = await request.post()
    try:
        w = screen.parse_wrapup(
            form,
            [c.key for c in screens.needs.categories],
            [] if agencies is None else [a.id for a in agencies],
        )
    except screen.WrapupError as exc:
        log.info("desk: wrap-up by %s refused: %s", member, exc)
        return _back(error="refused")
    if store is None or not await screens.took(member, w.call_id):
        return _back(error="not_yours")
    controller = screens.controller()
    sealer = controller.ctx.sealer if controller else Sealer(desk.main[SECRETS].data_key)
    if w.note:
        path = desk.settings.state_path(desk.settings.database)
        try:
            await asyncio.to_thread(_set_note, path, sealer, w.call_id, w.note, member)
        except (records.NotFound, records.NotAllowed):
            return _back(error="note_no_consent")
    now = time.time()
    try:
        await store.change(
            "INSERT OR REPLACE INTO call_wrapups (call_id, member, needs, outcome, at)"
            " VALUES (?, ?, ?, ?, ?)",
            (w.call_id, member, ",".join(w.needs), w.outcome, now),
        )
        referral = await _refer(desk, w, member, sealer, now) if w.agency and agencies else None
    except Exception:
        log.exception("desk: wrap-up of call %s by %s not stored", w.call_id, member)
        return _back(error="not_saved")
    audit.info(
        "desk: wrap-up of call %s by %s: outcome %s, needs %s, note %s, referral %s",
        w.call_id,
        member,
        w.outcome,
        ",".join(w.needs) or "-",
        "yes" if w.note else "no",
        referral if referral is not None else "-",
    )
    return _back(done="wrapup")


def _set_note(path: Path, sealer: Sealer, call_id: str, text: str, by: str) -> None:
    conn = jobs.connect(path)
    try:
        records.set_note(conn, sealer, call_id, text, by)
    finally:
        conn.close()


async def _refer(desk: Desk, w: screen.Wrapup, member: str, sealer: Sealer, now: float) -> int:
    """The referral and its monitoring task (`refer`, as POST /api/referrals); a second save
    of the form does not refer the call to the same agency twice."""
    store = desk.store
    assert store is not None and w.agency is not None
    for r in await Referrals(store).list(call_id=w.call_id):
        if r.agency == w.agency:
            return r.id
    done = await refer(
        store,
        FollowupRecords(store),
        desk.main[AGENCIES].current,
        call_id=w.call_id,
        agency=w.agency,
        now=now,
        config=followup_config(desk.settings),
        by=member,
        sealer=sealer,
    )
    audit.info(
        "referral %d to %s on call %s (caller %s) by %s (desk); monitoring task %s",
        done.referral.id,
        w.agency,
        w.call_id,
        done.referral.caller_hash,
        member,
        done.task_id if done.task_id is not None else done.why_not,
    )
    return done.referral.id


def add_routes(app: web.Application) -> None:
    desk = app[DESK]
    app[SCREENS] = screens = Screens(desk)
    screens.controller()  # the phone notices are heard from the start (before any screen)
    if (monitors := app.get(MONITORS)) is not None:  # added before (ivr.web.site)
        screens.monitored = monitors.notice
    desk.add_templates(HERE / "templates")
    desk.pages.append(("/desk", "상담 화면", SERVED))
    app.router.add_get("/desk", page)
    app.router.add_get("/desk/events", events)
    desk.background.add("/desk/events")
    app.router.add_post("/desk/call", call_action)
    app.router.add_post("/desk/member", member_action)
    app.router.add_post("/desk/wrapup", wrapup)
    app.router.add_static("/desk/static", HERE / "static")
