"""The checks of `ivr.config.Settings`: every bad value named, and the settings that open the
service to the network (kept apart from the settings' definitions so each file does one job)."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ivr.config import Settings

#: A wall screen's account name (it is typed at sign-in and written in audit lines).
SCREEN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def problems(s: Settings) -> list[str]:
    """One line per bad value: "name: what is wrong"."""
    from ivr.config import _ENUMS, TRUNK_ENDPOINT, _choices  # config imports this module

    errors: list[str] = []

    def check(ok: bool, name: str, msg: str) -> None:
        if not ok:
            errors.append(f"{name}: {msg}")

    for name in ("sip_port", "http_port", "status_port", "rtp_port_start", "rtp_port_end"):
        v = getattr(s, name)
        check(0 < v < 65536, name, f"{v} is not a port number (1-65535)")
    check(
        s.rtp_port_start < s.rtp_port_end,
        "rtp_port_start",
        "must be below rtp_port_end",
    )
    check(
        s.rtp_timeout == 0 or 10 <= s.rtp_timeout <= 3600,
        "rtp_timeout",
        f"{s.rtp_timeout} must be 0 (never) or 10-3600 seconds",
    )
    check(
        len({s.sip_port, s.http_port, s.status_port}) == 3,
        "http_port",
        "sip_port, http_port and status_port must differ",
    )
    for name in ("sip_bind", "http_bind", "desk_bind"):
        try:
            ipaddress.ip_address(getattr(s, name))
        except ValueError:
            errors.append(f"{name}: {getattr(s, name)!r} is not an IP address")
    check(0 < s.desk_port < 65536, "desk_port", f"{s.desk_port} is not a port number")
    check(
        (str(s.desk_tls_cert) in ("", ".")) == (str(s.desk_tls_key) in ("", ".")),
        "desk_tls_cert",
        "desk_tls_cert and desk_tls_key go together (both PEM files, or neither)",
    )
    check(s.desk_streams_per_member > 0, "desk_streams_per_member", "must be positive")
    for proxy in s.desk_trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            errors.append(f"desk_trusted_proxies: {proxy!r} is not an IP address or network")
    unknown_admins = sorted(set(s.desk_administrators) - set(s.staff_endpoints))
    check(not unknown_admins, "desk_administrators", f"{unknown_admins} are not staff accounts")
    people = sorted(set(s.wallboard_screens) & {*s.staff_endpoints, *s.desk_administrators})
    check(
        not people,
        "wallboard_screens",
        f"{people} are staff accounts (a wall screen has an account of its own)",
    )
    bad = [n for n in s.wallboard_screens if not SCREEN_NAME.fullmatch(n)]
    check(not bad, "wallboard_screens", f"{bad}: letters, digits, '-' and '_' only")
    for name in ("tap_rtp_bind", "tap_rtp_address"):
        value = getattr(s, name)
        try:
            if value or name == "tap_rtp_bind":
                ipaddress.ip_address(value)
        except ValueError:
            errors.append(f"{name}: {value!r} is not an IP address")
    check(
        s.message_from.startswith("sip:") and "@" in s.message_from,
        "message_from",
        f"{s.message_from!r} is not a SIP URI like sip:ivr120@pbx.example",
    )
    for cidr in s.carrier_addresses:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errors.append(f"carrier_addresses: {cidr!r} is not an address or network")
    check(bool(s.carrier_addresses), "carrier_addresses", "needs at least one address")
    for name, kind in _ENUMS.items():
        check(isinstance(getattr(s, name), kind), name, _choices(kind))
    check(bool(s.counselors), "counselors", "needs at least one counselor endpoint")
    for name in (
        "callback_offer_after",
        "wrapup_seconds",
        "abuse_wrapup_seconds",
        "long_call_seconds",
        "long_call_wrapup_seconds",
        "no_answer_cooldown_seconds",
        "crisis_ring_timeout",
    ):
        check(getattr(s, name) >= 0, name, "must not be negative")
    for name in ("both_silence_notify", "caller_silence_notify"):
        check(getattr(s, name) > 0, name, "must be positive")
    check(s.max_consecutive_no_answers >= 1, "max_consecutive_no_answers", "at least 1")
    check(s.chats_per_counselor >= 0, "chats_per_counselor", "must not be negative")
    check(s.chat_offer_seconds > 0, "chat_offer_seconds", "must be positive")
    for name in (
        "chat_starts_per_address",
        "chat_starts_total",
        "chat_starts_window",
        "chat_max_live",
        "chat_streams_per_address",
        "chat_streams_total",
    ):
        check(getattr(s, name) > 0, name, "must be positive")
    check(s.wallboard_wellbeing_minutes > 0, "wallboard_wellbeing_minutes", "must be positive")
    for ep in s.staff_endpoints:
        check(
            ep.isascii() and ep.replace("_", "").replace("-", "").isalnum(),
            "counselors/agents",
            f"{ep!r}: endpoint names are letters, digits, - and _",
        )
    staff = s.staff_endpoints
    dup = {e for e in staff if staff.count(e) > 1}
    check(not dup, "counselors/agents", f"duplicate endpoints {sorted(dup)}")
    check(
        TRUNK_ENDPOINT not in staff and TRUNK_ENDPOINT != "carrier" and "carrier" not in staff,
        "counselors/agents",
        f"{TRUNK_ENDPOINT!r} and 'carrier' are the PBX's own endpoints, not staff names",
    )
    check(
        0 < s.outbound_trunk_port < 65536,
        "outbound_trunk_port",
        f"{s.outbound_trunk_port} is not a port number (1-65535)",
    )
    check(
        s.outbound_trunk_transport == "udp",
        "outbound_trunk_transport",
        "udp (the only transport the PBX has)",
    )
    host = s.outbound_trunk_host
    check(
        bool(host) and host.isascii() and all(c.isalnum() or c in ".-:" for c in host),
        "outbound_trunk_host",
        f"{host!r} is not a host name or IP address",
    )
    check(
        s.service_caller_id.isascii() and s.service_caller_id.isdigit(),
        "service_caller_id",
        f"{s.service_caller_id!r}: digits only (the number citizens see)",
    )
    check(
        s.instance.isascii() and s.instance.replace("-", "").isalnum(),
        "instance",
        "letters, digits and -",
    )
    for name in (
        "menu_input_timeout",
        "hold_reassurance_interval",
        "ring_timeout",
        "max_wait",
        "consent_timeout",
    ):
        check(getattr(s, name) > 0, name, "must be positive")
    check(s.ring_retry_interval > 0, "ring_retry_interval", "must be positive")
    check(s.shutdown_grace >= 0, "shutdown_grace", "must not be negative")
    check(s.ha_renew_seconds > 0, "ha_renew_seconds", "must be positive")
    check(
        s.ha_lease_seconds >= 2 * s.ha_renew_seconds,
        "ha_lease_seconds",
        f"must be at least twice ha_renew_seconds ({s.ha_renew_seconds})",
    )
    check(s.max_recognizers >= 0, "max_recognizers", "must not be negative")
    check(s.menu_max_failures >= 1, "menu_max_failures", "must be at least 1")
    check(s.retention_days >= 1, "retention_days", "must be at least 1 (days)")
    check(s.summary_poll_seconds > 0, "summary_poll_seconds", "must be positive")
    check(
        s.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
        "log_level",
        "DEBUG, INFO, WARNING or ERROR",
    )
    check(
        0 < len(s.pause_reasons) <= 9,
        "pause_reasons",
        "1 to 9 reasons (*531 to *539)",
    )
    for reason in s.pause_reasons:
        check(
            reason.isascii() and reason.replace("_", "").replace("-", "").isalnum(),
            "pause_reasons",
            f"{reason!r}: letters, digits, - and _",
        )
    if not s.allow_public_exposure:
        for name, problem in s.exposure():
            errors.append(
                f"{name}: {problem}; refused unless allow_public_exposure = true "
                "(공개 노출 위험: 허용하려면 allow_public_exposure = true)"
            )
    check(s.auth_ban_failures >= 1, "auth_ban_failures", "must be at least 1")
    for name in ("auth_ban_window", "auth_ban_seconds"):
        check(getattr(s, name) > 0, name, "must be positive")
    for cidr in s.auth_ban_exempt:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errors.append(f"auth_ban_exempt: {cidr!r} is not an address or network")
    check(s.followup_max_attempts >= 1, "followup_max_attempts", "must be at least 1")
    try:
        check(
            bool(s.followup_backoff) and all(float(b) >= 0 for b in s.followup_backoff),
            "followup_backoff",
            "one or more seconds values, none negative",
        )
    except ValueError:
        errors.append(f"followup_backoff: {s.followup_backoff!r} are not numbers")
    for name in ("followup_calling_start", "followup_calling_end"):
        check(_is_hhmm(getattr(s, name)), name, f"{getattr(s, name)!r} is not HH:MM")
    if _is_hhmm(s.followup_calling_start) and _is_hhmm(s.followup_calling_end):
        check(
            s.followup_calling_start < s.followup_calling_end,
            "followup_calling_start",
            "must be before followup_calling_end",
        )
    check(s.followup_lock_seconds > 0, "followup_lock_seconds", "must be positive")
    for name in (
        "companion_grace_seconds",
        "monitoring_after_days",
        "followup_reached_min_talk",
    ):
        check(getattr(s, name) >= 0, name, "must not be negative")
    return errors


def exposure(s: Settings) -> list[tuple[str, str]]:
    """Settings that open the service beyond this machine and the carrier: (name, why)."""
    found: list[tuple[str, str]] = []
    try:
        if not ipaddress.ip_address(s.http_bind).is_loopback:
            found.append(("http_bind", f"{s.http_bind} puts ARI (call control) on the network"))
    except ValueError:
        pass  # reported as not an IP address
    for cidr in s.carrier_addresses:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if net.prefixlen < (16 if net.version == 4 else 32):
            found.append(
                (
                    "carrier_addresses",
                    f"{cidr} ({net.num_addresses} addresses) lets almost anyone call as the "
                    "carrier",
                )
            )
    try:
        desk_open = not ipaddress.ip_address(s.desk_bind).is_loopback
    except ValueError:
        desk_open = False  # reported as not an IP address
    if desk_open and not s.desk_tls:
        found.append(("desk_bind", f"{s.desk_bind} serves the web desk on the network without TLS"))
    return found


def _is_hhmm(text: str) -> bool:
    hh, sep, mm = text.partition(":")
    return (
        bool(sep)
        and len(hh) == 2 == len(mm)
        and hh.isdigit()
        and mm.isdigit()
        and (int(hh) < 24 and int(mm) < 60)
    )
