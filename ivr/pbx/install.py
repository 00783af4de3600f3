"""Find the Asterisk to run: a system Asterisk (20 or newer) or a cached Debian sid root.

Asterisk 22 is packaged in Debian sid but not in bookworm or trixie, so where no suitable system
Asterisk exists the project builds a minimal sid root with debootstrap into a cache directory
outside the repository and runs Asterisk chrooted into it. Nothing from sid is installed on the
host itself. The root is built in a temporary directory and renamed when complete, so an
interrupted build never leaves a half-made root behind.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MIN_MAJOR = 20
ROOT_PACKAGES = ("asterisk", "asterisk-modules", "sip-tester")
ROOT_NAME = "root-sid"
READY_MARKER = ".ivr120-ready"
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


def ensure_root(cache_dir: Path) -> AsteriskInstall:
    """Return the cached sid root, building it first when it is missing."""
    root = cache_dir / ROOT_NAME
    if (root / READY_MARKER).exists():
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
    cmd = [
        "debootstrap",
        "--variant=minbase",
        "--include=" + ",".join(ROOT_PACKAGES),
        "sid",
        str(tmp),
    ]
    mirror = host_debian_mirror()
    if mirror:
        cmd.append(mirror)
    log.warning("building the Asterisk root in %s (about a minute, once)", root)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        shutil.rmtree(tmp, ignore_errors=True)
        raise PbxUnavailable(f"debootstrap failed ({proc.returncode}):\n{tail}")
    (tmp / READY_MARKER).write_text(" ".join(ROOT_PACKAGES) + "\n", encoding="utf-8")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root_install(root)


def locate(mode: str, cache_dir: Path) -> AsteriskInstall:
    """Pick the Asterisk to run according to `pbx_mode` ("auto", "system" or "root")."""
    if mode in ("auto", "system"):
        found = find_system()
        if found is not None:
            return found
        if mode == "system":
            raise PbxUnavailable(f"pbx_mode=system but no Asterisk {MIN_MAJOR}+ is installed")
    return ensure_root(cache_dir)
