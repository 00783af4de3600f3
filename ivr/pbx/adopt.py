"""Finding, checking and stopping an Asterisk of our own instance that we did not start.

A controller killed with SIGKILL (a crash, the OOM killer, `kill -9` of a hung update) leaves
its Asterisk running with every call on it: util-linux's `unshare --fork` blocks SIGTERM and
SIGINT while it waits for its child, so the parent-death signal it receives is never acted
upon (measured, see docs/asterisk.md). The next `ivr-run` of the same instance therefore
*adopts* that Asterisk instead of stopping it: the callers keep their channels.

"Ours" is checked strictly before anything is adopted or stopped: the pid in the instance's
pid file is alive, is an `asterisk` binary, was started with exactly the instance's
`asterisk.conf`, and (chrooted) runs inside the installation's root. The controller lock
(`ivr.pbx.lock`) is what tells a dead controller from a live one; this module only answers
"is this our instance's Asterisk".
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def own_asterisk(pidfile: Path, conf: str, root: Path | None) -> int | None:
    """The pid of a live Asterisk running `conf` (inside `root`), as named by `pidfile`."""
    try:
        pid = int(pidfile.read_text(encoding="ascii").strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except (OSError, ValueError):
        return None
    if "State:\tZ" in status or not argv or not argv[0].endswith(b"asterisk"):
        return None
    try:
        i = argv.index(b"-C")
    except ValueError:
        return None
    if i + 1 >= len(argv) or argv[i + 1] != conf.encode():
        return None
    if root is not None:
        try:
            if os.readlink(f"/proc/{pid}/root") != str(root.resolve()):
                return None
        except OSError:
            return None
    return pid


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (it is not our child: we cannot reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "State:\tZ" not in status


def ari_answers(url: str, user: str, password: str, timeout: float) -> bool:
    """True if ARI's `asterisk/info` answers 200 within `timeout` seconds (blocking)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    request = urllib.request.Request(
        f"{url}/asterisk/info", headers={"Authorization": f"Basic {token}"}
    )
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(request, timeout=2) as r:  # noqa: S310 (loopback ARI)
                if r.status == 200:
                    return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def stop(pid: int, timeout: float) -> None:
    """Stop an Asterisk we did not start: SIGTERM to its process group (the `unshare`
    wrapper's session), SIGKILL after `timeout`; returns once it is gone (blocking)."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            if group == os.getpgrp():  # never our own group (it is not in its own session)
                os.kill(pid, sig)
            else:
                os.killpg(group, sig)
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return
        log.warning("Asterisk (pid %d) did not stop within %.0f s; killing it", pid, wait)
