"""Korean numbers for announcements, as sequences of prompt pieces from the catalog.

Asterisk cannot say Korean numbers, so a queue announcement such as "앞에 대기하시는 분이 세 분
있습니다" is played as a list of our own prompts (``prompts/catalog.toml``). Every function here
returns a tuple of prompt ids; the adapter plays them in order (``Play(prompts=...)``). Pure: no
I/O, no catalog access (tests/test_speak_ko.py checks every id against the catalog).

Two numeral systems are needed:

* native Korean numerals in their adnominal (counter-bound) form, for counting people with the
  honorific counter 분: 한 분, 두 분, 세 분, 네 분, 스무 분, 스물한 분, 서른다섯 분 … 아흔아홉 분;
* Sino-Korean numerals for minutes (분) and seconds (초), and for people above 99: 일 분, 십오 분,
  이십 초, 백 분.

How the pieces are cut — every piece is a whole number WITH its counter ("세 분", "십오 분",
"이십 초"), never a bare numeral or a bare counter:

* The prompt builder pads every piece with silence, so each seam is an audible pause. A pause
  inside a number ("서른 | 다섯", "십 | 오") sounds like two numbers, and one between numeral
  and counter ("세 | 분") sounds stilted; a number and its counter are said in one breath.
* One-syllable pieces ("삼", "분", "백", "약") are too short for the synthetic voice to be
  understood on their own (the builder's check wants at least 0.8 s of audio per prompt).
* So: ``people_native_N`` (N = 1..99), ``minutes_sino_N`` and ``seconds_sino_N`` (N = 0..99).
  The joined ``ko`` texts (single spaces between pieces) are then exactly what a Korean speaker
  would write: "앞에 대기하시는 분이 서른다섯 분 있습니다".
* Above 99 (a hundred callers ahead, or a hundred minutes: not expected on this line) only the
  round hundreds are said: exactly "백 분" / "이백 분" … for round numbers, otherwise
  "백 분 이상" ("a hundred or more"), and "천 분 이상" from a thousand on. That keeps the piece
  count small (19 per counter) and every piece long enough, and says what matters.
* Wait estimates are rounded to a few values (see :func:`estimated_wait`), so each phrase
  "약 삼 분" is one piece, and so is its sentence-final form "약 삼 분입니다": the verb stays
  joined to its noun, as Korean spelling and speech want.
"""

from __future__ import annotations

import math

__all__ = [
    "NATIVE_MAX",
    "all_piece_ids",
    "estimated_wait",
    "estimated_wait_minutes",
    "people",
    "people_ahead",
    "wait_announcement",
    "wait_minutes",
    "wait_seconds",
]

#: Largest count said exactly, with a piece of its own (아흔아홉 분, 구십구 분, 구십구 초).
NATIVE_MAX = 99
_EXACT_MAX = 99

QUEUE_AHEAD_LEAD = "queue_ahead_lead"  # 앞에 대기하시는 분이
QUEUE_AHEAD_TAIL = "queue_ahead_tail"  # 있습니다
QUEUE_NEXT = "queue_next"  # 바로 다음 순서입니다. 곧 연결해 드리겠습니다.
QUEUE_WAIT_LEAD = "queue_wait_lead"  # 예상 대기 시간은
WAIT_WITHIN_ONE_MINUTE = "wait_within_one_minute"  # 일 분 이내
WAIT_OVER_ONE_HOUR = "wait_over_one_hour"  # 한 시간 이상
FINAL = "_final"  # suffix of the sentence-final form: "약 삼 분입니다", "일 분 이내입니다"

_SENTENCE_PIECES = (QUEUE_AHEAD_LEAD, QUEUE_AHEAD_TAIL, QUEUE_NEXT, QUEUE_WAIT_LEAD)

# The three counted kinds: prompt id prefix per kind.
_PEOPLE = "people"
_MINUTES = "minutes"
_SECONDS = "seconds"

#: Estimates up to this many minutes are said to the minute ("약 칠 분") ...
_EXACT_MINUTES = 10
#: ... longer ones to the nearest five minutes ("약 이십오 분") ...
_ROUND_TO_MINUTES = 5
#: ... and from an hour on only as "한 시간 이상".
_HOUR_MINUTES = 60
#: Every value :func:`estimated_wait_minutes` can return.
_ESTIMATE_MINUTES = (
    *range(1, _EXACT_MINUTES + 1),
    *range(_EXACT_MINUTES + _ROUND_TO_MINUTES, _HOUR_MINUTES, _ROUND_TO_MINUTES),
)


