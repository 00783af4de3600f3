"""The adapter that feeds `BanTracker` from Asterisk's security log and applies its bans.

Why the security log: Asterisk reports every failed SIP authentication as a security event
(res_security_log writes them to the `security` logger channel, `security.log` in the instance's
log directory, see dialplan/templates/logger.conf.j2). ARI does not carry security events, and
AMI would be a second interface (and a second password) only for this. The log is written by
the Asterisk we start, so the watcher runs only when the product manages its own PBX.

Why a pjsip ACL: a `type=acl` section in an included file (`pjsip-bans.conf`, rewritten by the
product) is checked by res_pjsip_acl for every incoming request before endpoints or
authentication, and answered 403. `PUT /ari/asterisk/modules/res_pjsip.so` reloads pjsip's
configuration; a reload keeps registrations and calls in progress (tested).

Bans are kept in memory: a restart of the product starts with none (the file is rendered empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ivr.audit import audit
from ivr.security.bans import Banned, BanTracker, Lifted

log = logging.getLogger(__name__)

#: Security events that mean "this source tried credentials that were wrong".
FAILURE_EVENTS = frozenset({"ChallengeResponseFailed", "InvalidAccountID", "InvalidPassword"})
_EVENT = re.compile(r'SecurityEvent="(\w+)"')
_REMOTE = re.compile(r'RemoteAddress="IPV[46]/\w+/([0-9A-Fa-f.:]+)/\d+"')
#: Seconds between looks at the log for new lines.
POLL_SECONDS = 0.25


def parse_failure(line: str) -> str | None:
    """The source address of a failed-authentication security event line, else None."""
    ev = _EVENT.search(line)
    if ev is None or ev.group(1) not in FAILURE_EVENTS:
        return None
    remote = _REMOTE.search(line)
    return remote.group(1) if remote else None


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


class BanWatcher:
    """Tail `log_path`, count failures, and call `apply(banned addresses)` on every change."""

    def __init__(
        self,
        log_path: Path,
        tracker: BanTracker,
        apply: Callable[[frozenset[str]], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.log_path = log_path
        self.tracker = tracker
        self.apply = apply
        self.clock = clock
        self._offset: int | None = None
        self._partial = b""

    def _new_lines(self) -> list[str]:
        """Complete lines appended since the last look (from the end of the file at start)."""
        try:
            size = self.log_path.stat().st_size
        except FileNotFoundError:
            return []
        if self._offset is None:
            self._offset = size  # what was logged before we started is not ours to judge
        if size < self._offset:  # truncated or rotated
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        with self.log_path.open("rb") as f:
            f.seek(self._offset)
            data = f.read(size - self._offset)
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line.decode("utf-8", "replace") for line in lines]

    async def step(self) -> None:
        """Read new lines, feed the tracker, lift ended bans; apply any change."""
        now = self.clock()
        changed = False
        for line in await asyncio.to_thread(self._new_lines):
            address = parse_failure(line)
            if address is None:
                continue
            ban = self.tracker.failure(address, now)
            if ban is not None:
                self._log(ban)
                changed = True
        for lifted in self.tracker.expire(now):
            self._log(lifted)
            changed = True
        if changed:
            await self.apply(self.tracker.banned)

    def _log(self, ev: Banned | Lifted) -> None:
        if isinstance(ev, Banned):
            audit.warning(
                "SIP source %s banned until %s after %d failed authentications",
                ev.address,
                _when(ev.until),
                ev.failures,
            )
        else:
            audit.info("SIP source %s: ban ended", ev.address)

    async def run(self) -> None:
        """Watch until cancelled; an error applying a ban is logged and retried next time."""
        log.info(
            "watching %s: %d failed authentications in %.0f s ban a source for %.0f s",
            self.log_path,
            self.tracker.params.failures,
            self.tracker.params.window,
            self.tracker.params.ban_seconds,
        )
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("applying SIP bans failed; trying again")
                with contextlib.suppress(Exception):
                    await self.apply(self.tracker.banned)
            await asyncio.sleep(POLL_SECONDS)
