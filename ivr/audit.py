"""The audit trail: one logger for consent, recording and summary access, abuse flags, bans and
administrators' actions.

Every module that records an audited action logs it here (``from ivr.audit import audit``);
ivr.logs routes this logger, and only it, to the process's own ``<name>-audit.log`` as well
as the console. As everywhere, callers appear by hash only, never by number.
"""

from __future__ import annotations

import logging

#: The audit logger's name (ivr.logs keeps it out of the main log file).
AUDIT_LOGGER = "ivr.audit"
#: The one audit logger.
audit = logging.getLogger(AUDIT_LOGGER)
