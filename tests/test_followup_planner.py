"""The follow-up planner (pure, time passed in): who is offered which due task, and when a
supervisor is told. A Hypothesis property drives it through many cycles with offers accepted,
declined and ended at random."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.config import Settings
from ivr.configs import followup_config
from ivr.followup.model import PRIORITY, TEAM_OF, Status, Task, TaskType, Team
from ivr.followup.planner import (
    Alert,
    AlertKind,
    Offer,
    Plan,
    TeamView,
    alert_on_close,
    deadline,
    overdue,
    plan,
)
from ivr.followup.workdays import WorkCalendar
from ivr.timezone import SEOUL

CONFIG = followup_config(Settings())  # calling hours 09:00-20:00, grace 3600 s
#: Tuesday 2 December 2025, 10:00 in Seoul: within the calling hours.
MORNING = dt.datetime(2025, 12, 2, 10, 0, tzinfo=SEOUL).timestamp()
NIGHT = dt.datetime(2025, 12, 2, 22, 0, tzinfo=SEOUL).timestamp()


def task(
    id_: int,
    type_: TaskType = TaskType.CALLBACK,
    due: float = MORNING - 60,
    member: str | None = None,
    **kw: object,
) -> Task:
    return Task(
        id=id_,
        type=type_,
        team=TEAM_OF[type_],
        caller_hash=str(kw.pop("caller_hash", f"h{id_}")),
        created_at=due,
        due_at=due,
        priority=PRIORITY[type_],
        member=member,
        **kw,  # type: ignore[arg-type]
    )


def counselors(*free: str, waiting: int = 0) -> dict[Team, TeamView]:
    return {Team.COUNSELORS: TeamView(free, frozenset(free), waiting)}


def offers(
    teams: dict[Team, TeamView],
    tasks: list[Task],
    now: float = MORNING,
    in_flight: frozenset[int] | set[int] = frozenset(),
) -> Plan:
    by_team: dict[Team, list[Task]] = {}
    for t in tasks:
        by_team.setdefault(t.team, []).append(t)
    return plan(teams, by_team, frozenset(in_flight), now, CONFIG)


def test_welfare_first_then_due_time_then_id() -> None:
    tasks = [
        task(5, TaskType.CALLBACK, due=MORNING - 300),
        task(4, TaskType.CALLBACK, due=MORNING - 300),
        task(3, TaskType.CALLBACK, due=MORNING - 900),
        task(9, TaskType.WELFARE, due=MORNING - 10),
    ]
    result = offers(counselors("c1", "c2", "c3"), tasks)
    # Best member first: the most urgent task goes to the first free member.
    assert result.offers == [
        Offer(9, "c1", Team.COUNSELORS),
        Offer(3, "c2", Team.COUNSELORS),
        Offer(4, "c3", Team.COUNSELORS),
    ]
    assert result.alerts == []


def test_no_counselor_task_while_a_caller_waits_inbound() -> None:
    tasks = [task(1, TaskType.WELFARE), task(2, TaskType.CALLBACK)]
    assert offers(counselors("c1", "c2", waiting=1), tasks).offers == []
    assert len(offers(counselors("c1", "c2", waiting=0), tasks).offers) == 2
    # Social workers do not serve the inbound queue: a waiting caller does not hold them up.
    teams = {
        Team.COUNSELORS: TeamView(("c1",), frozenset({"c1"}), 3),
        Team.SOCIAL_WORKERS: TeamView(("s1",), frozenset({"s1"}), 3),
    }
    result = offers(teams, [*tasks, task(3, TaskType.IN_DEPTH)])
    assert result.offers == [Offer(3, "s1", Team.SOCIAL_WORKERS)]


def test_outside_the_calling_hours_only_companions_call() -> None:
    teams = {
        Team.COUNSELORS: TeamView(("c1",), frozenset({"c1"})),
        Team.SOCIAL_WORKERS: TeamView(("s1",), frozenset({"s1"})),
        Team.COMPANIONS: TeamView(("p1",), frozenset({"p1"})),
    }
    tasks = [
        task(1, TaskType.CALLBACK),
        task(2, TaskType.MONITORING),
        task(3, TaskType.COMPANION, member="p1"),
    ]
    assert offers(teams, tasks, now=NIGHT).offers == [Offer(3, "p1", Team.COMPANIONS)]
    assert len(offers(teams, tasks, now=MORNING + 3600 * 9).offers) == 3  # 19:00: still open
    assert len(offers(teams, tasks, now=MORNING + 3600 * 10).offers) == 1  # 20:00: closed


def test_one_task_per_member_and_one_member_per_task() -> None:
    tasks = [task(i) for i in range(1, 6)]
    result = offers(counselors("c1", "c2"), tasks)
    assert [(o.task_id, o.member) for o in result.offers] == [(1, "c1"), (2, "c2")]
    # A task listed twice is offered once; a member listed twice gets one offer.
    result = offers(counselors("c1", "c1", "c2"), [tasks[0], tasks[0]])
    assert result.offers == [Offer(1, "c1", Team.COUNSELORS)]


def test_a_task_in_flight_is_never_offered_again() -> None:
    tasks = [task(1), task(2)]
    result = offers(counselors("c1", "c2"), tasks, in_flight={1})
    assert result.offers == [Offer(2, "c1", Team.COUNSELORS)]


def test_not_yet_due_closed_locked_and_foreign_tasks_are_skipped() -> None:
    tasks = [
        task(1, due=MORNING + 60),
        task(2, status=Status.DONE),
        task(3, locked_by="run-x", locked_until=MORNING + 100),
        task(4, locked_by="run-x", locked_until=MORNING - 1),  # an expired lease: free
    ]
    wrong_team = dataclasses.replace(task(5), team=Team.SOCIAL_WORKERS)
    result = plan(
        counselors("c1", "c2"),
        {Team.COUNSELORS: [*tasks, wrong_team]},
        frozenset(),
        MORNING,
        CONFIG,
    )
    assert result.offers == [Offer(4, "c1", Team.COUNSELORS)]


def test_a_companion_task_goes_only_to_its_companion() -> None:
    series = task(1, TaskType.COMPANION, member="p2")
    teams = {Team.COMPANIONS: TeamView(("p1", "p2"), frozenset({"p1", "p2"}))}
    assert offers(teams, [series]).offers == [Offer(1, "p2", Team.COMPANIONS)]
    # p2 busy (present, not free): the task waits; p1 is not given it.
    teams = {Team.COMPANIONS: TeamView(("p1",), frozenset({"p1", "p2"}))}
    assert offers(teams, [series]) == offers(teams, [])


def test_an_unfixed_task_leaves_a_member_to_their_own_fixed_task() -> None:
    tasks = [task(1, TaskType.WELFARE), task(2, TaskType.CALLBACK, member="c1")]
    result = offers(counselors("c1", "c2"), tasks)
    assert result.offers == [Offer(1, "c2", Team.COUNSELORS), Offer(2, "c1", Team.COUNSELORS)]
    # With only c1 free, the more urgent task still comes first.
    assert offers(counselors("c1"), tasks).offers == [Offer(1, "c1", Team.COUNSELORS)]


def test_a_companion_away_past_the_grace_raises_one_alert_and_keeps_the_task() -> None:
    due = MORNING - CONFIG.companion_grace
    series = task(1, TaskType.COMPANION, due=due, member="p2")
    teams = {Team.COMPANIONS: TeamView(("p1",), frozenset({"p1"}))}
    # Within the grace: it waits quietly.
    early = offers(teams, [series], now=MORNING - 1)
    assert early.offers == [] and early.alerts == []
    result = offers(teams, [series])
    assert result.offers == []  # not handed to p1
    assert result.alerts == [Alert(1, AlertKind.COMPANION_AWAY)]
    # Once the supervisor was told (alerted_at recorded), no second alert.
    told = dataclasses.replace(series, alerted_at=MORNING)
    assert offers(teams, [told], now=MORNING + 600).alerts == []
    # Present but busy is not away.
    busy = {Team.COMPANIONS: TeamView(("p1",), frozenset({"p1", "p2"}))}
    assert offers(busy, [series]).alerts == []


def test_an_assigned_counselor_task_waits_for_its_member_with_a_member_alert() -> None:
    assigned = task(1, TaskType.CALLBACK, due=MORNING - 2 * CONFIG.companion_grace, member="c9")
    result = offers(counselors("c1"), [assigned])
    assert result.offers == []
    assert result.alerts == [Alert(1, AlertKind.MEMBER_AWAY)]
    # Outside the calling hours nobody is expected: no alert.
    assert offers(counselors("c1"), [assigned], now=NIGHT).alerts == []


def test_a_welfare_task_closed_unreachable_is_put_before_a_supervisor() -> None:
    welfare, callback = task(1, TaskType.WELFARE), task(2, TaskType.CALLBACK)
    assert alert_on_close(welfare, Status.UNREACHABLE) == Alert(1, AlertKind.WELFARE_UNREACHABLE)
    assert alert_on_close(welfare, Status.DONE) is None
    assert alert_on_close(callback, Status.UNREACHABLE) is None


def test_an_in_depth_call_is_due_at_once_with_a_deadline_one_working_day_later() -> None:
    # MORNING is a Tuesday 10:00: due by the end of Wednesday's working hours (18:00).
    request = task(1, TaskType.IN_DEPTH, due=MORNING)
    cal = WorkCalendar()
    end = MORNING + 32 * 3600
    assert deadline(request, cal) == end
    assert not overdue(request, end, cal)
    assert overdue(request, end + 1, cal)
    assert not overdue(dataclasses.replace(request, status=Status.DONE), NIGHT + 86400 * 2, cal)
    assert deadline(task(2, TaskType.CALLBACK), cal) is None


# -- the property: many cycles with offers accepted, declined and ended at random -------------

MEMBERS = {
    Team.COUNSELORS: ("c1", "c2", "c3"),
    Team.SOCIAL_WORKERS: ("s1", "s2"),
    Team.COMPANIONS: ("p1", "p2", "p3"),
}


CITIZENS = ("h1", "h2", "h3", "h4", "h5")


@st.composite
def _tasks(draw: st.DrawFn) -> list[Task]:
    n = draw(st.integers(1, 12))
    tasks = []
    for i in range(1, n + 1):
        type_ = draw(st.sampled_from(tuple(TaskType)))
        team = TEAM_OF[type_]
        member = draw(st.none() | st.sampled_from(MEMBERS[team]))
        if type_ is TaskType.COMPANION and member is None:
            member = MEMBERS[team][0]  # a series call always has its companion
        due = MORNING + draw(st.floats(-7200.0, 7200.0))
        citizen = draw(st.sampled_from(CITIZENS))  # some citizens have several tasks
        tasks.append(task(i, type_, due=due, member=member, caller_hash=citizen))
    return tasks


@dataclass
class World:
    """The dialler's side of the cycles: tasks, which are in flight with whom."""

    tasks: dict[int, Task]
    now: float = MORNING
    #: task id -> the member it was offered to (ringing or in the call).
    in_flight: dict[int, str] = field(default_factory=dict)
    alerted: set[int] = field(default_factory=set)

    def busy(self) -> set[str]:
        return set(self.in_flight.values())


