"""The counselors' logged-in and paused states across restarts.

They are the counselors' (and supervisors') own decisions — "paused: training", "logged out" —
so a restart must not forget them. Every change is stored (``counselor_state``, one row per
member, next to the ``counselor_events`` history) and a fresh controller seeds its ring groups
from the rows before it takes its first call. Wrap-up, cooldowns and call counts start afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ivr.staff.ringgroup import RingGroup
from ivr.store import MemberState, Store

log = logging.getLogger(__name__)


def state_of(group: RingGroup, member: str) -> MemberState:
    c = group.counselor(member)
    return MemberState(
        member, c.logged_in, c.logged_in_since, c.paused, c.pause_reason, c.paused_since
    )


async def restore(store: Store, groups: Iterable[RingGroup]) -> None:
    """Seed `groups` (not yet working) with the stored states; members no longer in any group
    are ignored. A database that cannot be read leaves the defaults (logged in), logged."""
    try:
        stored = await store.member_states()
    except Exception:
        log.exception("cannot read the stored counselor states; everybody starts logged in")
        return
    groups = list(groups)
    for st in stored:
        found = [g for g in groups if st.member in g.members]
        for group in found:
            group.restore(
                st.member,
                logged_in=st.logged_in,
                paused=st.paused,
                pause_reason=st.pause_reason,
                logged_in_since=st.logged_in_since,
                paused_since=st.paused_since,
            )
        if found and (not st.logged_in or st.paused):
            log.info(
                "%s restored: %s%s",
                st.member,
                "logged in" if st.logged_in else "logged out",
                f", paused ({st.pause_reason})" if st.paused else "",
            )


def seed_from(group: RingGroup, others: Iterable[RingGroup]) -> None:
    """Seed a new group (a queue added by a reload) with its members' states elsewhere."""
    for other in others:
        for m in set(group.members) & set(other.members):
            st = other.counselor(m)
            group.restore(
                m,
                logged_in=st.logged_in,
                paused=st.paused,
                pause_reason=st.pause_reason,
                logged_in_since=st.logged_in_since,
                paused_since=st.paused_since,
            )
