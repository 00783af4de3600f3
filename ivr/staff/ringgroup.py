"""Who to ring for waiting callers: a pure model of one queue's ring group.

The adapter tells it who is waiting, who is on shift and reachable (registered), what happened
to each ring attempt and when calls end; it answers with the attempts to start and the legs to
cancel. No clock: every method that needs the time takes ``now`` (seconds, the adapter's clock).

Strategies (:class:`Strategy`):

* ``longest_idle`` (default): each waiting caller, in FIFO order, rings ONE member: the eligible
  member who has been available longest. The ring timeout is the adapter's (the leg ends with
  ``no_answer``), then the next member is tried. With several members free and several callers
  waiting, each caller gets their own member at once.
* ``ringall``: every eligible member rings for the caller who has waited longest; the first to
  answer is bridged and the other legs are cancelled.

Eligible = on shift (a set from the roster), logged in, not paused, reachable, not on a call,
not ringing, not in wrap-up, not in no-answer cooldown. A member going off shift keeps their
call; the shift only decides who gets new calls.

Fairness. "Available since" is the moment a member last became free to take a call: the end of
their last wrap-up (or never, for members who have not had a call yet: they come first). It is
NOT the time they were last rung or answered — ordering by that (as "leastrecent" does in some
PBXes) rings a member who has just finished a long call before one who finished a short call
long ago. Ties (members never called, or freed at the same instant) go to the member with the
fewest calls so far, then to the one offered a call least recently, and only then to the member
order — so a tie does not always favour the first member. With equal members and equal talk
times this is an exact round robin (tests/test_ringgroup_load.py proves max - min calls <= 1).

Wrap-up after every call: ``wrapup_seconds``; after a call ended for abuse
``abuse_wrapup_seconds``; after a call of ``long_call_seconds`` or more
``long_call_wrapup_seconds`` (the longest that applies).

No answer (and busy, rejected): the member is not rung again for
``no_answer_cooldown_seconds``; after ``max_consecutive_no_answers`` in a row they are paused
with reason ``"no_answer"``. Every change of logged-in or paused state is recorded as a
:class:`MemberStateChange`; the adapter takes them with :meth:`RingGroup.drain_changes`.

Restart. The logged-in and paused states (with the pause reason and since when) are the
counselors' own decisions and outlive the process: the adapter stores them and, at start, seeds
a fresh group with :meth:`RingGroup.restore` (not a change: nothing is recorded). Everything
else (wrap-up, cooldown, call counts) starts afresh.

Follow-up calls (external offers, ivr.followup.dialler): the dialler asks
:meth:`RingGroup.free_members` (eligible, best first, the order above), rings one with
:meth:`~RingGroup.ring_external` and reports :meth:`~RingGroup.external_answered` /
:meth:`~RingGroup.external_ended`; wrap-up follows with :meth:`~RingGroup.released` as for any
call. So a member has one state: ringing or busy for a follow-up, they are not rung for a
waiting caller, and the other way round. The vocabulary (config, member state, outcomes) is in
ivr.staff.members; the external offers are in ivr.staff.external.

Chats (ivr.chat) wait in the same list as calls (ivr.staff.waiting) and are offered on the
desk by :meth:`RingGroup.plan_chats` (ivr.staff.chatoffers: who gets chats, and why a member
in a chat still gets calls). :attr:`RingGroup.waiting` and everything about calls above see
only the calls.

Wait estimate (:meth:`RingGroup.estimated_wait`): the caller at position p needs the members
free now (f of them) plus p - f more to become free. Each of the n staffed members (on shift,
logged in, not paused, reachable) frees up about once per (average handle time + wrap-up), so
the estimate is ``max(0, p - f) * (aht + wrapup) / n``. The average handle time is the mean of
the last ``handle_time_window`` calls (``default_handle_seconds`` before the first).
Deliberately simple: it is announced rounded ("약 삼 분", ivr.speak_ko.wait_announcement).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Iterable
from typing import Literal

from ivr.staff.chatoffers import ChatOffer, ChatOffers, ChatPlan
from ivr.staff.external import ExternalOffers
from ivr.staff.members import (
    NEVER,
    PENALISED,
    Activity,
    CounselorState,
    EndReason,
    LegOutcome,
    MemberStateChange,
    MemberStatus,
    Ring,
    RingGroupConfig,
    Strategy,
    UnknownMemberError,
)
from ivr.staff.waiting import Channel, Waiting, insert_in_order

log = logging.getLogger(__name__)

__all__ = [
    "Activity",
    "Channel",
    "ChatOffer",
    "ChatPlan",
    "CounselorState",
    "EndReason",
    "LegOutcome",
    "MemberStateChange",
    "MemberStatus",
    "Ring",
    "RingGroup",
    "RingGroupConfig",
    "Strategy",
    "UnknownMemberError",
]


class RingGroup(ChatOffers, ExternalOffers):
    def __init__(
        self,
        name: str,
        members: Iterable[str],
        config: RingGroupConfig,
        *,
        logged_in: bool = True,
    ) -> None:
        """`members` in a stable order (the last tie-breaker). Members start logged in and not
        paused unless `logged_in` is False (then they log in with :meth:`login`)."""
        self.name = name
        self.members = tuple(dict.fromkeys(members))
        self.config = config
        self._state = {m: CounselorState(m, logged_in=logged_in) for m in self.members}
        self._order = {m: i for i, m in enumerate(self.members)}
        self._waiting: list[Waiting] = []  # calls and chats (ivr.staff.waiting)
        self._busy: dict[str, str] = {}  # member -> call id (connected; a follow-up: its leg)
        #: Follow-up legs ringing (external offers, ivr.followup.dialler): leg id -> member.
        self._external: dict[str, str] = {}
        self._leg_seq = 0
        self._chats: dict[str, set[str]] = {}  # ivr.staff.chatoffers
        self._chat_offers: dict[str, ChatOffer] = {}
        self._chats_taken: dict[str, int] = {}
        self._changes: list[MemberStateChange] = []
        self._handle_times: deque[float] = deque(maxlen=self.config.handle_time_window)
        # As given to the last set_presence() (for the wait estimate and the snapshot);
        # None: all.
        self._on_shift: frozenset[str] | None = None
        self._online: frozenset[str] | None = None

    # -- queries -------------------------------------------------------------------------
    @property
    def waiting(self) -> list[str]:
        """The calls waiting, first come first (chats: :attr:`waiting_chats`)."""
        return [w.call_id for w in self._waiting if w.channel is Channel.CALL]

    def position(self, call_id: str) -> int | None:
        ids = self.waiting
        return ids.index(call_id) + 1 if call_id in ids else None

    def ringing_members(self) -> set[str]:
        """Members being rung: for a waiting caller, or for a follow-up (external offer)."""
        calls = (w for w in self._waiting if w.channel is Channel.CALL)
        return {m for w in calls for m in w.legs.values()} | set(self._external.values())

    def busy_members(self) -> set[str]:
        return set(self._busy)

    def reachable(self) -> int:
        """Members who could answer at all, as of the last plan or set_presence: on shift,
        logged in, not paused and registered (busy, ringing, wrap-up and cool-down count:
        they come back)."""
        online = self._online
        return sum(
            1
            for m in self.members
            if self._staffed(m, self._on_shift) and (online is None or m in online)
        )

    def counselor(self, member: str) -> CounselorState:
        """A copy of one member's state."""
        return dataclasses.replace(self._get(member))

    def average_handle_seconds(self) -> float:
        """Mean talk time of the recent calls (the configured default before the first)."""
        if not self._handle_times:
            return self.config.default_handle_seconds
        return sum(self._handle_times) / len(self._handle_times)

    def _get(self, member: str) -> CounselorState:
        try:
            return self._state[member]
        except KeyError:
            msg = f"{member!r} is not a member of ring group {self.name}"
            raise UnknownMemberError(msg) from None

    def _find(self, call_id: str) -> Waiting | None:
        return next((w for w in self._waiting if w.call_id == call_id), None)

    def _staffed(self, member: str, on_shift: frozenset[str] | None) -> bool:
        """On shift (None: everybody is), logged in and not paused."""
        st = self._state[member]
        on = on_shift is None or member in on_shift
        return on and st.logged_in and not st.paused

    def _eligible(
        self,
        online: set[str],
        ringing: set[str],
        now: float,
        on_shift: frozenset[str] | None,
        occupied: frozenset[str],
    ) -> list[str]:
        """Members who may be rung now, best first (`occupied`: their phone has a channel up)."""
        ok = [
            st
            for m, st in self._state.items()
            if self._staffed(m, on_shift)
            and m in online
            and m not in self._busy
            and m not in ringing
            and m not in occupied
            and st.wrapup_until <= now
            and st.cooldown_until <= now
        ]
        ok.sort(
            key=lambda st: (
                st.available_since,
                st.calls_taken,
                st.last_offered,
                self._order[st.member],
            )
        )
        return [st.member for st in ok]

    def snapshot(self, now: float) -> list[MemberStatus]:
        """Every member's state, in member order."""
        ringing = self.ringing_members()
        out = []
        for m in self.members:
            st = self._state[m]
            blocked = max(0.0, st.wrapup_until - now, st.cooldown_until - now)
            if not st.logged_in:
                activity = Activity.LOGGED_OUT
            elif m in self._busy:
                activity = Activity.BUSY
            elif m in ringing:
                activity = Activity.RINGING
            elif st.paused:
                activity = Activity.PAUSED
            elif st.wrapup_until > now:
                activity = Activity.WRAPUP
            elif st.cooldown_until > now:
                activity = Activity.COOLDOWN
            else:
                activity = Activity.IDLE
            out.append(
                MemberStatus(
                    member=m,
                    activity=activity,
                    logged_in=st.logged_in,
                    paused=st.paused,
                    pause_reason=st.pause_reason,
                    on_shift=self._on_shift is None or m in self._on_shift,
                    calls_taken=st.calls_taken,
                    consecutive_no_answers=st.consecutive_no_answers,
                    available_since=None if st.available_since == NEVER else st.available_since,
                    blocked_for=blocked,
                    logged_in_since=st.logged_in_since,
                    paused_since=st.paused_since,
                )
            )
        return out

    def next_wakeup(self, now: float) -> float | None:
        """The next time a wrap-up or cooldown ends (plan again then), if any is pending."""
        times = [
            t
            for st in self._state.values()
            for t in (st.wrapup_until, st.cooldown_until)
            if t > now
        ]
        return min(times, default=None)

    def estimated_wait(self, call_id: str, now: float) -> float | None:
        """Seconds the caller is expected to wait from `now` (see the module docstring), or
        None if the caller is not waiting or nobody is staffed (on shift, logged in, unpaused
        and reachable, as given to the last :meth:`plan`).
        """
        pos = self.position(call_id)
        if pos is None:
            return None
        staffed = [
            m
            for m in self.members
            if self._staffed(m, self._on_shift) and (self._online is None or m in self._online)
        ]
        if not staffed:
            return None
        free_now = sum(
            1
            for m in staffed
            if m not in self._busy
            and self._state[m].wrapup_until <= now
            and self._state[m].cooldown_until <= now
        )
        ahead_of_free = pos - free_now
        if ahead_of_free <= 0:
            return 0.0
        cycle = self.average_handle_seconds() + self.config.wrapup_seconds
        return ahead_of_free * cycle / len(staffed)

    # -- member state --------------------------------------------------------------------
    def _record(
        self,
        member: str,
        now: float,
        name: Literal["logged_in", "paused"],
        old: bool,
        new: bool,
        reason: str | None,
    ) -> MemberStateChange:
        change = MemberStateChange(member, now, name, old, new, reason)
        self._changes.append(change)
        log.info(
            "ring group %s: %s %s %s -> %s (%s)", self.name, member, name, old, new, reason or "-"
        )
        return change

    def _withdraw_legs(self, member: str) -> list[str]:
        """Stop counting `member`'s ringing legs (the adapter hangs them up)."""
        legs = []
        for w in self._waiting:
            if w.channel is Channel.CHAT:
                continue  # chat offers are withdrawn by the next plan_chats
            for leg, m in list(w.legs.items()):
                if m == member:
                    del w.legs[leg]
                    legs.append(leg)
        for leg, m in list(self._external.items()):
            if m == member:
                del self._external[leg]
                legs.append(leg)
        return legs

    def drain_changes(self) -> list[MemberStateChange]:
        """The state changes since the last call, oldest first (the adapter records them)."""
        changes, self._changes = self._changes, []
        return changes

    def login(self, member: str, now: float, reason: str | None = None) -> None:
        st = self._get(member)
        if not st.logged_in:
            st.logged_in = True
            st.logged_in_since = now
            self._record(member, now, "logged_in", False, True, reason)

    def logout(self, member: str, now: float, reason: str | None = None) -> list[str]:
        """Log out; returns the member's ringing legs to cancel. A call in progress goes on."""
        st = self._get(member)
        if st.logged_in:
            st.logged_in = False
            st.logged_in_since = now
            self._record(member, now, "logged_in", True, False, reason)
        return self._withdraw_legs(member)

    def pause(self, member: str, reason: str, now: float) -> list[str]:
        """Pause (or change the reason of a pause); returns ringing legs to cancel."""
        st = self._get(member)
        if not st.paused or st.pause_reason != reason:
            self._record(member, now, "paused", st.paused, True, reason)
            if not st.paused:
                st.paused_since = now
            st.paused = True
            st.pause_reason = reason
        return self._withdraw_legs(member)

    def unpause(self, member: str, now: float, reason: str | None = None) -> None:
        """Unpause; also forgets no-answers and the cooldown (a fresh start)."""
        st = self._get(member)
        st.consecutive_no_answers = 0
        st.cooldown_until = NEVER
        if st.paused:
            st.paused = False
            st.pause_reason = None
            st.paused_since = now
            self._record(member, now, "paused", True, False, reason)

    def restore(
        self,
        member: str,
        *,
        logged_in: bool,
        paused: bool,
        pause_reason: str | None = None,
        logged_in_since: float | None = None,
        paused_since: float | None = None,
    ) -> None:
        """Seed a member's logged-in and paused state as stored before a restart. Not a
        change (nothing is recorded): only for a group that has not started working yet."""
        if self._waiting or self._busy or self._external:
            raise RuntimeError(f"ring group {self.name}: restore only before the first call")
        st = self._get(member)
        st.logged_in = logged_in
        st.paused = paused
        st.pause_reason = (pause_reason or "admin") if paused else None
        st.logged_in_since = logged_in_since
        st.paused_since = paused_since

    def resume_call(self, member: str, call_id: str, answered_at: float | None) -> None:
        """A call a dead run connected `member` to, taken back after a restart (ivr.resume):
        the member is on that call again, and goes to wrap-up when it ends."""
        st = self._get(member)
        self._busy[member] = call_id
        st.answered_at = answered_at

    # -- callers and legs ----------------------------------------------------------------
    def enqueue(self, call_id: str, since: float, channel: Channel = Channel.CALL) -> None:
        """Add a caller (or a chat), ordered by the time they started waiting (a caller whose
        counselor dropped out before the bridge keeps their place)."""
        if self._find(call_id) is None:
            insert_in_order(self._waiting, Waiting(call_id, since, channel))

    def dequeue(self, call_id: str) -> list[str]:
        """Remove a caller; return the legs still ringing for them (to cancel)."""
        w = self._find(call_id)
        if w is None:
            return []
        self._waiting.remove(w)
        for leg in w.legs:
            self._chat_offers.pop(leg, None)
        return list(w.legs)

    def set_presence(self, reachable: Iterable[str], on_shift: Iterable[str] | None = None) -> None:
        """Who is registered (`reachable`) and on shift (None: everybody) now, kept for
        :meth:`reachable`, :meth:`estimated_wait` and :meth:`snapshot` (:meth:`plan` keeps
        what it is given the same way)."""
        self._on_shift = None if on_shift is None else frozenset(on_shift)
        self._online = frozenset(reachable)

    def plan(
        self,
        reachable: Iterable[str],
        leg_prefix: str,
        now: float,
        on_shift: Iterable[str] | None = None,
        occupied: Iterable[str] = (),
    ) -> list[Ring]:
        """Attempts to start now. `reachable`: registered members; `on_shift`: members the
        roster has on shift now (None: no roster, everybody is); `occupied`: members whose
        phone has a channel up (a feature code call, say), not rung but still reachable."""
        self._on_shift = None if on_shift is None else frozenset(on_shift)
        online = set(reachable)  # once: `reachable` may be a one-shot iterator
        self._online = frozenset(online)
        calls = [w for w in self._waiting if w.channel is Channel.CALL]
        if not calls:
            return []
        free = self._eligible(
            online, self.ringing_members(), now, self._on_shift, frozenset(occupied)
        )
        if self.config.strategy is Strategy.RINGALL:
            head = calls[0]
            if head.legs:
                return []  # already ringing for the head of the queue
            return [self._ring(head, m, leg_prefix, now) for m in free]
        rings = []
        for w in calls:
            if not free:
                break
            if not w.legs:
                rings.append(self._ring(w, free.pop(0), leg_prefix, now))
        return rings

    def _ring(self, w: Waiting, member: str, leg_prefix: str, now: float) -> Ring:
        self._leg_seq += 1
        leg = f"{leg_prefix}{self._leg_seq}"
        w.legs[leg] = member
        self._state[member].last_offered = now
        return Ring(w.call_id, member, leg)

    def answered(self, leg_id: str, now: float) -> tuple[str, str, list[str]] | None:
        """A leg answered: (call id, member, other legs to cancel), or None if unknown/late."""
        for w in self._waiting:
            if leg_id in w.legs and w.channel is Channel.CALL:
                member = w.legs.pop(leg_id)
                others = list(w.legs)
                w.legs.clear()
                self._waiting.remove(w)
                self._busy[member] = w.call_id
                st = self._state[member]
                st.answered_at = now
                st.calls_taken += 1
                st.consecutive_no_answers = 0
                return w.call_id, member, others
        return None

    def leg_ended(self, leg_id: str, outcome: LegOutcome, now: float) -> MemberStateChange | None:
        """A ringing leg ended without being answered. The member is not rung again during the
        cooldown; no answer, busy or rejected too often in a row pauses them (reason
        ``"no_answer"``): that change is returned (and is in :meth:`drain_changes` too, which is
        what the adapter records). Unknown legs (cancelled ones) are ignored."""
        for w in self._waiting:
            member = w.legs.pop(leg_id, None) if w.channel is Channel.CALL else None
            if member is not None:
                break
        else:
            return None
        return self._unanswered(member, outcome, now)

    def _unanswered(self, member: str, outcome: LegOutcome, now: float) -> MemberStateChange | None:
        st = self._state[member]
        st.cooldown_until = now + self.config.no_answer_cooldown_seconds
        if outcome not in PENALISED:
            return None
        st.consecutive_no_answers += 1
        if st.consecutive_no_answers >= self.config.max_consecutive_no_answers and not st.paused:
            self.pause(member, "no_answer", now)
            return self._changes[-1]
        return None

    def released(
        self, member: str, now: float, reason: EndReason = EndReason.NORMAL
    ) -> float | None:
        """A member's call ended. Starts their wrap-up; returns when it ends (None if the
        member was not on a call)."""
        if self._busy.pop(member, None) is None:
            return None
        st = self._state[member]
        handle = max(0.0, now - st.answered_at) if st.answered_at is not None else 0.0
        st.answered_at = None
        self._handle_times.append(handle)
        st.wrapup_until = now + self.config.wrapup_for(handle, reason)
        st.available_since = st.wrapup_until
        return st.wrapup_until
