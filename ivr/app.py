"""The one place where everything is wired together.

Each resource (PBX, database, ARI client, controller task) is opened and closed by its own
`cleanup_ctx` generator, in order; a failed start closes only what was already opened. The app
also serves a small status page for administrators on loopback (`/status`, `/health`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from ivr import health, supervise
from ivr.api import ADMIN_TOKEN, auth_middleware
from ivr.ari.client import AriClient
from ivr.callbacks import http as callbacks_http
from ivr.config import Settings
from ivr.configs import ban_params
from ivr.context import Observer
from ivr.controller import Controller
from ivr.flags import http as flags_http
from ivr.flow import http as flow_http
from ivr.flow.menu import load_menu
from ivr.followup import http as followup_http
from ivr.followup.agencies import AgencyBook, load_agencies
from ivr.keys import (
    AGENCIES,
    ARI,
    CATALOG,
    CONTROLLER,
    FENCE,
    HANDOVER,
    MENU,
    PBX,
    ROSTER,
    SECRETS,
    SETTINGS,
    STORE,
    SUMMARY_WORKER,
)
from ivr.lease.fence import Fence
from ivr.paths import project_file
from ivr.pbx.install import locate
from ivr.pbx.runner import Pbx, PbxStartError, die_with, port_in_use
from ivr.pbx.secrets import load_or_create
from ivr.prompts.build import build as build_prompts
from ivr.prompts.catalog import load_catalog
from ivr.reload import REQUIRED_PROMPTS
from ivr.security.bans import BanTracker, acl_config
from ivr.security.files import secure_state_dir
from ivr.security.watcher import BanWatcher
from ivr.staff import http as staff_http
from ivr.staff.driver import load_teams
from ivr.staff.roster import RosterError, load_roster
from ivr.store import Store
from ivr.web.site import desk_ctx
from speech.recognizer import load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    #: Start and stop our own Asterisk (False: connect to one already running).
    manage_pbx: bool = True
    #: Run the call controller (False only in tests of the dialplan's own fallback).
    run_controller: bool = True
    #: Start the transcription/summary worker (`ivr-summarize`) as a child process.
    run_summary_worker: bool = True
    #: Sees every command the controller carries out, and its outcome (tests; production: none).
    observer: Observer | None = None
    #: Serve the web desk on desk_bind:desk_port (ivr/web; ivr-run: yes, tests: when they use it).
    serve_desk: bool = False
    #: The lease this controller holds (ha_enabled, ivr/lease): every database write and ARI
    #: command is refused, and the process ends, once it is no longer ours.
    fence: Fence | None = None


def build_app(settings: Settings, options: Options = Options()) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[HANDOVER] = asyncio.Event()
    if options.fence is not None:
        app[FENCE] = options.fence
    secure_state_dir(settings.state_dir)  # umask 077 and owner-only modes, before any write
    secrets = load_or_create(settings.secrets_path, settings.staff_endpoints)
    app[SECRETS] = secrets
    roster = load_roster(project_file(settings.roster_file))
    unknown = {c.endpoint for c in roster.counselors.values()} - set(settings.counselors)
    if unknown:
        raise RosterError(
            f"{settings.roster_file}: endpoints {sorted(unknown)} are not in the counselors setting"
        )
    app[ROSTER] = roster
    load_teams(settings)  # the follow-up teams' working hours: refused here, before anything runs
    menu = load_menu(project_file(settings.menu_file))
    catalog = load_catalog(project_file(settings.prompt_catalog))
    catalog.require(sorted(menu.prompt_ids() | REQUIRED_PROMPTS))
    app[MENU] = menu
    app[CATALOG] = catalog
    app[AGENCIES] = AgencyBook(load_agencies(project_file(settings.agencies_file)))

    if options.manage_pbx:
        app.cleanup_ctx.append(_pbx_ctx)
    app.cleanup_ctx.append(_store_ctx)
    if options.run_summary_worker:
        app.cleanup_ctx.append(_summary_worker_ctx)
    app.cleanup_ctx.append(_ari_ctx)
    if options.manage_pbx:
        app.cleanup_ctx.append(_ban_watcher_ctx)
    if options.run_controller:
        app.cleanup_ctx.append(functools.partial(_controller_ctx, observer=options.observer))
    if options.serve_desk:
        app.cleanup_ctx.append(desk_ctx)  # last: it stops first, while the controller runs
    app[ADMIN_TOKEN] = secrets.admin_token
    app.middlewares.append(auth_middleware)
    routes_of = (health, flow_http, staff_http, flags_http, callbacks_http, followup_http)
    for routes in (*routes_of, supervise):
        routes.add_routes(app)
    return app


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
    watch: asyncio.Task[None] | None = None
    try:
        await pbx.start()
        # Asterisk dying while we run is started again (with back-off, counted on /metrics).
        watch = asyncio.create_task(supervise.supervise_pbx(pbx, app[supervise.METRICS]))
        yield
    finally:
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if app[HANDOVER].is_set():
            pbx.leave_running()
        else:
            await pbx.stop()


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await Store.open(settings.state_path(settings.database))
    store.fence = app.get(FENCE)
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

    async def spawn() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ivr.summary.worker",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches only ivr-run, which stops the
            # worker itself (the supervisor must not see it end and start it again).
            start_new_session=True,
            preexec_fn=die_with(os.getpid()),
        )

    proc = await spawn()
    app[SUMMARY_WORKER] = proc
    log.info("summary worker started (pid %d)", proc.pid)
    # A worker that exits is started again (with back-off, counted on /metrics).
    worker = app[supervise.WORKER] = supervise.Worker(spawn, proc)
    watch = asyncio.create_task(supervise.supervise_worker(worker, app[supervise.METRICS]))
    try:
        yield
    finally:
        watch.cancel()
        try:
            await watch
        except asyncio.CancelledError:
            pass
        except Exception:  # the worker is still stopped below
            log.exception("the summary worker's supervisor had failed")
        proc = worker.proc or proc
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
    fence = app.get(FENCE)
    if fence is not None:
        ari.guard = lambda: fence.check(time.time())
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


async def _controller_ctx(
    app: web.Application, observer: Observer | None = None
) -> AsyncIterator[None]:
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
        observer=observer,
    )
    app[CONTROLLER] = controller
    task = asyncio.create_task(controller.run(), name="controller")
    try:
        await asyncio.wait_for(controller.connected.wait(), 30)
        log.info("controller connected to ARI; ready for calls on 120")
        yield
        if app[HANDOVER].is_set():
            left = await controller.hand_over(settings.shutdown_grace)
            log.warning("handing over: %d call(s) stay in Asterisk for the next run", left)
        else:
            log.info("stopping: ending calls in progress with an apology")
            await controller.shutdown(settings.shutdown_grace)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        controller.close()
