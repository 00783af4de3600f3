"""Korean numbers from prompt pieces (ivr.speak_ko), checked against the real catalog's texts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr import speak_ko
from ivr.prompts.catalog import Catalog, load_catalog

CATALOG = load_catalog()


def text(ids: tuple[str, ...], catalog: Catalog = CATALOG) -> str:
    """What the caller hears, as text: the pieces' `ko` joined with spaces."""
    return " ".join(catalog[i].ko for i in ids)


# n -> (people(n), people_ahead(n), wait_minutes(n), wait_seconds(n)); None: not applicable.
TABLE: dict[int, tuple[str | None, str, str, str]] = {
    0: (None, "바로 다음 순서입니다. 곧 연결해 드리겠습니다.", "영 분", "영 초"),
    1: ("한 분", "앞에 대기하시는 분이 한 분 있습니다", "일 분", "일 초"),
    2: ("두 분", "앞에 대기하시는 분이 두 분 있습니다", "이 분", "이 초"),
    3: ("세 분", "앞에 대기하시는 분이 세 분 있습니다", "삼 분", "삼 초"),
    4: ("네 분", "앞에 대기하시는 분이 네 분 있습니다", "사 분", "사 초"),
    5: ("다섯 분", "앞에 대기하시는 분이 다섯 분 있습니다", "오 분", "오 초"),
    10: ("열 분", "앞에 대기하시는 분이 열 분 있습니다", "십 분", "십 초"),
    11: ("열한 분", "앞에 대기하시는 분이 열한 분 있습니다", "십일 분", "십일 초"),
    15: ("열다섯 분", "앞에 대기하시는 분이 열다섯 분 있습니다", "십오 분", "십오 초"),
    19: ("열아홉 분", "앞에 대기하시는 분이 열아홉 분 있습니다", "십구 분", "십구 초"),
    20: ("스무 분", "앞에 대기하시는 분이 스무 분 있습니다", "이십 분", "이십 초"),
    21: ("스물한 분", "앞에 대기하시는 분이 스물한 분 있습니다", "이십일 분", "이십일 초"),
    22: ("스물두 분", "앞에 대기하시는 분이 스물두 분 있습니다", "이십이 분", "이십이 초"),
    25: ("스물다섯 분", "앞에 대기하시는 분이 스물다섯 분 있습니다", "이십오 분", "이십오 초"),
    30: ("서른 분", "앞에 대기하시는 분이 서른 분 있습니다", "삼십 분", "삼십 초"),
    35: ("서른다섯 분", "앞에 대기하시는 분이 서른다섯 분 있습니다", "삼십오 분", "삼십오 초"),
    43: ("마흔세 분", "앞에 대기하시는 분이 마흔세 분 있습니다", "사십삼 분", "사십삼 초"),
    50: ("쉰 분", "앞에 대기하시는 분이 쉰 분 있습니다", "오십 분", "오십 초"),
    64: ("예순네 분", "앞에 대기하시는 분이 예순네 분 있습니다", "육십사 분", "육십사 초"),
    76: ("일흔여섯 분", "앞에 대기하시는 분이 일흔여섯 분 있습니다", "칠십육 분", "칠십육 초"),
    88: ("여든여덟 분", "앞에 대기하시는 분이 여든여덟 분 있습니다", "팔십팔 분", "팔십팔 초"),
    99: ("아흔아홉 분", "앞에 대기하시는 분이 아흔아홉 분 있습니다", "구십구 분", "구십구 초"),
    # Above 99: Sino-Korean, only the round hundreds (see ivr/speak_ko.py).
    100: ("백 분", "앞에 대기하시는 분이 백 분 있습니다", "백 분", "백 초"),
    101: ("백 분 이상", "앞에 대기하시는 분이 백 분 이상 있습니다", "백 분 이상", "백 초 이상"),
    119: ("백 분 이상", "앞에 대기하시는 분이 백 분 이상 있습니다", "백 분 이상", "백 초 이상"),
    200: ("이백 분", "앞에 대기하시는 분이 이백 분 있습니다", "이백 분", "이백 초"),
    999: (
        "구백 분 이상",
        "앞에 대기하시는 분이 구백 분 이상 있습니다",
        "구백 분 이상",
        "구백 초 이상",
    ),
    1000: ("천 분 이상", "앞에 대기하시는 분이 천 분 이상 있습니다", "천 분 이상", "천 초 이상"),
    10**9: ("천 분 이상", "앞에 대기하시는 분이 천 분 이상 있습니다", "천 분 이상", "천 초 이상"),
}


