"""What a call leaves behind: the record the journey machine keeps and the adapter stores."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ivr.flow.commands import Outcome


class CallEndReason(enum.StrEnum):
    """Why a call ended when it was not the usual way (the `calls.end_reason` column)."""

    ABUSE = "abuse"  # the counselor ended it with `*9`
    CRISIS_TRANSFER = "crisis_transfer"  # handed over to the crisis line (`*7`)
    SILENT = "silent"  # a silent line, flagged for a welfare callback
    CONTROLLER_RESTART = "controller_restart"  # left open by a controller that died (ivr.recovery)
    PBX_LOST = "pbx_lost"  # Asterisk went away with the call (ivr.recovery)
    STAFF_LOST = "staff_lost"  # hung up waiting again, after the counselor's phone was lost


class Stage(enum.StrEnum):
    """Where a caller's time goes (`calls.ended_in` and the `*_seconds` stage columns)."""

    MENU = "menu"  # the 120 menu, until a line is chosen
    INTRO = "intro"  # the line's intro (the phones already ring)
    CONSENT = "consent"  # the summary consent question (the phones already ring)
    QUEUE = "queue"  # waiting for a counselor after the intro (and the whisper)
    STAFF = "staff"  # with a counselor
    GOODBYE = "goodbye"  # the closing prompt before the line hangs up (never `ended_in`)
    # A follow-up call's own stages (ivr.followup.journey; STAFF is its talk with the citizen,
    # GOODBYE its closing words to either side):
    WHISPER = "whisper"  # the staff member hears what the task is
    DIALLING = "dialling"  # the citizen's phone rings
    OUTCOME = "outcome"  # the citizen hung up; the staff member keys the outcome


@dataclass
class CallRecord:
    """What the call leaves behind (the adapter stores it)."""

    started_at: float
    menu_path: list[str] = field(default_factory=list)
    queue: str | None = None
    queued_at: float | None = None
    answered_at: float | None = None
    member: str | None = None
    ended_at: float | None = None
    outcome: Outcome | None = None
    #: Why the call ended when it was not the usual way.
    end_reason: CallEndReason | None = None
    #: Failed choices counted in the menu (one per caller action or silent round).
    menu_failures: int = 0
    #: The last stage the caller was in before the end (a goodbye counts as the stage before).
    ended_in: Stage | None = None
    #: When the counselor left, if the caller stayed on for the survey (talk ends there).
    staff_left_at: float | None = None
    #: Times the counselor's phone was lost mid-conversation (the caller waited again).
    staff_lost: int = 0
    #: When the caller last began waiting again after a lost counselor (the wallboard's wait).
    requeued_at: float | None = None
    #: Seconds spent in each stage entered (they add up to the call's length).
    stage_seconds: dict[Stage, float] = field(default_factory=dict)

    def spent(self, stage: Stage, seconds: float) -> None:
        self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds

    @property
    def wait_seconds(self) -> float | None:
        if self.queued_at is None:
            return None
        end = self.answered_at if self.answered_at is not None else self.ended_at
        return None if end is None else end - self.queued_at

    @property
    def talk_seconds(self) -> float | None:
        if self.answered_at is None or self.ended_at is None:
            return None
        if self.staff_lost:  # the talks only, not the waits again between them
            return self.stage_seconds.get(Stage.STAFF, 0.0)
        talked_until = self.ended_at if self.staff_left_at is None else self.staff_left_at
        return talked_until - self.answered_at
