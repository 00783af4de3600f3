"""Counselors' feature codes: what the digits after a code mean (pure).

*53      pause with the reason "phone"
*53N     pause with the N-th of the `pause_reasons` setting (*531 = the first, N = 1..9)
"""

from __future__ import annotations

from collections.abc import Sequence

#: What the counselor hears after each action's code.
FEATURE_PROMPTS = {
    "login": "feature_logged_in",
    "logout": "feature_logged_out",
    "pause": "feature_paused",
    "unpause": "feature_unpaused",
}
#: ... and after a code that was not accepted.
DENIED_PROMPT = "feature_denied"

#: The reason of a plain *53 (no reason digit).
DEFAULT_PHONE_REASON = "phone"


def phone_pause_reason(digits: Sequence[str], reasons: Sequence[str]) -> str | None:
    """The pause reason for the dialplan's arguments after ``pause``; None if the digit names
    no configured reason (the counselor hears that the code was not accepted)."""
    if not digits or digits[0] == "":
        return DEFAULT_PHONE_REASON
    digit = digits[0]
    if len(digit) != 1 or not digit.isdigit() or not 1 <= int(digit) <= len(reasons):
        return None
    return reasons[int(digit) - 1]
