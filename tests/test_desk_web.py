"""The web desk's sign-in, roles, sessions and CSRF in a real browser (headless Chromium via
Selenium), against the desk served on a free port over a real SQLite store. The product's
controller is not running here (the end-to-end wallboard test runs it: test_e2e_wallboard.py).

The browser script runs in a thread (`asyncio.to_thread`): the desk serves on this loop."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from yarl import URL

from ivr.config import Settings, load_settings
from ivr.keys import SECRETS, SETTINGS, STORE
from ivr.pbx.secrets import load_or_create
from ivr.store import Store
from ivr.web import sessions as sessions_module
from ivr.web import site
from ivr.web.auth import SCRYPT_N, LimitParams, check_password
from ivr.web.sessions import COOKIE, IDLE_SECONDS
from ivr.web.site import (
    DESK,
    DESK_APP,
    MSG_BAD_LOGIN,
    MSG_CSRF,
    MSG_FORBIDDEN,
    MSG_SIGNED_OUT,
    Desk,
    desk_ctx,
)
from tests.conftest import free_port
from tests.desk_support import set_desk_password, settled, sign_in, submit, wait_for

SUPERVISOR_PW = "night-shift-supervisor"
COUNSELOR_PW = "counselor-desk-pass"


@dataclass
class DeskSite:
    settings: Settings
    config: Path
    main: web.Application

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.settings.desk_port}"


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[DeskSite]:
    async with desk_site(tmp_path) as site:
        yield site


@contextlib.asynccontextmanager
async def desk_site(
    tmp_path: Path, stored: Callable[[Store], Awaitable[None]] | None = None, more: str = ""
) -> AsyncIterator[DeskSite]:
    """The desk without a controller; `stored`: rows written before it starts, by a Store
    closed again (the desk opens the file afresh, as after a restart); `more`: config lines."""
    config = tmp_path / "ivr120.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f"desk_port = {free_port()}\n"
        'counselors = ["counselor01", "counselor02"]\n'
        'supervisors = ["supervisor01"]\n' + more,
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    set_desk_password(config, "supervisor01", SUPERVISOR_PW)
    set_desk_password(config, "counselor01", COUNSELOR_PW)
    main = web.Application()
    main[SETTINGS] = settings
    main[SECRETS] = load_or_create(settings.state_dir / "secrets.json", settings.staff_endpoints)
    path = settings.state_path(settings.database)
    if stored is not None:
        before = await Store.open(path)
        await stored(before)
        await before.close()
    store = main[STORE] = await Store.open(path)
    serving = desk_ctx(main)
    await serving.__anext__()
    try:
        yield DeskSite(settings, config, main)
    finally:
        with pytest.raises(StopAsyncIteration):
            await serving.__anext__()
        await store.close()


def text_of(browser: Any, element_id: str) -> str:
    return str(settled(browser, 10).until(lambda b: b.find_element(By.ID, element_id).text))


async def test_supervisor_signs_in_and_out_and_the_old_cookie_is_dead(
    desk: DeskSite, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")

    def script() -> tuple[str, str, str, dict[str, Any], str]:
        sign_in(browser, desk.base, "supervisor01", SUPERVISOR_PW)
        WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/wallboard"))
        who = text_of(browser, "who")
        cookie = browser.get_cookie(COOKIE)
        submit(browser, "signout")
        WebDriverWait(browser, 10).until(lambda b: "/signin" in b.current_url)
        notice = text_of(browser, "notice")
        # The cookie of the ended session, put back: it opens nothing any more.
        browser.delete_all_cookies()
        browser.add_cookie({"name": COOKIE, "value": cookie["value"], "path": "/"})
        browser.get(f"{desk.base}/wallboard")
        after = browser.current_url
        return who, notice, after, cookie, browser.title

    who, notice, after, cookie, title = await asyncio.to_thread(script)
    assert who == "supervisor01 (슈퍼바이저)"
    assert notice == MSG_SIGNED_OUT
    assert "/signin?next=" in after and title.startswith("로그인")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie.get("secure") is False  # no TLS here; Secure with desk_tls_cert/key
    audited = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    assert audited == [
        "desk sign-in: supervisor01 (supervisor) from 127.0.0.1",
        "desk sign-out: supervisor01 from 127.0.0.1",
    ]


async def test_a_wrong_password_is_told_in_korean(
    desk: DeskSite, browser: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def script() -> tuple[str, str]:
        sign_in(browser, desk.base, "supervisor01", "not-the-password")
        return text_of(browser, "error"), browser.current_url

    error, url = await asyncio.to_thread(script)
    assert error == MSG_BAD_LOGIN
    assert url.endswith("/signin")
    audited = [r.getMessage() for r in caplog.records if r.name == "ivr.audit"]
    assert audited == ["desk sign-in refused: 'supervisor01' from 127.0.0.1"]


async def test_sign_in_is_rate_limited_per_account(desk: DeskSite, browser: Any) -> None:
    limit = LimitParams().per_account

    def script() -> list[str]:
        seen = []
        for _ in range(limit):
            sign_in(browser, desk.base, "supervisor01", "guess-guess-guess")
            seen.append(text_of(browser, "error"))
        # Blocked now, even with the right password.
        sign_in(browser, desk.base, "supervisor01", SUPERVISOR_PW)
        seen.append(text_of(browser, "error"))
        return seen

    seen = await asyncio.to_thread(script)
    assert seen[:limit] == [MSG_BAD_LOGIN] * limit
    assert seen[-1].startswith("로그인 시도가 너무 많습니다.") and "분 후에" in seen[-1]
    # Another account from the same address is not blocked by this one's failures.
    await asyncio.to_thread(sign_in, browser, desk.base, "counselor01", COUNSELOR_PW)
    assert await asyncio.to_thread(text_of, browser, "who") == "counselor01 (상담사)"


async def test_sign_in_is_rate_limited_per_address(desk: DeskSite, browser: Any) -> None:
    limiter = desk.main[DESK_APP][DESK].limiter
    limiter.params = LimitParams(per_account=100, per_address=3)

    def script() -> str:
        for n in range(3):
            sign_in(browser, desk.base, f"nobody{n}", "guess-guess-guess")
            text_of(browser, "error")
        sign_in(browser, desk.base, "counselor01", COUNSELOR_PW)
        return text_of(browser, "error")

    assert (await asyncio.to_thread(script)).startswith("로그인 시도가 너무 많습니다.")


async def test_a_counselor_cannot_open_the_wallboard(desk: DeskSite, browser: Any) -> None:
    def script() -> tuple[str, str]:
        sign_in(browser, desk.base, "counselor01", COUNSELOR_PW)
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.ID, "who"))
        browser.get(f"{desk.base}/wallboard")
        return text_of(browser, "message"), browser.page_source

    message, page = await asyncio.to_thread(script)
    assert message == MSG_FORBIDDEN
    assert 'id="waiting"' not in page
    async with aiohttp.ClientSession() as http:
        # The stream refuses as well (a signed-out client is sent to the sign-in page).
        async with http.get(f"{desk.base}/wallboard/events", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/signin")


async def test_a_form_without_its_csrf_token_is_refused(desk: DeskSite, browser: Any) -> None:
    def script() -> tuple[str, str]:
        browser.get(f"{desk.base}/signin")
        browser.execute_script("document.querySelector('input[name=csrf]').remove()")
        browser.find_element(By.ID, "member").send_keys("supervisor01")
        browser.find_element(By.ID, "password").send_keys(SUPERVISOR_PW)
        submit(browser, "signin")
        message = text_of(browser, "message")
        browser.get(f"{desk.base}/wallboard")
        return message, browser.current_url

    message, url = await asyncio.to_thread(script)
    assert message == MSG_CSRF
    assert "/signin" in url  # not signed in
    async with aiohttp.ClientSession() as http:
        form = {"member": "supervisor01", "password": SUPERVISOR_PW, "csrf": "made-up"}
        async with http.post(f"{desk.base}/signin", data=form, allow_redirects=False) as resp:
            assert resp.status == 403


def self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "desk.pem", folder / "desk.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_the_desk_over_tls_sets_a_secure_cookie(tmp_path: Path) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    settings = load_settings(
        env={},
        overrides={
            "state_dir": tmp_path / "state",
            "desk_port": free_port(),
            "desk_tls_cert": cert,
            "desk_tls_key": key,
        },
    )
    main = web.Application()
    main[SETTINGS] = settings
    main[SECRETS] = load_or_create(settings.state_dir / "secrets.json", settings.staff_endpoints)
    store = main[STORE] = await Store.open(settings.state_path(settings.database))
    serving = desk_ctx(main)
    await serving.__anext__()
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        url = f"https://localhost:{settings.desk_port}/signin"
        async with aiohttp.ClientSession() as http, http.get(url, ssl=trust) as resp:
            assert resp.status == 200
            assert "상담 데스크 로그인" in await resp.text()
            morsel = resp.cookies[COOKIE]
            assert (
                morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"
            )  # anonymous
    finally:
        with pytest.raises(StopAsyncIteration):
            await serving.__anext__()
        await store.close()


async def test_the_screenshot_command_saves_every_page(desk: DeskSite, tmp_path: Path) -> None:
    out = tmp_path / "shots"
    env = {
        **os.environ,
        "IVR120_DESK_SUPERVISOR_PASSWORD": SUPERVISOR_PW,
        "IVR120_DESK_COUNSELOR_PASSWORD": COUNSELOR_PW,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivr.web.screenshots",
        str(out),
        "--url",
        desk.base,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()
    names = ["signin", "signin-error", "home-counselor", "desk-counselor", "forbidden", "wallboard"]
    assert stdout.decode().split() == [str(out / f"{n}.png") for n in names]
    for n in names:
        assert (out / f"{n}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_a_desk_port_in_use_leaves_the_product_running_without_the_desk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = load_settings(
            env={}, overrides={"state_dir": tmp_path / "state", "desk_port": port}
        )
        main = web.Application()
        main[SETTINGS] = settings
        main[SECRETS] = load_or_create(settings.state_dir / "secrets.json", ())
        serving = desk_ctx(main)
        await serving.__anext__()  # started: the calls go on without the desk
        assert any(
            r.levelname == "ERROR" and "WITHOUT the web desk" in r.getMessage()
            for r in caplog.records
        )
        with pytest.raises(StopAsyncIteration):
            await serving.__anext__()


def test_desk_password_refuses_a_non_staff_name_and_a_short_password(tmp_path: Path) -> None:
    import subprocess

    config = tmp_path / "ivr120.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n', encoding="utf-8")

    def run(member: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ivr.admin", "--config", str(config), "desk-password", member],
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )

    stranger = run("agent01", "long-enough-password")
    assert stranger.returncode == 2 and "데스크 계정이 없는 사용자" in stranger.stderr
    short = run("counselor01", "short")
    assert short.returncode == 2 and "10자 이상" in short.stderr
    ok = run("counselor01", "long-enough-password")
    assert ok.returncode == 0 and "counselor01" in ok.stdout
    import sqlite3

    db = sqlite3.connect(tmp_path / "state" / "ivr120.sqlite3")
    try:
        rows = db.execute("SELECT member, hash FROM desk_passwords").fetchall()
    finally:
        db.close()
    assert [r[0] for r in rows] == ["counselor01"]
    assert rows[0][1].startswith("scrypt$") and "long-enough-password" not in rows[0][1]


async def test_desk_pages_carry_the_security_headers(desk: DeskSite) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{desk.base}/signin") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["Content-Type"].startswith("text/html")


# -- over HTTP (aiohttp's client: no browser needed) ---------------------------------------------


def http_client() -> aiohttp.ClientSession:
    """A client that keeps the desk's cookie (aiohttp refuses cookies of an IP by default)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as resp:
        assert resp.status == 200
        found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found is not None
    return found.group(1)


