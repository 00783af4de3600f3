"""Fetching a consented call's recordings from Asterisk into the state directory, safely.

Each party's recording goes through these steps (the controller starts them when the call
ends, and at its next start for recordings a previous run left in Asterisk)::

    recording ──RecordingFinished (or no longer live)──> fetch ──> check ──> write ──> read back
       ^            │ not finished yet                      │ missing, short, empty, I/O error
       │            v                                       v
       └──────── retry after a backoff (doubling, bounded: CaptureParams) <──┘
    read back and checked ──> Asterisk's copy deleted ──> "fetched" (path absolute) ──> job
    attempts exhausted ──> "failed" (Asterisk's copy kept, logged); a local write error keeps
                           "recording", so the next start tries again

Asterisk writes a WAV header with zero sizes until it closes the file; fetching before the
``RecordingFinished`` event gets such a file. So a recording is fetched only once finished,
the bytes are checked (`wav_problem`), and Asterisk's copy is deleted only after the local
file was written, read back and found complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.ari.client import AriClient, AriError, AriNotFound
from ivr.store import Store

log = logging.getLogger(__name__)

#: Recordings the controller makes are named ``ivr120-<call>-<party>``.
RECORDING_PREFIX = "ivr120-"
#: How a problem on our side (not Asterisk's) starts: Asterisk's copy must then be kept.
LOCAL_ERROR = "cannot write"
#: Finished events remembered for recordings not being collected yet (bounded).
MAX_REMEMBERED = 1000


@dataclass(frozen=True)
class CaptureParams:
    #: Seconds to wait for RecordingFinished before asking ARI whether it is still live.
    finish_timeout: float = 2.0
    #: Fetch attempts per recording, and the backoff between them (doubling up to max_delay).
    attempts: int = 8
    first_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.finish_timeout < 0 or self.first_delay < 0 or self.max_delay < self.first_delay:
            raise ValueError("timeouts must not be negative, max_delay >= first_delay")


def wav_problem(data: bytes) -> str | None:
    """Why `data` is not a complete WAV file (None if it is): RIFF/WAVE header, a fmt chunk,
    a data chunk with at least one byte, and the data chunk's size matching the file's length
    (at most a pad byte after it)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return f"not a WAVE file ({len(data)} bytes)"
    pos, fmt = 12, False
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt = True
        elif chunk == b"data":
            if not fmt:
                return "data chunk before the fmt chunk"
            if size == 0:
                return f"data size 0 in a file of {len(data)} bytes (not finished)"
            end = body + size
            if end > len(data):
                return f"data size {size} but only {len(data) - body} bytes follow (truncated)"
            if len(data) - end > 1:
                return f"data size {size} but {len(data) - body} bytes follow (not finished)"
            return None
        pos = body + size + (size & 1)
    return "no data chunk"


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by the service's user only (atomically: a .part, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class Capture:
    """Collects recordings in background tasks (held here, awaited at shutdown)."""

    def __init__(
        self,
        ari: AriClient,
        store: Store,
        audio_dir: Path,
        clock: Callable[[], float],
        params: CaptureParams | None = None,
    ) -> None:
        self.ari = ari
        self.store = store
        self.audio_dir = audio_dir
        self.clock = clock
        self.params = params or CaptureParams()
        self._finished: OrderedDict[str, asyncio.Event] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- events --------------------------------------------------------------------------
    def finished(self, name: str) -> None:
        """Asterisk reported RecordingFinished/RecordingFailed for `name`."""
        if name.startswith(RECORDING_PREFIX):
            self._event(name).set()

    def forget(self, name: str) -> None:
        self._finished.pop(name, None)

    def _event(self, name: str) -> asyncio.Event:
        ev = self._finished.get(name)
        if ev is None:
            ev = self._finished[name] = asyncio.Event()
            while len(self._finished) > MAX_REMEMBERED:
                self._finished.popitem(last=False)
        return ev

    # -- tasks ---------------------------------------------------------------------------
    def collect_later(self, call_id: str, recordings: dict[str, str]) -> None:
        """Fetch the call's recordings (name -> party) in the background."""
        for name in recordings:
            self._event(name)  # from now on a finished event is kept for it
        task = asyncio.create_task(self.collect(call_id, recordings), name=f"collect-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    async def wait(self, timeout: float) -> None:
        """Give collections in progress up to `timeout` s (the rest are retried next start)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def collect(self, call_id: str, recordings: dict[str, str]) -> None:
        """Fetch each recording (name -> party; a party recorded in several segments, after a
        restart, has several), then queue the transcription job if any was fetched: one job
        for all, so the summary has every segment."""
        fetched = 0
        try:
            for name, party in recordings.items():
                if await self._collect_one(call_id, party, name):
                    fetched += 1
        finally:
            for name in recordings:
                self.forget(name)
        if fetched:
            await self._store(
                "queue the job", self.store.add_transcription_job(call_id, self.clock())
            )
            log.info("call %s: %d recording(s) fetched, transcription queued", call_id, fetched)

    async def _collect_one(self, call_id: str, party: str, name: str) -> bool:
        p = self.params
        # caller.wav, staff.wav; a later segment's: caller-2.wav (its name's ending).
        base = f"ivr120-{call_id}-"
        path = (
            self.audio_dir
            / call_id
            / f"{name[len(base) :] if name.startswith(base) else party}.wav"
        )
        delay = p.first_delay
        local_error = False
        for attempt in range(1, p.attempts + 1):
            if attempt > 1:
                await asyncio.sleep(delay)
                delay = min(p.max_delay, delay * 2)
            problem = await self._fetch(name, path, wait=p.finish_timeout if attempt == 1 else 0)
            if problem is None:
                break
            local_error = problem.startswith(LOCAL_ERROR)
            log.warning(
                "call %s: recording %s, attempt %d/%d: %s",
                call_id,
                name,
                attempt,
                p.attempts,
                problem,
            )
        else:
            if local_error:
                log.error(
                    "call %s: recording %s kept in Asterisk (could not be stored here); "
                    "fetched again at the next start",
                    call_id,
                    name,
                )
            else:
                log.error(
                    "call %s: recording %s could not be fetched; marked failed", call_id, name
                )
                await self._store("mark it failed", self.store.recording_status(name, "failed"))
            return False
        try:
            await self.ari.delete(f"recordings/stored/{name}")
        except AriNotFound:
            pass
        except AriError as exc:
            log.warning(
                "call %s: fetched %s but cannot delete it in Asterisk: %s", call_id, name, exc
            )
        await self._store(
            "mark it fetched", self.store.recording_status(name, "fetched", str(path))
        )
        log.info(
            "call %s: recording of the %s fetched (%d bytes, %s)",
            call_id,
            party,
            path.stat().st_size,
            "finished event seen" if self._event(name).is_set() else "no longer live",
        )
        return True

    async def _fetch(self, name: str, path: Path, wait: float) -> str | None:
        """One attempt: None when the recording is stored at `path`, read back and complete."""
        ev = self._event(name)
        if not ev.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ev.wait(), wait)
        if not ev.is_set():
            try:  # the event may have been missed (a restart): ask whether it is still live
                live = await self.ari.get(f"recordings/live/{name}")
                return f"still {live.get('state', 'live')} in Asterisk"
            except AriNotFound:
                pass  # no longer live: finished
            except AriError as exc:
                return f"cannot ask Asterisk about it: {exc}"
        try:
            data = await self.ari.get_bytes(f"recordings/stored/{name}/file")
        except AriNotFound:
            return "not stored in Asterisk (yet)"
        except AriError as exc:
            return f"cannot fetch it: {exc}"
        problem = wav_problem(data)
        if problem is not None:
            return f"Asterisk's file is incomplete: {problem}"
        try:
            await asyncio.to_thread(write_private, path, data)
            back = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:  # a full disk: Asterisk keeps its copy
            return f"{LOCAL_ERROR} {path}: {exc}"
        if back != data:
            return f"{LOCAL_ERROR} {path}: read back {len(back)} of {len(data)} bytes"
        return None

    async def _store(self, what: str, op: Awaitable[Any]) -> None:
        try:
            await op
        except Exception as exc:
            log.warning("recordings: could not %s: %s", what, exc)
