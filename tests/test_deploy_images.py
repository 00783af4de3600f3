"""The image build's pure parts (ivr.deploy.images): podman's configuration for this machine
and when an image counts as unchanged. The build itself: tests/test_e2e_containers.py."""

from __future__ import annotations

import os
import resource
import tomllib
from pathlib import Path

from ivr.config import Settings
from ivr.deploy.images import SMALL_FILE, podman_env, stage_digest


def test_podman_runs_with_its_own_configuration(tmp_path: Path) -> None:
    env = podman_env(Settings(state_dir=tmp_path, pbx_cache_dir=tmp_path / "cache"))
    conf = tomllib.loads(Path(env["CONTAINERS_CONF"]).read_text())
    storage = tomllib.loads(Path(env["CONTAINERS_STORAGE_CONF"]).read_text())
    assert conf["engine"] == {
        "runtime": "runc",
        "cgroup_manager": "cgroupfs",
        "events_logger": "file",
    }
    assert storage["storage"]["driver"] == "vfs"
    assert storage["storage"]["graphroot"] == str(tmp_path / "cache/containers/storage")
    limits = dict(u.split("=") for u in conf["containers"]["default_ulimits"])
    soft, hard = (int(n) for n in limits["nofile"].split(":"))
    assert soft == hard <= resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert int(limits["nproc"].split(":")[1]) <= 32768


def test_stage_digest_follows_contents_not_copies(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    (stage / "opt/__pycache__").mkdir(parents=True)
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text("FROM scratch\n")
    script = stage / "opt/run.sh"
    script.write_text("echo 1\n")
    big = stage / "opt/model.bin"
    big.write_bytes(b"\0" * (SMALL_FILE + 1))
    first = stage_digest(stage, containerfile)

    script.write_text("echo 1\n")  # written again, same contents: unchanged
    (stage / "opt/__pycache__/run.cpython-311.pyc").write_bytes(b"x")
    assert stage_digest(stage, containerfile) == first

    script.write_text("echo 2\n")
    changed = stage_digest(stage, containerfile)
    assert changed != first
    os.utime(big, ns=(1, 1))  # a large file: by size and time
    assert stage_digest(stage, containerfile) != changed
    containerfile.write_text("FROM scratch\nENV A=1\n")
    assert stage_digest(stage, containerfile) not in (first, changed)
