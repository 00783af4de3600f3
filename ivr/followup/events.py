"""What happens to an outbound follow-up call beyond the inbound vocabulary (ivr.flow.events):
the citizen's leg, which the controller dials. Small frozen events for ivr.followup.journey."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CitizenAnswered:
    """The citizen answered the call dialled on the trunk."""


@dataclass(frozen=True, slots=True)
class CitizenGone:
    """The citizen's channel ended (before or after answering), or could not be dialled."""

    #: The Q.850 cause Asterisk gave (17 busy, 19 no answer, ...; 0: unknown or not dialled).
    cause: int = 0
    #: Not dialled through the dialler's own failure: not the citizen's attempt (not counted).
    service: bool = False


FollowupEvent = CitizenAnswered | CitizenGone
