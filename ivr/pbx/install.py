"""Find the Asterisk to run: a system Asterisk (20 or newer) or a cached Debian sid root.

Asterisk 22 is packaged in Debian sid but not in bookworm or trixie, so where no suitable system
Asterisk exists the project builds a minimal sid root with debootstrap into a cache directory
outside the repository and runs Asterisk chrooted into it. Nothing from sid is installed on the
host itself. The root is built in a temporary directory and renamed when complete, so an
interrupted build never leaves a half-made root behind.

Asterisk runs in the root as its `asterisk` user, whose uid/gid debootstrap picks from the
root's own free ids (101). On the host that number may belong to someone else — on a host with
PostgreSQL uid 101 is `postgres`, which could then signal or trace the PBX and vice versa.
`reserve_pbx_ids` gives the root's `asterisk` user the fixed uid/gid `PBX_ID` (920), reserves
it on the host with a system account `ivr120-asterisk` (so no package can be given it later),
and moves the root's files over; it runs on every `ivr-pbx ensure` (and start) and does nothing
once done.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.config import PbxMode

log = logging.getLogger(__name__)

MIN_MAJOR = 20
ROOT_PACKAGES = ("asterisk", "asterisk-modules", "sip-tester")
ROOT_NAME = "root-sid"
READY_MARKER = ".ivr120-ready"
#: The PBX user inside the root.
RUN_USER = "asterisk"
#: uid and gid reserved for it: in Debian's dynamic system range (100-999), far from where
#: adduser (upwards from 100) and systemd-sysusers (downwards from 999) allocate.
PBX_ID = 920
#: The host account that reserves PBX_ID.
HOST_ACCOUNT = "ivr120-asterisk"
#: Instance directories in the root belong to running instances; each start chowns its own.
INSTANCES_DIR = "srv/ivr120"
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/asterisk/modules",
    "/usr/lib/aarch64-linux-gnu/asterisk/modules",
    "/usr/lib/asterisk/modules",
    "/usr/lib64/asterisk/modules",
)


class PbxUnavailable(RuntimeError):
    """Neither a usable system Asterisk nor a way to build the root."""


@dataclass(frozen=True)
class AsteriskInstall:
    """Where Asterisk lives. Paths in `binary` and `moddir` are as Asterisk itself sees them."""

    kind: str  # "system" or "root"
    root: Path | None
    binary: str
    moddir: str
    version: str

    def host_path(self, inner: str | Path) -> Path:
        """Translate a path as Asterisk sees it into a path on the host."""
        inner = Path(inner)
        if self.root is None:
            return inner
        return self.root / inner.relative_to("/")

    @property
    def major(self) -> int:
        m = re.search(r"(\d+)\.", self.version)
        return int(m.group(1)) if m else 0


def _version(cmd: list[str]) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    return (out.stdout or out.stderr).strip()


def _find_moddir(root: Path | None) -> str:
    for d in MODULE_DIRS:
        host = (root / d.lstrip("/")) if root else Path(d)
        if (host / "chan_pjsip.so").exists():
            return d
    raise PbxUnavailable(f"Asterisk modules (chan_pjsip.so) not found under {root or '/'}")


def find_system() -> AsteriskInstall | None:
    binary = shutil.which("asterisk") or (
        "/usr/sbin/asterisk" if os.access("/usr/sbin/asterisk", os.X_OK) else None
    )
    if binary is None:
        return None
    version = _version([binary, "-V"])
    inst = AsteriskInstall("system", None, binary, "", version)
    if inst.major < MIN_MAJOR:
        log.info("system %s is older than %d; not using it", version, MIN_MAJOR)
        return None
    try:
        return AsteriskInstall("system", None, binary, _find_moddir(None), version)
    except PbxUnavailable:
        return None


def debootstrap(suite: str, target: Path, packages: Sequence[str]) -> str | None:
    """A minbase Debian `suite` with `packages` in `target`, from the host's mirror; None when
    made, else what went wrong (the target is removed)."""
    cmd = ["debootstrap", "--variant=minbase", "--include=" + ",".join(packages), suite]
    cmd.append(str(target))
    mirror = host_debian_mirror()
    if mirror:
        cmd.append(mirror)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        return None
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
    shutil.rmtree(target, ignore_errors=True)
    return f"debootstrap failed ({proc.returncode}):\n{tail}"


def host_debian_mirror() -> str | None:
    """The Debian mirror the host's apt already uses, so debootstrap goes where apt goes."""
    for src in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        try:
            text = src.read_text(encoding="utf-8")
        except OSError:
            continue
        for m in re.finditer(r"(?:URIs:|deb)\s+(\S+/debian)/?\s", text):
            return m.group(1)
    return None


def root_install(root: Path) -> AsteriskInstall:
    version = _version(["chroot", str(root), "/usr/sbin/asterisk", "-V"])
    return AsteriskInstall("root", root, "/usr/sbin/asterisk", _find_moddir(root), version)


def _entries(path: Path) -> list[list[str]]:
    return [line.split(":") for line in path.read_text(encoding="utf-8").splitlines() if line]


def _holder(path: Path, ident: int) -> str | None:
    """The name of the passwd/group entry with uid/gid `ident` in `path`."""
    return next((e[0] for e in _entries(path) if len(e) > 2 and e[2] == str(ident)), None)


