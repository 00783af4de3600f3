"""The chat channel's routes on the desk's site.

Public (no sign-in; the chat identity is a random token in the signed cookie `ivr120_chat`,
the guided start is kept in the signed cookie `ivr120_chat_guide`: ivr.chat.cookies; a chat,
with its memory here, begins at 상담사와 채팅하기, within the limits of ivr.chat.limits):

    GET  /chat              the page: guided start, programmes, consent, the conversation
    GET  /chat/events       text/event-stream: the citizen's chat as JSON on every change
    POST /chat/choose       a guide button (option=info|chat|back|category:<category>)
    POST /chat/consent      answer=yes|no
    POST /chat/say          text=...  (JSON answer for the page's script: ok, or the refusal)
    POST /chat/leave        the citizen ends the chat
    POST /chat/withdraw     the citizen withdraws consent (what was kept is deleted)
    POST /chat/callback     number=...: be called back (a callback request, number sealed)
    POST /chat/new          start afresh after an ended chat

Counselors (and administrators), signed in:

    GET  /desk/chats                     offers and their chats, live
    GET  /desk/chats/events              text/event-stream (being on it = present for offers)
    POST /desk/chats/{chat_id}/accept    take an offered chat
    POST /desk/chats/{chat_id}/decline   pass an offered chat on (넘기기: to the others first)
    POST /desk/chats/{chat_id}/say       text=...
    POST /desk/chats/{chat_id}/end       abuse=1: ended for abuse (the identity is flagged)

Supervisors and administrators:

    GET  /desk/chats/records             the latest chats (no text)
    GET  /desk/chats/{chat_id}/transcript   the kept messages: the read is recorded first

Every POST carries the session's CSRF token (ivr.web.site checks it); every page has the
site's CSP (no inline script: static/chat.js, static/desk_chats.js write text with
textContent only) and Jinja2 escapes everything it prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from ivr.chat import records, views
from ivr.chat.cookies import (
    OPTION_CHARS,
    drop_guide,
    give_identity,
    guide_of,
    identity_of,
    keep_guide,
)
from ivr.chat.journey import (
    MSG_TOO_FAST,
    CallbackAsked,
    ChatJourney,
    ChatStateError,
    Choose,
    ConsentAnswered,
    CounselorEnded,
    Left,
    Step,
    Typed,
    WithdrawConsent,
)
from ivr.chat.limits import callback_window
from ivr.chat.service import ChatService, LiveChat
from ivr.followup.agencies import CATEGORIES, Agencies, load_agencies
from ivr.keys import AGENCIES
from ivr.paths import project_file
from ivr.timezone import SEOUL
from ivr.web.addresses import address_key
from ivr.web.auth import WATCHERS, Role
from ivr.web.limits import Refusal, Slots, Window
from ivr.web.sessions import Session
from ivr.web.site import DESK, SESSION, Desk, desk_of, redirect, requires

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
#: Characters of a message read from a request at most (the journey refuses > max_chars).
READ_LIMIT = 20_000
KEEPALIVE = 15.0
CHAT_STAFF = frozenset({Role.COUNSELOR, Role.ADMINISTRATOR})

MSG_NO_COOKIE = "채팅을 시작할 수 없습니다. 브라우저의 쿠키를 허용한 뒤 다시 시도해 주세요."
MSG_CONFLICT = "지금은 할 수 없는 요청입니다. 화면을 새로 고친 뒤 다시 시도해 주세요."
MSG_FULL = (
    "지금은 채팅 상담 요청이 많아 새 채팅을 시작할 수 없습니다. 잠시 후 다시 시도하시거나 "
    "120으로 전화해 주세요."
)
OUTCOME_KO = {
    "completed": "완료",
    "abandoned": "대기 중 나감",
    "abuse": "폭언 종료",
    "unanswered": "연결 못 함",
    "interrupted": "재시작으로 중단",
}
MSG_GONE = "이 채팅은 이미 다른 상담사에게 갔거나 종료되었습니다."

SERVICE = web.AppKey("chat_service", ChatService)
CALLBACKS = web.AppKey("chat_callbacks", Window)
STARTS = web.AppKey("chat_starts", Window)
STREAMS = web.AppKey("chat_streams", Slots)
MSG_CALLBACKS_LIMIT = (
    "지금은 전화 연락 요청을 더 받을 수 없습니다. 전화 120(외로움안녕120)으로 연락해 주세요."
)
MSG_STARTS_LIMIT = (
    "이 인터넷 연결에서 새 채팅을 너무 여러 번 시작했습니다. 약 {minutes}분 후에 다시 "
    "시도하시거나 전화 120(외로움안녕120)으로 연락해 주세요."
)
MSG_STREAMS_LIMIT = (
    "이 인터넷 연결에서 채팅 화면이 너무 많이 열려 있습니다. 다른 채팅 창을 닫은 뒤 새로 "
    "고쳐 주세요. 급하시면 전화 120(외로움안녕120)으로 연락해 주세요."
)
MSG_STREAMS_FULL = (
    "지금은 채팅 접속이 많아 화면을 실시간으로 보여 드릴 수 없습니다. 잠시 후 새로 고치시거나 "
    "전화 120(외로움안녕120)으로 연락해 주세요."
)
#: Shown by the page's script when its live screen is refused (it cannot read the answer).
MSG_STREAM_REFUSED = (
    "화면을 실시간으로 받을 수 없습니다. 다른 채팅 창을 닫은 뒤 새로 고쳐 주세요. "
    "급하시면 전화 120(외로움안녕120)으로 연락해 주세요."
)


# -- helpers -----------------------------------------------------------------------------------
def service_of(request: web.Request) -> ChatService:
    return request.app[SERVICE]


def _agencies(desk: Desk) -> Agencies:
    book = desk.main.get(AGENCIES)
    if book is not None:
        return book.current
    return load_agencies(project_file(desk.settings.agencies_file))


def _wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _answer(
    request: web.Request, ok: bool, error: str | None = None, status: int = 200
) -> web.Response:
    if _wants_json(request):
        return web.json_response({"ok": ok, "error": error}, status=status)
    return redirect("/chat")


async def _stream(
    request: web.Request,
    topic: str,
    view: Callable[[], dict[str, Any]],
    holds: Callable[[], bool],
) -> web.StreamResponse:
    """Send `view()` as JSON whenever `topic` changes (and at least every second, when it
    differs) while `holds()`."""
    desk = desk_of(request)
    service = service_of(request)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await resp.prepare(request)
    last = None
    sent_at = time.monotonic()

    def gone() -> bool:
        """The browser went away (seen within a second, not only at the next write: an open
        stream holds a place of its address's, ivr.chat.limits)."""
        transport = request.transport
        return transport is None or transport.is_closing()

    try:
        while not desk.stopping.is_set() and holds() and not gone():
            changed = service.changed(topic)
            data = json.dumps(view(), ensure_ascii=False, sort_keys=True)
            if data != last:
                await resp.write(f"data: {data}\n\n".encode())
                last, sent_at = data, time.monotonic()
            elif time.monotonic() - sent_at > KEEPALIVE:
                await resp.write(b": keep-alive\n\n")
                sent_at = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 1.0)
    except ConnectionResetError:
        pass
    return resp


