"""The desk's pure security parts: password hashes, roles, the sign-in limiter, sessions, and
the desk settings' exposure rule."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ivr.config import ConfigError, load_settings
from ivr.web import site
from ivr.web.auth import (
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    LimitParams,
    Role,
    SignInLimiter,
    check_password,
    hash_password,
    role_of,
)
from ivr.web.sessions import IDLE_SECONDS, MAX_SESSIONS, Sessions, cookie_key


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
    lim.succeeded("c1", "ip", 0.0)
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


def test_a_non_ascii_cookie_or_csrf_token_is_refused_not_an_error() -> None:
    sessions = Sessions(cookie_key("k" * 44))
    s = sessions.sign_in(sessions.new(0.0), "c1", Role.COUNSELOR, 0.0)
    sid = sessions.cookie_value(s).partition(".")[0]
    for value in (f"{sid}.한글", "한글.한글", f"{sid}.\udcff", "é.x"):
        assert sessions.from_cookie(value, 1.0) is None
    assert not Sessions.csrf_ok(s, "한글") and not Sessions.csrf_ok(s, "\udcff")


def test_visitors_not_signed_in_are_not_kept_and_cannot_push_out_a_sign_in() -> None:
    sessions = Sessions(cookie_key("k" * 44))
    visitor = sessions.new(0.0)  # a real person on the sign-in page
    page_cookie, page_csrf = sessions.cookie_value(visitor), visitor.csrf
    for n in range(MAX_SESSIONS + 10):  # a flood of requests without a cookie
        sessions.cookie_value(sessions.new(float(n)))
    back = sessions.from_cookie(page_cookie, 100.0)
    assert back is not None and back.member is None
    assert Sessions.csrf_ok(back, page_csrf)  # the sign-in form still posts
    assert len(sessions) == 0
    signed = sessions.sign_in(back, "c1", Role.COUNSELOR, 100.0)
    assert signed.csrf != page_csrf and sessions.from_cookie(sessions.cookie_value(signed), 101.0)
    # Another key's anonymous cookie, or a forged one, is nobody's.
    assert Sessions(cookie_key("z" * 44)).from_cookie(page_cookie, 1.0) is None
    assert sessions.from_cookie(page_cookie[:-1] + "x", 1.0) is None


def test_at_the_limit_idle_then_least_recently_seen_signed_in_sessions_end() -> None:
    sessions = Sessions(cookie_key("k" * 44))
    old = sessions.sign_in(sessions.new(0.0), "c0", Role.COUNSELOR, 0.0)
    kept = []
    for n in range(1, MAX_SESSIONS):
        kept.append(sessions.sign_in(sessions.new(0.0), f"c{n}", Role.COUNSELOR, IDLE_SECONDS))
    assert len(sessions) == MAX_SESSIONS
    newest = sessions.sign_in(sessions.new(0.0), "cx", Role.COUNSELOR, IDLE_SECONDS + 2)
    assert not sessions.current(old, IDLE_SECONDS + 2)  # the idle one went
    assert sessions.current(newest, IDLE_SECONDS + 2) and len(sessions) == MAX_SESSIONS
    kept[0].last_seen = IDLE_SECONDS - 1  # now the least recently seen
    sessions.sign_in(sessions.new(0.0), "cy", Role.COUNSELOR, IDLE_SECONDS + 3)
    assert not sessions.current(kept[0], IDLE_SECONDS + 3)
    assert all(sessions.current(s, IDLE_SECONDS + 3) for s in kept[1:])


def test_a_try_counts_before_its_check_and_a_success_takes_it_back() -> None:
    lim = SignInLimiter(LimitParams(per_account=2, per_address=3, window=60))
    # Two tries at once: both counted before either password is checked; the third waits.
    assert lim.attempt("c1", "ip", 0.0) == 0
    assert lim.attempt("c1", "ip", 0.0) == 0
    assert lim.attempt("c1", "ip", 0.0) == pytest.approx(60.0)
    lim.succeeded("c1", "ip", 0.0)  # one of them was right
    assert lim.blocked_for("c1", "ip", 1.0) == 0
    assert lim.attempt("c2", "ip", 1.0) == 0  # the address holds one failure, c2's try
    assert lim.attempt("c3", "ip", 1.0) == 0
    assert lim.attempt("c4", "ip", 1.0) > 0


def test_the_dummy_hash_is_a_real_scrypt_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    derived: list[int] = []
    real = hashlib.scrypt

    def spy(password: bytes, **kw: Any) -> bytes:
        derived.append(kw["n"])
        return real(password, **kw)

    kind, n, r, p, _salt, _key = site._dummy_hash().split("$")
    assert (kind, int(n), int(r), int(p)) == ("scrypt", SCRYPT_N, SCRYPT_R, SCRYPT_P)
    monkeypatch.setattr(hashlib, "scrypt", spy)
    assert not site._check("a-guess-for-nobody", None)
    assert derived == [SCRYPT_N]  # the key was derived, at the real cost


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/ /evil.example",
        "/\u3000/evil.example",
        "/\u200b/evil.example",
        "/\x00/evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "",
        None,
    ],
)
def test_sign_in_refuses_a_next_page_off_the_site(target: str | None) -> None:
    assert site._safe_next(target) is None


@pytest.mark.parametrize("target", ["/", "/wallboard", "/wallboard?tab=1#top", "/a:b/c"])
def test_sign_in_follows_a_next_page_on_the_site(target: str) -> None:
    assert site._safe_next(target) == target


def test_the_limiter_counts_an_ipv6_client_by_its_64_network() -> None:
    lim = SignInLimiter(LimitParams(per_account=5, per_address=2, window=60))
    # Two addresses of one /64 (one subscriber rotating addresses) count together ...
    assert lim.attempt("a", "2001:db8:1:2::10", 0.0) == 0
    assert lim.attempt("b", "2001:db8:1:2:ffff:1:2:3", 1.0) == 0
    assert lim.attempt("c", "2001:db8:1:2::99", 2.0) == pytest.approx(58.0)
    # ... another /64 is another client.
    assert lim.attempt("c", "2001:db8:1:3::10", 2.0) == 0
    # A success takes its try back from the /64, whichever address of it signed in.
    assert lim.attempt("d", "2001:db8:1:3::11", 3.0) == 0
    lim.succeeded("d", "2001:db8:1:3::12", 3.0)
    assert lim.blocked_for("e", "2001:db8:1:3::13", 4.0) == 0
    assert lim.attempt("e", "2001:db8:1:3::13", 4.0) == 0
    assert lim.blocked_for("f", "2001:db8:1:3::14", 5.0) > 0
