"""The follow-up vocabulary and its rules, pure: task types, teams, outcomes, the back-off after
an attempt and the calling hours. No I/O and no clock: every function takes ``now`` (seconds
since the epoch) and works in Seoul time.

A *task* is one need of one citizen that a team calls about: a callback the caller asked for
while waiting, a welfare check of a silent line, an in-depth call by a social worker (`*8`),
a monitoring call after a referral, a companion's call of a series. Each task is served by one
team; a citizen has at most one open task per team (a new request merges into it).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.flow.commands import CallbackReason
from ivr.timezone import SEOUL


class TaskType(enum.StrEnum):
    CALLBACK = "callback"  # the caller left the queue asking for a call
    WELFARE = "welfare"  # a line that stayed silent
    IN_DEPTH = "in_depth"  # the counselor's `*8` after the caller agreed
    MONITORING = "monitoring"  # did the referral work?
    COMPANION = "companion"  # one call of a companion's series


class Team(enum.StrEnum):
    COUNSELORS = "counselors"
    SOCIAL_WORKERS = "social_workers"
    COMPANIONS = "companions"


class Status(enum.StrEnum):
    OPEN = "open"
    DONE = "done"  # closed with an outcome by staff (or the default)
    UNREACHABLE = "unreachable"  # the attempts ran out
    CANCELLED = "cancelled"  # an administrator closed it
    OPTED_OUT = "opted_out"  # the citizen asked not to be called again


CLOSED = frozenset(Status) - {Status.OPEN}


class Outcome(enum.StrEnum):
    """What a closed task came to (`followup_tasks.outcome`)."""

    REACHED = "reached"  # talked; the need was dealt with
    MORE_HELP = "more_help"  # talked; more help is needed (a new referral or in-depth task)
    NOT_LINKED = "not_linked"  # monitoring: the referral did not work
    UNREACHABLE = "unreachable"
    OPTED_OUT = "opted_out"
    CANCELLED = "cancelled"


class AttemptResult(enum.StrEnum):
    """How one dialling attempt ended (`followup_attempts.result`)."""

    REACHED = "reached"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"  # the trunk or the number failed
    STAFF_NO_ANSWER = "staff_no_answer"  # the staff member's phone was not answered
    STAFF_LEFT = "staff_left"  # the staff member hung up before the citizen answered
    STAFF_LOST = "staff_lost"  # the staff member's phone was lost mid-conversation
    OPTED_OUT = "opted_out"
    #: The dialler's own failure (no sealed number, unsealing, ARI refusing the originate).
    SERVICE_FAILED = "service_failed"
    #: The controller stopped during the attempt (closed at the next start).
    CONTROLLER_RESTART = "controller_restart"


#: Results that count against the citizen's attempts (the others are the service's).
COUNTED = frozenset({AttemptResult.NO_ANSWER, AttemptResult.BUSY, AttemptResult.FAILED})

TEAM_OF: dict[TaskType, Team] = {
    TaskType.CALLBACK: Team.COUNSELORS,
    TaskType.WELFARE: Team.COUNSELORS,
    TaskType.IN_DEPTH: Team.SOCIAL_WORKERS,
    TaskType.MONITORING: Team.SOCIAL_WORKERS,
    TaskType.COMPANION: Team.COMPANIONS,
}
#: Lower first: a welfare check before a callback, an in-depth call before a monitoring call.
PRIORITY: dict[TaskType, int] = {
    TaskType.WELFARE: 0,
    TaskType.CALLBACK: 1,
    TaskType.IN_DEPTH: 2,
    TaskType.MONITORING: 3,
    TaskType.COMPANION: 4,
}
#: The task a request stored during a call becomes.
REQUEST_TYPE: dict[CallbackReason, TaskType] = {
    CallbackReason.MAX_WAIT: TaskType.CALLBACK,
    CallbackReason.WELFARE_SILENCE: TaskType.WELFARE,
    CallbackReason.SOCIAL_WORKER: TaskType.IN_DEPTH,
    CallbackReason.CHAT: TaskType.CALLBACK,
}


def seal_purpose(caller_hash: str) -> str:
    """The purpose a citizen's number is sealed for (any of their tasks may unseal it)."""
    return f"citizen:{caller_hash}"


