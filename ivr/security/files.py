"""File permissions for the state directory: it holds callers' data, secrets and the database.

`secure_state_dir` runs at the start of every process that writes there (`ivr-run`, the summary
worker): it sets the process umask to 077, so everything created afterwards — SQLite's database
and its `-wal`/`-shm`, audio, logs, and Asterisk's own files (astdb, logs, recordings; Asterisk
inherits the umask) — is readable by the owner only, and it tightens what an older version left
behind: directories 0700, files 0600. Symbolic links are left alone.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def secure_state_dir(state_dir: Path) -> int:
    """Set the umask, create `state_dir` 0700 and make everything in it owner-only.

    Returns how many existing entries had their mode changed."""
    os.umask(UMASK)
    state_dir.mkdir(parents=True, exist_ok=True)
    changed = 0
    for root, _dirnames, filenames in os.walk(state_dir):
        changed += _tighten(Path(root), DIR_MODE)
        for name in filenames:
            changed += _tighten(Path(root) / name, FILE_MODE)
    if changed:
        log.warning("tightened the permissions of %d entries in %s", changed, state_dir)
    return changed


def _tighten(path: Path, mode: int) -> int:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) & ~mode == 0:
        return 0
    path.chmod(stat.S_IMODE(st.st_mode) & mode)
    return 1
