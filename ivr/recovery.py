"""After a restart of the controller (or a reconnect to ARI): nobody in dead air, nothing left
behind in Asterisk, every record closed once.

The calls of a dead run that have a snapshot are taken back first (ivr.resume, at the first
connect, before `reconcile`); for everything else:

- at start, the call records (without a snapshot) and ring attempts a dead run left open are
  closed, once, with `end_reason = controller_restart` and the downtime (how long no
  controller was alive, from the heartbeat file's age) in `calls.downtime_seconds`
  (`close_left_open`);
- on every connect, `reconcile` goes through Asterisk's channels, bridges and stored
  recordings: a caller in our Stasis app that no live call owns hears the apology (recovery
  context); staff legs, crisis legs, feature-code calls, snoop and external-media channels no
  live call owns are hung up; our bridges and stored recordings no live call owns (and that
  wait for no collection) are destroyed — a log line per object. A watcher's objects (a
  supervisor's live listen/whisper/barge, `Controller.watchers`) belong to a live call and are
  kept: a reconnect of the websocket does not end what goes on in Asterisk;
- calls whose channels vanished because Asterisk itself went away (its start time changed)
  are ended with `end_reason = pbx_lost` (`mark_pbx_lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.ari.client import AriError, AriNotFound
from ivr.flow.effects import CRISIS_ARG
from ivr.flow.record import CallEndReason
from ivr.followup.dialler import CITIZEN_ARG, FOLLOWUP_ARG
from ivr.followup.records import FollowupRecords
from ivr.staff.driver import LEG_ARG
from ivr.staff.feature_codes import FEATURE_ARG
from ivr.tap import TAP_PREFIX

if TYPE_CHECKING:
    from ivr.controller import Controller
    from ivr.store import Store

log = logging.getLogger(__name__)

#: Touched by the live controller every HEARTBEAT_SECONDS: its age at start is the downtime.
HEARTBEAT = "controller.alive"
HEARTBEAT_SECONDS = 2.0
#: Every channel the controller originates (staff legs, crisis legs) has an id starting so.
LEG_ID_PREFIX = "ivr-"
#: Our bridges by id (holding, talk, tap) and our stored recordings by name.
BRIDGE_PREFIXES = ("hold-", "talk-", TAP_PREFIX)
RECORDING_PREFIX = "ivr120-"
_STAFF_ARGS = (LEG_ARG, CRISIS_ARG, FEATURE_ARG, FOLLOWUP_ARG)


def last_alive(state_dir: Path) -> float | None:
    """When the previous controller was last seen alive (the heartbeat file's mtime)."""
    with contextlib.suppress(OSError):
        return (state_dir / HEARTBEAT).stat().st_mtime
    return None


async def heartbeat(state_dir: Path) -> None:
    """Touch the heartbeat file until cancelled."""
    path = state_dir / HEARTBEAT
    while True:
        with contextlib.suppress(OSError):
            path.touch(mode=0o600)
            os.utime(path)
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def close_left_open(store: Store, state_dir: Path, now: float, owner: str = "") -> None:
    """Close what a dead run left open (call at start, before any call is taken); `owner` is
    this run's follow-up lock owner (the locks of other runs are cleared)."""
    seen = last_alive(state_dir)
    downtime = max(0.0, now - seen) if seen is not None else None
    calls, rings = await store.close_left_open(now, CallEndReason.CONTROLLER_RESTART, downtime)
    if calls or rings:
        log.warning(
            "closed %d call record(s) and %d ring attempt(s) a previous run left open "
            "(end reason %s; no controller for %s s)",
            calls,
            rings,
            CallEndReason.CONTROLLER_RESTART,
            "?" if downtime is None else f"{downtime:.1f}",
        )
    attempts, locks = await FollowupRecords(store).close_left_open(now, owner)
    if attempts or locks:
        log.warning(
            "closed %d follow-up attempt(s) and released %d task lock(s) a previous run left",
            attempts,
            locks,
        )


async def pbx_started_at(ctrl: Controller) -> str | None:
    """Asterisk's start time (changes when Asterisk was restarted)."""
    try:
        info = await ctrl.ari.get("asterisk/info")
    except AriError:
        return None
    return str((info.get("status") or {}).get("startup_time") or "") or None


def mark_pbx_lost(ctrl: Controller, call_ids: list[str]) -> None:
    """The calls' channels went with Asterisk: their records say `pbx_lost`."""
    for call_id in call_ids:
        call = ctrl.calls.get(call_id)
        if call is not None and call.flow.record.end_reason is None:
            call.flow.record.end_reason = CallEndReason.PBX_LOST
    if call_ids:
        log.warning("%d call(s) ended with Asterisk (pbx_lost)", len(call_ids))


async def reconcile(ctrl: Controller, channels: list[dict[str, Any]]) -> None:
    """Leave nobody in silence and nothing of a dead run in Asterisk (see the module doc)."""
    app = ctrl.settings.ari_app
    live_taps = {t.id for c in ctrl.calls.values() for t in c.taps.values()}
    live_channels = {
        x for c in ctrl.calls.values() for t in c.taps.values() for x in (t.snoop_id, t.media_id)
    }
    live_channels |= set(ctrl.features.playbacks.values())  # feature-code confirmations
    # A live monitoring's phone leg, snoop and bridge (ivr.wallboard.monitoring): the call
    # goes on across a reconnect, and so does the supervisor's listening to it; the monitoring
    # ends itself, with its own reason, when the call did end meanwhile.
    watched = {x for w in ctrl.watchers for x in w.owned()}
    live_channels |= watched
    callers = []
    for c in channels:
        cid = str(c.get("id", ""))
        dp = c.get("dialplan") or {}
        data = str(dp.get("app_data", ""))
        in_app = dp.get("app_name") == "Stasis" and data.split(",")[0] == app
        args = data.split(",")[1:]
        known = cid in ctrl.calls or cid in ctrl.staff.legs or cid in ctrl.journey.crisis_legs
        known = known or ctrl.followup.owns(cid)
        if known or cid in live_channels:
            continue
        if cid.startswith(TAP_PREFIX):
            log.warning("hanging up tap channel %s left from before a restart", cid)
            await ctrl.ctx.hangup(cid)
        elif in_app and args and args[0] == CITIZEN_ARG:
            callers.append(cid)  # a follow-up call's citizen: the apology, like a caller
        elif cid.startswith(LEG_ID_PREFIX) or (in_app and args and args[0] in _STAFF_ARGS):
            log.warning("hanging up staff/crisis channel %s left from before a restart", cid)
            await ctrl.ctx.hangup(cid)
        elif in_app:
            callers.append(cid)
    for cid in callers:
        # A caller we lost track of (the controller restarted): apologise and let go.
        log.warning("recovering orphaned channel %s", cid)
        await ctrl.journey.recover(cid)
    await _destroy_bridges(ctrl, live_taps | watched)
    await _remove_recordings(ctrl)


async def _destroy_bridges(ctrl: Controller, live_taps: set[str]) -> None:
    live = live_taps | {
        b for c in ctrl.calls.values() for b in (c.holding_bridge, c.talk_bridge) if b
    }
    try:
        bridges = await ctrl.ari.get("bridges")
    except AriError as exc:
        log.warning("could not list bridges after connecting: %s", exc)
        return
    for b in bridges:
        bid = str(b.get("id", ""))
        if bid in live or not bid.startswith(BRIDGE_PREFIXES):
            continue
        log.warning("destroying bridge %s left from before a restart", bid)
        await _delete(ctrl, f"bridges/{bid}")


async def _remove_recordings(ctrl: Controller) -> None:
    """Stored recordings of ours that no live call owns and no collection waits for."""
    keep = {n for c in ctrl.calls.values() for n in c.all_recordings()}
    try:
        keep |= {name for name, _, _ in await ctrl.store.recordings_to_collect()}
        stored = await ctrl.ari.get("recordings/stored")
    except Exception as exc:  # ARI or the database: keep everything this time
        log.warning("could not check stored recordings after connecting: %s", exc)
        return
    for r in stored:
        name = str(r.get("name", ""))
        if not name.startswith(RECORDING_PREFIX) or name in keep:
            continue
        log.warning("deleting stored recording %s that belongs to no call", name)
        await _delete(ctrl, f"recordings/stored/{name}")


async def _delete(ctrl: Controller, path: str) -> None:
    """Delete an ARI resource; one already gone is fine, any other failure is logged."""
    try:
        await ctrl.ari.delete(path)
    except AriNotFound:
        pass
    except AriError as exc:
        log.warning("cannot delete %s: %s", path, exc)
