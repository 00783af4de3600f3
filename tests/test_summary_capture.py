"""Fetching recordings (ivr.summary.capture) against an in-process fake ARI: what a real
Asterisk does only by bad luck (a file fetched before it is finished, a half-written header),
and a local disk that refuses the file. The happy path runs against Asterisk in
tests/test_e2e_consent.py and tests/test_e2e_default_setup.py."""

from __future__ import annotations

import asyncio
import sqlite3
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ivr.ari.client import AriClient
from ivr.ari.events import RecordingFinished, parse_event
from ivr.store import Store
from ivr.summary.capture import Capture, CaptureParams, wav_problem

NAME = "ivr120-c1-staff"
FAST = CaptureParams(finish_timeout=0.2, attempts=4, first_delay=0.01, max_delay=0.05)


def wav(pcm: bytes, data_size: int | None = None, rate: int = 8000) -> bytes:
    """A PCM WAV file; `data_size` overrides the sizes in the header (as Asterisk leaves
    them, 0, until it closes the file)."""
    size = len(pcm) if data_size is None else data_size
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    riff = 4 + 8 + len(fmt) + 8 + size if data_size is None or data_size else 0
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", size)
        + pcm
    )


PCM = b"\x01\x02" * 8000
GOOD = wav(PCM)
UNFINISHED = wav(PCM, data_size=0)


def test_a_complete_wav_passes_the_check() -> None:
    assert wav_problem(GOOD) is None


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (UNFINISHED, "data size 0"),
        (wav(PCM, data_size=len(PCM) + 100), "truncated"),
        (wav(PCM, data_size=100), "not finished"),
        (b"", "not a WAVE file"),
        (b"RIFF\0\0\0\0WAVE", "no data chunk"),
    ],
)
def test_incomplete_wavs_are_refused(data: bytes, why: str) -> None:
    problem = wav_problem(data)
    assert problem is not None and why in problem


def test_recording_finished_is_parsed() -> None:
    ev = parse_event({"type": "RecordingFinished", "recording": {"name": NAME, "state": "done"}})
    assert ev == RecordingFinished("RecordingFinished", {}, NAME, "done")
    failed = parse_event(
        {"type": "RecordingFailed", "recording": {"name": NAME, "state": "failed"}}
    )
    assert isinstance(failed, RecordingFinished) and failed.state == "failed"


@dataclass
class FakeRecordings:
    """A stored recording whose file goes through `versions` (one per fetch), live until
    `live` is cleared; every request is logged as (method, path)."""

    versions: list[bytes]
    live: bool = True
    log: list[tuple[str, str]] = field(default_factory=list)
    deleted: bool = False
    #: How many fetches had been made when Asterisk's copy was deleted.
    deleted_after: int = -1

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/ari/{tail:.*}", self.rest)
        return app

    async def rest(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        self.log.append((request.method, tail))
        if tail == f"recordings/live/{NAME}":
            if self.live:
                return web.json_response({"name": NAME, "state": "recording"})
            return web.json_response({"message": "Recording not found"}, status=404)
        if tail == f"recordings/stored/{NAME}/file" and not self.deleted:
            data = self.versions.pop(0) if len(self.versions) > 1 else self.versions[0]
            return web.Response(body=data, content_type="audio/wav")
        if tail == f"recordings/stored/{NAME}" and request.method == "DELETE":
            self.deleted = True
            self.deleted_after = self.fetches()
            return web.Response(status=204)
        return web.json_response({"message": "Recording not found"}, status=404)

    def fetches(self) -> int:
        return sum(1 for m, p in self.log if p.endswith("/file"))


@dataclass
class Rig:
    fake: FakeRecordings
    capture: Capture
    db: Path
    audio: Path

    def row(self) -> tuple[str, str | None]:
        conn = sqlite3.connect(self.db)
        try:
            status, path = conn.execute(
                "SELECT status, path FROM recordings WHERE name=?", (NAME,)
            ).fetchone()
            return str(status), path
        finally:
            conn.close()

    def jobs(self) -> int:
        conn = sqlite3.connect(self.db)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM transcription_jobs").fetchone()[0])
        finally:
            conn.close()


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    fake = FakeRecordings(list(getattr(request, "param", [GOOD])))
    server = TestServer(fake.app(), host="127.0.0.1", port=0)
    await server.start_server()
    store = await Store.open(tmp_path / "ivr120.sqlite3")
    await store.recording_started(NAME, "c1", "staff", 1.0)
    ari = AriClient(str(server.make_url("/ari")), "u", "p", "ivr120")
    audio = tmp_path / "audio"
    try:
        yield Rig(
            fake, Capture(ari, store, audio, lambda: 2.0, FAST), tmp_path / "ivr120.sqlite3", audio
        )
    finally:
        await ari.close()
        await store.close()
        await server.close()


async def test_nothing_is_fetched_before_recording_finished(rig: Rig) -> None:
    rig.capture.params = CaptureParams(
        finish_timeout=0.05, attempts=100, first_delay=0.01, max_delay=0.05
    )
    rig.capture.collect_later("c1", {NAME: "staff"})
    async with asyncio.timeout(5):  # it asks Asterisk, which says "still recording", twice
        while sum(1 for _, p in rig.fake.log if "live" in p) < 2:
            await asyncio.sleep(0.01)
    assert rig.fake.fetches() == 0
    rig.fake.live = False
    rig.capture.finished(NAME)
    await rig.capture.wait(5)
    assert rig.fake.fetches() == 1
    assert rig.row() == ("fetched", str(rig.audio / "c1" / "staff.wav"))
    assert (rig.audio / "c1" / "staff.wav").read_bytes() == GOOD
    assert (rig.audio / "c1" / "staff.wav").stat().st_mode & 0o777 == 0o600
    assert rig.fake.deleted and rig.jobs() == 1


@pytest.mark.parametrize("rig", [[UNFINISHED, UNFINISHED, GOOD]], indirect=True)
async def test_a_zero_size_wav_is_not_deleted_but_fetched_again(rig: Rig) -> None:
    """The drill's staff.wav: RIFF with data size 0. Asterisk's copy stays until a complete
    file was fetched, written and read back."""
    rig.fake.live = False
    rig.capture.finished(NAME)
    await rig.capture.collect("c1", {NAME: "staff"})
    assert rig.fake.fetches() == 3
    assert rig.fake.deleted_after == 3, "Asterisk's copy was deleted before a good fetch"
    assert wav_problem((rig.audio / "c1" / "staff.wav").read_bytes()) is None
    assert rig.row()[0] == "fetched" and rig.jobs() == 1


@pytest.mark.parametrize("rig", [[UNFINISHED]], indirect=True)
async def test_a_file_that_stays_broken_is_failed_after_bounded_retries(rig: Rig) -> None:
    rig.fake.live = False
    await rig.capture.collect("c1", {NAME: "staff"})  # no event: the live check says finished
    assert rig.fake.fetches() == FAST.attempts
    assert not rig.fake.deleted, "a recording never fetched whole was deleted in Asterisk"
    assert rig.row() == ("failed", None)
    assert rig.jobs() == 0
    assert not (rig.audio / "c1" / "staff.wav").exists()


async def test_a_local_disk_that_refuses_the_file_keeps_asterisks_copy(rig: Rig) -> None:
    rig.audio.write_text("not a directory")  # every write below it fails
    rig.fake.live = False
    rig.capture.finished(NAME)
    await rig.capture.collect("c1", {NAME: "staff"})
    assert not rig.fake.deleted
    assert rig.row() == ("recording", None)  # collected again at the next start
    assert rig.jobs() == 0