async def post_sign_in(
    http: aiohttp.ClientSession, base: str, member: str, password: str, csrf: str, nxt: str = ""
) -> aiohttp.ClientResponse:
    form = {"csrf": csrf, "member": member, "password": password, "next": nxt}
    async with http.post(f"{base}/signin", data=form, allow_redirects=False) as resp:
        await resp.read()
        return resp


def desk_state(site: DeskSite) -> Desk:
    return site.main[DESK_APP][DESK]


async def test_wrong_passwords_sent_at_once_are_limited_all_the_same(desk: DeskSite) -> None:
    limit = LimitParams().per_account
    async with http_client() as http:
        csrf = await csrf_of(http, f"{desk.base}/signin")
        tries = [
            post_sign_in(http, desk.base, "supervisor01", f"guess-{n}-guess", csrf)
            for n in range(3 * limit)
        ]
        statuses = sorted(r.status for r in await asyncio.gather(*tries))
    assert statuses == [401] * limit + [429] * (2 * limit)


async def test_password_checks_run_a_few_at_a_time(
    desk: DeskSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk_state(desk).limiter.params = LimitParams(per_account=100, per_address=100)
    lock = threading.Lock()
    running, most = 0, 0

    def counted(password: str, stored: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return check_password(password, stored)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(site, "check_password", counted)
    async with http_client() as http:
        csrf = await csrf_of(http, f"{desk.base}/signin")
        tries = [
            post_sign_in(http, desk.base, name, "guess-guess-guess", csrf)
            for name in ("supervisor01", "counselor01", "nobody") * 3
        ]
        statuses = [r.status for r in await asyncio.gather(*tries)]
    assert statuses == [401] * 9
    assert 1 <= most <= site.PASSWORD_CHECKS


async def test_an_unknown_name_runs_the_same_key_derivation(
    desk: DeskSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    derived: list[tuple[bytes, int]] = []
    real = hashlib.scrypt

    def spy(password: bytes, **kw: Any) -> bytes:
        derived.append((password, kw["n"]))
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    async with http_client() as http:
        csrf = await csrf_of(http, f"{desk.base}/signin")
        for member in ("nobody", "supervisor01"):
            resp = await post_sign_in(http, desk.base, member, f"{member}-guess", csrf)
            assert resp.status == 401
    # The unknown name's guess went through scrypt with the real cost, like the known one's.
    assert (b"nobody-guess", SCRYPT_N) in derived
    assert (b"supervisor01-guess", SCRYPT_N) in derived


async def test_sign_in_never_redirects_off_the_site(desk: DeskSite) -> None:
    async with http_client() as http:
        csrf = await csrf_of(http, f"{desk.base}/signin")
        resp = await post_sign_in(
            http, desk.base, "supervisor01", SUPERVISOR_PW, csrf, "/\t/evil.example"
        )
    assert resp.status == 303 and resp.headers["Location"] == "/wallboard"


async def open_stream(
    http: aiohttp.ClientSession, base: str, path: str = "/wallboard/events"
) -> aiohttp.ClientResponse:
    resp = await http.get(f"{base}{path}", allow_redirects=False)
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    first = await asyncio.wait_for(resp.content.readline(), 10)
    assert first.startswith(b"data: {")
    return resp


async def read_to_the_end(resp: aiohttp.ClientResponse) -> bytes:
    """The rest of the stream: returns only if the desk ends it (fails after 10 s)."""
    try:
        return await asyncio.wait_for(resp.content.read(), 10)
    except TimeoutError:
        pytest.fail("the wallboard stream went on")
    finally:
        resp.release()


async def test_the_wallboard_stream_ends_when_its_session_is_signed_out(desk: DeskSite) -> None:
    async with http_client() as http:
        csrf = await csrf_of(http, f"{desk.base}/signin")
        resp = await post_sign_in(http, desk.base, "supervisor01", SUPERVISOR_PW, csrf)
        assert resp.status == 303
        stream = await open_stream(http, desk.base)
        # Signed out with the same session (another tab of this screen).
        out_csrf = await csrf_of(http, f"{desk.base}/")
        async with http.post(
            f"{desk.base}/signout", data={"csrf": out_csrf}, allow_redirects=False
        ) as out:
            assert out.status == 303
        await read_to_the_end(stream)


async def test_the_wallboard_stream_ends_when_its_session_expires(desk: DeskSite) -> None:
    async with http_client() as http:
        csrf = await csrf_of(http, f"{desk.base}/signin")
        resp = await post_sign_in(http, desk.base, "supervisor01", SUPERVISOR_PW, csrf)
        assert resp.status == 303
        stream = await open_stream(http, desk.base)
        cookie = http.cookie_jar.filter_cookies(URL(desk.base))[COOKIE].value
        session = desk_state(desk).sessions.from_cookie(cookie, time.time())
        assert session is not None and session.member == "supervisor01"
        session.last_seen -= IDLE_SECONDS + 1  # nothing but the stream for 12 hours
        await read_to_the_end(stream)


async def test_a_non_ascii_cookie_or_csrf_token_is_refused_not_an_error(desk: DeskSite) -> None:
    async with aiohttp.ClientSession() as http:
        headers = {"Cookie": f"{COOKIE}=한글.한글"}
        async with http.get(f"{desk.base}/signin", headers=headers) as resp:
            assert resp.status == 200  # a new visitor's page
        form = {"csrf": "한글", "member": "supervisor01", "password": SUPERVISOR_PW}
        async with http.post(f"{desk.base}/signin", data=form, headers=headers) as resp:
            assert resp.status == 403
            assert MSG_CSRF in await resp.text()


async def test_requests_without_a_cookie_keep_nothing_and_spoil_no_sign_in(
    desk: DeskSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_module, "MAX_SESSIONS", 5)
    sessions = desk_state(desk).sessions
    async with http_client() as person:
        csrf = await csrf_of(person, f"{desk.base}/signin")  # a counselor opens the page
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as flood:
            for _ in range(10):
                for path in ("/static/desk.css", "/signin", "/wallboard"):
                    async with flood.get(f"{desk.base}{path}", allow_redirects=False) as r:
                        assert r.status in (200, 303)
        assert len(sessions) == 0
        resp = await post_sign_in(person, desk.base, "counselor01", COUNSELOR_PW, csrf)
        assert resp.status == 303 and resp.headers["Location"] == "/"
    assert len(sessions) == 1


async def test_a_wallboard_whose_session_ended_goes_to_the_sign_in_page(
    desk: DeskSite, browser: Any
) -> None:
    def open_board() -> str:
        sign_in(browser, desk.base, "supervisor01", SUPERVISOR_PW)
        WebDriverWait(browser, 10).until(
            lambda b: (
                b.current_url.endswith("/wallboard")
                and b.find_element(By.TAG_NAME, "body").get_attribute("data-pushed") == "yes"
            )
        )
        return str(browser.get_cookie(COOKIE)["value"])

    cookie = await asyncio.to_thread(open_board)
    sessions = desk_state(desk).sessions
    session = sessions.from_cookie(cookie, time.time())
    assert session is not None and session.member == "supervisor01"
    sessions.end(session)  # signed out on another screen
    url = await wait_for(
        lambda: "/signin?next=" in browser.current_url and browser.current_url,
        timeout=30,
        message="the wallboard to go to the sign-in page",
    )
    assert url.endswith("/signin?next=%2Fwallboard")
