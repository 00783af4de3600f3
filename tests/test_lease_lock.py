"""The instance lock under an active/standby lease (ivr/pbx/lock.py): the lease holder is not
kept out by a controller of the pair that lost the lease but still holds the flock (paused);
any other holder still refuses a start."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.pbx.lock import InstanceBusy, InstanceLock


def test_the_lease_holder_goes_on_past_a_paused_controller_of_the_pair(tmp_path: Path) -> None:
    paused = InstanceLock(tmp_path / "controller.lock", under_lease=True)
    paused.acquire()
    try:
        InstanceLock(tmp_path / "controller.lock", under_lease=True).acquire()
    finally:
        paused.release()


def test_a_pair_controller_marks_the_lock(tmp_path: Path) -> None:
    lock = InstanceLock(tmp_path / "controller.lock", under_lease=True)
    lock.acquire()
    try:
        assert (tmp_path / "controller.lock").read_text().split()[1:] == ["ha"]
    finally:
        lock.release()


def test_a_controller_outside_the_pair_still_refuses_the_lease_holder(tmp_path: Path) -> None:
    alone = InstanceLock(tmp_path / "controller.lock")
    alone.acquire()
    try:
        with pytest.raises(InstanceBusy):
            InstanceLock(tmp_path / "controller.lock", under_lease=True).acquire()
    finally:
        alone.release()


def test_a_pair_controller_still_refuses_a_start_outside_the_pair(tmp_path: Path) -> None:
    paired = InstanceLock(tmp_path / "controller.lock", under_lease=True)
    paired.acquire()
    try:
        with pytest.raises(InstanceBusy):
            InstanceLock(tmp_path / "controller.lock").probe()
    finally:
        paired.release()
