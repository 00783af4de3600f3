"""Build the container images with podman, from roots made on this machine (docs/containers.md).

    python -m ivr.deploy.images build     build localhost/ivr120-asterisk and ivr120-controller
    python -m ivr.deploy.images env       print the podman environment (CONTAINERS_CONF, ...)

No registry is reachable, so there is no ``FROM debian``: the base images are imported from
root file systems — the cached sid root with Asterisk (`ivr-pbx ensure`) and a bookworm root
with python3 (ivr.deploy.roots) — and re-imported only when that root changed. Each image then
adds one layer (``COPY rootfs/ /``) staged here: the project's code and data, the prompts built
by espeak-ng and sox, and for the controller the wheels of this checkout's virtualenv (the
same Python, 3.11). Nothing secret is staged.

podman runs with its own configuration and storage under ``<pbx_cache_dir>/containers``: the vfs
storage driver, runc with cgroupfs (crun refuses this machine's hybrid cgroups), the events in a
file, and default ulimits no higher than this process's own (podman's defaults need
CAP_SYS_RESOURCE, which the machine does not give).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path

from ivr.config import Settings, load_settings
from ivr.deploy.roots import ensure_python_root
from ivr.paths import PROJECT_ROOT
from ivr.pbx.install import READY_MARKER, ROOT_NAME, ensure_root
from ivr.prompts.build import build as build_prompts
from ivr.prompts.catalog import load_catalog

log = logging.getLogger(__name__)

ASTERISK_IMAGE = "localhost/ivr120-asterisk:latest"
CONTROLLER_IMAGE = "localhost/ivr120-controller:latest"
ASTERISK_BASE = "localhost/ivr120-asterisk-base:latest"
PYTHON_BASE = "localhost/ivr120-python-base:latest"
#: The label on a base image that names the root it was imported from (its ready marker's time).
ROOT_LABEL = "org.ivr120.root"
#: The label on a built image that names what it was built from (stage_digest).
STAGE_LABEL = "org.ivr120.stage"
#: Staged files up to this size are compared by their contents, larger ones by size and time.
SMALL_FILE = 256 * 1024
DOCKER_DIR = PROJECT_ROOT / "docker"
#: Project directories each image needs.
ASTERISK_CODE = ("ivr", "dialplan", "config")
CONTROLLER_CODE = ("ivr", "speech", "config", "prompts", "dialplan")
#: Packages of the virtualenv the images do not need (tests, linters, the editable install).
DEV_ONLY = (
    "__editable__",
    "ivr120",
    "pytest",
    "_pytest",
    "py.py",
    "pluggy",
    "iniconfig",
    "hypothesis",
    "_hypothesis",
    "sortedcontainers",
    "mypy",
    "ruff",
    "pip",
    "selenium",
    "trio",
    "wsproto",
    "pathspec",
    "librt",
)
#: What the sid root holds that no image needs (instances of running tests, apt's caches).
ROOT_EXCLUDES = (
    "./srv/ivr120/*",
    "./proc/*",
    "./dev/*",
    "./sys/*",
    "./tmp/*",
    "./var/cache/apt/*",
    "./var/lib/apt/lists/*",
)
#: Console scripts of the controller image (the same modules as pyproject's entry points).
SCRIPTS = {
    "ivr-run": "ivr.main",
    "ivr-summary-worker": "ivr.summary.worker",
    "ivr-summarize": "ivr.summary.worker",
    "ivr-admin": "ivr.admin",
    "ivr-pbx": "ivr.pbx.cli",
}


class BuildError(RuntimeError):
    """podman failed; the message has the end of its output."""


def containers_dir(settings: Settings) -> Path:
    return settings.pbx_cache_dir / "containers"


def podman_env(settings: Settings) -> dict[str, str]:
    """The environment for podman and podman-compose: this project's configuration files."""
    base = containers_dir(settings)
    etc = base / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 65536)
    # conmon starts the OCI runtime with at most 32768 processes here; more is refused.
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    conf = etc / "containers.conf"
    conf.write_text(
        "# Written by ivr.deploy.images (docs/containers.md).\n"
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n',
        encoding="utf-8",
    )
    storage = etc / "storage.conf"
    storage.write_text(
        "# Written by ivr.deploy.images (docs/containers.md).\n"
        "[storage]\n"
        'driver = "vfs"\n'
        f'graphroot = "{base / "storage"}"\n'
        f'runroot = "/run/ivr120-containers"\n',
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(conf)
    env["CONTAINERS_STORAGE_CONF"] = str(storage)
    return env


def podman(env: dict[str, str], *args: str, stdin: int | None = None) -> str:
    proc = subprocess.run(
        ["podman", *args], env=env, stdin=stdin, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise BuildError(f"podman {' '.join(args[:2])} failed ({proc.returncode}):\n{tail}")
    return proc.stdout


def _label(env: dict[str, str], image: str, label: str = ROOT_LABEL) -> str | None:
    proc = subprocess.run(
        ["podman", "image", "inspect", "--format", f'{{{{index .Labels "{label}"}}}}', image],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def import_root(env: dict[str, str], root: Path, image: str) -> bool:
    """Import `root` as `image` unless the image was imported from this very root; True if
    imported now."""
    stamp = str((root / READY_MARKER).stat().st_mtime_ns)
    if _label(env, image) == stamp:
        return False
    log.warning("importing %s as %s", root, image)
    cmd = ["tar", "-C", str(root), "--numeric-owner", "--warning=no-file-changed", "-c"]
    cmd += [f"--exclude={pattern}" for pattern in ROOT_EXCLUDES]
    tar = subprocess.Popen([*cmd, "."], stdout=subprocess.PIPE)
    try:
        assert tar.stdout is not None
        podman(
            env,
            "import",
            "--change",
            f"LABEL {ROOT_LABEL}={stamp}",
            "-",
            image,
            stdin=tar.stdout.fileno(),
        )  # noqa: E501
    finally:
        if tar.stdout is not None:
            tar.stdout.close()
        code = tar.wait()
    if code not in (0, 1):  # 1: a file changed while read (a running instance's), not fatal
        raise BuildError(f"tar of {root} failed ({code})")
    return True


def _copy_code(dest: Path, names: Sequence[str]) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache")
    for name in names:
        shutil.copytree(PROJECT_ROOT / name, dest / name, ignore=ignore)


def _readable(top: Path) -> None:
    """Directories 0755, files 0644 (0755 when executable): the image's users read them."""
    for root, _dirs, files in os.walk(top):
        os.chmod(root, 0o755)
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)


def stage_asterisk(settings: Settings, stage: Path) -> None:
    rootfs = stage / "rootfs"
    _copy_code(rootfs / "opt/ivr120", ASTERISK_CODE)
    purelib = Path(sysconfig.get_paths()["purelib"])
    for name in ("jinja2", "markupsafe"):  # pure Python (markupsafe's speedups are not loaded)
        shutil.copytree(purelib / name, rootfs / "opt/ivr120/lib" / name)
    sounds = containers_dir(settings) / "sounds"  # built once, then only what changed
    catalog = load_catalog(PROJECT_ROOT / settings.prompt_catalog)
    result = build_prompts(catalog, sounds, PROJECT_ROOT / settings.prompt_studio_dir)
    log.info("prompts: %s", result.summary())
    shutil.copytree(sounds, rootfs / "usr/share/ivr120/sounds")
    sbin = rootfs / "usr/local/sbin"
    sbin.mkdir(parents=True)
    shutil.copy(DOCKER_DIR / "asterisk/entrypoint.sh", sbin / "ivr120-asterisk")
    _readable(rootfs)


def stage_controller(stage: Path) -> None:
    rootfs = stage / "rootfs"
    _copy_code(rootfs / "opt/ivr120", CONTROLLER_CODE)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(rootfs / "opt/ivr120")], check=True
    )
    _readable(rootfs)
    purelib = Path(sysconfig.get_paths()["purelib"])
    dist = rootfs / "usr/local/lib/python3.11/dist-packages"
    dist.mkdir(parents=True)
    for entry in purelib.iterdir():
        if entry.name.startswith(DEV_ONLY) or "__mypyc" in entry.name:
            continue
        if entry.name.startswith("_distutils_hack") or entry.name.endswith(".pth"):
            continue
        if entry.is_dir():  # hard links: nothing is copied (the files are only read)
            shutil.copytree(entry, dist / entry.name, copy_function=os.link)
        else:
            os.link(entry, dist / entry.name)
    bin_dir = rootfs / "usr/local/bin"
    bin_dir.mkdir(parents=True)
    for name, module in SCRIPTS.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec python3 -m {module} "$@"\n', encoding="utf-8")
        script.chmod(0o755)


