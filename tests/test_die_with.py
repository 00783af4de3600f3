"""The summary worker's parent-death setting (ivr.pbx.runner.die_with), run for real: a child
whose parent is the one named runs; one whose parent is not (it died between the fork and the
prctl, so no signal will ever come) exits before it runs anything."""

import os
import subprocess
import sys

from ivr.pbx.runner import die_with

PRINT = [sys.executable, "-c", "print('ran')"]


def test_a_child_of_the_named_parent_runs() -> None:
    done = subprocess.run(PRINT, preexec_fn=die_with(os.getpid()), capture_output=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, b"ran\n")


def test_a_child_whose_parent_is_already_gone_exits_at_once() -> None:
    # Seen from the child, a parent other than the one named is what an orphan sees (init or a
    # subreaper adopted it): the child must not run the program.
    not_the_parent = os.getpid() + 1_000_000
    done = subprocess.run(
        PRINT, preexec_fn=die_with(not_the_parent), capture_output=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (1, b"")
