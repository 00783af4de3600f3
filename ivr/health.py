"""GET /health: 200 when calls can be taken; otherwise 503 with the reasons (English, for
monitoring). The only path that needs no token (it says nothing about calls). With ha_enabled
it says `"role": "active"` (a standby's own /health: ivr/lease/http.py)."""

from __future__ import annotations

from aiohttp import web

from ivr.keys import ARI, CONTROLLER, FENCE, PBX, STORE


def add_routes(app: web.Application) -> None:
    app.router.add_get("/health", _health)


async def _health(request: web.Request) -> web.Response:
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
    fence = request.app.get(FENCE)
    if fence is not None:  # active/standby (ivr/lease): this one holds the lease
        body["role"] = "active"
        body["lease"] = {"token": fence.token, "expires_at": fence.valid_until}
    body["ok"] = not reasons
    if reasons:
        body["reasons"] = reasons
    return web.json_response(body, status=503 if reasons else 200)
