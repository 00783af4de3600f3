"""The follow-up offers in flight: shared by the offer cycle (ivr.followup.dialler) and the
journey's effects (ivr.followup.effects). Plain state, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.followup import model


@dataclass
class Offer:
    """A task offered to a staff member: their leg, and the call once they answered."""

    task: model.Task
    member: str
    team: model.Team
    leg_id: str
    call_id: str
    answered: bool = False
    attempt_id: int | None = None
    #: Asterisk's channel driver ended the staff leg (no media, a failed session): lost.
    lost: bool = False


@dataclass
class Offers:
    """Staff legs ringing or answered, the calls they started, the citizens' channels."""

    by_leg: dict[str, Offer] = field(default_factory=dict)  # staff leg id -> offer
    by_call: dict[str, Offer] = field(default_factory=dict)  # call id -> offer (answered)
    citizens: set[str] = field(default_factory=set)  # citizen channels dialled and not gone

    def in_flight(self) -> list[Offer]:
        """Ringing, or on a call (which may outlive the staff leg: a crisis hand-over)."""
        return [*self.by_leg.values(), *self.by_call.values()]
