"""The desk's own site: a second aiohttp application, on `desk_bind:desk_port` (TLS with
`desk_tls_cert`/`desk_tls_key`), started and stopped with the product (`desk_ctx`).

The desk reads the product's resources (settings, secrets, store, controller) from the main
application at request time, so it can be built before they are opened. Rooms (page families)
add their routes and templates with `add_routes(desk)`; handlers declare the roles they serve
with `@requires(...)`.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import secrets
import ssl
import time
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from ivr.audit import audit
from ivr.config import Settings
from ivr.context import safe_store
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.store import Store
from ivr.web import proxy, session_store
from ivr.web.auth import (
    BOARD_VIEWERS,
    ROLE_KO,
    Role,
    SignInLimiter,
    check_password,
    hash_password,
    role_of,
)
from ivr.web.limits import Slots
from ivr.web.sessions import COOKIE, IDLE_SECONDS, Session, Sessions, cookie_key

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Password checks (scrypt: ~100 ms and 32 MiB each, in threads) run at once at most; more wait.
PASSWORD_CHECKS = 2


@functools.cache
def _dummy_hash() -> str:
    """A real hash (of a random password) checked when the account has none, so that a wrong
    name runs the same key derivation as a wrong password (no enumeration by timing)."""
    return hash_password(secrets.token_urlsafe(16))


def _check(password: str, stored: str | None) -> bool:
    """check_password against `stored`, or the dummy hash (in a thread: both run scrypt)."""
    return check_password(password, stored or _dummy_hash())


MSG_BAD_LOGIN = "아이디 또는 비밀번호가 올바르지 않습니다."
MSG_TOO_MANY = "로그인 시도가 너무 많습니다. 약 {minutes}분 후에 다시 시도해 주세요."
MSG_CSRF = "요청이 올바르지 않습니다(보안 토큰 없음). 페이지를 새로 고친 뒤 다시 시도해 주세요."
MSG_FORBIDDEN = "이 화면을 볼 권한이 없습니다."
MSG_SIGNED_OUT = "로그아웃되었습니다."


@dataclass
class Desk:
    """The desk's shared state (one per product)."""

    main: web.Application
    sessions: Sessions
    limiter: SignInLimiter = field(default_factory=SignInLimiter)
    #: Caps the password checks running at once (each is CPU and memory heavy).
    checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(PASSWORD_CHECKS))
    templates: jinja2.Environment = field(init=False)
    #: Set when the desk stops: live streams (server-sent events) end.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    #: The live streams open per signed-in member (ivr.web.streams; the cap is the setting
    #: desk_streams_per_member, read per stream).
    streams: Slots = field(default_factory=lambda: Slots(per_key=0, total=0))
    #: Paths a page requests on its own (live streams, ivr.web.streams): not the member's
    #: activity, so a tab left open (or refused and retrying) signs no one in for good.
    background: set[str] = field(default_factory=set)
    #: Links on the home page: (path, Korean title, roles that see it); rooms add theirs.
    pages: list[tuple[str, str, frozenset[Role]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(HERE / "templates")]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    @property
    def settings(self) -> Settings:
        return self.main[SETTINGS]

    @property
    def store(self) -> Store | None:
        return self.main.get(STORE)

    def add_templates(self, folder: Path) -> None:
        loader = self.templates.loader
        assert isinstance(loader, jinja2.FileSystemLoader)
        loader.searchpath.append(str(folder))

    def render(
        self, request: web.Request, name: str, status: int = 200, **context: Any
    ) -> web.Response:
        s: Session = request[SESSION]
        page = self.templates.get_template(name).render(
            session=s, role_ko=ROLE_KO.get(s.role) if s.role else None, **context
        )
        return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


DESK = web.AppKey("desk", Desk)
#: The request's desk session (every request has one; signed in or not).
SESSION = web.RequestKey("session", Session)


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK]


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def requires(roles: Iterable[Role]) -> Callable[[Handler], Handler]:
    """Only signed-in members with one of `roles`; others are sent to sign in (403 if signed in
    with another role)."""
    allowed = frozenset(roles)

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            s: Session = request[SESSION]
            if s.member is None:
                return redirect(f"/signin?next={quote(request.path_qs, safe='')}")
            if s.role not in allowed:
                return desk_of(request).render(
                    request, "message.html", status=403, title="권한 없음", message=MSG_FORBIDDEN
                )
            return await handler(request)

        return guarded

    return wrap


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    desk = desk_of(request)
    now = time.time()
    cookie = request.cookies.get(COOKIE)
    touch = request.path not in desk.background
    s = desk.sessions.from_cookie(cookie, now, touch) or desk.sessions.new(now)
    request[SESSION] = s
    if s.member is not None and desk.store is not None:
        await safe_store(session_store.seen(desk.store, s))
    if request.method == "POST":
        form = await request.post()
        token = form.get("csrf")
        if not isinstance(token, str) or not desk.sessions.csrf_ok(s, token):
            log.warning("desk: %s %s refused: no valid CSRF token", request.method, request.path)
            resp: web.StreamResponse = desk.render(
                request, "message.html", status=403, title="요청 거부", message=MSG_CSRF
            )
            _finish(desk, request, resp, cookie)
            return resp
    resp = await handler(request)
    _finish(desk, request, resp, cookie)
    return resp