@dataclass(frozen=True, kw_only=True)
class Task:
    """One row of `followup_tasks`, without the sealed number."""

    id: int
    type: TaskType
    team: Team
    caller_hash: str
    created_at: float
    due_at: float
    priority: int
    attempts: int = 0
    status: Status = Status.OPEN
    outcome: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    member: str | None = None
    call_id: str | None = None
    requested_by: str | None = None
    referral_id: int | None = None
    series_id: int | None = None
    note: str | None = None
    locked_by: str | None = None
    locked_until: float | None = None
    alerted_at: float | None = None
    #: When the first in-depth request for it was made (its deadline counts from then; a
    #: request merged into an older task of the team keeps the task's `created_at`).
    in_depth_at: float | None = None

    @property
    def open(self) -> bool:
        return self.status is Status.OPEN

    def locked(self, now: float) -> bool:
        return self.locked_by is not None and (self.locked_until or 0.0) > now


def minutes(hhmm: str) -> int:
    """Minutes after midnight of "HH:MM" (validated by the settings)."""
    hh, _, mm = hhmm.partition(":")
    return int(hh) * 60 + int(mm)


@dataclass(frozen=True, kw_only=True)
class FollowupConfig:
    """The settings' values (built by ivr.configs.followup_config; no defaults here)."""

    backoff: tuple[float, ...]
    max_attempts: int
    #: Calling hours in minutes after Seoul midnight, [start, end).
    calling_start: int
    calling_end: int
    lock_seconds: float
    companion_grace: float
    monitoring_after: float  # seconds
    reached_min_talk: float

    def __post_init__(self) -> None:
        if not self.backoff or any(b < 0 for b in self.backoff):
            raise ValueError("backoff needs one or more non-negative values")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.calling_start < self.calling_end <= 24 * 60:
            raise ValueError("calling hours must be a non-empty part of the day")


def _seoul(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, SEOUL)


def in_calling_hours(now: float, config: FollowupConfig) -> bool:
    """Whether a citizen may be dialled at `now` (Seoul wall clock)."""
    t = _seoul(now)
    minute = t.hour * 60 + t.minute
    return config.calling_start <= minute < config.calling_end


def next_calling_time(now: float, config: FollowupConfig) -> float:
    """`now` if within calling hours, else when they next open."""
    if in_calling_hours(now, config):
        return now
    t = _seoul(now)
    opening = t.replace(
        hour=config.calling_start // 60, minute=config.calling_start % 60, second=0, microsecond=0
    )
    if opening <= t:
        opening += dt.timedelta(days=1)
    return opening.timestamp()


def backoff_after(attempts: int, backoff: Sequence[float]) -> float:
    """Seconds before the next attempt once `attempts` (>= 1) counted attempts failed; the last
    value repeats."""
    return float(backoff[min(max(attempts, 1), len(backoff)) - 1])


def next_due(
    attempts: int,
    result: AttemptResult,
    now: float,
    config: FollowupConfig,
    opens: Callable[[float], float] | None = None,
) -> float | None:
    """When to try again after an attempt that did not reach the citizen; `attempts` counts the
    attempts so far including this one when it counts (see COUNTED). None: the attempts ran out,
    close the task `unreachable`. The time is moved to when the task may be dialled: `opens(t)`
    (a companion's own working hours, which the calling hours do not bind), else the calling
    hours."""
    if result is AttemptResult.REACHED or result is AttemptResult.OPTED_OUT:
        raise ValueError(f"{result} is not a failed attempt")
    if opens is None:
        opens = functools.partial(next_calling_time, config=config)
    if result in COUNTED:
        if attempts >= config.max_attempts:
            return None
        return opens(now + backoff_after(attempts, config.backoff))
    # The service's side failed (staff did not answer or left): try again soon, not counted.
    return opens(now + min(config.backoff))


def reached_by_default(talk_seconds: float | None, config: FollowupConfig) -> bool:
    """Without an outcome key from the staff member: reached after enough talk."""
    return talk_seconds is not None and talk_seconds > config.reached_min_talk