def reserve_host_account(etc: Path = Path("/etc")) -> None:
    """Make sure PBX_ID is free on the host or already HOST_ACCOUNT's; create the account."""
    for table in ("passwd", "group"):
        holder = _holder(etc / table, PBX_ID)
        if holder not in (None, HOST_ACCOUNT):
            raise PbxUnavailable(
                f"id {PBX_ID}, reserved for the PBX user, belongs to {holder!r} in "
                f"{etc / table}; free it (or move that account) and run `ivr-pbx ensure` again.\n"
                f"PBX 사용자용 ID {PBX_ID}을(를) 다른 계정이 쓰고 있습니다."
            )
    if _holder(etc / "group", PBX_ID) is None:
        subprocess.run(["groupadd", "--system", "--gid", str(PBX_ID), HOST_ACCOUNT], check=True)
    if _holder(etc / "passwd", PBX_ID) is None:
        subprocess.run(
            [
                "useradd", "--system", "--uid", str(PBX_ID), "--gid", str(PBX_ID),
                "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                "--comment", "ivr120 PBX (Asterisk in its chroot)", HOST_ACCOUNT,
            ],
            check=True,
        )  # fmt: skip
        log.warning("reserved uid/gid %d on this host for the PBX (%s)", PBX_ID, HOST_ACCOUNT)


def _set_id(path: Path, name: str, fields: tuple[int, ...], ident: int) -> None:
    lines = []
    for e in _entries(path):
        if e[0] == name:
            for i in fields:
                e[i] = str(ident)
        lines.append(":".join(e))
    tmp = path.with_name(path.name + ".ivr120")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.chmod(path.stat().st_mode & 0o7777)
    tmp.replace(path)


def migrate_root_ids(root: Path) -> bool:
    """Give the root's PBX user uid/gid PBX_ID and move its files over (idempotent).

    Files are moved first and the passwd/group entries last, so an interrupted run is finished
    by the next one. Instance directories (running instances) are left to their own start."""
    passwd, group = root / "etc/passwd", root / "etc/group"
    user = next((e for e in _entries(passwd) if e[0] == RUN_USER), None)
    if user is None:
        raise PbxUnavailable(f"{passwd} has no {RUN_USER!r} user")
    old_uid, old_gid = int(user[2]), int(user[3])
    if (old_uid, old_gid) == (PBX_ID, PBX_ID):
        return False
    for table, own in ((passwd, RUN_USER), (group, RUN_USER)):
        holder = _holder(table, PBX_ID)
        if holder not in (None, own):
            raise PbxUnavailable(f"id {PBX_ID} is taken by {holder!r} in {table}")
    skip = {root / INSTANCES_DIR, root / "proc", root / "dev", root / "sys"}
    for top, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if Path(top, d) not in skip]
        for name in (".", *dirnames, *filenames):
            path = os.path.join(top, name)
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(path)
                uid = PBX_ID if st.st_uid == old_uid else -1
                gid = PBX_ID if st.st_gid == old_gid else -1
                if uid != -1 or gid != -1:
                    os.lchown(path, uid, gid)
    _set_id(passwd, RUN_USER, (2, 3), PBX_ID)
    _set_id(group, RUN_USER, (2,), PBX_ID)
    log.warning(
        "moved the PBX user %r in %s from uid/gid %d/%d to %d/%d",
        RUN_USER, root, old_uid, old_gid, PBX_ID, PBX_ID,
    )  # fmt: skip
    return True


def reserve_pbx_ids(root: Path) -> None:
    """Reserve PBX_ID on the host and move the root's PBX user to it (root only)."""
    if os.geteuid() != 0:
        return  # running the root needs root anyway; the next start as root does it
    with (root.parent / f"{ROOT_NAME}.ids.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        reserve_host_account()
        migrate_root_ids(root)


def ensure_root(cache_dir: Path) -> AsteriskInstall:
    """Return the cached sid root, building it first when it is missing."""
    root = cache_dir / ROOT_NAME
    if (root / READY_MARKER).exists():
        reserve_pbx_ids(root)
        return root_install(root)
    if os.geteuid() != 0:
        raise PbxUnavailable(
            "No Asterisk 20+ is installed and building the PBX root needs root (debootstrap, "
            "chroot). Either run as root (e.g. `sudo make run`) or install Asterisk 20 or newer.\n"
            "Asterisk 20 이상이 없고, PBX 루트를 만들려면 root 권한이 필요합니다."
        )
    if shutil.which("debootstrap") is None:
        raise PbxUnavailable("debootstrap is missing: apt-get install debootstrap")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{ROOT_NAME}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.warning("building the Asterisk root in %s (about a minute, once)", root)
    failed = debootstrap("sid", tmp, ROOT_PACKAGES)
    if failed:
        raise PbxUnavailable(failed)
    (tmp / READY_MARKER).write_text(" ".join(ROOT_PACKAGES) + "\n", encoding="utf-8")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    reserve_pbx_ids(root)
    return root_install(root)


def locate(mode: PbxMode, cache_dir: Path) -> AsteriskInstall:
    """Pick the Asterisk to run according to `pbx_mode` ("auto", "system" or "root")."""
    if mode in ("auto", "system"):
        found = find_system()
        if found is not None:
            return found
        if mode == "system":
            raise PbxUnavailable(f"pbx_mode=system but no Asterisk {MIN_MAJOR}+ is installed")
    return ensure_root(cache_dir)
