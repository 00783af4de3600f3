"""The key a client address is counted by, for every per-address limit (the desk's sign-in
limiter in ivr.web.auth, the public chat's limits in ivr.web.limits).

An IPv6 client counts by its /64: a home or phone subscriber usually holds a whole /64 and may
use any address in it, so new addresses there are no way round a limit. Pure.
"""

from __future__ import annotations

import ipaddress

#: The prefix an IPv6 client is counted by (a home or phone subscriber gets a /64 or more).
IPV6_PREFIX = 64


def address_key(remote: str | None) -> str:
    """The key a client address is counted by: an IPv4 address as it is, an IPv6 one by its
    /64 network (an IPv4-mapped one as the IPv4 address); "?" when unknown."""
    if not remote:
        return "?"
    try:
        ip = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), IPV6_PREFIX), strict=False))
    return str(ip)
