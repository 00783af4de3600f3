"""The desk behind a reverse proxy (`desk_trusted_proxies`): each request as the client made
it, so the per-address limits (sign-in, the public chat) count citizens, not the proxy.

aiohttp-remotes' strict X-Forwarded-* handling: a request must come from one of the trusted
proxy addresses with exactly one X-Forwarded-For entry (the client, as the proxy saw it); its
address, scheme and host replace the peer's. Anything else - a client reaching the desk
directly, a forged chain - is answered 400 and logged by the library: behind a proxy, an
address the desk cannot vouch for must not be counted (anyone could claim anyone's).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp_remotes import XForwardedStrict

from ivr.config import Settings


def middlewares(settings: Settings) -> list[Any]:
    """The desk's middlewares for its proxy setting (none without one)."""
    if not settings.desk_trusted_proxies:
        return []
    hop = [ipaddress.ip_network(p, strict=False) for p in settings.desk_trusted_proxies]
    return [XForwardedStrict([hop]).middleware]
