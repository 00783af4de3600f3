"""Which due task is offered to which staff member now: pure, with the time passed in.

The dialler (ivr/followup/dialler.py) builds one `TeamView` per team from the staff driver
(who is free, best first, and who is present at all), reads each team's due tasks with
`FollowupRecords.due`, and calls `plan` on every tick. The rules:

- Counselors take follow-up tasks (callbacks, welfare checks) only while no caller waits in the
  inbound queue: a callback never jumps ahead of people on hold.
- Counselors and social workers call only within the calling hours (Seoul). Companions call by
  their own schedule: a companion off duty is not `present`, and the adapter decides that from
  config/teams.toml.
- Most urgent first: priority (welfare before callback, ...), then due time, then id.
- One task per free member and one member per task; a task already in flight (offered, ringing,
  being dialled) is never offered again. One offer per citizen: not while another task of
  theirs is in flight or they are on a live call.
- A task fixed to a member (a companion's series, an administrator's `assign`) goes to that
  member only, when they are free. While they are not even present it waits; once they have
  been away for `companion_grace` past the due time a supervisor is told, once (an `Alert`;
  the dialler records `alerted_at`). It is never handed to a stranger.

A welfare task that runs out of attempts is closed by the dialler, not here (the planner sees
only open tasks): `alert_on_close` says which closes a supervisor must hear of.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from ivr.followup.model import FollowupConfig, Status, Task, TaskType, Team, in_calling_hours
from ivr.followup.workdays import WorkCalendar, in_depth_deadline

#: Teams whose calls keep to the calling hours (companions keep to their own schedule).
CALLING_HOURS_TEAMS = frozenset({Team.COUNSELORS, Team.SOCIAL_WORKERS})
#: Teams that serve the inbound queue too: they take tasks only when no caller waits.
INBOUND_TEAMS = frozenset({Team.COUNSELORS})


class AlertKind(enum.StrEnum):
    """What a supervisor is told about (a SIP MESSAGE; the task's id, never the number)."""

    COMPANION_AWAY = "companion_away"  # a series call waits for its companion past the grace
    MEMBER_AWAY = "member_away"  # the same for a task assigned to a counselor/social worker
    WELFARE_UNREACHABLE = "welfare_unreachable"  # a welfare check ran out of attempts


@dataclass(frozen=True)
class TeamView:
    """A team as the staff driver sees it now."""

    #: Members who can take an offer now (logged in, registered, not busy/ringing/in wrap-up),
    #: best first (the order inbound calls use).
    free: Sequence[str]
    #: Members on duty, logged in and registered (free or busy).
    present: AbstractSet[str] = frozenset()
    #: Callers waiting in the inbound queue this team serves.
    inbound_waiting: int = 0


@dataclass(frozen=True)
class Offer:
    task_id: int
    member: str
    team: Team


@dataclass(frozen=True)
class Alert:
    task_id: int
    kind: AlertKind


@dataclass(frozen=True)
class Plan:
    offers: list[Offer] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def urgency(task: Task) -> tuple[int, float, int]:
    """The order tasks are served in: priority, then due time, then id."""
    return (task.priority, task.due_at, task.id)


def may_offer(team: Team, view: TeamView, now: float, config: FollowupConfig) -> bool:
    """Whether `team` takes follow-up tasks at all now."""
    if team in INBOUND_TEAMS and view.inbound_waiting > 0:
        return False
    return team not in CALLING_HOURS_TEAMS or in_calling_hours(now, config)


def plan(
    teams: Mapping[Team, TeamView],
    candidates: Mapping[Team, Sequence[Task]],
    in_flight: AbstractSet[int],
    now: float,
    config: FollowupConfig,
    busy_citizens: AbstractSet[str] = frozenset(),
) -> Plan:
    """The offers to make now (each to a free member of the task's team) and the alerts to
    raise. `candidates` are each team's due tasks (from `FollowupRecords.due`); tasks that are
    not open, not yet due, locked, in flight or of another team are skipped. `busy_citizens`
    are the caller hashes of the tasks in flight and of the live calls: a citizen is dialled by
    one staff member at a time, and never while on a call (one offer per citizen a cycle)."""
    result = Plan()
    taken_tasks: set[int] = set(in_flight)
    taken_members: set[str] = set()
    taken_citizens: set[str] = set(busy_citizens)
    for team in Team:  # a stable order: the same inputs always give the same plan
        view = teams.get(team)
        if view is None:
            continue
        tasks = sorted(
            (
                t
                for t in candidates.get(team, ())
                if t.team is team
                and t.status is Status.OPEN
                and t.due_at <= now
                and not t.locked(now)
                and t.id not in taken_tasks
            ),
            key=urgency,
        )
        hours_ok = team not in CALLING_HOURS_TEAMS or in_calling_hours(now, config)
        if hours_ok:
            result.alerts.extend(_away_alerts(team, view, tasks, now, config))
        if not may_offer(team, view, now, config):
            continue
        free = [m for m in dict.fromkeys(view.free) if m not in taken_members]
        # Members whose fixed tasks are due: an unfixed task goes to somebody else if it can.
        wanted = {t.member for t in tasks if t.member is not None}
        for task in tasks:
            if not free:
                break
            if task.id in taken_tasks:
                continue  # the same task listed twice
            if task.caller_hash in taken_citizens:
                continue  # the citizen is called (or calling) already
            if task.member is not None:
                if task.member not in free:
                    continue  # waits for its member
                member = task.member
            else:
                member = next((m for m in free if m not in wanted), free[0])
            free.remove(member)
            taken_members.add(member)
            taken_tasks.add(task.id)
            taken_citizens.add(task.caller_hash)
            result.offers.append(Offer(task.id, member, team))
    return result


def _away_alerts(
    team: Team, view: TeamView, tasks: Sequence[Task], now: float, config: FollowupConfig
) -> list[Alert]:
    kind = AlertKind.COMPANION_AWAY if team is Team.COMPANIONS else AlertKind.MEMBER_AWAY
    return [
        Alert(t.id, kind)
        for t in tasks
        if t.member is not None
        and t.member not in view.present
        and t.alerted_at is None
        and now - t.due_at >= config.companion_grace
    ]


def alert_on_close(task: Task, status: Status) -> Alert | None:
    """The alert a supervisor must get when `task` is closed with `status`: a welfare check
    that could not reach the citizen is not closed silently."""
    if task.type is TaskType.WELFARE and status is Status.UNREACHABLE:
        return Alert(task.id, AlertKind.WELFARE_UNREACHABLE)
    return None


def deadline(task: Task, cal: WorkCalendar) -> float | None:
    """When a task must have been dialled by: an in-depth call within one working day of the
    request — by the end of the social workers' first working day that had not begun when it
    was made (ivr.followup.workdays; weekends, Korean public holidays and the centre's closure
    days do not count). It is due at once; the deadline is for the worklist and the reports,
    derived from the time of the request (`in_depth_at`; `created_at` for tasks stored before
    that column), so no column holds it. None: no deadline beyond "as soon as possible"."""
    if task.type is TaskType.IN_DEPTH:
        return in_depth_deadline(task.in_depth_at or task.created_at, cal)
    return None


def overdue(task: Task, now: float, cal: WorkCalendar) -> bool:
    """An open task past its deadline (shown first to a supervisor)."""
    limit = deadline(task, cal)
    return task.status is Status.OPEN and limit is not None and now > limit