# -- the citizen's page ------------------------------------------------------------------------
async def page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    service = service_of(request)
    await service.ready()
    identity = identity_of(request)
    chat = service.chat_of(identity) if identity else None
    now = time.time()
    # No chat yet: the guided start, kept by the citizen (nothing is held here for it).
    guide = guide_of(request, now) if chat is None else None
    step = chat.journey.step if chat else guide.step if guide else Step.GUIDE
    category = chat.journey.category if chat else guide.category if guide else None
    agencies = _agencies(desk)
    resp = desk.render(
        request,
        "chat.html",
        step=step.value,
        view=views.citizen_view(service, chat),
        categories=[c for c in CATEGORIES if agencies.select(c)],
        category=category,
        agencies=[a.view() for a in agencies.select(category)] if category else [],
        stream_refused=MSG_STREAM_REFUSED,
    )
    if identity is None:
        give_identity(request, resp)
    if guide is not None:
        keep_guide(request, resp, guide, now)
    return resp


def _refuse(request: web.Request, message: str, status: int) -> web.Response:
    """A refusal the citizen reads: JSON for the page's script, else a page."""
    if _wants_json(request):
        return web.json_response({"ok": False, "error": message}, status=status)
    return desk_of(request).render(
        request, "message.html", status=status, title="채팅", message=message
    )


