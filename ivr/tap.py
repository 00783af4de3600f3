"""Listening to one party of a call: ARI snoop + externalMedia → `speech` (RTP, VAD, vosk).

    party's channel ── snoop (spy=in: that party's voice only) ─┐
                                                                 mixing bridge "tap-<id>"
    tap_rtp_bind:<port> <── RTP (PCMU) ── externalMedia channel ─┘

The receiver's frames go through webrtcvad and the silence tracker; while a question is open
(`listen`), also through the VAD gate (`speech.gate`): only the caller's utterances, with a
short pre-roll and hangover, go to a grammar recognizer leased from the process's pool
(`speech.pool`) for the utterance; when the pool is full the caller answers with keys (counted,
logged). Results are handed to `deliver` as flow events. Every object a tap creates (two
channels, a bridge, a UDP socket, a lease) is released by `close()`, which the controller calls
when the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ivr.ari.client import AriBadRequest, AriClient, AriConflict, AriError
from ivr.flow import call as flow
from speech.gate import SpeechGate
from speech.pool import Lease, RecognizerPool, Result
from speech.rtp import PCMU, Frame, RtpReceiver
from speech.silence import (
    SilenceFor,
    SilenceParams,
    SilenceTracker,
    SpeechResumed,
    SpeechStarted,
    VadClassifier,
)

log = logging.getLogger(__name__)

#: Channel and bridge ids of taps start with this (the controller ignores their Stasis events).
TAP_PREFIX = "tap-"
#: Frames batched per recognizer call (5 x 20 ms).
RECOGNIZER_BATCH = 5
#: Adding the tap's channels to its bridge: attempts and the pause between them.
ADD_ATTEMPTS = 20
ADD_RETRY_SECONDS = 0.05
#: A recognised phrase counts only with at least this mean word confidence.
MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class TapConfig:
    app: str
    thresholds: tuple[float, ...]
    aggressiveness: int = 2
    #: The address the receiver binds, and the one Asterisk is told to send the RTP to
    #: (settings tap_rtp_bind / tap_rtp_address: they differ when Asterisk is elsewhere).
    rtp_bind: str = "127.0.0.1"
    rtp_address: str = "127.0.0.1"

    def external_host(self, port: int) -> str:
        """externalMedia's external_host for a receiver on `port` (IPv6 in brackets)."""
        host = f"[{self.rtp_address}]" if ":" in self.rtp_address else self.rtp_address
        return f"{host}:{port}"