def stage_digest(stage: Path, containerfile: Path) -> str:
    """What the image would be made of: every staged file's path, mode and contents — for a
    file over SMALL_FILE bytes its size and time instead (the wheels and the speech model are
    hard links to the virtualenv, never rewritten) — and the Containerfile. Compiled bytecode
    is left out (it is made anew from the sources)."""
    h = hashlib.sha256(containerfile.read_bytes())
    for root, dirs, files in os.walk(stage):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, stage)
            h.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0".encode())
            if st.st_size > SMALL_FILE or not os.path.isfile(path):
                h.update(f"{st.st_mtime_ns}\n".encode())
            else:
                with open(path, "rb") as fh:
                    h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def build(settings: Settings) -> dict[str, float]:
    """Build both images; the seconds each step took. One build at a time per machine (the
    staging directories and the image names are shared): others wait for the lock."""
    containers_dir(settings).mkdir(parents=True, exist_ok=True)
    with open(containers_dir(settings) / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(settings)


def _build(settings: Settings) -> dict[str, float]:
    env = podman_env(settings)
    times: dict[str, float] = {}
    started = time.monotonic()
    sid = ensure_root(settings.pbx_cache_dir).root
    assert sid is not None and sid.name == ROOT_NAME
    import_root(env, sid, ASTERISK_BASE)
    import_root(env, ensure_python_root(settings.pbx_cache_dir), PYTHON_BASE)
    times["bases"] = time.monotonic() - started
    for name, image, stage_fn in (
        ("asterisk", ASTERISK_IMAGE, lambda d: stage_asterisk(settings, d)),
        ("controller", CONTROLLER_IMAGE, stage_controller),
    ):
        t0 = time.monotonic()
        stage = containers_dir(settings) / f"context-{name}"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        stage_fn(stage)
        containerfile = DOCKER_DIR / name / "Containerfile"
        digest = stage_digest(stage, containerfile)
        if _label(env, image, STAGE_LABEL) != digest:
            podman(
                env,
                *("build", "--layers", "--pull=never", "--label", f"{STAGE_LABEL}={digest}"),
                *("-t", image, "-f", str(containerfile), str(stage)),
            )
        else:
            log.info("%s is up to date", image)
        times[name] = time.monotonic() - t0
    # Images a rebuild replaced: on vfs each holds a full copy of its file system.
    podman(env, "image", "prune", "-f")
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.deploy.images", description=__doc__)
    parser.add_argument("command", choices=("build", "env"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = load_settings()
    if args.command == "env":
        env = podman_env(settings)
        for key in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF"):
            print(f"export {key}={env[key]}")
        return 0
    try:
        times = build(settings)
    except BuildError as exc:
        print(f"ivr.deploy.images: {exc}", file=sys.stderr)
        return 1
    print(", ".join(f"{k} {v:.1f} s" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
