"""The ring group's external offers: follow-up calls (ivr.followup.dialler) ringing a member.

A follow-up call rings a member of the same group, so the member's state is one: a member
ringing or busy for a follow-up is not rung for a waiting caller, and the other way round.
Wrap-up after it is `released` as for any call. Mixed into ivr.staff.ringgroup.RingGroup.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ivr.staff.members import CounselorState, LegOutcome, MemberStateChange


class ExternalOffers:
    # Provided by RingGroup.
    name: str
    _busy: dict[str, str]
    _external: dict[str, str]
    _state: dict[str, CounselorState]

    if TYPE_CHECKING:

        def _get(self, member: str) -> CounselorState: ...

        def ringing_members(self) -> set[str]: ...

        def _eligible(
            self,
            online: set[str],
            ringing: set[str],
            now: float,
            on_shift: frozenset[str] | None,
            occupied: frozenset[str],
        ) -> list[str]: ...

        def _unanswered(
            self, member: str, outcome: LegOutcome, now: float
        ) -> MemberStateChange | None: ...

    def free_members(
        self,
        reachable: Iterable[str],
        now: float,
        on_shift: Iterable[str] | None = None,
        occupied: Iterable[str] = (),
    ) -> list[str]:
        """Members who may be offered a follow-up now, best first (the order inbound calls
        use). `reachable`, `on_shift` and `occupied` as for :meth:`plan`. A query: the group is
        left as it was (the caller records what it saw with :meth:`set_presence`)."""
        shift = None if on_shift is None else frozenset(on_shift)
        return self._eligible(
            set(reachable), self.ringing_members(), now, shift, frozenset(occupied)
        )

    def ring_external(self, member: str, leg_id: str, now: float) -> None:
        """`member` is being rung for a follow-up on `leg_id` (they count as ringing)."""
        st = self._get(member)
        if member in self._busy or member in self.ringing_members():
            raise ValueError(f"ring group {self.name}: {member} is already ringing or busy")
        if leg_id in self._external:
            raise ValueError(f"ring group {self.name}: leg {leg_id} is already ringing")
        self._external[leg_id] = member
        st.last_offered = now

    def external_answered(self, leg_id: str, now: float) -> str | None:
        """A follow-up leg answered: the member is busy from now on (returned; None if the leg
        is unknown: cancelled, or answered too late)."""
        member = self._external.pop(leg_id, None)
        if member is None:
            return None
        self._busy[member] = leg_id
        st = self._state[member]
        st.answered_at = now
        st.calls_taken += 1
        st.consecutive_no_answers = 0
        return member

    def external_ended(
        self, leg_id: str, outcome: LegOutcome, now: float
    ) -> MemberStateChange | None:
        """A follow-up leg ended without being answered: as :meth:`leg_ended` (cooldown, the
        no-answer pause). Unknown legs are ignored."""
        member = self._external.pop(leg_id, None)
        if member is None:
            return None
        return self._unanswered(member, outcome, now)

    def external_cancelled(self, leg_id: str) -> str | None:
        """Stop counting a follow-up leg we hung up ourselves (no cooldown, no penalty)."""
        return self._external.pop(leg_id, None)

    def external_legs(self) -> dict[str, str]:
        """The follow-up legs ringing: leg id -> member."""
        return dict(self._external)
