"""Start and stop one Asterisk instance with the project's generated configuration.

The instance lives in its own directory (config, database, spool, logs, sounds), inside the
cached root when Asterisk runs chrooted. Asterisk is started through `unshare --fork
--kill-child`, in its own session; in the chroot case `/proc` and `/dev` are mounted in a
private mount namespace that disappears with the process, so an interrupted run never leaves
mounts behind.

Asterisk outlives a controller that is killed (SIGKILL): it keeps the callers' channels, and
the next start of the same instance *adopts* it (`ivr.pbx.adopt`) instead of starting another.
A clean stop of the controller stops its Asterisk, adopted or not.

Before anything of the instance is touched, `claim()` takes the instance's lock (one live
controller per instance, `ivr.pbx.lock`) and checks that the SIP and ARI ports are free (or
held by the instance's own Asterisk, which is then adopted). Only an Asterisk of the instance
that does not answer ARI is stopped as stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pwd
import shutil
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import aiohttp

from ivr.ari.client import basic_auth_header
from ivr.config import Settings
from ivr.pbx import adopt
from ivr.pbx.install import RUN_USER, AsteriskInstall
from ivr.pbx.lock import LOCK_NAME, InstanceLock
from ivr.pbx.render import BANS_FILE, InstanceDirs, render_config
from ivr.pbx.secrets import Secrets

log = logging.getLogger(__name__)

SYSTEM_DATA_DIR = "/usr/share/asterisk"
SHARED_DATA = ("documentation", "rest-api", "static-http")
_PR_SET_PDEATHSIG = 1
#: Asterisk processes a hand-over left running (Pbx.leave_running), kept referenced.
_LEFT_RUNNING: list[asyncio.subprocess.Process] = []


class PbxStartError(RuntimeError):
    """Asterisk did not come up; the message says why and where its log is."""


def die_with(parent: int) -> Callable[[], None]:
    """What a child runs between fork and exec (``preexec_fn``) to get SIGTERM when `parent`
    (the caller's ``os.getpid()`` before the fork) dies. A parent that died between the fork and
    the ``prctl`` sends no signal, so the child checks that it is still the parent's and exits at
    once if not (an orphan would otherwise run on, holding what it locks, with nobody to stop
    it)."""

    def preexec() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def port_in_use(host: str, port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class Pbx:
    """One running Asterisk: `await start()`, `await stop()`."""

    def __init__(self, settings: Settings, secrets: Secrets, install: AsteriskInstall) -> None:
        self.settings = settings
        self.secrets = secrets
        self.install = install
        base = (
            f"/srv/ivr120/{settings.instance}"
            if install.root is not None
            else str((settings.state_dir / "pbx" / settings.instance).resolve())
        )
        self.dirs = InstanceDirs(base)
        self.host_base = install.host_path(base)
        self._proc: asyncio.subprocess.Process | None = None
        self._console: int | None = None
        # ha_enabled: a Pbx is made only once this process holds the lease (ivr/lease/standby)
        self._lock = InstanceLock(self.host_base / LOCK_NAME, under_lease=settings.ha_enabled)
        self._claimed = False
        #: The pid of a running Asterisk of this instance that a previous run left (adopted).
        self.adopted: int | None = None
        #: How often Asterisk was started again after it died (`ivr.supervise`).
        self.restarts = 0

    # -- paths ---------------------------------------------------------------------------
    def host(self, inner: str) -> Path:
        return self.install.host_path(inner)

    @property
    def sounds_dir(self) -> Path:
        """Host path of the instance's sounds directory (prompts go to ko/ivr120, music to moh)."""
        return self.host(self.dirs.data) / "sounds"

    @property
    def log_file(self) -> Path:
        return self.host(self.dirs.log) / "messages.log"

    @property
    def console_file(self) -> Path:
        return self.host(self.dirs.log) / "console.log"

    @property
    def security_log(self) -> Path:
        """Asterisk's security events (failed authentications), see logger.conf.j2."""
        return self.host(self.dirs.log) / "security.log"

    @property
    def exit_code(self) -> int | None:
        """Asterisk's exit status once it has ended (None while running or never started,
        and for an adopted one, which is not our child)."""
        return self._proc.returncode if self._proc is not None else None

    def _own_running(self) -> int | None:
        return adopt.own_asterisk(
            self.host(self.dirs.run) / "asterisk.pid",
            f"{self.dirs.etc}/asterisk.conf",
            self.install.root,
        )

    # -- lifecycle -----------------------------------------------------------------------
    def claim(self) -> None:
        """Take the instance's lock and check the SIP and ARI ports, touching nothing else.

        Raises `InstanceBusy` when a live controller owns the instance, `PbxStartError` when
        a port is taken. Idempotent; `stop()` gives the claim back."""
        if self._claimed:
            return
        self._lock.probe()  # first without creating anything, so a refused start leaves no trace
        if self._own_running() is None:  # the ports of our own left-over Asterisk are ours
            self._check_ports()
        self._lock.acquire()
        try:
            if self._own_running() is None:
                self._check_ports()
        except BaseException:
            self._lock.release()
            raise
        self._claimed = True

    def prepare(self) -> None:
        """Create the instance directories and write the rendered configuration."""
        self.claim()
        if self._adopt():
            return
        for d in self.dirs.all():
            self.host(d).mkdir(parents=True, exist_ok=True)
        # ARI recordings are written here; Asterisk does not create the folder itself.
        (self.host(self.dirs.spool) / "recording").mkdir(exist_ok=True)
        if self.install.root is not None:
            # The root's resolver knows no host name: without this Asterisk spends its start
            # trying to resolve the machine's name (and A.ROOT-SERVERS.NET) to find its address.
            hosts = self.install.root / "etc" / "hosts"
            with contextlib.suppress(OSError):
                hosts.write_text(
                    f"127.0.0.1\tlocalhost {socket.gethostname()}\n::1\tlocalhost\n",
                    encoding="utf-8",
                )
        etc = self.host(self.dirs.etc)
        for old in etc.glob("*.conf"):
            old.unlink()
        files = render_config(self.settings, self.secrets, self.dirs, self.install.moddir)
        for name, text in files.items():
            path = etc / name
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
        # Asterisk needs its XML documentation (Stasis will not start without it) and ARI's
        # API descriptions from its data directory; the instance's own data directory links
        # them from the installation and keeps only sounds and music of its own.
        for name in SHARED_DATA:
            link = self.host(self.dirs.data) / name
            if self.host(f"{SYSTEM_DATA_DIR}/{name}").exists() and not link.is_symlink():
                link.symlink_to(f"{SYSTEM_DATA_DIR}/{name}")
        self._open_path_to_instance()
        self._chown()

    def _open_path_to_instance(self) -> None:
        """Let the unprivileged Asterisk reach its instance directory, and no more.

        The instance directory and those above it may have been created under the owner-only
        umask (by root): they are opened to traversal only (0711: nobody may list them); for a
        system Asterisk that drops to its own user, so are the state directory and its pbx/."""
        if self._run_ids() is None:
            return
        base = Path(self.dirs.base)
        if self.install.root is not None:
            path = [self.host(str(p)) for p in (base, *base.parents) if str(p) != "/"]
        else:
            path = [self.settings.state_dir.resolve(), base.parent, base]
        for d in path:
            with contextlib.suppress(FileNotFoundError):
                d.chmod(d.stat().st_mode & 0o7777 | 0o711)

    def write_bans(self, text: str) -> None:
        """Replace the banned-sources file (then reload res_pjsip to apply it)."""
        path = self.host(self.dirs.etc) / BANS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o600)
        ids = self._run_ids()
        if ids is not None:
            os.chown(tmp, *ids)
        tmp.replace(path)

    def _run_ids(self) -> tuple[int, int] | None:
        """uid/gid of the unprivileged user Asterisk runs as, when we are root."""
        if os.geteuid() != 0:
            return None
        if self.install.root is not None:
            for line in (self.install.root / "etc/passwd").read_text().splitlines():
                parts = line.split(":")
                if parts[0] == RUN_USER:
                    return int(parts[2]), int(parts[3])
            return None
        try:
            pw = pwd.getpwnam(RUN_USER)
        except KeyError:
            return None
        return pw.pw_uid, pw.pw_gid

    def _chown(self) -> None:
        ids = self._run_ids()
        if ids is None:
            return
        uid, gid = ids
        for d in self.dirs.all():
            for root, dirnames, filenames in os.walk(self.host(d)):
                os.chown(root, uid, gid)
                for n in (*dirnames, *filenames):
                    with contextlib.suppress(FileNotFoundError):
                        os.lchown(os.path.join(root, n), uid, gid)

    def _command(self) -> list[str]:
        conf = f"{self.dirs.etc}/asterisk.conf"
        ast = [self.install.binary, "-f", "-n", "-C", conf]
        if self._run_ids() is not None:
            ast += ["-U", RUN_USER, "-G", RUN_USER]
        wrapper = ["unshare", "--fork", "--kill-child=SIGTERM"]
        if self.install.root is None:
            return wrapper + ast
        root = str(self.install.root)
        script = (
            'set -e; mount -t proc proc "$0/proc"; mount --rbind /dev "$0/dev"; '
            'exec chroot "$0" "$@"'
        )
        return [*wrapper, "--mount", "--propagation", "private", "sh", "-c", script, root, *ast]

    def _adopt(self) -> bool:
        """Adopt the instance's Asterisk a killed controller left running, if it answers ARI;
        one that does not is stopped as stale. Call holding the claim."""
        pid = self._own_running()
        if pid is None:
            return False
        s = self.settings
        if adopt.ari_answers(s.ari_url, s.ari_user, self.secrets.ari_password, timeout=10):
            log.warning(
                "adopting the running Asterisk (pid %d) of instance %s: its calls go on; its "
                "configuration stays as it is until it is restarted",
                pid,
                s.instance,
            )
            self.adopted = pid
            return True
        log.warning(
            "stopping a stale Asterisk (pid %d) of instance %s: ARI does not answer",
            pid,
            s.instance,
        )
        adopt.stop(pid, timeout=5)
        return False

    def _check_ports(self) -> None:
        s = self.settings
        busy = []
        if port_in_use(s.sip_bind, s.sip_port, socket.SOCK_DGRAM):
            busy.append(f"SIP UDP {s.sip_bind}:{s.sip_port}")
        if port_in_use(s.http_bind, s.http_port, socket.SOCK_STREAM):
            busy.append(f"HTTP/ARI TCP {s.http_bind}:{s.http_port}")
        if busy:
            raise PbxStartError(
                "port(s) already in use: "
                + ", ".join(busy)
                + " — is another PBX running? Set sip_port/http_port (IVR120_SIP_PORT, "
                "IVR120_HTTP_PORT) to free ones. (포트가 이미 사용 중입니다)"
            )

    async def start(self, timeout: float = 60.0) -> None:
        """Start Asterisk (after `prepare`) and return once ARI answers."""
        self.claim()
        if self.adopted is not None:
            if adopt.alive(self.adopted):
                log.info(
                    "Asterisk is up (adopted, pid %d), ARI %s", self.adopted, self.settings.ari_url
                )
                return
            self.adopted = None
            await asyncio.to_thread(self.prepare)
        self._check_ports()
        self.console_file.parent.mkdir(parents=True, exist_ok=True)
        self._console = os.open(self.console_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        cmd = self._command()
        log.info("starting %s (%s)", self.install.version, self.install.kind)
        log.debug("command: %s", cmd)
        self._proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._console,
            stderr=self._console,
            # Its own session and no parent-death signal: Asterisk keeps the calls when the
            # controller is killed, and the next start adopts it (see the module's doc).
            start_new_session=True,
        )
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "Asterisk is up: SIP udp %s:%d, ARI %s (log %s)",
            self.settings.sip_bind,
            self.settings.sip_port,
            self.settings.ari_url,
            self.log_file,
        )

    def _tail(self, n: int = 20) -> str:
        lines: list[str] = []
        for f in (self.console_file, self.log_file):
            with contextlib.suppress(OSError):
                lines += f.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(lines[-n:])

    async def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        auth = basic_auth_header(self.settings.ari_user, self.secrets.ari_password)
        url = f"{self.settings.ari_url}/asterisk/info"
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession(headers={"Authorization": auth}) as http:
            while True:
                if self._proc.returncode is not None:
                    raise PbxStartError(
                        f"Asterisk exited with code {self._proc.returncode} while starting; "
                        f"its last lines:\n{self._tail()}"
                    )
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return
                if asyncio.get_running_loop().time() > deadline:
                    raise PbxStartError(
                        f"ARI did not answer on {url} within {timeout:.0f} s; "
                        f"Asterisk's last lines:\n{self._tail()}"
                    )
                await asyncio.sleep(0.2)

    @property
    def running(self) -> bool:
        if self.adopted is not None:
            return adopt.alive(self.adopted)
        return self._proc is not None and self._proc.returncode is None

    async def stop(self, timeout: float = 15.0) -> None:
        """Stop Asterisk; SIGTERM first, SIGKILL if it does not end in time. Idempotent."""
        proc, self._proc = self._proc, None
        pid, self.adopted = self.adopted, None
        if pid is not None and adopt.alive(pid):
            await asyncio.to_thread(adopt.stop, pid, timeout)
            log.info("Asterisk stopped")
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                log.warning("Asterisk did not stop within %.0f s; killing it", timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            log.info("Asterisk stopped")
        self._let_go()

    def _let_go(self) -> None:
        """Close Asterisk's console file and give the instance's claim back."""
        if self._console is not None:
            os.close(self._console)
            self._console = None
        if self._claimed:
            self._claimed = False
            self._lock.release()

    def leave_running(self) -> None:
        """A hand-over (ivr/stopping.py): this run lets go of Asterisk, which keeps running
        with every call on it for the next run of the instance to adopt. The process object
        stays referenced (_LEFT_RUNNING): asyncio kills a child whose transport is collected,
        so the run then ends with os._exit (ivr.stopping.leave)."""
        if self._proc is not None:
            _LEFT_RUNNING.append(self._proc)
        pid = self._own_running()
        self._proc, self.adopted = None, None
        self._let_go()
        log.info("Asterisk (pid %s) keeps running for the next run", pid)

    async def wait_ended(self) -> None:
        """Return once Asterisk has ended (at once when none runs)."""
        if self.adopted is not None:
            while adopt.alive(self.adopted):  # noqa: ASYNC110 (not our child: only /proc tells)
                await asyncio.sleep(0.5)
        elif self._proc is not None:
            await self._proc.wait()

    async def restart(self) -> None:
        """Start Asterisk again after it died (`ivr.supervise`): the configuration is written
        again and the instance claimed again if a failed start gave the claim back."""
        if self._console is not None:
            os.close(self._console)
            self._console = None
        self._proc, self.adopted = None, None
        await asyncio.to_thread(self.prepare)
        await self.start()

    def kill_now(self) -> None:
        """Stop Asterisk from any thread without the event loop (the stop watchdog,
        ivr/stopping.py): SIGTERM to its process group, SIGKILL after 1.5 s."""
        pid = self.adopted if self.adopted is not None else (self._proc and self._proc.pid)
        if pid:
            with contextlib.suppress(OSError):
                adopt.stop(pid, timeout=1.5)

    def remove_instance(self) -> None:
        """Delete the instance directory (tests do this after stopping)."""
        shutil.rmtree(self.host_base, ignore_errors=True)
