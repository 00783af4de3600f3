"""Who may sign in to the desk, with which role, and how hard guessing is made.

Accounts are the staff's SIP accounts (Settings.staff_endpoints, less the 120 agents and the
crisis line). The desk password is separate from the phone's generated SIP secret: it is set by
``ivr-admin desk-password MEMBER`` and kept only as a scrypt hash (table ``desk_passwords``).

Roles come from the settings' lists: ``counselors`` → counselor, ``social_workers`` → social
worker, ``companions`` → companion, ``supervisors`` → supervisor; a member also in
``desk_administrators`` is an administrator (who sees every page). The accounts in
``wallboard_screens`` are wall screens: not SIP accounts, they see the wallboard only.

Pure logic here (no I/O, time passed in): the hash, the roles and the sign-in limiter.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

from ivr.config import Settings
from ivr.web.addresses import address_key


class Role(enum.StrEnum):
    COUNSELOR = "counselor"
    SOCIAL_WORKER = "social_worker"
    COMPANION = "companion"
    SUPERVISOR = "supervisor"
    ADMINISTRATOR = "administrator"
    #: A wall screen's account (`wallboard_screens`): the board only.
    WALL_SCREEN = "wall_screen"


ROLE_KO = {
    Role.COUNSELOR: "상담사",
    Role.SOCIAL_WORKER: "사회복지사",
    Role.COMPANION: "동행단",
    Role.SUPERVISOR: "슈퍼바이저",
    Role.ADMINISTRATOR: "관리자",
    Role.WALL_SCREEN: "상황판 화면",
}

#: Roles that watch and supervise: listen, whisper, barge, the chats' records.
WATCHERS = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR})
#: Roles that see the wallboard: the watchers and the wall screens.
BOARD_VIEWERS = WATCHERS | {Role.WALL_SCREEN}
#: Roles whose open live screen keeps their session (a wall screen is nobody's activity; a
#: person's session ends after IDLE_SECONDS without a page of theirs).
KEPT_BY_SCREEN = frozenset({Role.WALL_SCREEN})


def role_of(settings: Settings, member: str) -> Role | None:
    """The member's desk role, or None when the member has no desk account."""
    if member in settings.desk_administrators:
        return Role.ADMINISTRATOR
    for names, role in (
        (settings.supervisors, Role.SUPERVISOR),
        (settings.counselors, Role.COUNSELOR),
        (settings.social_workers, Role.SOCIAL_WORKER),
        (settings.companions, Role.COMPANION),
        (settings.wallboard_screens, Role.WALL_SCREEN),
    ):
        if member in names:
            return role
    return None


# -- passwords ---------------------------------------------------------------------------------

#: scrypt cost (n=2**15, r=8: 32 MiB and ~50-100 ms a check; OWASP's recommended minimum).
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_MAXMEM = 64 * 1024 * 1024
#: Shortest desk password accepted.
MIN_PASSWORD = 10


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$salt$key`` (base64), for the database."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=_MAXMEM, dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(key))


# -- the sign-in limiter -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitParams:
    #: Failed sign-ins within `window` seconds that block an account.
    per_account: int = 5
    #: Failed sign-ins within `window` seconds that block a source address (any account).
    per_address: int = 20
    window: float = 900.0

    def __post_init__(self) -> None:
        if self.per_account < 1 or self.per_address < 1 or self.window <= 0:
            raise ValueError("sign-in limits must be positive")


def _address(address: str) -> str:
    return f"ip:{address_key(address)}"


@dataclass
class SignInLimiter:
    """Counts failed sign-ins per account and per address over a sliding window.

    An address is given as it is (the audit keeps it so) and counted by its
    :func:`~ivr.web.addresses.address_key`: an IPv6 client by its /64, so new addresses in
    it are no way round the limit per address."""

    params: LimitParams = field(default_factory=LimitParams)
    _fails: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.params.window:
            q.popleft()
        if not q:
            del self._fails[key]
            return deque()
        return q

    def blocked_for(self, account: str, address: str, now: float) -> float:
        """Seconds until a sign-in may be tried again (0: may try now)."""
        waits = []
        for key, limit in (
            (f"a:{account}", self.params.per_account),
            (_address(address), self.params.per_address),
        ):
            q = self._recent(key, now)
            if len(q) >= limit:
                waits.append(q[len(q) - limit] + self.params.window - now)
        return max(waits, default=0.0)

    def failed(self, account: str, address: str, now: float) -> None:
        for key in (f"a:{account}", _address(address)):
            self._fails.setdefault(key, deque()).append(now)

    def attempt(self, account: str, address: str, now: float) -> float:
        """Seconds to wait (as `blocked_for`); when 0 the try is counted as a failure at once,
        before the password is checked, and `succeeded` takes it back."""
        wait = self.blocked_for(account, address, now)
        if wait <= 0:
            self.failed(account, address, now)
        return wait

    def succeeded(self, account: str, address: str, at: float) -> None:
        """The account signed in: its failures are forgotten, and the address's try counted
        by `attempt` at `at` is taken back."""
        self._fails.pop(f"a:{account}", None)
        key = _address(address)
        q = self._fails.get(key)
        if q is not None and at in q:
            q.remove(at)
            if not q:
                del self._fails[key]