def _start_refused(request: web.Request, service: ChatService, now: float) -> web.Response | None:
    """Why a new chat cannot start now (None: it may; it is counted). The limits are the
    settings' at this moment (a reload applies at once)."""
    settings = desk_of(request).settings
    if service.full(settings.chat_max_live):
        log.warning("chat start refused: %d chats live, the most", service.live())
        return _refuse(request, MSG_FULL, 503)
    starts = request.app[STARTS]
    starts.per_key = settings.chat_starts_per_address
    starts.total = settings.chat_starts_total
    starts.seconds = settings.chat_starts_window
    refusal = starts.check(address_key(request.remote), now)
    if refusal is Refusal.KEY:
        log.warning("chat start refused: the limit per client address")
        minutes = max(1, math.ceil(settings.chat_starts_window / 60))
        return _refuse(request, MSG_STARTS_LIMIT.format(minutes=minutes), 429)
    if refusal is Refusal.TOTAL:
        log.warning("chat start refused: the limit of chats started by everybody")
        return _refuse(request, MSG_FULL, 503)
    return None


async def _citizen_chat(request: web.Request) -> LiveChat | web.Response:
    identity = identity_of(request)
    if identity is None:
        return desk_of(request).render(
            request, "message.html", status=400, title="채팅", message=MSG_NO_COOKIE
        )
    await service_of(request).ready()
    chat = service_of(request).chat_of(identity)
    if chat is None:
        return _answer(request, False, MSG_CONFLICT, 409)
    chat.last_seen = time.time()
    return chat


async def _citizen_event(request: web.Request, event: Any) -> web.StreamResponse:
    chat = await _citizen_chat(request)
    if isinstance(chat, web.Response):
        return chat
    try:
        refused = await service_of(request).feed(chat, event, time.time())
    except ChatStateError as exc:
        log.info("%s", exc)
        return _answer(request, False, MSG_CONFLICT, 409)
    if refused:
        return _answer(
            request, False, refused[0].reason, 429 if refused[0].reason == MSG_TOO_FAST else 400
        )
    return _answer(request, True)


async def choose(request: web.Request) -> web.StreamResponse:
    """A guide button. Before 상담사와 채팅하기 the guided start goes on in the citizen's
    cookie; that button starts the chat (within the limits) from where the guide is."""
    form = await request.post()
    option = Choose(str(form.get("option", ""))[:OPTION_CHARS])
    identity = identity_of(request)
    if identity is None:
        return desk_of(request).render(
            request, "message.html", status=400, title="채팅", message=MSG_NO_COOKIE
        )
    service = service_of(request)
    await service.ready()
    chat = service.chat_of(identity)
    if chat is not None and chat.journey.step is not Step.ENDED:
        return await _citizen_event(request, option)
    now = time.time()
    journey = ChatJourney.resume("guide", service.params, guide_of(request, now))
    try:
        journey.handle(option, now)
    except ChatStateError as exc:
        log.info("%s", exc)
        return _answer(request, False, MSG_CONFLICT, 409)
    if journey.step is not Step.CONSENT:
        resp = _answer(request, True)
        keep_guide(request, resp, journey.guide(), now)
        return resp
    if (started := service.starting(identity)) is not None:
        # A second click while the first is starting the chat: that chat, counted once.
        await started.wait()
        resp = _answer(request, True)
        drop_guide(resp)
        return resp
    refused = _start_refused(request, service, now)
    if refused is not None:
        return refused
    chat = await service.start(identity, now, journey.guide())
    chat.last_seen = now
    resp = _answer(request, True)
    drop_guide(resp)  # the chat holds the guided start now
    return resp


