"""Set-ups shared by the pure tests of the outbound journey (tests/test_followup_journey.py and
tests/test_followup_question.py): a configuration, a task, and helpers that take a follow-up
call to a state."""

from __future__ import annotations

from typing import Any

from ivr.flow import call as flow
from ivr.flow.conversation import ConversationParams
from ivr.followup import model
from ivr.followup.events import CitizenAnswered
from ivr.followup.journey import (
    FollowupCall,
    JourneyConfig,
)

AR = model.AttemptResult
T0 = 1_800_000_000.0  # any time: the calling hours are the whole day here
STAFF = "leg-1"
CONFIG = JourneyConfig(
    followup=model.FollowupConfig(
        backoff=(60.0, 120.0),
        max_attempts=3,
        calling_start=0,
        calling_end=24 * 60,
        lock_seconds=300,
        companion_grace=3600,
        monitoring_after=0,
        reached_min_talk=30,
    ),
    conversation=ConversationParams(20.0, 40.0),
    outcome_timeout=15.0,
)


def task(type_: model.TaskType = model.TaskType.CALLBACK, attempts: int = 0) -> model.Task:
    return model.Task(
        id=7,
        type=type_,
        team=model.TEAM_OF[type_],
        caller_hash="h1",
        created_at=T0 - 100,
        due_at=T0 - 10,
        priority=model.PRIORITY[type_],
        attempts=attempts,
    )


def of(cmds: list[Any], kind: type) -> list[Any]:
    return [c for c in cmds if isinstance(c, kind)]


def plays(cmds: list[Any]) -> list[tuple[tuple[str, ...], flow.Target]]:
    return [(c.prompts, c.target) for c in of(cmds, flow.Play)]


def answered(t: model.Task | None = None, contacts: int = 0, **kw: Any) -> FollowupCall:
    """The staff member answered: the whisper plays."""
    c = FollowupCall("fu-1", t or task(), STAFF, "c1", CONFIG, T0, contacts=contacts, **kw)
    c.start(T0)
    return c


def whisper_done(c: FollowupCall) -> list[Any]:
    return c.handle(flow.PlaybackDone(c._playback or ""), T0 + 3)


def dialling(t: model.Task | None = None) -> FollowupCall:
    c = answered(t)
    whisper_done(c)
    return c


def connected(t: model.Task | None = None, **kw: Any) -> FollowupCall:
    c = answered(t, **kw)
    whisper_done(c)
    c.handle(CitizenAnswered(), T0 + 10)
    return c
