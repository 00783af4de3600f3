"""The one place where everything is wired together.

Each resource (PBX, database, ARI client, controller task) is opened and closed by its own
`cleanup_ctx` generator, in order; a failed start closes only what was already opened. The app
also serves a small status page for administrators on loopback (`/status`, `/health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ivr import speak_ko
from ivr.api import ADMIN_TOKEN, ApiError, auth_middleware
from ivr.ari.client import AriClient
from ivr.audit import audit
from ivr.config import Settings
from ivr.configs import ban_params
from ivr.controller import FEATURE_PROMPTS, Controller, ControllerError
from ivr.flow.call import FLOW_PROMPTS
from ivr.flow.menu import Menu, load_menu
from ivr.paths import PROJECT_ROOT
from ivr.pbx.install import locate
from ivr.pbx.runner import Pbx, PbxStartError, die_with_parent, port_in_use
from ivr.pbx.secrets import Secrets, load_or_create
from ivr.prompts.build import BuildError
from ivr.prompts.build import build as build_prompts
from ivr.prompts.catalog import Catalog, load_catalog
from ivr.reload import ReloadError, load_files
from ivr.roster import Roster, RosterError, load_roster
from ivr.security.bans import BanTracker, acl_config
from ivr.security.files import secure_state_dir
from ivr.security.watcher import BanWatcher
from ivr.store import Store
from speech.recognizer import load_model

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
SECRETS = web.AppKey("secrets", Secrets)
MENU = web.AppKey("menu", Menu)
ROSTER = web.AppKey("roster", Roster)
CATALOG = web.AppKey("catalog", Catalog)
PBX = web.AppKey("pbx", Pbx)
STORE = web.AppKey("store", Store)
ARI = web.AppKey("ari", AriClient)
CONTROLLER = web.AppKey("controller", Controller)
SUMMARY_WORKER = web.AppKey("summary_worker", asyncio.subprocess.Process)
RELOAD_LOCK = web.AppKey("reload_lock", asyncio.Lock)


@dataclass(frozen=True)
class Options:
    #: Start and stop our own Asterisk (False: connect to one already running).
    manage_pbx: bool = True
    #: Run the call controller (False only in tests of the dialplan's own fallback).
    run_controller: bool = True
    #: Start the transcription/summary worker (`ivr-summarize`) as a child process.
    run_summary_worker: bool = True


def project_file(p: Path) -> Path:
    """Relative paths of project files (menu, catalog, studio) are relative to the project."""
    return p if p.is_absolute() else PROJECT_ROOT / p


def build_app(settings: Settings, options: Options = Options()) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    secure_state_dir(settings.state_dir)  # umask 077 and owner-only modes, before any write
    secrets = load_or_create(settings.state_dir / "secrets.json", settings.staff_endpoints)
    app[SECRETS] = secrets
    roster = load_roster(project_file(settings.roster_file))
    unknown = {c.endpoint for c in roster.counselors.values()} - set(settings.counselors)
    if unknown:
        raise RosterError(
            f"{settings.roster_file}: endpoints {sorted(unknown)} are not in the counselors setting"
        )
    app[ROSTER] = roster
    menu = load_menu(project_file(settings.menu_file))
    catalog = load_catalog(project_file(settings.prompt_catalog))
    catalog.require(sorted(menu.prompt_ids() | REQUIRED_PROMPTS))
    app[MENU] = menu
    app[CATALOG] = catalog

    if options.manage_pbx:
        app.cleanup_ctx.append(_pbx_ctx)
    app.cleanup_ctx.append(_store_ctx)
    if options.run_summary_worker:
        app.cleanup_ctx.append(_summary_worker_ctx)
    app.cleanup_ctx.append(_ari_ctx)
    if options.manage_pbx:
        app.cleanup_ctx.append(_ban_watcher_ctx)
    if options.run_controller:
        app.cleanup_ctx.append(_controller_ctx)
    app[ADMIN_TOKEN] = secrets.admin_token
    app.middlewares.append(auth_middleware)
    app.router.add_get("/health", _health)
    app.router.add_get("/status", _status)
    app.router.add_get("/api/counselors", _counselors)
    app.router.add_post("/api/counselors/{member}/{action}", _counselor_action)
    app.router.add_get("/api/calls", _calls)
    app.router.add_get("/api/flags", _flags)
    app.router.add_delete("/api/flags/{caller_hash}", _lift_flag)
    app.router.add_get("/api/callbacks", _callbacks)
    app.router.add_post("/api/roster/reload", _reload_roster)
    app[RELOAD_LOCK] = asyncio.Lock()
    app.router.add_post("/api/reload", _reload)
    return app


#: Prompts the flow and the dialplan name besides those in the menu file.
REQUIRED_PROMPTS = (
    FLOW_PROMPTS
    | speak_ko.all_piece_ids()
    | frozenset(FEATURE_PROMPTS.values())
    | {"feature_denied", "system_error", "service_unavailable"}
)


async def _pbx_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    install = await asyncio.to_thread(locate, settings.pbx_mode, settings.pbx_cache_dir)
    pbx = Pbx(settings, app[SECRETS], install)
    # Nothing of the instance is touched before it is ours and its ports are free: a second
    # start must not harm the first (see ivr/pbx/lock.py).
    pbx.claim()
    if port_in_use("127.0.0.1", settings.status_port, socket.SOCK_STREAM):
        await pbx.stop()
        raise PbxStartError(
            f"status port TCP 127.0.0.1:{settings.status_port} is already in use; set "
            "status_port (IVR120_STATUS_PORT) to a free one. (포트가 이미 사용 중입니다)"
        )
    result = await asyncio.to_thread(
        build_prompts, app[CATALOG], pbx.sounds_dir, project_file(settings.prompt_studio_dir)
    )
    log.info("prompts: %s", result.summary())
    await asyncio.to_thread(pbx.prepare)
    app[PBX] = pbx
    try:
        await pbx.start()
        yield
    finally:
        await pbx.stop()


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await Store.open(settings.state_path(settings.database))
    app[STORE] = store
    try:
        yield
    finally:
        await store.close()


async def _summary_worker_ctx(app: web.Application) -> AsyncIterator[None]:
    """Transcription runs in its own process: a crash or restart of the controller loses no
    job (they are rows in the database) and recognition never blocks call handling."""
    settings = app[SETTINGS]
    env = {
        **os.environ,
        "IVR120_STATE_DIR": str(settings.state_dir.resolve()),
        "IVR120_DATABASE": str(settings.database),
        "IVR120_LOG_LEVEL": settings.log_level,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ivr.summary.worker",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    app[SUMMARY_WORKER] = proc
    log.info("summary worker started (pid %d)", proc.pid)
    try:
        yield
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.info("summary worker stopped")


async def _ari_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    ari = AriClient(
        settings.ari_url, settings.ari_user, app[SECRETS].ari_password, settings.ari_app
    )
    app[ARI] = ari
    try:
        yield
    finally:
        await ari.close()


async def _ban_watcher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Ban SIP sources that keep failing authentication (ivr/security/watcher.py)."""
    settings, pbx, ari = app[SETTINGS], app[PBX], app[ARI]
    params = ban_params(settings)

    async def apply(banned: frozenset[str]) -> None:
        await asyncio.to_thread(pbx.write_bans, acl_config(banned))
        await ari.request("PUT", "asterisk/modules/res_pjsip.so")

    watcher = BanWatcher(pbx.security_log, BanTracker(params), apply)
    task = asyncio.create_task(watcher.run(), name="ban-watcher")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _controller_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    model = None
    if settings.voice_answers:
        model = await asyncio.to_thread(load_model)  # once per process, off the event loop
    catalog = app[CATALOG]
    controller = Controller(
        app[ARI],
        app[STORE],
        settings,
        app[MENU],
        app[SECRETS],
        app[ROSTER],
        model=model,
        prompt_texts={pid: p.ko for pid, p in catalog.prompts.items()},
        catalog_version=catalog.version,
    )
    app[CONTROLLER] = controller
    task = asyncio.create_task(controller.run(), name="controller")
    try:
        await asyncio.wait_for(controller.connected.wait(), 30)
        log.info("controller connected to ARI; ready for calls on 120")
        yield
        log.info("stopping: ending calls in progress with an apology")
        await controller.shutdown(settings.shutdown_grace)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _health(request: web.Request) -> web.Response:
    """200 when calls can be taken; otherwise 503 with the reasons (English, for monitoring)."""
    reasons = []
    pbx = request.app.get(PBX)
    if pbx is not None and not pbx.running:
        reasons.append(f"Asterisk is not running (exit code {pbx.exit_code})")
    controller = request.app.get(CONTROLLER)
    ari = request.app.get(ARI)
    if controller is None or not controller.connected.is_set():
        reasons.append("the controller is not running")
    elif ari is None or not ari.ws_connected:
        reasons.append("ARI websocket is disconnected")
    body: dict[str, object] = {}
    store = request.app.get(STORE)
    if store is not None:  # records that cannot be written (a full disk) make it unhealthy
        health = store.health()
        body["store"] = health
        if not health["ok"]:
            reasons.append(f"records cannot be written: {health['error']}")
    body["ok"] = not reasons
    if reasons:
        body["reasons"] = reasons
    return web.json_response(body, status=503 if reasons else 200)


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTROLLER].status())