def _finish(desk: Desk, request: web.Request, resp: web.StreamResponse, cookie: str | None) -> None:
    if resp.prepared:  # a stream (its headers are gone already)
        return
    for k, v in SECURITY_HEADERS.items():
        resp.headers.setdefault(k, v)
    s: Session = request[SESSION]
    value = desk.sessions.cookie_value(s)
    if value != cookie:
        resp.set_cookie(
            COOKIE,
            value,
            max_age=int(IDLE_SECONDS),
            path="/",
            httponly=True,
            # Anonymous (the public chat page): Lax, so a link from another site (a search,
            # a partner's page) keeps the visitor's session and its CSRF token; POSTs still
            # carry the token. Signed in: Strict (docs/desk.md).
            samesite="Strict" if s.member is not None else "Lax",
            # Secure with the desk's own TLS, or a proxy's (ivr.web.proxy: the scheme it saw).
            secure=desk.settings.desk_tls or request.secure,
        )


def _safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None (no open redirect). Browsers drop
    tabs and newlines and read a backslash as a slash, so "/\t/evil.example" would leave the
    site: any whitespace, control or format character or backslash is refused outright."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if any(c == "\\" or c.isspace() or unicodedata.category(c).startswith("C") for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _home_of(role: Role) -> str:
    return "/wallboard" if role in BOARD_VIEWERS else "/"