@pytest.mark.parametrize("n", sorted(TABLE))
def test_numbers_table(n: int) -> None:
    people, ahead, minutes, seconds = TABLE[n]
    if people is not None:
        assert text(speak_ko.people(n)) == people
    assert text(speak_ko.people_ahead(n)) == ahead
    assert text(speak_ko.wait_minutes(n)) == minutes
    assert text(speak_ko.wait_seconds(n)) == seconds


def test_every_number_is_one_piece_with_its_counter() -> None:
    for n in range(1, 1200):
        (piece,) = speak_ko.people(n)
        assert " 분" in CATALOG[piece].ko
    for n in range(0, 1200):
        (minutes,) = speak_ko.wait_minutes(n)
        (seconds,) = speak_ko.wait_seconds(n)
        assert " 분" in CATALOG[minutes].ko and " 초" in CATALOG[seconds].ko


@pytest.mark.parametrize(
    ("seconds", "phrase", "sentence"),
    [
        (0, "일 분 이내", "예상 대기 시간은 일 분 이내입니다"),
        (59.9, "일 분 이내", "예상 대기 시간은 일 분 이내입니다"),
        (60, "약 일 분", "예상 대기 시간은 약 일 분입니다"),
        (89, "약 일 분", "예상 대기 시간은 약 일 분입니다"),
        (90, "약 이 분", "예상 대기 시간은 약 이 분입니다"),
        (170, "약 삼 분", "예상 대기 시간은 약 삼 분입니다"),
        (10 * 60 + 29, "약 십 분", "예상 대기 시간은 약 십 분입니다"),
        (12 * 60, "약 십 분", "예상 대기 시간은 약 십 분입니다"),
        (13 * 60, "약 십오 분", "예상 대기 시간은 약 십오 분입니다"),
        (20 * 60, "약 이십 분", "예상 대기 시간은 약 이십 분입니다"),
        (24 * 60 + 50, "약 이십오 분", "예상 대기 시간은 약 이십오 분입니다"),
        (57 * 60, "약 오십오 분", "예상 대기 시간은 약 오십오 분입니다"),
        (58 * 60, "한 시간 이상", "예상 대기 시간은 한 시간 이상입니다"),
        (5 * 3600, "한 시간 이상", "예상 대기 시간은 한 시간 이상입니다"),
    ],
)
def test_estimated_wait_phrase_and_sentence(seconds: float, phrase: str, sentence: str) -> None:
    assert text(speak_ko.estimated_wait(seconds)) == phrase
    assert text(speak_ko.wait_announcement(seconds)) == sentence


@settings(deadline=None)
@given(st.floats(min_value=0, max_value=10 * 3600, allow_nan=False))
def test_wait_sentence_is_lead_phrase_and_ending(seconds: float) -> None:
    """The sentence pieces differ from the phrase pieces only for prosody, not in text."""
    phrase = text(speak_ko.estimated_wait(seconds))
    assert text(speak_ko.wait_announcement(seconds)) == f"예상 대기 시간은 {phrase}입니다"


@pytest.mark.parametrize(
    ("func", "bad"),
    [
        (speak_ko.people_ahead, -1),
        (speak_ko.people, 0),
        (speak_ko.wait_minutes, -5),
        (speak_ko.wait_seconds, -1),
    ],
)
def test_out_of_range_numbers_are_refused(func: Callable[[int], object], bad: int) -> None:
    with pytest.raises(ValueError, match="at least"):
        func(bad)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_bad_wait_estimates_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        speak_ko.estimated_wait(bad)
    with pytest.raises(ValueError):
        speak_ko.wait_announcement(bad)


def test_non_integers_are_refused() -> None:
    with pytest.raises(TypeError):
        speak_ko.people_ahead(2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        speak_ko.wait_minutes(True)


def test_every_piece_any_function_returns_is_in_the_catalog() -> None:
    pieces = speak_ko.all_piece_ids()
    CATALOG.require(pieces)
    returned: set[str] = set()
    for n in [*range(2100), 10**6]:
        returned.update(speak_ko.people_ahead(n))
        returned.update(speak_ko.wait_minutes(n))
        returned.update(speak_ko.wait_seconds(n))
        if n:
            returned.update(speak_ko.people(n))
    for seconds in range(0, 2 * 3600, 7):
        returned.update(speak_ko.estimated_wait(seconds))
        returned.update(speak_ko.wait_announcement(seconds))
    assert returned == pieces  # all_piece_ids() is exact: nothing missing, nothing unused
    CATALOG.require(returned)


def test_pieces_have_only_hangul_and_no_digits() -> None:
    for piece in speak_ko.all_piece_ids():
        ko = CATALOG[piece].ko
        assert not any(c.isascii() and c.isdigit() for c in ko), piece