async def consent(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _citizen_event(request, ConsentAnswered(form.get("answer") == "yes"))


async def say(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    return await _citizen_event(request, Typed("citizen", str(form.get("text", ""))[:READ_LIMIT]))


async def withdraw(request: web.Request) -> web.StreamResponse:
    return await _citizen_event(request, WithdrawConsent())


async def callback(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    # Anyone may type anyone's number, and identities are free: limited per address and in
    # total (ivr.chat.limits), so the callbacks list cannot be filled or used to harass.
    if not request.app[CALLBACKS].allow(address_key(request.remote), time.time()):
        log.warning("chat callback refused: the limit per address or in total")
        return _answer(request, False, MSG_CALLBACKS_LIMIT, 429)
    return await _citizen_event(request, CallbackAsked(str(form.get("number", ""))[:40]))


async def leave(request: web.Request) -> web.StreamResponse:
    return await _citizen_event(request, Left())


async def new(request: web.Request) -> web.StreamResponse:
    identity = identity_of(request)
    if identity is not None:
        await service_of(request).ready()
        chat = service_of(request).chat_of(identity)
        if chat is None or chat.journey.step is Step.ENDED:
            service_of(request).forget(identity)
    resp = redirect("/chat")
    drop_guide(resp)  # a guided start begins afresh
    return resp


async def citizen_events(request: web.Request) -> web.StreamResponse:
    service = service_of(request)
    identity = identity_of(request)
    if identity is None:
        return web.Response(status=400, text=MSG_NO_COOKIE)
    # Each open stream holds a task and a socket: limited per client address and in total.
    settings = desk_of(request).settings
    streams = request.app[STREAMS]
    streams.per_key = settings.chat_streams_per_address
    streams.total = settings.chat_streams_total
    address = address_key(request.remote)
    refusal = streams.take(address)
    if refusal is Refusal.KEY:
        log.warning("chat stream refused: the limit per client address")
        return web.Response(status=429, text=MSG_STREAMS_LIMIT)
    if refusal is Refusal.TOTAL:
        log.warning("chat stream refused: %d streams open, the most", streams.held())
        return web.Response(status=503, text=MSG_STREAMS_FULL)
    try:
        await service.ready()
    except BaseException:
        streams.give(address)
        raise
    chat = service.chat_of(identity)
    if chat is not None:
        chat.watchers += 1
    try:
        return await _stream(
            request,
            f"chat:{chat.chat_id}" if chat is not None else "chat:-",
            lambda: views.citizen_view(service, service.chat_of(identity)),
            lambda: service.chat_of(identity) is chat,
        )
    finally:
        streams.give(address)
        if chat is not None:
            chat.watchers -= 1
            chat.last_seen = time.time()


# -- the counselor's desk ----------------------------------------------------------------------
def _member(request: web.Request) -> str:
    s: Session = request[SESSION]
    assert s.member is not None
    return s.member


@requires(CHAT_STAFF)
async def desk_page(request: web.Request) -> web.StreamResponse:
    service = service_of(request)
    return desk_of(request).render(
        request, "desk_chats.html", view=views.desk_view(service, _member(request), time.time())
    )


@requires(CHAT_STAFF)
async def desk_events(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    service = service_of(request)
    member = _member(request)
    session: Session = request[SESSION]
    service.present[member] += 1
    try:
        return await _stream(
            request,
            f"desk:{member}",
            lambda: views.desk_view(service, member, time.time()),
            lambda: desk.sessions.current(session, time.time()),
        )
    finally:
        service.present[member] -= 1
        if service.present[member] <= 0:
            del service.present[member]


def _json(ok: bool, error: str | None = None, status: int = 200) -> web.Response:
    return web.json_response({"ok": ok, "error": error}, status=status)


def _mine(request: web.Request) -> LiveChat | None:
    chat = service_of(request).chats.get(request.match_info["chat_id"])
    if chat is None or chat.journey.member != _member(request):
        return None
    return chat


@requires(CHAT_STAFF)
async def accept(request: web.Request) -> web.StreamResponse:
    ok = await service_of(request).accept(
        _member(request), request.match_info["chat_id"], time.time()
    )
    return _json(True) if ok else _json(False, MSG_GONE, 409)


@requires(CHAT_STAFF)
async def decline(request: web.Request) -> web.StreamResponse:
    ok = service_of(request).decline(_member(request), request.match_info["chat_id"])
    return _json(True) if ok else _json(False, MSG_GONE, 409)


@requires(CHAT_STAFF)
async def desk_say(request: web.Request) -> web.StreamResponse:
    chat = _mine(request)
    if chat is None:
        return _json(False, MSG_GONE, 404)
    form = await request.post()
    text = str(form.get("text", ""))[:READ_LIMIT]
    try:
        refused = await service_of(request).feed(chat, Typed("counselor", text), time.time())
    except ChatStateError:
        return _json(False, MSG_CONFLICT, 409)
    return _json(False, refused[0].reason, 400) if refused else _json(True)


@requires(CHAT_STAFF)
async def end(request: web.Request) -> web.StreamResponse:
    chat = _mine(request)
    if chat is None:
        return _json(False, MSG_GONE, 404)
    form = await request.post()
    try:
        await service_of(request).feed(
            chat, CounselorEnded(abuse=form.get("abuse") == "1"), time.time()
        )
    except ChatStateError:
        return _json(False, MSG_CONFLICT, 409)
    return _json(True)


# -- supervisors: the records and the audited transcripts --------------------------------------
RECORDS_SHOWN = 200


def _when(at: float | None) -> str:
    if at is None:
        return "–"
    return datetime.fromtimestamp(at, SEOUL).strftime("%m-%d %H:%M:%S")


@requires(WATCHERS)
async def records_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    rows = []
    if desk.store is not None:
        rows = await desk.store.fetch(
            "SELECT c.chat_id, c.started_at, c.answered_at, c.ended_at, c.member, c.consent,"
            " c.outcome, c.flag_level, c.withdrawn_at, COUNT(m.id) FROM chats c"
            " LEFT JOIN chat_messages m ON m.chat_id = c.chat_id"
            " GROUP BY c.chat_id ORDER BY c.started_at DESC LIMIT ?",
            (RECORDS_SHOWN,),
        )
    chats = [
        {
            "chat_id": r[0],
            "started": _when(r[1]),
            "answered": _when(r[2]),
            "ended": _when(r[3]),
            "member": r[4] or "–",
            "consent": r[5],
            "outcome": OUTCOME_KO.get(r[6] or "", "진행 중"),
            "flag": r[7],
            "withdrawn": r[8] is not None,
            "kept": r[9],
        }
        for r in rows
    ]
    return desk.render(request, "chat_records.html", chats=chats)


@requires(WATCHERS)
async def transcript_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    chat_id = request.match_info["chat_id"]
    store = desk.store
    if store is None:
        raise web.HTTPServiceUnavailable(text="store not open")
    s: Session = request[SESSION]
    assert s.member is not None
    messages = await records.read_transcript(
        store, service_of(request).sealer, chat_id, s.member, time.time()
    )
    lines = [{"sender": m.sender, "at": _when(m.at), "text": m.text} for m in messages]
    return desk.render(request, "chat_transcript.html", chat_id=chat_id, lines=lines)


async def _service_ctx(app: web.Application) -> AsyncIterator[None]:
    desk = app[DESK]
    task = asyncio.create_task(app[SERVICE].run(desk.stopping, time.time), name="chat tick")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def add_routes(app: web.Application) -> None:
    desk = app[DESK]
    app[SERVICE] = ChatService(desk.main)
    app[CALLBACKS] = callback_window()
    # Sized from the settings at each use (_start_refused, citizen_events: a reload applies).
    app[STARTS] = Window(per_key=0, total=0, seconds=0.0)
    app[STREAMS] = Slots(per_key=0, total=0)
    desk.add_templates(HERE / "templates")
    desk.pages.append(("/desk/chats", "채팅 상담 (상담사)", CHAT_STAFF))
    desk.pages.append(("/desk/chats/records", "채팅 기록 (슈퍼바이저)", WATCHERS))
    app.router.add_get("/chat", page)
    app.router.add_get("/chat/events", citizen_events)
    app.router.add_post("/chat/choose", choose)
    app.router.add_post("/chat/consent", consent)
    app.router.add_post("/chat/say", say)
    app.router.add_post("/chat/leave", leave)
    app.router.add_post("/chat/withdraw", withdraw)
    app.router.add_post("/chat/callback", callback)
    app.router.add_post("/chat/new", new)
    app.router.add_get("/desk/chats", desk_page)
    app.router.add_get("/desk/chats/events", desk_events)
    app.router.add_post("/desk/chats/{chat_id}/accept", accept)
    app.router.add_post("/desk/chats/{chat_id}/decline", decline)
    app.router.add_post("/desk/chats/{chat_id}/say", desk_say)
    app.router.add_post("/desk/chats/{chat_id}/end", end)
    app.router.add_get("/desk/chats/records", records_page)
    app.router.add_get("/desk/chats/{chat_id}/transcript", transcript_page)
    app.router.add_static("/chat/static", HERE / "static")
    app.cleanup_ctx.append(_service_ctx)
