"""Callers' numbers are personal data: only a keyed hash of them is logged or stored.

A plain SHA-256 of a phone number is reversible by trying every number (there are few), so the
hash is an HMAC with a per-installation secret key (state_dir/secrets.json).
"""

from __future__ import annotations

import hashlib
import hmac

#: The hash of every call without a caller number (withheld, or none sent): one value shared by
#: many different people, so it never identifies a caller (not a repeat caller, not a person).
ANONYMOUS = "anonymous"


def caller_hash(number: str, key: str) -> str:
    """Stable, non-reversible id for a caller's number; empty input gives 'anonymous'."""
    digits = "".join(ch for ch in number if ch.isdigit() or ch == "+")
    if not digits:
        return ANONYMOUS
    return hmac.new(key.encode(), digits.encode(), hashlib.sha256).hexdigest()[:20]