def _check(n: int, low: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{what} must be an int, got {type(n).__name__}")
    if n < low:
        raise ValueError(f"{what} must be at least {low}, got {n}")


def _counted(kind: str, system: str, n: int) -> str:
    """The one piece for n of `kind`: exact up to 99, then "N백 … (이상)", "천 … 이상"."""
    if n <= _EXACT_MAX:
        return f"{kind}_{system}_{n}"
    if n >= 1000:
        return f"{kind}_sino_1000_plus"
    hundreds = n - n % 100
    return f"{kind}_sino_{hundreds}" + ("" if n == hundreds else "_plus")


def people(n: int) -> tuple[str, ...]:
    """n people with the honorific counter: 세 분, 스무 분, 스물한 분; 백 분, 백 분 이상."""
    _check(n, 1, "number of people")
    return (_counted(_PEOPLE, "native", n),)


def people_ahead(n: int) -> tuple[str, ...]:
    """The queue position sentence: "앞에 대기하시는 분이 세 분 있습니다"; n == 0 -> "next"."""
    _check(n, 0, "people ahead")
    if n == 0:
        return (QUEUE_NEXT,)
    return (QUEUE_AHEAD_LEAD, *people(n), QUEUE_AHEAD_TAIL)


def wait_minutes(m: int) -> tuple[str, ...]:
    """m minutes, Sino-Korean: 일 분, 십오 분, 백 분."""
    _check(m, 0, "minutes")
    return (_counted(_MINUTES, "sino", m),)


def wait_seconds(s: int) -> tuple[str, ...]:
    """s seconds, Sino-Korean: 이십 초, 삼십 초."""
    _check(s, 0, "seconds")
    return (_counted(_SECONDS, "sino", s),)


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def estimated_wait_minutes(seconds: float) -> int | None:
    """The minutes an estimate is announced as: None under a minute; 1..10 to the minute; then
    to the nearest five minutes; 60 means "an hour or more"."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"seconds must be a number, got {type(seconds).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds}")
    if seconds < 60:
        return None
    minutes = _round_half_up(seconds / 60)
    if minutes > _EXACT_MINUTES:
        minutes = _ROUND_TO_MINUTES * _round_half_up(minutes / _ROUND_TO_MINUTES)
    return min(minutes, _HOUR_MINUTES)


def _estimate_piece(seconds: float) -> str:
    minutes = estimated_wait_minutes(seconds)
    if minutes is None:
        return WAIT_WITHIN_ONE_MINUTE
    if minutes >= _HOUR_MINUTES:
        return WAIT_OVER_ONE_HOUR
    return f"wait_about_{minutes}_minutes"


def estimated_wait(seconds: float) -> tuple[str, ...]:
    """A rounded wait phrase: under a minute "일 분 이내"; up to ten minutes to the minute
    ("약 삼 분"); then to the nearest five minutes ("약 이십오 분"); from an hour "한 시간 이상"."""
    return (_estimate_piece(seconds),)


def wait_announcement(seconds: float) -> tuple[str, ...]:
    """The whole sentence: "예상 대기 시간은 약 삼 분입니다" (rounded as :func:`estimated_wait`)."""
    return (QUEUE_WAIT_LEAD, _estimate_piece(seconds) + FINAL)


def all_piece_ids() -> frozenset[str]:
    """Every prompt id any function of this module can return (for the catalog check)."""
    ids = set(_SENTENCE_PIECES)
    for kind, system, low in ((_PEOPLE, "native", 1), (_MINUTES, "sino", 0), (_SECONDS, "sino", 0)):
        ids.update(_counted(kind, system, n) for n in range(low, _EXACT_MAX + 1))
        for hundreds in range(100, 1000, 100):
            ids.update((f"{kind}_sino_{hundreds}", f"{kind}_sino_{hundreds}_plus"))
        ids.add(f"{kind}_sino_1000_plus")
    for phrase in (
        WAIT_WITHIN_ONE_MINUTE,
        WAIT_OVER_ONE_HOUR,
        *(f"wait_about_{m}_minutes" for m in _ESTIMATE_MINUTES),
    ):
        ids.update((phrase, phrase + FINAL))
    return frozenset(ids)
