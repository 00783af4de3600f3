"""The consent record and per-party recording capture of a call in progress (the adapter side
of consented summaries; ivr.summary.capture fetches the finished files).

Only a stored consent is acted on: no consent row, no recording. Each party is recorded from
their own audio tap's bridge (one voice per file). A withdrawal during the call stops and
discards what was recorded. The end of the counseling when the caller stays on for the survey
(`StopRecording`) stops the recordings and keeps them: they are collected when the call ends,
as for a call that ended there.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import Any

from ivr.ari.client import AriError, AriNotFound
from ivr.audit import audit
from ivr.context import ActiveCall, CallContext, safe_store
from ivr.flow import call as flow
from ivr.store import WriteDeferred
from ivr.summary.capture import Capture

log = logging.getLogger(__name__)


class ConsentRecorder:
    #: The consent row and the call's own recordings (ivr.effects).
    call_local = (flow.RecordConsent, flow.StartRecording, flow.StopRecording, flow.WithdrawConsent)

    def __init__(self, ctx: CallContext, capture: Capture) -> None:
        self.ctx = ctx
        self.capture = capture

    def handlers(self) -> dict[type[flow.Command], Any]:
        return {
            flow.RecordConsent: self._record_consent,
            flow.StartRecording: self._start_recording,
            flow.StopRecording: self._stop_recording,
            flow.WithdrawConsent: self._withdraw,
        }

    def consent_version(self, prompts: tuple[str, ...]) -> str:
        """Which exact words the caller heard: catalog version + hash of the Korean text."""
        text = "\n".join(self.ctx.prompt_texts.get(p, f"<{p}>") for p in prompts)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return f"catalog-v{self.ctx.catalog_version}:{digest}"

    async def _record_consent(self, call: ActiveCall, cmd: flow.RecordConsent) -> None:
        ctx = self.ctx
        stored = False
        try:
            await ctx.store.record_consent(
                call.call_id,
                cmd.answer,
                cmd.answered_by,
                ctx.clock(),
                ",".join(cmd.prompts),
                self.consent_version(cmd.prompts),
                call.channel_name,
            )
            stored = True
        except WriteDeferred as exc:
            log.warning("record not written yet: %s", exc)
        finally:
            call.consent_stored = stored
            audit.info(
                "consent: call %s caller %s answered %s by %s%s",
                call.call_id,
                call.caller,
                cmd.answer,
                cmd.answered_by,
                "" if stored else " (not stored: nothing will be recorded)",
            )

    async def _start_recording(self, call: ActiveCall, cmd: flow.StartRecording) -> None:
        if not call.consent_stored:  # no stored consent, no recording
            log.warning("call %s: consent could not be stored; not recording", call.call_id)
            return
        call.recording = True
        for party in list(call.taps):
            await self.record_party(call, party)

    async def record_party(self, call: ActiveCall, party: str) -> None:
        """Record one party's voice (their tap's bridge holds only that voice)."""
        tap = call.taps.get(party)
        if not call.recording or tap is None or party in call.recordings:
            return
        # A call taken back after a restart goes on in a new segment of its own name.
        segment = 1 + sum(1 for p in call.earlier_recordings.values() if p == party)
        name = f"ivr120-{call.call_id}-{party}" + (f"-{segment}" if segment > 1 else "")
        try:
            await self.ctx.ari.post(
                f"bridges/{tap.id}/record",
                name=name,
                format="wav",
                ifExists="overwrite",
                beep=False,
                terminateOn="none",
            )
        except AriError as exc:
            log.warning("call %s: cannot record the %s: %s", call.call_id, party, exc)
            return
        call.recordings[party] = name
        await safe_store(
            self.ctx.store.recording_started(name, call.call_id, party, self.ctx.clock())
        )
        log.info("call %s: recording the %s (consent given)", call.call_id, party)

    async def _stop_recording(self, call: ActiveCall, cmd: flow.StopRecording) -> None:
        """The counseling is over: stop each recording, keeping it (collected at the end of
        the call as usual). A failure is logged, never raised: the caller is in the survey."""
        call.recording = False  # no party starts being recorded from now on
        for party, name in call.recordings.items():
            try:
                await self.ctx.ari.post(f"recordings/live/{name}/stop")
            except AriNotFound:
                pass  # already finished (the party's channel is gone)
            except AriError as exc:
                log.warning("call %s: cannot stop recording the %s: %s", call.call_id, party, exc)
                continue
            log.info("call %s: recording of the %s stopped (counseling over)", call.call_id, party)
        # Kept as earlier segments: a counselor who takes the call on (the first one's phone
        # was lost) is recorded in new ones.
        call.earlier_recordings.update({name: party for party, name in call.recordings.items()})
        call.recordings.clear()

    async def _withdraw(self, call: ActiveCall, cmd: flow.WithdrawConsent) -> None:
        """The withdrawal is written first (from then on nothing is summarised for the call,
        whatever else fails), then every recording of the call — this run's, still live, and
        earlier runs' segments, stored in Asterisk — is discarded, each on its own: one that
        Asterisk refuses is logged and the others are still deleted."""
        by = cmd.by or "counselor"
        call.recording = False
        try:
            await self.ctx.store.withdraw_consent(call.call_id, by, self.ctx.clock())
        except WriteDeferred as exc:
            log.warning("record not written yet: %s", exc)
        for name in call.all_recordings():
            for where in ("live", "stored"):  # still recording, or finished already
                try:
                    await self.ctx.ari.delete(f"recordings/{where}/{name}")  # stop, discard
                except AriNotFound:
                    pass
                except AriError as exc:
                    log.error("call %s: cannot delete recording %s: %s", call.call_id, name, exc)
            await safe_store(self.ctx.store.recording_status(name, "deleted"))
        call.recordings.clear()
        call.earlier_recordings.clear()
        audit.info("consent withdrawn during call %s by %s; recording discarded", call.call_id, by)

    def collect(self, call: ActiveCall) -> None:
        """The call ended: fetch its recordings once Asterisk has finished them."""
        recordings = call.all_recordings()
        if recordings:
            self.capture.collect_later(call.call_id, recordings)
            call.recordings.clear()
            call.earlier_recordings.clear()

    async def collect_left_over(self) -> None:
        """After (re)connecting: recordings a previous run left in Asterisk are fetched."""
        with contextlib.suppress(Exception):
            pending: dict[str, dict[str, str]] = {}
            for name, call_id, party in await self.ctx.store.recordings_to_collect():
                if call_id not in self.ctx.calls:  # a call taken back collects its own
                    pending.setdefault(call_id, {})[name] = party
            for call_id, recs in pending.items():
                self.capture.collect_later(call_id, recs)
