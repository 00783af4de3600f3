"""The desk behind a reverse proxy (`desk_trusted_proxies`, ivr/web/proxy.py): the client's
address comes from the proxy's X-Forwarded-For, so the sign-in limiter counts citizens and
staff, not the proxy; a request that did not come through the proxy is refused. The real desk
site over HTTP, the test client playing the proxy on 127.0.0.1."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ivr.config import ConfigError, load_settings
from tests.test_desk_web import DeskSite, desk_site

PROXY = 'desk_trusted_proxies = ["127.0.0.1"]\n'
CLIENT_A, CLIENT_B = "203.0.113.7", "198.51.100.20"


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[DeskSite]:
    async with desk_site(tmp_path, more=PROXY) as site:
        yield site


def via(client: str, proto: str = "http") -> dict[str, str]:
    """The headers the proxy adds for `client`."""
    return {"X-Forwarded-For": client, "X-Forwarded-Proto": proto}


async def sign_in_page(http: aiohttp.ClientSession, base: str, client: str) -> tuple[str, str]:
    """(the session cookie, the CSRF token) of a fresh visit by `client` through the proxy."""
    async with http.get(f"{base}/signin", headers=via(client)) as resp:
        assert resp.status == 200
        cookie = resp.headers["Set-Cookie"].split(";", 1)[0]
        found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found is not None
    return cookie, found.group(1)


async def wrong_password(http: aiohttp.ClientSession, base: str, client: str, member: str) -> str:
    cookie, csrf = await sign_in_page(http, base, client)
    form = {"csrf": csrf, "member": member, "password": "not the password", "next": ""}
    headers = {**via(client), "Cookie": cookie}
    async with http.post(f"{base}/signin", data=form, headers=headers) as resp:
        return await resp.text()


async def test_the_limiter_counts_the_client_behind_the_proxy_not_the_proxy(
    proxied: DeskSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivr.audit")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        for i in range(20):  # the per-address limit, each on another account
            await wrong_password(http, proxied.base, CLIENT_A, f"member{i:02d}")
        assert "desk sign-in refused: 'member00' from 203.0.113.7" in caplog.text
        await wrong_password(http, proxied.base, CLIENT_A, "counselor01")
        assert "desk sign-in blocked (too many failures): 'counselor01' from 203.0.113.7" in (
            caplog.text
        )
        # Another client through the same proxy is not blocked by the first one's failures.
        await wrong_password(http, proxied.base, CLIENT_B, "counselor01")
        assert "desk sign-in refused: 'counselor01' from 198.51.100.20" in caplog.text
        assert "blocked (too many failures): 'counselor01' from 198.51.100.20" not in caplog.text


async def test_a_request_that_did_not_come_through_the_proxy_is_refused(
    proxied: DeskSite,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{proxied.base}/signin") as resp:  # straight to the desk
            assert resp.status == 400
        two = {"X-Forwarded-For": f"{CLIENT_B}, {CLIENT_A}"}  # a chain the proxy did not make
        async with http.get(f"{proxied.base}/signin", headers=two) as resp:
            assert resp.status == 400
        async with http.get(f"{proxied.base}/signin", headers=via(CLIENT_A)) as resp:
            assert resp.status == 200


async def test_tls_at_the_proxy_makes_the_session_cookie_secure(proxied: DeskSite) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{proxied.base}/signin", headers=via(CLIENT_A, "https")) as resp:
            assert "Secure" in resp.headers["Set-Cookie"]
        async with http.get(f"{proxied.base}/signin", headers=via(CLIENT_A, "http")) as resp:
            assert "Secure" not in resp.headers["Set-Cookie"]


def test_a_proxy_that_is_not_an_address_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="desk_trusted_proxies: 'nginx' is not an IP"):
        load_settings(env={}, overrides={"desk_trusted_proxies": "10.0.0.0/8,nginx"})
    assert load_settings(env={}, overrides={"desk_trusted_proxies": "10.0.0.0/8,::1"})
