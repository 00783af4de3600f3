"""The one place where everything is wired together.

Each resource (PBX, database, ARI client, controller task) is opened and closed by its own
`cleanup_ctx` generator, in order; a failed start closes only what was already opened. The app
also serves a small status page for administrators on loopback (`/status`, `/health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ivr.ari.client import AriClient
from ivr.config import Settings
from ivr.controller import Controller
from ivr.flow.menu import Menu, load_menu
from ivr.paths import PROJECT_ROOT
from ivr.pbx.install import locate
from ivr.pbx.runner import Pbx
from ivr.pbx.secrets import Secrets, load_or_create
from ivr.prompts.build import build as build_prompts
from ivr.prompts.catalog import Catalog, load_catalog
from ivr.store import Store

log = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
SECRETS = web.AppKey("secrets", Secrets)
MENU = web.AppKey("menu", Menu)
CATALOG = web.AppKey("catalog", Catalog)
PBX = web.AppKey("pbx", Pbx)
STORE = web.AppKey("store", Store)
ARI = web.AppKey("ari", AriClient)
CONTROLLER = web.AppKey("controller", Controller)


@dataclass(frozen=True)
class Options:
    #: Start and stop our own Asterisk (False: connect to one already running).
    manage_pbx: bool = True
    #: Run the call controller (False only in tests of the dialplan's own fallback).
    run_controller: bool = True


def project_file(p: Path) -> Path:
    """Relative paths of project files (menu, catalog, studio) are relative to the project."""
    return p if p.is_absolute() else PROJECT_ROOT / p


def build_app(settings: Settings, options: Options = Options()) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    secrets = load_or_create(
        settings.state_dir / "secrets.json", (*settings.counselors, *settings.agents)
    )
    app[SECRETS] = secrets
    menu = load_menu(project_file(settings.menu_file))
    catalog = load_catalog(project_file(settings.prompt_catalog))
    catalog.require(sorted(menu.prompt_ids() | REQUIRED_PROMPTS))
    app[MENU] = menu
    app[CATALOG] = catalog

    if options.manage_pbx:
        app.cleanup_ctx.append(_pbx_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_ari_ctx)
    if options.run_controller:
        app.cleanup_ctx.append(_controller_ctx)
    app.router.add_get("/health", _health)
    app.router.add_get("/status", _status)
    return app


#: Prompts the flow and the dialplan name besides those in the menu file.
REQUIRED_PROMPTS = frozenset(
    {"invalid_choice", "no_input", "goodbye", "system_error", "service_unavailable"}
)


async def _pbx_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    install = await asyncio.to_thread(locate, settings.pbx_mode, settings.pbx_cache_dir)
    pbx = Pbx(settings, app[SECRETS], install)
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


async def _controller_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    controller = Controller(app[ARI], app[STORE], settings, app[MENU], app[SECRETS].caller_hash_key)
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
    controller = request.app.get(CONTROLLER)
    ok = controller is not None and controller.connected.is_set()
    return web.json_response({"ok": ok}, status=200 if ok else 503)


async def _status(request: web.Request) -> web.Response:
    return web.json_response(request.app[CONTROLLER].status())
