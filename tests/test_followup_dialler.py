"""The dialler's stand-in planner (ivr.followup.dialler.plan, the signature of F2's
ivr.followup.planner.plan), pure, with time passed in."""

from __future__ import annotations

import dataclasses

from ivr.followup import model
from ivr.followup.dialler import Alert, PlannedOffer, TeamView, plan
from tests.test_followup_journey import CONFIG, T0

C, S, K = model.Team.COUNSELORS, model.Team.SOCIAL_WORKERS, model.Team.COMPANIONS
CFG = CONFIG.followup


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


def test_one_task_per_free_member_most_urgent_first() -> None:
    tasks = [task(2, model.TaskType.CALLBACK), task(1, model.TaskType.WELFARE)]
    teams = {C: TeamView(["c1"], {"c1"})}
    assert plan(teams, {C: tasks}, set(), T0, CFG).offers == [PlannedOffer(1, "c1", C)]


def test_callbacks_never_ahead_of_waiting_callers() -> None:
    teams = {C: TeamView(["c1"], {"c1"}, 1), S: TeamView(["s1"], {"s1"})}
    cands = {C: [task(1, model.TaskType.CALLBACK)], S: [task(2, model.TaskType.IN_DEPTH)]}
    assert plan(teams, cands, set(), T0, CFG).offers == [PlannedOffer(2, "s1", S)]


def test_in_flight_and_fixed_members() -> None:
    teams = {S: TeamView(["s1", "s2"], {"s1", "s2"})}
    cands = {S: [task(1, model.TaskType.IN_DEPTH), task(2, model.TaskType.MONITORING, "s2")]}
    assert plan(teams, cands, {1}, T0, CFG).offers == [PlannedOffer(2, "s2", S)]
    cands = {S: [task(3, model.TaskType.MONITORING, "s9")]}
    assert plan(teams, cands, set(), T0, CFG).offers == []  # waits for its member


def test_outside_calling_hours_only_companions_call() -> None:
    hours = dataclasses.replace(CFG, calling_start=0, calling_end=1)  # 00:00-00:01 Seoul
    teams = {C: TeamView(["c1"], {"c1"}), K: TeamView(["k1"], {"k1"})}
    cands = {C: [task(1, model.TaskType.CALLBACK)], K: [task(2, model.TaskType.COMPANION, "k1")]}
    assert plan(teams, cands, set(), T0, hours).offers == [PlannedOffer(2, "k1", K)]


def test_a_companion_away_past_the_grace_is_an_alert_not_a_stranger() -> None:
    teams = {K: TeamView(["k2"], {"k2"})}
    cands = {K: [task(5, model.TaskType.COMPANION, "k1")]}
    assert plan(teams, cands, set(), T0 + 10, CFG) == plan(teams, cands, set(), T0, CFG)
    late = plan(teams, cands, set(), T0 + CFG.companion_grace, CFG)
    assert late.offers == [] and late.alerts == [Alert(5, "companion_away")]
