"""One controller per PBX instance: a lock file in the instance directory.

A second `ivr-run` with the same instance used to kill the live Asterisk of the first (taking it
for one left over from a crash) and then fail on a busy port, leaving the first controller with
no PBX. Now the controller takes this lock before it touches anything of the instance; holding
it means "a live controller owns this instance and its Asterisk".

The lock is an `flock` on `controller.lock`, held for the controller's lifetime; the file also
names the owner's pid for the message a second start prints. The kernel releases an flock when
its holder dies, however it dies, so a lock file left by a dead controller (its pid no longer
alive, or reused by another process) is simply taken over: a dead owner is no owner. Whatever
that controller left running (its Asterisk normally dies with it) is then the new owner's to
stop or, later, adopt.

Active/standby controllers (ha_enabled, ivr/lease) write "PID ha" in the file. There the lease,
not the lock, says who is active: a controller that lost its lease while paused (SIGSTOP) still
holds the flock, and the new lease holder must not be kept out by it. So a controller started
`under_lease` goes on without the flock when its holder is marked "ha" (that holder is fenced
and ends as soon as it runs again); a holder not marked "ha" still refuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "controller.lock"


class InstanceBusy(RuntimeError):
    """Another live controller owns the instance."""


class InstanceLock:
    """`acquire()` or raise `InstanceBusy`; `release()` (idempotent)."""

    def __init__(self, path: Path, under_lease: bool = False) -> None:
        self.path = path
        #: This process holds the active/standby lease (see the module's docstring).
        self.under_lease = under_lease
        self._fd: int | None = None
        self._warned = False

    def _owner_line(self) -> list[str]:
        with contextlib.suppress(OSError, ValueError):
            return self.path.read_text(encoding="ascii").split()
        return []

    def owner(self) -> int | None:
        """The pid written by the last holder (alive or not), if any."""
        with contextlib.suppress(ValueError, IndexError):
            return int(self._owner_line()[0])
        return None

    def probe(self) -> None:
        """Raise `InstanceBusy` if a live controller holds the lock; create nothing."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            self._lock(fd)
        finally:
            os.close(fd)  # closing drops the probe's own lock, if it got one

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            locked = self._lock(fd)
        except InstanceBusy:
            os.close(fd)
            raise
        if not locked:  # held by a fenced controller of the pair: the lease rules
            os.close(fd)
            return
        stale = self.owner()
        if stale is not None and stale != os.getpid():
            log.info("taking over %s from pid %d, which no longer holds it", self.path, stale)
        os.fchmod(fd, 0o600)
        os.ftruncate(fd, 0)
        mark = " ha" if self.under_lease else ""
        os.pwrite(fd, f"{os.getpid()}{mark}\n".encode("ascii"), 0)
        self._fd = fd

    def _lock(self, fd: int) -> bool:
        """True: locked; False: held by a fenced controller of the pair, going on under the
        lease; InstanceBusy: held by a live controller."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = self.owner()
            if self.under_lease and self._owner_line()[1:] == ["ha"]:
                if self._warned:
                    return False
                self._warned = True
                log.warning(
                    "%s is held by pid %s, a controller that lost the lease (paused or "
                    "ending): going on under the lease without it",
                    self.path,
                    pid,
                )
                return False
            raise InstanceBusy(
                f"this PBX instance is already run by a live controller (pid {pid or '?'}; "
                f"lock {self.path}); nothing was changed. Stop it first, or give this start "
                "its own instance and ports (IVR120_INSTANCE, IVR120_SIP_PORT, "
                "IVR120_HTTP_PORT, IVR120_STATUS_PORT). "
                "(이 PBX 인스턴스는 이미 실행 중인 컨트롤러가 사용하고 있습니다)"
            ) from None
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
