"""Calls taken back by a restarted controller (issue 14): each live inbound call's snapshot is
kept in the `live_calls` table as its journey changes, and the next run rebuilds the journey
(ivr.flow.restore) for every caller still in Asterisk.

- `save(call)`, after every event a call handled: the row is written when it differs from the
  one last written (through the store's ordered writes, like the call record); the call
  record's end deletes it in the same transaction (the `live_call_ended` trigger).
- `load()`, at start (before the heartbeat is touched): the dead run's rows, and how long no
  controller was alive.
- `adopt(channels)`, at the first connect, before recovery's reconcile: a caller still in our
  application whose snapshot restores is ours again — the menu from the start, back in the
  queue by the original arrival with one "기다려 주셔서 감사합니다", or still bridged with the
  counselor, who is on that call again in the ring group and goes to wrap-up when it ends.
  A counselor who hung up while no controller ran: a caller being whispered about waits again
  by the original arrival; a connected call ends as the counselor's hang-up ends it, and the
  counselor goes to wrap-up (`StaffDriver.leg_gone`). A caller answering the post-call survey
  hears its thank-you and the call ends completed.
  The downtime is noted on the call record (`downtime_seconds`). A caller whose snapshot does
  not restore is left to reconcile (the apology, a BYE); a row whose caller is gone closes
  its record once (`controller_restart`).

A consented call's recording stops with the dead run's taps; the call taken back is
recorded on in new segments (`ivr120-<call>-caller-2`, …) from the taps it opens, and at its
end every segment is collected for one summary (a withdrawal deletes them all). Not taken
back yet: a warm transfer in progress.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivr import recovery
from ivr.ari.client import AriError
from ivr.context import ActiveCall, safe_store
from ivr.flow import call as flow
from ivr.flow.conversation import State as TalkState
from ivr.flow.events import CrisisEnded, StaffHungUp
from ivr.flow.record import CallEndReason
from ivr.flow.restore import Snapshot, restore, take
from ivr.flow.states import FlowConfig
from ivr.staff.driver import Leg
from ivr.tap import TAP_PREFIX

if TYPE_CHECKING:
    from ivr.controller import Controller

log = logging.getLogger(__name__)

#: The columns read back at start, in `_parse`'s order.
_COLUMNS = (
    "call_id, state, started_at, stage_since, menu_path, menu_failures, queue, queued_at,"
    " member, staff_leg, answered_at, consent, talk, last_playback, stage_seconds,"
    " owner, caller_hash, channel_name, flag_level, consent_stored, holding_bridge, talk_bridge,"
    " recordings, staff_lost, crisis_leg, requeued_at"
)


@dataclass(frozen=True)
class LiveRow:
    """One `live_calls` row: the journey's snapshot and the adapter's part of the call."""

    snap: Snapshot
    owner: str
    caller_hash: str
    channel_name: str
    flag_level: int
    consent_stored: bool
    holding_bridge: str | None
    talk_bridge: str | None
    #: Every recording of the call so far, this run's and earlier runs' (name -> party).
    recordings: dict[str, str]


def row_of(call: ActiveCall, owner: str) -> LiveRow | None:
    """The row for a live inbound call (None: not an inbound journey, or ended)."""
    if not isinstance(call.flow, flow.CallFlow) or call.flow.ended:
        return None
    snap = take(call.flow)
    return LiveRow(
        snap,
        owner,
        call.caller,
        call.channel_name,
        call.flag_level,
        call.consent_stored,
        call.holding_bridge,
        call.talk_bridge,
        call.all_recordings(),
    )


class LiveCalls:
    def __init__(self, ctrl: Controller) -> None:
        self.ctrl = ctrl
        self._written: dict[str, LiveRow] = {}
        self._left: list[LiveRow] = []  # the dead run's rows, until the first connect
        self._downtime: float | None = None
        #: This run's playback id part (never one of a dead run's ids).
        self.generation = f"r{secrets.token_hex(2)}"

    # -- writing ---------------------------------------------------------------------------
    async def save(self, call: ActiveCall) -> None:
        row = row_of(call, self.ctrl.ctx.leg_prefix)
        if row is None:
            self._written.pop(call.call_id, None)
            return
        if self._written.get(call.call_id) == row:
            return
        self._written[call.call_id] = row
        s = row.snap
        values = {
            "call_id": s.call_id,
            "owner": row.owner,
            "state": s.state,
            "talk": s.talk,
            "caller_hash": row.caller_hash,
            "channel_name": row.channel_name,
            "flag_level": row.flag_level,
            "started_at": s.started_at,
            "stage_since": s.stage_since,
            "stage_seconds": json.dumps(s.stage_seconds),
            "menu_path": s.menu_path,
            "menu_failures": s.menu_failures,
            "queue": s.queue,
            "queued_at": s.queued_at,
            "member": s.member,
            "staff_leg": s.staff_leg,
            "answered_at": s.answered_at,
            "consent": s.consent,
            "consent_stored": int(row.consent_stored),
            "holding_bridge": row.holding_bridge,
            "talk_bridge": row.talk_bridge,
            "recordings": json.dumps(row.recordings),
            "last_playback": s.last_playback,
            "staff_lost": s.staff_lost,
            "crisis_leg": s.crisis_leg,
            "requeued_at": s.requeued_at,
            "updated_at": self.ctrl.clock(),
        }
        sql = "INSERT OR REPLACE INTO live_calls ({}) VALUES ({})".format(
            ", ".join(values), ", ".join("?" * len(values))
        )
        await safe_store(self.ctrl.store.write("live call", sql, tuple(values.values())))

    # -- reading at start ------------------------------------------------------------------
    async def load(self) -> None:
        """The rows a dead run left (call at start, before the heartbeat is touched)."""
        now = self.ctrl.clock()
        seen = recovery.last_alive(self.ctrl.settings.state_dir)
        self._downtime = max(0.0, now - seen) if seen is not None else None
        try:
            rows = await self.ctrl.store.fetch(f"SELECT {_COLUMNS} FROM live_calls")
        except Exception:
            log.exception("cannot read the live calls a previous run left; none taken back")
            return
        for r in rows:
            try:
                self._left.append(_parse(r))
            except (TypeError, ValueError) as exc:
                log.warning("live call %s cannot be read (%s); left to recovery", r[0], exc)
        if self._left:
            log.warning("%d live call(s) left by a previous run to take back", len(self._left))

    # -- taking the calls back -------------------------------------------------------------
    async def adopt(self, channels: list[dict[str, Any]]) -> set[str]:
        """Take back the dead run's callers still in Asterisk (see the module doc). Returns
        the callers taken back, for reconcile to leave alone: also one whose call ended here
        (its counselor had hung up), which is hung up, no orphan to apologise to."""
        taken: set[str] = set()
        rows, self._left = self._left, []
        present = {str(c.get("id", "")): c for c in channels}
        # The recordings the store knows of and a snapshot may not (a crash in between); with
        # the database failing, the snapshots' alone.
        stored: dict[str, dict[str, str]] = {}
        if rows:
            with contextlib.suppress(Exception):
                for name, owner, party in await self.ctrl.store.recordings_to_collect():
                    stored.setdefault(owner, {})[name] = party
        for row in rows:
            cid = row.snap.call_id
            channel = present.get(cid)
            if channel is None or cid in self.ctrl.calls:
                await self._close(cid, "its caller is gone")
                continue
            # The counselor may have hung up while no controller ran.
            staff_gone = bool(row.snap.staff_leg) and row.snap.staff_leg not in present
            got = restore(
                row.snap,
                self.ctrl.journey.flow_config,
                self.ctrl.clock(),
                self.generation,
                staff_gone=staff_gone,
            )
            if got is None:
                log.warning(
                    "call %s: snapshot (%s) not understood; to recovery", cid, row.snap.state
                )
                await self._close(cid, "its snapshot could not be restored")
                continue
            await self._take_back(row, channel, present, stored.get(cid, {}), *got)
            taken.add(cid)
        return taken

    async def _take_back(
        self,
        row: LiveRow,
        channel: dict[str, Any],
        present: dict[str, Any],
        stored: dict[str, str],
        journey: flow.CallFlow,
        cmds: list[flow.Command],
    ) -> None:
        ctrl, s = self.ctrl, row.snap
        cid = s.call_id
        call = ActiveCall(
            call_id=cid,
            flow=journey,
            caller=row.caller_hash,
            number=str((channel.get("caller") or {}).get("number") or ""),
            flag_level=row.flag_level,
            holding_bridge=row.holding_bridge,
            talk_bridge=row.talk_bridge,
            channel_name=str(channel.get("name") or row.channel_name),
            consent_stored=row.consent_stored,
            earlier_recordings={**stored, **row.recordings},
        )
        # A consented counseling is recorded on (new segments, from the taps opened now).
        talking = journey.conversation is not None and journey.conversation.recording
        call.recording = bool(
            talking and row.consent_stored and journey.state is flow.State.CONNECTED
        )
        # The dead run's playback may still play, and its audio taps hold the ids ours take.
        if s.last_playback:
            await self._delete(f"playbacks/{s.last_playback}")
        for party, chan in (("caller", cid), ("staff", s.staff_leg)):
            if chan:
                found = taps_of(present, base := f"{TAP_PREFIX}{party}-{chan}")
                for tap_id in found:
                    await self._drop_tap(tap_id)
                # Ours take ids after the dead run's (theirs may still be going away).
                call.taps_opened[party] = max(int(t[len(base) + 1 :] or 1) for t in found)
        ctrl.calls[cid] = call
        leg_gone = False
        with_leg = journey.state is flow.State.CONNECTED or any(
            isinstance(c, flow.Connect) for c in cmds
        )
        # A crisis line joined (warm transfer) is the call's again; one gone meanwhile ends
        # as its hang-up does (back to the counselor, or the call's end once handed over).
        crisis_gone = bool(s.crisis_leg) and s.crisis_leg not in present
        if s.crisis_leg and not crisis_gone:
            ctrl.journey.crisis_legs[s.crisis_leg] = cid
        if s.staff_leg and s.member and with_leg:
            # The counselor is on this call again; their leg is the staff driver's.
            queue = s.queue or ""
            if queue in ctrl.staff.groups:
                ctrl.staff.legs[s.staff_leg] = Leg(cid, queue, s.member, answered=True)
                ctrl.staff.groups[queue].resume_call(s.member, cid, journey.record.answered_at)
            leg_gone = s.staff_leg not in present
        log.warning(
            "call %s: taken back after a restart as %s (no controller for %s s)",
            cid,
            journey.state.value,
            "?" if self._downtime is None else f"{self._downtime:.1f}",
        )
        if self._downtime is not None:
            await safe_store(
                ctrl.store.write(
                    "call downtime",
                    "UPDATE calls SET downtime_seconds = COALESCE(downtime_seconds, 0) + ?"
                    " WHERE call_id=?",
                    (self._downtime, cid),
                )
            )
        await ctrl.effects.run(call, cmds)
        if leg_gone and s.staff_leg in ctrl.staff.legs:
            # The counselor hung up while no controller ran: as a hang-up now (the member is
            # released to wrap-up; the call ends as the counselor's hang-up ends it).
            await ctrl.staff.leg_gone(s.staff_leg or "", 0)
        elif leg_gone and cid in ctrl.calls:
            await ctrl.ctx.feed(cid, StaffHungUp())
        if crisis_gone and cid in ctrl.calls:
            await ctrl.ctx.feed(cid, CrisisEnded())
        await self.save(call)
        if s.queue in ctrl.staff.groups:
            await ctrl.staff.after_group_change(s.queue)

    async def _close(self, call_id: str, why: str) -> None:
        """A snapshot not taken back: the call record is closed once (`controller_restart`)."""
        log.warning("call %s: not taken back (%s); its record is closed", call_id, why)
        await safe_store(
            self.ctrl.store.write(
                "call closed",
                "UPDATE calls SET ended_at=?, outcome='error', end_reason=?, downtime_seconds=?"
                " WHERE call_id=? AND outcome IS NULL",
                (self.ctrl.clock(), CallEndReason.CONTROLLER_RESTART, self._downtime, call_id),
            )
        )
        await safe_store(
            self.ctrl.store.write(
                "live call gone", "DELETE FROM live_calls WHERE call_id=?", (call_id,)
            )
        )

    async def _drop_tap(self, tap_id: str) -> None:
        for path in (f"channels/{tap_id}-snoop", f"channels/{tap_id}-media", f"bridges/{tap_id}"):
            await self._delete(path)

    async def _delete(self, path: str) -> None:
        with contextlib.suppress(AriError):
            await self.ctrl.ari.delete(path)


def taps_of(present: Iterable[str], base: str) -> set[str]:
    """The dead run's taps on one party's channel among the channel ids `present`: the first
    (`base`) and any opened again (`base-N`, ivr.tap: a caller's tap closes in the queue)."""
    ids = {base}
    for cid in present:
        for end in ("-snoop", "-media"):
            rest = (
                cid[len(base) : -len(end)] if cid.startswith(base) and cid.endswith(end) else None
            )
            if rest is not None and (rest == "" or (rest[:1] == "-" and rest[1:].isdigit())):
                ids.add(base + rest)
    return ids


def _parse(r: tuple[Any, ...]) -> LiveRow:
    (cid, state, started, since, path, failures, queue, queued_at, member, leg, answered) = r[:11]
    consent, talk, last_pb, stage_json = r[11:15]
    owner, caller_hash, name, flag_level, stored, hold, talk_bridge, recordings = r[15:23]
    lost, crisis_leg, requeued_at = r[23:26]
    snap = Snapshot(
        call_id=str(cid),
        state=str(state),
        started_at=float(started),
        stage_since=float(since),
        menu_path=str(path),
        menu_failures=int(failures),
        flagged=int(flag_level) > 0,
        queue=queue,
        queued_at=None if queued_at is None else float(queued_at),
        member=member,
        staff_leg=leg,
        answered_at=None if answered is None else float(answered),
        consent=consent,
        talk=talk,
        last_playback=last_pb,
        stage_seconds={str(k): float(v) for k, v in json.loads(stage_json).items()},
        staff_lost=int(lost or 0),
        crisis_leg=crisis_leg,
        requeued_at=None if requeued_at is None else float(requeued_at),
    )
    return LiveRow(
        snap,
        str(owner),
        str(caller_hash),
        str(name),
        int(flag_level),
        bool(stored),
        hold,
        talk_bridge,
        recordings_of(json.loads(recordings)),
    )


def not_taken_back(journeys: dict[str, Any], config: FlowConfig, now: float) -> list[str]:
    """The calls (of `journeys`, by call id) a next run could not take back now: its restore
    refuses their snapshot (a goodbye), or they have none (a follow-up call, not an inbound
    journey), or a crisis line is ringing for them (a restore stops it). A hand-over waits for
    them (ivr/stopping.py)."""
    left = []
    for call_id, journey in journeys.items():
        if not isinstance(journey, flow.CallFlow):
            left.append(call_id)
        elif not journey.ended and restore(take(journey), config, now, "check") is None:
            left.append(call_id)
        elif journey.conversation and journey.conversation.state is TalkState.CRISIS_RINGING:
            left.append(call_id)  # a restore would stop the ringing: wait for its answer
    return left


def recordings_of(stored: dict[str, str]) -> dict[str, str]:
    """The `recordings` column as name -> party; rows of a release before segments held
    party -> name (a hand-over from it to this one reads them so)."""
    out = {}
    for k, v in stored.items():
        name, party = (str(k), str(v)) if str(k).startswith("ivr120-") else (str(v), str(k))
        out[name] = party
    return out
