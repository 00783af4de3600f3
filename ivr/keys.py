"""Typed application keys: the route modules of each capability read the app's resources
through these, so none of them imports ivr.app (where the wiring is)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ivr.api import ApiError
from ivr.ari.client import AriClient
from ivr.config import Settings
from ivr.controller import Controller
from ivr.flow.menu import Menu
from ivr.followup.agencies import AgencyBook
from ivr.lease.fence import Fence
from ivr.pbx.runner import Pbx
from ivr.pbx.secrets import Secrets
from ivr.prompts.catalog import Catalog
from ivr.staff.roster import Roster
from ivr.store import Store

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
#: The partner-agency catalog in force (a reload replaces its `current`).
AGENCIES = web.AppKey("agencies", AgencyBook)
#: The lease this controller holds, when it is one of an active/standby pair (ivr/lease).
FENCE = web.AppKey("fence", Fence)
#: Set when this stop hands over (SIGUSR2, ivr/stopping.py): the calls stay in Asterisk,
#: which keeps running, for the next run to take back.
HANDOVER = web.AppKey("handover", asyncio.Event)


def running_controller(request: web.Request) -> Controller:
    """The controller, or a 503 for the API's caller when it is not running."""
    controller = request.app.get(CONTROLLER)
    if controller is None:
        raise ApiError(
            503, "not_ready", "the controller is not running", "컨트롤러가 실행 중이 아닙니다"
        )
    return controller