_subset = st.lists(st.booleans(), min_size=3, max_size=3)
CYCLE = st.tuples(
    st.floats(0.0, 4 * 3600.0),  # time passes (into the night, sometimes)
    st.integers(0, 2),  # callers waiting inbound
    st.tuples(_subset, _subset, _subset),  # who is present, per team
    st.randoms(use_true_random=False),  # the order of the free, and what happens to offers
    st.sets(st.sampled_from(CITIZENS), max_size=2),  # citizens on a live inbound call
)


@settings(max_examples=300, deadline=None)
@given(_tasks(), st.lists(CYCLE, min_size=1, max_size=25))
def test_no_task_or_member_is_ever_offered_twice_and_callbacks_never_jump_the_queue(
    tasks: list[Task], cycles: list[tuple]
) -> None:
    world = World({t.id: t for t in tasks})
    for elapsed, waiting, presence, rnd, live in cycles:
        world.now += elapsed
        teams: dict[Team, TeamView] = {}
        for team, flags in zip(Team, presence, strict=True):
            present = [m for m, on in zip(MEMBERS[team], flags, strict=False) if on]
            free = [m for m in present if m not in world.busy()]
            rnd.shuffle(free)
            teams[team] = TeamView(tuple(free), frozenset(present), waiting)
        # Candidates as the records would give them, plus (sometimes) the ones in flight: the
        # planner must skip those itself.
        candidates: dict[Team, list[Task]] = {}
        for t in world.tasks.values():
            if t.status is Status.OPEN and (t.id not in world.in_flight or rnd.random() < 0.5):
                candidates.setdefault(t.team, []).append(t)
        busy_citizens = {world.tasks[tid].caller_hash for tid in world.in_flight} | live
        result = plan(
            teams, candidates, frozenset(world.in_flight), world.now, CONFIG, busy_citizens
        )

        offered = [o.task_id for o in result.offers]
        members = [o.member for o in result.offers]
        assert len(set(offered)) == len(offered)
        assert len(set(members)) == len(members)
        citizens = [world.tasks[tid].caller_hash for tid in offered]
        assert len(set(citizens)) == len(citizens)  # one staff member per citizen
        assert not set(citizens) & busy_citizens  # never while called already or on a call
        for o in result.offers:
            t = world.tasks[o.task_id]
            assert o.task_id not in world.in_flight  # never two staff on one task
            assert o.member not in world.busy()  # never two offers to one member
            assert o.member in teams[o.team].free and t.team is o.team
            assert t.status is Status.OPEN and t.due_at <= world.now
            assert t.member in (None, o.member)  # a fixed task only to its member
            if o.team is Team.COUNSELORS:
                assert waiting == 0  # callbacks never ahead of callers on hold
        # Unfixed tasks are taken most urgent first: the offered ones come before the rest.
        for team in teams:
            eligible = sorted(
                (
                    t
                    for t in candidates.get(team, ())
                    if t.member is None
                    and t.due_at <= world.now
                    and t.id not in world.in_flight
                    and t.caller_hash not in busy_citizens
                    # another task of the same citizen was offered instead
                    and (t.id in offered or t.caller_hash not in citizens)
                ),
                key=lambda t: (t.priority, t.due_at, t.id),
            )
            got = [t.id for t in eligible if t.id in offered]
            assert got == [t.id for t in eligible[: len(got)]]
        for a in result.alerts:
            t = world.tasks[a.task_id]
            assert t.member is not None and t.member not in teams[t.team].present
            assert a.task_id not in world.alerted  # a supervisor is told once
            world.alerted.add(a.task_id)
            world.tasks[a.task_id] = dataclasses.replace(t, alerted_at=world.now)

        for o in result.offers:
            world.in_flight[o.task_id] = o.member
        # What happens to what is in flight: still ringing or talking, declined (due again
        # later), ended reached (closed) or not (rescheduled).
        for tid in list(world.in_flight):
            fate = rnd.choice(("stays", "stays", "declined", "reached", "rescheduled"))
            if fate == "stays":
                continue
            del world.in_flight[tid]
            t = world.tasks[tid]
            if fate == "reached":
                world.tasks[tid] = dataclasses.replace(t, status=Status.DONE)
            elif fate == "rescheduled":
                world.tasks[tid] = dataclasses.replace(
                    t, due_at=world.now + rnd.choice((0.0, 1800.0)), attempts=t.attempts + 1
                )


def test_one_citizen_is_never_dialled_by_two_staff_at_once() -> None:
    callback = task(1, TaskType.CALLBACK, caller_hash="h9")
    in_depth = task(2, TaskType.IN_DEPTH, caller_hash="h9")
    teams = {
        Team.COUNSELORS: TeamView(("c1",), frozenset({"c1"})),
        Team.SOCIAL_WORKERS: TeamView(("s1",), frozenset({"s1"})),
    }
    by_team = {Team.COUNSELORS: [callback], Team.SOCIAL_WORKERS: [in_depth]}
    result = plan(teams, by_team, frozenset(), MORNING, CONFIG)
    assert result.offers == [Offer(1, "c1", Team.COUNSELORS)]
    # Not while they are on a live call (or another of their tasks is in flight).
    assert plan(teams, by_team, frozenset(), MORNING, CONFIG, {"h9"}).offers == []
