"""The dialler's stand-in planner (ivr.followup.dialler.plan), pure, with time passed in."""

from __future__ import annotations

from ivr.followup import model
from ivr.followup.dialler import TeamView, plan
from tests.test_followup_journey import CONFIG, T0

C, S = model.Team.COUNSELORS, model.Team.SOCIAL_WORKERS


def task(id_: int, type_: model.TaskType, member: str | None = None) -> model.Task:
    return model.Task(
        id=id_,
        type=type_,
        team=model.TEAM_OF[type_],
        caller_hash=f"h{id_}",
        created_at=T0,
        due_at=T0,
        priority=model.PRIORITY[type_],
        member=member,
    )


def test_one_task_per_free_member_in_order() -> None:
    tasks = [task(1, model.TaskType.WELFARE), task(2, model.TaskType.CALLBACK)]
    teams = {C: TeamView(["c1"], 0)}
    assert plan(teams, {C: tasks}, set(), T0, CONFIG.followup) == [(1, "c1", C)]


def test_callbacks_never_ahead_of_waiting_callers() -> None:
    teams = {C: TeamView(["c1"], 1), S: TeamView(["s1"], 0)}
    cands = {C: [task(1, model.TaskType.CALLBACK)], S: [task(2, model.TaskType.IN_DEPTH)]}
    assert plan(teams, cands, set(), T0, CONFIG.followup) == [(2, "s1", S)]


def test_in_flight_and_fixed_members() -> None:
    teams = {S: TeamView(["s1", "s2"], 0)}
    cands = {S: [task(1, model.TaskType.IN_DEPTH), task(2, model.TaskType.MONITORING, "s2")]}
    assert plan(teams, cands, {1}, T0, CONFIG.followup) == [(2, "s2", S)]
    cands = {S: [task(3, model.TaskType.MONITORING, "s9")]}
    assert plan(teams, cands, set(), T0, CONFIG.followup) == []  # waits for its member
