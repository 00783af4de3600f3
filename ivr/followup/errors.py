"""The follow-up room's errors: each with an HTTP status, a stable `error_id`, an English message
and a Korean one (ivr.followup.http turns them into API errors, ivr-admin prints them)."""

from __future__ import annotations

from typing import Any


class FollowupError(ValueError):
    status = 400
    error_id = "bad_request"

    def __init__(self, message: str, message_ko: str, **details: Any) -> None:
        super().__init__(message)
        self.message, self.message_ko, self.details = message, message_ko, details


class NotFound(FollowupError, LookupError):
    status = 404
    error_id = "not_found"


class Conflict(FollowupError):
    """The request contradicts the current state (a closed task, a final referral, ...)."""

    status = 409
    error_id = "conflict"
