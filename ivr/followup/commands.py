"""What the outbound journey (ivr.followup.journey) asks its effects (ivr.followup.effects) to
do beyond the inbound commands (ivr.flow.commands): small frozen commands.

The record commands (attempt, opt-out, task) are bookkeeping: their handlers log a failure and
never end the call.
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.followup.model import AttemptResult, Outcome, Status


@dataclass(frozen=True, slots=True)
class DialCitizen:
    """Dial the task's citizen on the trunk (the number is unsealed in memory only now); the
    channel's id is the call id. A dial that cannot be started comes back as `CitizenGone`."""


@dataclass(frozen=True, slots=True)
class Ringback:
    """Play the ringing tone to the staff leg while the citizen's phone rings (stopped with
    `StopPlayback(playback_id)`)."""

    playback_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class RecordAttempt:
    """This attempt ended: its result, the SIP/Q.850 cause and the talk time."""

    result: AttemptResult
    sip_cause: int | None
    talk_seconds: float | None
    #: Counts against the citizen's attempts (model.COUNTED).
    counted: bool


@dataclass(frozen=True, slots=True)
class RecordOptOut:
    """The citizen pressed the opt-out key: no follow-up call ever again, every open task of
    theirs closed `opted_out` at once."""


@dataclass(frozen=True, slots=True)
class CloseTask:
    status: Status
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class RescheduleTask:
    """Due again at `due_at` (the dialling lock is released)."""

    due_at: float


@dataclass(frozen=True, slots=True)
class EndFollowup:
    """The journey is over (just before `Finish`): release the task's lock, forget the call."""


FollowupCommand = (
    DialCitizen | Ringback | RecordAttempt | RecordOptOut | CloseTask | RescheduleTask | EndFollowup
)
