"""The base root file systems of the images, made locally (there is no registry to pull from).

- The Asterisk image starts from the cached Debian sid root that ``ivr-pbx ensure`` builds
  (ivr.pbx.install), without its instance directories and apt caches.
- The controller image starts from a Debian bookworm root (minbase + python3 3.11, the host's
  Python, so the host virtualenv's wheels run in it unchanged), built once with debootstrap
  into the cache directory next to the sid root, in a temporary directory renamed when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ivr.pbx.install import READY_MARKER, debootstrap

log = logging.getLogger(__name__)

PYTHON_ROOT = "root-bookworm-python"
#: python3 is the host's 3.11; libstdc++6 for vosk and pjsua2; tzdata for Seoul time.
PYTHON_PACKAGES = ("python3", "libstdc++6", "tzdata")
SUITE = "bookworm"


class RootError(RuntimeError):
    """A base root cannot be built."""


def ensure_python_root(cache_dir: Path) -> Path:
    """The cached bookworm root with python3, built first when missing (about a minute)."""
    root = cache_dir / PYTHON_ROOT
    if (root / READY_MARKER).exists():
        return root
    if shutil.which("debootstrap") is None:
        raise RootError("debootstrap is missing: apt-get install debootstrap")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{PYTHON_ROOT}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    log.warning("building the controller's base root in %s (about a minute, once)", root)
    failed = debootstrap(SUITE, tmp, PYTHON_PACKAGES)
    if failed:
        raise RootError(failed)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (tmp / cache).glob("*"):
            if entry.is_file():
                entry.unlink()
    (tmp / READY_MARKER).write_text(" ".join(PYTHON_PACKAGES) + "\n", encoding="utf-8")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root
