"""The wallboard's listen / whisper / barge routes over HTTP: supervisors and administrators
only, with the session's CSRF token (the site's own, without Asterisk: tests/test_desk_web.py)."""

from __future__ import annotations

import aiohttp

from ivr.wallboard.monitoring import MONITORS
from ivr.web.site import DESK_APP, MSG_CSRF, MSG_FORBIDDEN
from tests.test_desk_web import (
    COUNSELOR_PW,
    SUPERVISOR_PW,
    DeskSite,
    csrf_of,
    desk,  # noqa: F401 (the fixture)
    http_client,
    post_sign_in,
)

FORM = {"call_id": "1700.1", "mode": "listen"}


async def signed_in(http: aiohttp.ClientSession, site: DeskSite, member: str, pw: str) -> str:
    resp = await post_sign_in(
        http, site.base, member, pw, await csrf_of(http, f"{site.base}/signin")
    )
    assert resp.status == 303, resp.status
    return await csrf_of(http, f"{site.base}/signin")


async def test_a_counselor_cannot_start_a_monitoring(desk: DeskSite) -> None:  # noqa: F811
    async with http_client() as http:
        csrf = await signed_in(http, desk, "counselor01", COUNSELOR_PW)
        async with http.post(
            f"{desk.base}/wallboard/monitor", data={"csrf": csrf, **FORM}, allow_redirects=False
        ) as resp:
            assert resp.status == 403
            assert MSG_FORBIDDEN in await resp.text()
    assert not desk.main[DESK_APP][MONITORS].active


async def test_a_monitoring_post_without_its_csrf_token_is_refused(desk: DeskSite) -> None:  # noqa: F811
    async with http_client() as http:
        await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        async with http.post(
            f"{desk.base}/wallboard/monitor", data=FORM, allow_redirects=False
        ) as resp:
            assert resp.status == 403
            assert MSG_CSRF in await resp.text()
    assert not desk.main[DESK_APP][MONITORS].active


async def test_without_a_controller_the_supervisor_is_told_in_korean(desk: DeskSite) -> None:  # noqa: F811
    async with http_client() as http:
        csrf = await signed_in(http, desk, "supervisor01", SUPERVISOR_PW)
        async with http.post(f"{desk.base}/wallboard/monitor", data={"csrf": csrf, **FORM}) as resp:
            assert resp.status == 200 and resp.url.query.get("error") == "no_controller"
            page = await resp.text()
        assert "제어기에 연결되어 있지 않습니다" in page
        assert "감독할 수 있는 통화가 없습니다" in page
        async with http.post(
            f"{desk.base}/wallboard/monitor", data={"csrf": csrf, "call_id": "x", "mode": "spy"}
        ) as resp:
            assert "알 수 없는 감독 방식입니다" in await resp.text()