def _controller(request: web.Request) -> Controller:
    controller = request.app.get(CONTROLLER)
    if controller is None:
        raise ApiError(
            503, "not_ready", "the controller is not running", "컨트롤러가 실행 중이 아닙니다"
        )
    return controller


async def _counselors(request: web.Request) -> web.Response:
    return web.json_response(_controller(request).members())


async def _counselor_action(request: web.Request) -> web.Response:
    controller = _controller(request)
    member, action = request.match_info["member"], request.match_info["action"]
    if action not in ("login", "logout", "pause", "unpause"):
        raise ApiError(404, "unknown_action", f"unknown action {action!r}", "알 수 없는 작업입니다")
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        raise ApiError(
            400, "bad_json", "the body is not JSON", "요청 형식이 잘못되었습니다"
        ) from None
    reason = str((body or {}).get("reason") or "admin")

    async def act() -> None:
        await controller.member_action(member, action, reason)

    try:
        await controller.submit(act)
    except ControllerError as exc:
        raise ApiError(404, "unknown_member", str(exc), "없는 상담사입니다") from None
    return web.json_response({"member": member, "action": action, "reason": reason})


async def _calls(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "20"))))
    except ValueError:
        raise ApiError(
            400, "bad_limit", "limit must be a number", "limit은 숫자여야 합니다"
        ) from None
    rows = await request.app[STORE].calls(limit)
    return web.json_response([dataclasses.asdict(r) for r in rows])


