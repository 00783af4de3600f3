"""Logging for the product's processes: the console, a rotating log file, and the audit trail.

    <state_dir>/log/<name>.log         everything at log_level but the audit lines
    <state_dir>/log/<name>-audit.log   the `ivr.audit` logger only: consent, recording access,
                                       abuse flags and their lifting

The console (stderr) gets everything, audit included. The main file leaves the audit lines
out, so the audit file is the one place to read (and keep, and hand over) the audit trail.
The directory is 0700 and the files 0600, also when rotation creates a new one: the log names
call ids and callers' hashes. Each process has files of its own (`ivr-run` "ivr", the
summary worker "summary"), because two processes must never rotate the same file.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from ivr.audit import AUDIT_LOGGER
from ivr.config import Settings

LOG_DIR = "log"
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: Bytes per file before it is rotated, and how many rotated files are kept.
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 10

log = logging.getLogger(__name__)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are created (and kept) readable by the owner only."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


class _NotAudit(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == AUDIT_LOGGER or record.name.startswith(AUDIT_LOGGER + "."))


def log_paths(settings: Settings, name: str) -> tuple[Path, Path]:
    """(main log, audit log) of process `name` under the state directory."""
    d = settings.state_dir.absolute() / LOG_DIR
    return d / f"{name}.log", d / f"{name}-audit.log"


def setup_logging(settings: Settings, name: str = "ivr") -> tuple[Path, Path]:
    """Send the logs to stderr and to `name`'s rotating files; returns the files' paths."""
    main_path, audit_path = log_paths(settings, name)
    main_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(main_path.parent, 0o700)
    fmt = logging.Formatter(FORMAT)
    console = logging.StreamHandler(sys.stderr)
    main_file = PrivateRotatingFileHandler(
        main_path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    main_file.addFilter(_NotAudit())
    audit_file = PrivateRotatingFileHandler(
        audit_path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
    )
    for handler in (console, main_file, audit_file):
        handler.setFormatter(fmt)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.setLevel(settings.log_level.upper())
    root.addHandler(console)
    root.addHandler(main_file)
    audit = logging.getLogger(AUDIT_LOGGER)
    for old in list(audit.handlers):
        audit.removeHandler(old)
        old.close()
    audit.setLevel(logging.INFO)  # the audit trail is kept whatever log_level says
    audit.addHandler(audit_file)
    log.info("logging to %s (audit: %s)", main_path, audit_path)
    warn_exposure(settings)
    return main_path, audit_path


def warn_exposure(settings: Settings) -> None:
    """Say loudly, at every start, what allow_public_exposure let through."""
    for setting, why in settings.exposure():
        log.warning(
            "PUBLIC EXPOSURE (공개 노출): %s: %s — allowed only by allow_public_exposure = true",
            setting,
            why,
        )
