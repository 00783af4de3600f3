"""Staff and configuration routes: GET /api/counselors, POST /api/counselors/{member}/{action}
(login, logout, pause, unpause), POST /api/roster/reload, POST /api/reload (menu, roster and
prompts from their files, without a restart; see ivr.reload)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ivr.api import ApiError, json_body
from ivr.audit import audit
from ivr.keys import AGENCIES, PBX, RELOAD_LOCK, SETTINGS, running_controller
from ivr.paths import project_file
from ivr.prompts.build import BuildError
from ivr.prompts.build import build as build_prompts
from ivr.reload import REQUIRED_PROMPTS, ReloadError, load_files
from ivr.staff.driver import ACTIONS, StaffError
from ivr.staff.roster import RosterError

log = logging.getLogger(__name__)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/counselors", _counselors)
    app.router.add_post("/api/counselors/{member}/{action}", _counselor_action)
    app.router.add_post("/api/roster/reload", _reload_roster)
    app[RELOAD_LOCK] = asyncio.Lock()
    app.router.add_post("/api/reload", _reload)


async def _counselors(request: web.Request) -> web.Response:
    return web.json_response(running_controller(request).members())


async def _counselor_action(request: web.Request) -> web.Response:
    controller = running_controller(request)
    member, action = request.match_info["member"], request.match_info["action"]
    if action not in ACTIONS:
        raise ApiError(404, "unknown_action", f"unknown action {action!r}", "알 수 없는 작업입니다")
    reason = str((await json_body(request)).get("reason") or "admin")

    async def act() -> None:
        await controller.staff.member_action(member, action, reason)

    try:
        await controller.submit(act)
    except StaffError as exc:
        raise ApiError(404, "unknown_member", str(exc), "없는 상담사입니다") from None
    return web.json_response({"member": member, "action": action, "reason": reason})


async def _reload_roster(request: web.Request) -> web.Response:
    controller = running_controller(request)
    path = project_file(request.app[SETTINGS].roster_file)

    async def reload() -> None:
        await controller.staff.reload_roster(path)

    try:
        await controller.submit(reload)
    except (RosterError, StaffError) as exc:
        raise ApiError(400, "bad_roster", str(exc), "근무표 오류") from None
    return web.json_response({"reloaded": str(path)})


async def _reload(request: web.Request) -> web.Response:
    controller = running_controller(request)
    settings = request.app[SETTINGS]
    async with request.app[RELOAD_LOCK]:
        try:
            files = await asyncio.to_thread(load_files, settings, REQUIRED_PROMPTS, project_file)
            controller.staff.check_menu(files.menu)
        except (ReloadError, StaffError) as exc:
            log.warning("reload refused, the running configuration stays: %s", exc)
            raise ApiError(
                400, "bad_config", str(exc), "설정 파일 오류 — 이전 설정을 그대로 사용합니다"
            ) from None
        built = "-"
        pbx = request.app.get(PBX)
        if pbx is not None:
            studio = project_file(settings.prompt_studio_dir)
            try:
                result = await asyncio.to_thread(
                    build_prompts, files.catalog, pbx.sounds_dir, studio
                )
            except BuildError as exc:
                log.error("reload: prompts could not be built: %s", exc)
                raise ApiError(
                    500, "prompt_build_failed", str(exc), "안내 음성을 만들 수 없습니다"
                ) from None
            built = result.summary()
        catalog = files.catalog
        texts = {pid: p.ko for pid, p in catalog.prompts.items()}

        async def apply() -> None:
            if files.teams is not None:
                controller.staff.apply_teams(files.teams)
            await controller.apply_config(files.menu, files.roster, texts, catalog.version)

        await controller.submit(apply)
        request.app[AGENCIES].current = files.agencies
    audit.info("configuration reloaded by an administrator (menu, roster, prompts: %s)", built)
    return web.json_response(
        {
            "menu": str(settings.menu_file),
            "roster": str(settings.roster_file),
            "catalog_version": catalog.version,
            "prompts": built,
            "agencies": len(files.agencies),
        }
    )
