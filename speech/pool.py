"""Callers' grammar recognition bounded and decoded in a few shared worker threads.

One `RecognizerPool` per process (the controller's): a caller who starts to speak while a
question is open takes a `Lease` (`lease()`, immediate, on the event loop); the lease makes a
fresh `GrammarRecognizer` for its phrases (0.5 ms) and drops it when the utterance ends. A
recognizer is never reused after `Reset()`: vosk keeps state across `Reset()` (results differ
by what a recognizer heard before, alphacep/vosk-api#1372) and its authors say to make one per
stream (#919); a fresh one costs 0.5 ms. (Reuse was suspected, not shown, in a spoken "네" not
recognised late in fresh-clone suite runs; a replay of 120 utterances and tones into one
reused recognizer still recognised it.) What is pooled is the capacity and the
threads: at most ``capacity`` are leased at once; beyond that `lease()` returns None and the caller
answers with keys (the menu always accepts them); `refused()` counts that event
(`fallback_total()` for the metrics).

The decoding runs in a `ThreadPoolExecutor` of ``workers`` threads (default: the cores): vosk
releases the GIL while it decodes, so the threads decode in parallel and the event loop only
queues audio. A lease's work runs in order — one drain job at a time per lease, however many
threads — and results come back to the loop with ``call_soon_threadsafe``; nothing the loop
does waits on vosk. Why threads and not worker processes: docs/capacity.md ("Speech
recognition").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from speech.recognizer import GrammarRecognizer

log = logging.getLogger(__name__)

#: Callers recognised at once by default (leases: callers speaking while a question is open).
DEFAULT_CAPACITY = 32

_fallbacks = 0


def fallback_total() -> int:
    """Callers' utterances not recognised because every recognizer was busy (this process)."""
    return _fallbacks


@dataclass(frozen=True, slots=True)
class Result:
    """A recognised utterance: the phrase as given (None if the text is none of them)."""

    text: str
    phrase: str | None
    confidence: float


OnResult = Callable[[Result], None]


class RecognizerPool:
    def __init__(
        self,
        model: Any,
        rate: int = 8000,
        capacity: int = DEFAULT_CAPACITY,
        workers: int | None = None,
    ) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.model = model
        self.rate = rate
        self.capacity = capacity
        self.workers = workers or os.cpu_count() or 1
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="vosk")
        self._lock = threading.Lock()
        #: Leases out now (event-loop thread only), recognizers made, utterances refused.
        self.busy = 0
        self.created = 0
        self.fallbacks = 0
        self.closed = False

    def lease(self, phrases: tuple[str, ...], on_result: OnResult) -> Lease | None:
        """A slot for one utterance against ``phrases``, or None when all are busy. Call it on
        the event loop; ``on_result`` is called there for each recognised utterance."""
        if self.closed or self.busy >= self.capacity:
            return None
        self.busy += 1
        return Lease(self, phrases, on_result, asyncio.get_running_loop())

    def refused(self) -> None:
        """Count an utterance that got no recognizer (the caller answers with keys)."""
        global _fallbacks
        self.fallbacks += 1
        _fallbacks += 1

    def close(self) -> None:
        """Stop the threads once queued work is done (does not wait)."""
        self._executor.shutdown(wait=False)
        self.closed = True
        log.info("speech recognizers closed (%d made)", self.created)

    # -- worker threads ------------------------------------------------------------------
    def _take(self, phrases: tuple[str, ...]) -> GrammarRecognizer:
        """A fresh recognizer for one utterance (never one that heard someone else)."""
        with self._lock:
            self.created += 1
        return GrammarRecognizer(self.model, self.rate, list(phrases))

    def _freed(self) -> None:
        self.busy -= 1


class Lease:
    """One utterance's recognizer: `feed()` audio, then `finish()` (or `cancel()`) once."""

    def __init__(
        self,
        pool: RecognizerPool,
        phrases: tuple[str, ...],
        on_result: OnResult,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.pool = pool
        self.phrases = phrases
        self.on_result = on_result
        self._loop = loop
        self._ops: deque[bytes | None] = deque()  # audio, then None for the end
        self._lock = threading.Lock()
        self._draining = False
        self._recognizer: GrammarRecognizer | None = None
        self._failed = False
        self.finished = False
        #: Set by cancel(): what is still queued is dropped, and no result is delivered.
        self.discarded = False
        #: Set (on the loop) once the slot is free again: nothing more will be delivered.
        self.done = False

    def feed(self, pcm: bytes) -> None:
        if not self.finished:
            self._submit(pcm)

    def finish(self) -> None:
        """The utterance ended: its final result, then the recognizer goes back to the pool."""
        if not self.finished:
            self.finished = True
            self._submit(None)

    def cancel(self) -> None:
        """Drop the utterance (the question changed, the call ended); frees the slot."""
        self.discarded = True
        self.finish()

    def _submit(self, op: bytes | None) -> None:
        with self._lock:
            self._ops.append(op)
            if self._draining:
                return
            self._draining = True
        with contextlib.suppress(RuntimeError):  # the pool was closed: the process is stopping
            self.pool._executor.submit(self._drain)

    # -- worker thread -------------------------------------------------------------------
    def _drain(self) -> None:
        """Decode the queued audio in order. The end op ends the utterance (frees the slot); so
        does anything raised here unexpectedly, so that a slot is never lost."""
        end = True
        try:
            while True:
                with self._lock:
                    if not self._ops:
                        self._draining = False
                        end = False
                        return
                    op = self._ops.popleft()
                if op is None:
                    return
                if not (self.discarded or self._failed):
                    self._decode(op)
        except Exception:
            log.exception("recognition failed while draining")
            self._failed = self.finished = True  # later audio and the end op are not queued
        finally:
            if end:
                self._end()

    def _decode(self, pcm: bytes) -> None:
        try:
            if self._recognizer is None:
                self._recognizer = self.pool._take(self.phrases)
            text = self._recognizer.feed(pcm)
            if text:
                self._post(self._recognizer, text)
        except Exception:
            log.exception("recognition failed")
            self._failed = True

    def _end(self) -> None:
        rec, self._recognizer = self._recognizer, None
        try:
            if rec is not None:
                if not (self.discarded or self._failed):
                    text = rec.final()
                    if text:
                        self._post(rec, text)
        except Exception:
            log.exception("recognition failed at the end of an utterance")
        finally:
            self._call(self._freed)

    def _post(self, rec: GrammarRecognizer, text: str) -> None:
        words = rec.words
        confidence = sum(w.conf for w in words) / len(words) if words else 0.0
        result = Result(text, rec.phrase_for(text), confidence)
        self._call(self._deliver, result)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
            self._loop.call_soon_threadsafe(fn, *args)

    def _freed(self) -> None:
        self.done = True
        self.pool._freed()

    def _deliver(self, result: Result) -> None:
        if not self.discarded:
            self.on_result(result)
