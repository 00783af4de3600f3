"""Pure tests for ivr/security (ban tracker, security-log parsing, state-directory modes), the
instance lock and the PBX user's reserved id. No Asterisk here; see test_e2e_security.py."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.pbx.install import INSTANCES_DIR, PBX_ID, PbxUnavailable, migrate_root_ids
from ivr.pbx.lock import InstanceBusy, InstanceLock
from ivr.security.bans import Banned, BanParams, BanTracker, Lifted, acl_config
from ivr.security.files import secure_state_dir
from ivr.security.watcher import parse_failure

PARAMS = BanParams(failures=3, window=10.0, ban_seconds=60.0, exempt=("127.0.0.1/32",))
A = "127.0.0.3"


def counting(n: int, at: float = 0.0) -> BanTracker:
    """A tracker that has seen `n` failures from A, one second apart, starting at `at`."""
    t = BanTracker(PARAMS)
    for i in range(n):
        assert t.failure(A, at + i) is None
    return t


def test_failures_below_the_limit_do_not_ban() -> None:
    assert counting(2).banned == frozenset()


def banned() -> BanTracker:
    """A tracker that banned A at t=2 (until 62)."""
    t = counting(2)
    t.failure(A, 2.0)
    return t


def test_the_nth_failure_within_the_window_bans() -> None:
    assert counting(2).failure(A, 2.0) == Banned(A, 62.0, 3)


def test_failures_older_than_the_window_are_forgotten() -> None:
    assert counting(2).failure(A, 10.5) is None


def test_a_banned_address_is_not_counted_again() -> None:
    t = banned()
    assert t.failure(A, 3.0) is None and t.banned == {A}


def test_the_ban_is_lifted_when_it_ends() -> None:
    t = banned()
    assert t.expire(61.9) == [] and t.expire(62.0) == [Lifted(A)]


def test_after_the_ban_counting_starts_again() -> None:
    t = banned()
    t.expire(62.0)
    assert t.failure(A, 63.0) is None and t.banned == frozenset()


def test_exempt_addresses_are_never_banned() -> None:
    t = BanTracker(PARAMS)
    assert all(t.failure("127.0.0.1", float(i)) is None for i in range(10))


def test_next_expiry_is_the_earliest_ban_end() -> None:
    t = banned()
    assert t.next_expiry() == 62.0 and BanTracker(PARAMS).next_expiry() is None


@pytest.mark.parametrize(
    "kwargs", [{"failures": 0}, {"window": 0}, {"ban_seconds": -1}, {"exempt": ("x",)}]
)
def test_bad_params_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(PARAMS, **kwargs)  # type: ignore[arg-type]


LINE = (
    '[2025-05-01 10:00:00] SECURITY[123] res_security_log.c: SecurityEvent="{ev}",'
    'EventTV="2025-05-01T10:00:00.000+0900",Severity="Error",Service="PJSIP",EventVersion="2",'
    'AccountID="counselor01",SessionID="x",LocalAddress="IPV4/UDP/127.0.0.1/5060",'
    'RemoteAddress="IPV4/UDP/127.0.0.3/40000",Challenge="abc"'
)


@pytest.mark.parametrize("ev", ["ChallengeResponseFailed", "InvalidAccountID", "InvalidPassword"])
def test_failed_authentications_name_their_source(ev: str) -> None:
    assert parse_failure(LINE.format(ev=ev)) == "127.0.0.3"


@pytest.mark.parametrize("ev", ["ChallengeSent", "SuccessfulAuth", "FailedACL"])
def test_other_security_events_are_not_failures(ev: str) -> None:
    assert parse_failure(LINE.format(ev=ev)) is None


def test_the_acl_denies_exactly_the_banned_addresses() -> None:
    text = acl_config({"127.0.0.4", "127.0.0.3"})
    assert "type = acl" in text
    assert [ln for ln in text.splitlines() if ln.startswith("deny")] == [
        "deny = 127.0.0.3",
        "deny = 127.0.0.4",
    ]
    assert "[" not in acl_config(())  # nobody banned: no section at all


# -- state directory modes -----------------------------------------------------------------
def test_secure_state_dir_tightens_what_exists_and_sets_the_umask(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "audio" / "c1").mkdir(parents=True)
    for f in ("ivr120.sqlite3", "ivr120.sqlite3-wal", "audio/c1/caller.wav"):
        (state / f).write_bytes(b"x")
        (state / f).chmod(0o644)
    (state / "audio").chmod(0o755)
    old = os.umask(0o022)
    try:
        assert secure_state_dir(state) > 0
        (state / "new").write_bytes(b"x")
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(old)
    for p in [state, *state.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode & 0o077 == 0, f"{p} is {mode:o}"


# -- instance lock ---------------------------------------------------------------------------
def test_a_held_instance_lock_refuses_a_second_owner(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path / "controller.lock")
    first.acquire()
    try:
        with pytest.raises(InstanceBusy, match=f"pid {os.getpid()}"):
            InstanceLock(tmp_path / "controller.lock").acquire()
    finally:
        first.release()


def test_a_lock_left_by_a_dead_controller_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    path = tmp_path / "controller.lock"
    path.write_text(dead.stdout)
    lock = InstanceLock(path)
    lock.acquire()
    try:
        assert lock.owner() == os.getpid()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        lock.release()


# -- the PBX user's reserved uid/gid ---------------------------------------------------------
def fake_root(tmp_path: Path, uid: int = 101) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        f"root:x:0:0:root:/root:/bin/bash\nasterisk:x:{uid}:{uid}:Asterisk:/var/lib/asterisk:"
        "/usr/sbin/nologin\n"
    )
    (root / "etc/group").write_text(f"root:x:0:\ndialout:x:20:asterisk\nasterisk:x:{uid}:\n")
    for d in ("var/lib/asterisk/sounds", f"{INSTANCES_DIR}/run/lib"):
        (root / d).mkdir(parents=True)
        (root / d / "f").write_bytes(b"x")
        for p in (root / d, root / d / "f"):
            os.chown(p, uid, uid)
    return root


def test_the_pbx_user_moves_to_its_reserved_id_once(tmp_path: Path) -> None:
    """(Needs root for chown, as the PBX root itself does.)"""
    root = fake_root(tmp_path)
    assert migrate_root_ids(root) is True
    assert f"asterisk:x:{PBX_ID}:{PBX_ID}:" in (root / "etc/passwd").read_text()
    assert f"asterisk:x:{PBX_ID}:" in (root / "etc/group").read_text()
    moved = root / "var/lib/asterisk/sounds/f"
    assert (moved.stat().st_uid, moved.stat().st_gid) == (PBX_ID, PBX_ID)
    running = root / INSTANCES_DIR / "run/lib/f"
    assert running.stat().st_uid == 101, "a running instance's files were moved under it"
    assert migrate_root_ids(root) is False  # idempotent


def test_a_root_where_the_reserved_id_is_taken_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(f"asterisk:x:101:101::/:/bin/false\nother:x:{PBX_ID}:1::/:\n")
    (root / "etc/group").write_text("asterisk:x:101:\n")
    with pytest.raises(PbxUnavailable, match="other"):
        migrate_root_ids(root)


def test_probing_a_free_instance_creates_nothing(tmp_path: Path) -> None:
    InstanceLock(tmp_path / "instance" / "controller.lock").probe()
    assert not (tmp_path / "instance").exists()
