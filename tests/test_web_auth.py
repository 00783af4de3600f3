"""The desk's pure security parts: password hashes, roles, the sign-in limiter, sessions, and
the desk settings' exposure rule."""

from __future__ import annotations

import pytest

from ivr.config import ConfigError, load_settings
from ivr.web.auth import (
    LimitParams,
    Role,
    SignInLimiter,
    check_password,
    hash_password,
    role_of,
)
from ivr.web.sessions import IDLE_SECONDS, Sessions, cookie_key


def test_a_password_hash_checks_only_the_password() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$32768$8$1$")
    assert check_password("correct horse battery", stored)
    assert not check_password("correct horse batterY", stored)
    assert hash_password("correct horse battery") != stored  # salted
    assert not check_password("x", "garbage")
    assert not check_password("x", "bcrypt$1$2$3$AA==$AA==")


def test_roles_come_from_the_staff_lists_and_desk_administrators() -> None:
    s = load_settings(
        env={},
        overrides={
            "counselors": "c1,c2",
            "social_workers": "s1",
            "companions": "k1",
            "supervisors": "boss",
            "desk_administrators": "boss,c2",
        },
    )
    assert role_of(s, "c1") is Role.COUNSELOR
    assert role_of(s, "c2") is Role.ADMINISTRATOR
    assert role_of(s, "s1") is Role.SOCIAL_WORKER
    assert role_of(s, "k1") is Role.COMPANION
    assert role_of(s, "boss") is Role.ADMINISTRATOR
    assert role_of(s, s.crisis_endpoint) is None
    assert role_of(s, "agent01") is None  # the 120 agents have no desk account
    with pytest.raises(ConfigError, match="desk_administrators"):
        load_settings(env={}, overrides={"desk_administrators": "stranger"})


def test_the_limiter_blocks_an_account_then_lets_it_try_after_the_window() -> None:
    lim = SignInLimiter(LimitParams(per_account=3, per_address=10, window=60))
    for t in (0.0, 1.0, 2.0):
        assert lim.blocked_for("c1", "10.0.0.1", t) == 0
        lim.failed("c1", "10.0.0.1", t)
    assert lim.blocked_for("c1", "10.0.0.2", 3.0) == pytest.approx(57.0)
    assert lim.blocked_for("c2", "10.0.0.1", 3.0) == 0
    assert lim.blocked_for("c1", "10.0.0.1", 60.5) == 0  # the first failure left the window


def test_the_limiter_blocks_an_address_across_accounts() -> None:
    lim = SignInLimiter(LimitParams(per_account=5, per_address=2, window=60))
    lim.failed("a", "10.0.0.9", 0.0)
    lim.failed("b", "10.0.0.9", 1.0)
    assert lim.blocked_for("c", "10.0.0.9", 2.0) > 0
    assert lim.blocked_for("c", "10.0.0.8", 2.0) == 0


def test_a_success_clears_the_accounts_failures() -> None:
    lim = SignInLimiter(LimitParams(per_account=2, per_address=10, window=60))
    lim.failed("c1", "ip", 0.0)
    lim.succeeded("c1")
    lim.failed("c1", "ip", 1.0)
    assert lim.blocked_for("c1", "ip", 2.0) == 0


def test_sessions_signed_ended_and_idle() -> None:
    sessions = Sessions(cookie_key("k" * 44))
    s = sessions.sign_in(sessions.new(0.0), "c1", Role.COUNSELOR, 0.0)
    value = sessions.cookie_value(s)
    assert sessions.from_cookie(value, 10.0) is s
    sid, _, mac = value.partition(".")
    forged = mac[:-1] + ("B" if mac.endswith("A") else "A")
    assert sessions.from_cookie(f"{sid}.{forged}", 10.0) is None  # bad signature
    assert sessions.from_cookie(sid, 10.0) is None
    other = Sessions(cookie_key("z" * 44))
    assert other.from_cookie(value, 10.0) is None  # another key
    assert sessions.from_cookie(value, 10.0 + IDLE_SECONDS + 1) is None  # idle too long
    s2 = sessions.sign_in(sessions.new(0.0), "c1", Role.COUNSELOR, 0.0)
    sessions.end(s2)
    assert sessions.from_cookie(sessions.cookie_value(s2), 1.0) is None
    assert (
        Sessions.csrf_ok(s2, s2.csrf)
        and not Sessions.csrf_ok(s2, "")
        and not Sessions.csrf_ok(s2, None)
    )


def test_a_desk_on_the_network_needs_tls_or_allow_public_exposure() -> None:
    with pytest.raises(ConfigError, match="desk_bind"):
        load_settings(env={}, overrides={"desk_bind": "192.168.0.10"})
    tls = load_settings(
        env={},
        overrides={
            "desk_bind": "192.168.0.10",
            "desk_tls_cert": "desk.pem",
            "desk_tls_key": "desk.key",
        },
    )
    assert tls.desk_tls and tls.exposure() == []
    allowed = load_settings(
        env={}, overrides={"desk_bind": "192.168.0.10", "allow_public_exposure": "true"}
    )
    assert [name for name, _ in allowed.exposure()] == ["desk_bind"]
    with pytest.raises(ConfigError, match="desk_tls_cert"):
        load_settings(env={}, overrides={"desk_tls_cert": "desk.pem"})
    assert not load_settings(env={}).desk_tls