async def _flags(request: web.Request) -> web.Response:
    flags = await request.app[STORE].flags(time.time())
    return web.json_response([dataclasses.asdict(f) for f in flags])


async def _lift_flag(request: web.Request) -> web.Response:
    caller = request.match_info["caller_hash"]
    lifted = await request.app[STORE].lift_flags(caller, "admin", time.time())
    if not lifted:
        raise ApiError(
            404, "no_active_flag", "no active flag for that caller", "해당 표시가 없습니다"
        )
    audit.info("abuse flag lifted by an administrator: caller %s", caller)
    return web.json_response({"caller_hash": caller, "lifted": lifted})


async def _callbacks(request: web.Request) -> web.Response:
    rows = await request.app[STORE].callbacks()
    return web.json_response(
        [{k: v for k, v in dataclasses.asdict(r).items() if k != "number_sealed"} for r in rows]
    )


async def _reload_roster(request: web.Request) -> web.Response:
    controller = _controller(request)
    path = project_file(request.app[SETTINGS].roster_file)

    async def reload() -> None:
        await controller.reload_roster(path)

    try:
        await controller.submit(reload)
    except (RosterError, ControllerError) as exc:
        raise ApiError(400, "bad_roster", str(exc), "근무표 오류") from None
    return web.json_response({"reloaded": str(path)})


async def _reload(request: web.Request) -> web.Response:
    """Menu, roster and prompts from their files, without a restart (ivr.reload)."""
    controller = _controller(request)
    settings = request.app[SETTINGS]
    async with request.app[RELOAD_LOCK]:
        try:
            files = await asyncio.to_thread(load_files, settings, REQUIRED_PROMPTS, project_file)
            controller.check_menu(files.menu)
        except (ReloadError, ControllerError) as exc:
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
            await controller.apply_config(files.menu, files.roster, texts, catalog.version)

        await controller.submit(apply)
    audit.info("configuration reloaded by an administrator (menu, roster, prompts: %s)", built)
    return web.json_response(
        {
            "menu": str(settings.menu_file),
            "roster": str(settings.roster_file),
            "catalog_version": catalog.version,
            "prompts": built,
        }
    )