class Tap:
    def __init__(
        self,
        ari: AriClient,
        config: TapConfig,
        channel_id: str,
        party: str,
        deliver: Callable[[flow.FlowEvent], None],
        recognizers: RecognizerPool | None = None,
        opened: int = 1,
    ) -> None:
        self.ari = ari
        self.config = config
        self.channel_id = channel_id
        self.party = flow.Party(party)
        self.deliver = deliver
        self.recognizers = recognizers
        # A tap opened again on the same channel (`opened` > 1: the caller's, closed while
        # waiting) gets ids of its own: the last one's may still be going away in Asterisk.
        again = f"-{opened}" if opened > 1 else ""
        self.id = f"{TAP_PREFIX}{party}-{channel_id}{again}"
        self.snoop_id = f"{self.id}-snoop"
        self.media_id = f"{self.id}-media"
        self.receiver: RtpReceiver | None = None
        self.vad = VadClassifier(8000, 20, config.aggressiveness)
        self.tracker = SilenceTracker(SilenceParams(thresholds=config.thresholds))
        self._gate = SpeechGate()
        self._lease: Lease | None = None
        #: Utterances that ended but whose result may still come: dropped with the question.
        self._finishing: set[Lease] = set()
        self._phrases: tuple[str, ...] = ()
        self._pending: list[bytes] = []
        self._media_time = 0.0
        self.closed = False

    async def open(self) -> None:
        """Create the receiver, the two channels and the bridge; on failure undo what was made."""
        try:
            self.receiver = await RtpReceiver.open(
                PCMU, host=self.config.rtp_bind, on_frame=self._frame
            )
            await self.ari.post(
                "channels/externalMedia",
                app=self.config.app,
                external_host=self.config.external_host(self.receiver.port),
                format="ulaw",
                channelId=self.media_id,
            )
            await self.ari.post(
                f"channels/{self.channel_id}/snoop",
                spy="in",
                app=self.config.app,
                appArgs="tap",
                snoopId=self.snoop_id,
            )
            await self.ari.post("bridges", type="mixing", bridgeId=self.id, name=self.id)
            await self._add_to_bridge()
        except BaseException:
            await self.close()
            raise
        log.info("listening to %s %s on udp/%d", self.party, self.channel_id, self.receiver.port)

    async def _add_to_bridge(self) -> None:
        """The new channels enter Stasis asynchronously; until they have, Asterisk answers 422
        ("Channel not in Stasis application"), so retry briefly."""
        for attempt in range(ADD_ATTEMPTS):
            try:
                await self.ari.post(
                    f"bridges/{self.id}/addChannel", channel=f"{self.snoop_id},{self.media_id}"
                )
                return
            except (AriBadRequest, AriConflict):
                if attempt == ADD_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(ADD_RETRY_SECONDS)

    # -- audio ---------------------------------------------------------------------------
    def _frame(self, frame: Frame) -> None:
        if self.closed or len(frame.pcm) != self.vad.frame_bytes:
            return
        self._media_time = frame.time + frame.duration
        voiced = self.vad.is_speech(frame.pcm)
        for ev in self.tracker.update(voiced, frame.time):
            log.debug("%s %s: %s", self.party, self.channel_id, ev)
            if isinstance(ev, SilenceFor):
                self.deliver(flow.Silence(self.party, ev.seconds))
            elif isinstance(ev, SpeechResumed):
                self.deliver(flow.SpeechHeard(self.party, ev.after_seconds))
            elif isinstance(ev, SpeechStarted):
                self.deliver(flow.SpeechHeard(self.party, 0.0))
        if self._phrases:
            self._gated(frame.pcm, voiced)

    def _gated(self, pcm: bytes, voiced: bool) -> None:
        """The recognizer sees the caller's utterances only; silence feeds nothing."""
        gated = self._gate.push(pcm, voiced)
        if gated.started and self.recognizers is not None:
            self._lease = self.recognizers.lease(self._phrases, self._heard)
            if self._lease is None:
                self.recognizers.refused()
                log.warning(
                    "recognition capacity reached (%d); keys only for this answer on %s",
                    self.recognizers.capacity,
                    self.channel_id,
                )
        lease = self._lease
        if lease is None:
            return
        self._pending += gated.frames
        if len(self._pending) >= RECOGNIZER_BATCH or gated.ended:
            lease.feed(b"".join(self._pending))
            self._pending = []
        if gated.ended:
            lease.finish()
            self._lease = None
            self._finishing = {f for f in self._finishing if not f.done}
            self._finishing.add(lease)

    def restart_silence(self) -> None:
        """Start counting silence afresh from now (a new phase of the call: connected)."""
        self.tracker = SilenceTracker(self.tracker.params, start=self._media_time)

    def _heard(self, result: Result) -> None:
        if self.closed:
            return
        log.info(
            "heard %r (%.2f) on %s",
            result.phrase or result.text,
            result.confidence,
            self.channel_id,
        )
        if result.phrase is not None and result.confidence >= MIN_CONFIDENCE:
            self.deliver(flow.Heard(result.phrase))

    async def listen(self, phrases: tuple[str, ...]) -> None:
        """Recognise `phrases` from now on (replacing any earlier question); () stops."""
        if phrases == self._phrases or self.recognizers is None or self.closed:
            return
        self._stop_recognizing()
        self._phrases = phrases

    def _stop_recognizing(self) -> None:
        if self._lease is not None:
            self._lease.cancel()
            self._lease = None
        for lease in self._finishing:
            lease.cancel()  # its result, if still to come, is not for the new question
        self._finishing.clear()
        self._gate.reset()
        self._pending = []

    async def close(self) -> None:
        """Release everything; safe to call twice and after a partial open."""
        if self.closed:
            return
        self.closed = True
        self._stop_recognizing()
        with contextlib.suppress(AriError):
            await self.ari.delete(f"bridges/{self.id}")
        for chan in (self.snoop_id, self.media_id):
            with contextlib.suppress(AriError):
                await self.ari.delete(f"channels/{chan}")
        stats = ""
        if self.receiver is not None:
            await self.receiver.aclose()
            stats = str(self.receiver.stats)
        log.info("stopped listening to %s %s %s", self.party, self.channel_id, stats)
