"""Dialling paused or on, per team: the operators' control (`ivr-admin followup pause|resume`).

A supervisor pauses the follow-up calls for an outage of the trunk, a drill or an incident —
all of them, or one team's (the companions', say). Paused, nothing is offered to that team's
staff and no citizen is dialled; requests still become tasks, to be called once dialling is
resumed. Calls already ringing or in progress go on (nobody is cut off).

Durable: each change is a row of `followup_dialling` (team, paused, when, by whom, why) and a
team's latest row is in force, so a restarted controller stays paused. The state is read once
at start (`load`) and kept in memory; the dialler's cycle asks `dialling()` on every tick
without a database read. A database without a row for a team (a new one) takes the
`followup_dialling` setting as that team's first state, recorded as set by ``settings``.
Every change is on the audit log with who, when and why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ivr.audit import audit
from ivr.context import safe_store
from ivr.followup.model import Team
from ivr.store import Store

log = logging.getLogger(__name__)

#: Who set a state that came from the settings (a new database).
SETTINGS_BY = "settings"
#: The longest reason kept (an operator's note, not a report).
REASON_MAX = 200


@dataclass(frozen=True)
class TeamDialling:
    """One team's dialling: paused or not, since when, set by whom, why."""

    team: Team
    paused: bool
    since: float | None  # None: not loaded yet (the setting's value in the meantime)
    by: str
    reason: str | None = None

    def view(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "since": self.since,
            "by": self.by,
            "reason": self.reason,
        }


def clean_reason(text: object) -> str | None:
    """An operator's reason as it is kept: one line, at most REASON_MAX characters."""
    if text is None:
        return None
    one_line = " ".join(str(text).split())
    return one_line[:REASON_MAX] or None


class DiallingControl:
    def __init__(self, store: Store, fresh_dialling: bool) -> None:
        self.store = store
        #: The state of a team the database has no row for (the `followup_dialling` setting).
        self.fresh_dialling = fresh_dialling
        self.teams: dict[Team, TeamDialling] = {
            team: TeamDialling(team, not fresh_dialling, None, SETTINGS_BY) for team in Team
        }
        #: The stored states have been read. Until then nobody is dialled: a pause an operator
        #: set before a restart must hold even when the first read fails.
        self.loaded = False

    def dialling(self) -> frozenset[Team]:
        """The teams whose tasks are offered now (in memory: read on every tick)."""
        if not self.loaded:
            return frozenset()
        return frozenset(t for t, state in self.teams.items() if not state.paused)

    def view(self) -> dict[str, Any]:
        """For /status and the API: all paused or not, and each team's state."""
        return {
            "paused": not self.dialling(),
            "teams": {team.value: state.view() for team, state in self.teams.items()},
        }

    async def load(self, now: float) -> None:
        """Read the states in force (at start). A team without a row takes the setting's
        state, written down so that it is the team's state from now on. A database that cannot
        be read leaves every team undialled (logged); the dialler tries again on its ticks."""
        try:
            rows = await self.store.fetch(
                "SELECT team, paused, at, by, reason FROM followup_dialling"
                " WHERE id IN (SELECT MAX(id) FROM followup_dialling GROUP BY team)"
            )
        except Exception:
            log.exception("cannot read the follow-up dialling state; nobody is dialled until it is")
            return
        self.loaded = True
        known = set()
        for team_name, paused, at, by, reason in rows:
            try:
                team = Team(team_name)
            except ValueError:
                continue
            known.add(team)
            self.teams[team] = TeamDialling(team, bool(paused), float(at), str(by), reason)
        fresh = [team for team in Team if team not in known]
        if fresh:
            why = None if self.fresh_dialling else "followup_dialling = false"
            await self.change(fresh, not self.fresh_dialling, SETTINGS_BY, why, now)
        paused = [t.value for t, s in self.teams.items() if s.paused]
        if paused:
            log.info("follow-up dialling paused for %s", ", ".join(paused))
        if not self.fresh_dialling and not fresh and self.dialling():
            log.warning(
                "followup_dialling = false is the state of a new database only; this one"
                " dials for %s (ivr-admin followup pause stops it)",
                ", ".join(sorted(t.value for t in self.dialling())),
            )

    async def change(
        self, teams: Iterable[Team], paused: bool, by: str, reason: str | None, now: float
    ) -> list[Team]:
        """Pause or resume `teams`; those already so are left as they are (their since, by
        and reason kept). Returns the teams changed. The state changes at once; a row the
        database cannot take now is kept by the store and written later."""
        reason = clean_reason(reason) if paused else None
        changed = [
            t for t in teams if self.teams[t].paused != paused or self.teams[t].since is None
        ]
        for team in changed:
            self.teams[team] = TeamDialling(team, paused, now, by, reason)
            audit.info(
                "follow-up dialling for %s %s by %s%s",
                team,
                "paused" if paused else "on",
                by,
                f": {reason}" if reason else "",
            )
        for team in changed:
            await safe_store(
                self.store.write(
                    "follow-up dialling",
                    "INSERT INTO followup_dialling (team, paused, at, by, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (team.value, int(paused), now, by, reason),
                )
            )
        return changed