async def signin_page(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    s: Session = request[SESSION]
    if s.member is not None and s.role is not None:
        return redirect(_safe_next(request.query.get("next")) or _home_of(s.role))
    notice = MSG_SIGNED_OUT if request.query.get("out") else None
    return desk.render(
        request,
        "signin.html",
        next=request.query.get("next", ""),
        error=None,
        notice=notice,
        member="",
    )


async def signin(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    form = await request.post()
    member = str(form.get("member", "")).strip()[:64]
    password = str(form.get("password", ""))[:256]
    nxt = str(form.get("next", ""))
    address = request.remote or "?"
    now = time.time()

    def again(message: str, status: int) -> web.Response:
        return desk.render(
            request,
            "signin.html",
            status=status,
            next=nxt,
            error=message,
            notice=None,
            member=member,
        )

    # Counted as a failure before anything is awaited (so that tries sent at once cannot all
    # pass the limit), and taken back on success.
    tick = time.monotonic()  # the limiter's window: immune to the wall clock being set
    wait = desk.limiter.attempt(member, address, tick)
    if wait > 0:
        audit.warning("desk sign-in blocked (too many failures): %r from %s", member, address)
        return again(MSG_TOO_MANY.format(minutes=max(1, round(wait / 60))), 429)
    role = role_of(desk.settings, member)
    stored = None
    if role is not None and desk.store is not None:
        rows = await desk.store.fetch("SELECT hash FROM desk_passwords WHERE member = ?", (member,))
        stored = str(rows[0][0]) if rows else None
    async with desk.checks:
        ok = await asyncio.to_thread(_check, password, stored)
    if not (ok and stored and role):
        audit.warning("desk sign-in refused: %r from %s", member, address)
        return again(MSG_BAD_LOGIN, 401)
    desk.limiter.succeeded(member, address, tick)
    s = desk.sessions.sign_in(request[SESSION], member, role, now)
    request[SESSION] = s
    if desk.store is not None:  # kept across a restart (ivr/web/session_store.py)
        await safe_store(session_store.signed_in(desk.store, s))
    audit.info("desk sign-in: %s (%s) from %s", member, role.value, address)
    return redirect(_safe_next(nxt) or _home_of(role))


async def signout(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    s: Session = request[SESSION]
    if s.member is not None:
        audit.info("desk sign-out: %s from %s", s.member, request.remote or "?")
        if desk.store is not None:
            await safe_store(session_store.signed_out(desk.store, s))
    desk.sessions.end(s)
    request[SESSION] = desk.sessions.new(time.time())
    return redirect("/signin?out=1")


@requires(Role)
async def home(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    s: Session = request[SESSION]
    links = [(path, title) for path, title, roles in desk.pages if s.role in roles]
    return desk.render(request, "home.html", links=links)


def build_desk(main: web.Application) -> web.Application:
    """The desk application for the product `main` (its resources are read per request)."""
    from ivr.chat import http as chat_http
    from ivr.desk import http as desk_http
    from ivr.wallboard import http as wallboard_http

    app = web.Application(middlewares=[*proxy.middlewares(main[SETTINGS]), session_middleware])
    desk = Desk(main=main, sessions=Sessions(cookie_key(main[SECRETS].data_key)))
    app[DESK] = desk
    app.router.add_get("/", home)
    app.router.add_get("/signin", signin_page)
    app.router.add_post("/signin", signin)
    app.router.add_post("/signout", signout)
    app.router.add_static("/static", HERE / "static")
    for room in (wallboard_http, desk_http, chat_http):
        room.add_routes(app)
    return app


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.desk_tls:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(
        settings.state_path(settings.desk_tls_cert), settings.state_path(settings.desk_tls_key)
    )
    return ctx


DESK_APP = web.AppKey("desk_app", web.Application)


async def desk_ctx(main: web.Application) -> AsyncIterator[None]:
    """Serve the desk while the product runs (after the controller is up; stopped first)."""
    settings = main[SETTINGS]
    app = main[DESK_APP] = build_desk(main)
    store = main.get(STORE)
    if store is not None:
        try:
            kept = await session_store.load(store, app[DESK].sessions, settings, time.time())
        except Exception as exc:  # the desk serves anyway; the members sign in again
            log.warning("desk: the sessions from before this start could not be read (%s)", exc)
        else:
            if kept:
                log.info("desk: %d signed-in session(s) kept from before this start", kept)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        tls = ssl_context(settings)
        site = web.TCPSite(runner, settings.desk_bind, settings.desk_port, ssl_context=tls)
        await site.start()
    except (OSError, ssl.SSLError) as exc:  # SSLError is an OSError; named for the reader
        # The phone line matters more than the desk: calls are taken without it.
        log.error(
            "desk: cannot serve on %s:%d (%s); running WITHOUT the web desk — check desk_port "
            "(a free port) and desk_tls_cert/desk_tls_key (데스크를 열 수 없습니다: 웹 데스크 없이 "
            "실행합니다)",
            settings.desk_bind,
            settings.desk_port,
            exc.strerror or exc,
        )
    else:
        if not ipaddress.ip_address(settings.desk_bind).is_loopback and tls is None:
            log.warning(
                "the desk is served WITHOUT TLS on %s (allow_public_exposure)", settings.desk_bind
            )
        scheme = "https" if tls else "http"
        log.info("desk: %s://%s:%d/", scheme, settings.desk_bind, settings.desk_port)
    try:
        yield
    finally:
        app[DESK].stopping.set()
        await runner.cleanup()
