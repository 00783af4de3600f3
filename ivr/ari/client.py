"""A small ARI client on aiohttp: REST calls with typed errors, and the event websocket with
reconnect and backoff.

Why not an existing ARI library: `ari-py` is synchronous and unmaintained since 2015, `aioari`
is its asyncio fork built on the same swagger code generator (unmaintained, no typing), and
`asyncari` is built on anyio/trio rather than aiohttp. ARI itself is plain REST + JSON over a
websocket, so the few calls the hotline needs are written here directly, typed and tested.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp

from ivr.ari.events import Connected, Disconnected, Event, parse_event

log = logging.getLogger(__name__)


class AriError(Exception):
    """An ARI request failed. `status` is the HTTP status (0 when no response arrived)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"ARI {method} {path} -> {status or 'no response'}: {message}")
        self.method = method
        self.path = path
        self.status = status
        self.message = message


class AriNotFound(AriError, LookupError):
    """404: the channel, bridge or playback no longer exists (often a hangup that raced us)."""


class AriConflict(AriError):
    """409: the object is in the wrong state for that request (e.g. channel not in Stasis)."""


class AriBadRequest(AriError, ValueError):
    """400/422: the request itself is wrong."""


class AriServerError(AriError):
    """5xx: Asterisk failed to carry out the request."""


class AriConnectionError(AriError, ConnectionError):
    """Asterisk could not be reached at all."""


def _error_for(method: str, path: str, status: int, message: str) -> AriError:
    cls: type[AriError]
    if status == 404:
        cls = AriNotFound
    elif status == 409:
        cls = AriConflict
    elif status in (400, 422):
        cls = AriBadRequest
    elif status >= 500:
        cls = AriServerError
    else:
        cls = AriError
    return cls(method, path, status, message)


def basic_auth_header(user: str, password: str) -> str:
    """HTTP basic auth value. Written out because aiohttp deprecates `BasicAuth` in 3.14 and
    its replacement `encode_basic_auth` does not exist in the older releases we support."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


Params = Mapping[str, str | int | float | bool]


class AriClient:
    """REST and websocket access to one Asterisk's ARI for one Stasis application."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        *,
        request_timeout: float = 10.0,
        backoff_initial: float = 0.25,
        backoff_max: float = 2.0,  # issue 14: serving again within ~2 s of ARI answering
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth = basic_auth_header(user, password)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        #: True while the event websocket is open (`/health` reports it).
        self.ws_connected = False
        #: Websocket connections made (the reconnects on /metrics are the ones after the first).
        self.connects = 0
        #: Called before every REST request and websocket connection; raises to refuse it (an
        #: active/standby controller that may have lost its lease, ivr/lease/fence.py).
        self.guard: Callable[[], None] | None = None

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"Authorization": self._auth})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
    ) -> Any:
        """Send one REST request; return the decoded JSON (or None) or raise an AriError."""
        if self.guard is not None:
            self.guard()
        url = f"{self.base_url}/{path.lstrip('/')}"
        query = {k: _fmt(v) for k, v in (params or {}).items()}
        try:
            async with self._http().request(
                method, url, params=query, json=body, timeout=self._timeout
            ) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    raise _error_for(method, path, resp.status, _message(text) or resp.reason or "")
                if not text:
                    return None
                return json.loads(text)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise AriConnectionError(method, path, 0, str(exc) or type(exc).__name__) from exc

    async def get_bytes(self, path: str) -> bytes:
        """GET a binary resource (a stored recording's file)."""
        if self.guard is not None:
            self.guard()
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            async with self._http().get(url, timeout=self._timeout) as resp:
                body = await resp.read()
                if resp.status >= 300:
                    text = body.decode("utf-8", "replace")
                    raise _error_for("GET", path, resp.status, _message(text) or resp.reason or "")
                return body
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise AriConnectionError("GET", path, 0, str(exc) or type(exc).__name__) from exc

    async def get(self, path: str, **params: str | int | float | bool) -> Any:
        return await self.request("GET", path, params=params)

    async def post(self, path: str, body: Any = None, **params: str | int | float | bool) -> Any:
        return await self.request("POST", path, params=params, body=body)

    async def delete(self, path: str, **params: str | int | float | bool) -> Any:
        return await self.request("DELETE", path, params=params)

    async def events(self) -> AsyncIterator[Event]:
        """Yield events forever, reconnecting with exponential backoff when the socket drops.

        A `Connected` event is yielded after every (re)connection and a `Disconnected` event when
        the socket is lost, so the consumer can resynchronise its state.
        """
        url = f"{self.base_url}/events"
        delay = self.backoff_initial
        while True:
            if self.guard is not None:  # a controller that lost its lease takes no events
                self.guard()
            try:
                ws = await self._http().ws_connect(
                    url, params={"app": self.app, "subscribeAll": "false"}, heartbeat=20
                )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("ARI websocket connect failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(_jitter(delay))
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_initial
            log.info("ARI websocket connected to %s (app %s)", url, self.app)
            self.ws_connected = True
            self.connects += 1
            try:
                yield Connected()
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        log.warning("ignoring a non-JSON ARI message")
                        continue
                    if isinstance(data, dict):
                        yield parse_event(data)
            finally:
                self.ws_connected = False
                await ws.close()
            log.warning("ARI websocket closed; reconnecting in %.2f s", delay)
            yield Disconnected()
            await asyncio.sleep(_jitter(delay))
            delay = min(delay * 2, self.backoff_max)


def _jitter(delay: float) -> float:
    """Between half and all of `delay`: controllers that lost the same Asterisk do not all
    knock again at the same moment."""
    return random.uniform(delay / 2, delay)  # noqa: S311 (not for security)


def _fmt(v: str | int | float | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or data)
    return str(data)
