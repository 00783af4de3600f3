"""Needs matching (ivr.summary.needs) with the shipped list config/needs_ko.toml: inflected forms
match their category, look-alike words do not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.summary.needs import (
    DEFAULT_NEEDS_FILE,
    NeedList,
    eojeols,
    find_needs,
    load_needs,
    parse_needs,
)


@pytest.fixture(scope="module")
def needs() -> NeedList:
    return load_needs()


def test_the_list_has_the_required_categories(needs: NeedList) -> None:
    keys = {c.key for c in needs.categories}
    assert {"health", "housing", "money", "family", "isolation", "food", "crisis"} <= keys
    assert needs.categories[0].key == "crisis"  # the most urgent is listed first
    assert DEFAULT_NEEDS_FILE.name == "needs_ko.toml"


# (text, category, the word or phrase reported as heard)
MATCHES = [
    # isolation: 외롭다 is ㅂ-irregular (외로워요), and the noun 외로움
    ("외로워요", "isolation", "외로워요"),
    ("외롭다", "isolation", "외롭다"),
    ("외롭고 쓸쓸해요", "isolation", "외롭고"),
    ("외로움을 많이 타요", "isolation", "외로움을"),
    ("너무 외로웠어요", "isolation", "외로웠어요"),
    ("혼자 살아요", "isolation", "혼자"),
    ("혼자서 밥을 먹어요", "isolation", "혼자서"),
    ("연락이 없어요", "isolation", "연락이 없어요"),
    ("외로워 요", "isolation", "외로워"),  # the recogniser's morpheme split
    # health: 아프다 drops its 으 (아파요)
    ("몸이 아파요", "health", "아파요"),
    ("허리가 아프다", "health", "허리가"),
    ("어제 아팠어요", "health", "아팠어요"),
    ("병원에 가야 해요", "health", "병원에"),
    ("약을 못 샀어요", "health", "약을"),
    ("약이에요", "health", "약이에요"),
    ("잠을 못 자요", "health", "잠을 못"),
    # housing
    ("월세가 밀렸어요", "housing", "월세가"),
    ("집이 너무 추워요", "housing", "집이"),
    ("방에서 나가래요", "housing", "방에서"),
    ("집주인이 나가래요", "housing", "집주인이"),
    # money
    ("돈이 없어요", "money", "돈이 없어요"),
    ("빚이 많아요", "money", "빚이"),
    ("병원비가 걱정돼요", "money", "병원비가"),
    ("일자리를 잃었어요", "money", "일자리를"),
    ("생활비가 모자라요", "money", "생활비가"),
    # family
    ("자녀들이 안 와요", "family", "자녀들이"),
    ("아들이 연락을 안 해요", "family", "아들이"),
    ("딸이 보고 싶어요", "family", "딸이"),
    ("딸들도 바빠요", "family", "딸들도"),
    ("남편이 작년에 떠났어요", "family", "남편이"),
    # food
    ("밥을 못 먹었어요", "food", "밥을"),
    ("밥을 못 먹었어요", "food", "못 먹었어요"),
    ("끼니를 거를 때가 많아요", "food", "끼니를"),
    ("어제부터 굶었어요", "food", "굶었어요"),
    ("배고파요", "food", "배고파요"),
    # crisis
    ("죽고 싶어요", "crisis", "죽고 싶어요"),
    ("죽고싶다", "crisis", "죽고싶다"),
    ("살기 싫어요", "crisis", "살기 싫어요"),
    ("자살 생각을 해요", "crisis", "자살"),
    ("남편이 때려요", "crisis", "때려요"),
]


@pytest.mark.parametrize(("text", "category", "word"), MATCHES)
def test_inflected_forms_match(needs: NeedList, text: str, category: str, word: str) -> None:
    found = find_needs(text, needs)
    assert word in found.get(category, []), found


# (text, category that must NOT be found)
NON_MATCHES = [
    ("약속이 있어요", "health"),  # 약 + 속: promise, not medicine
    ("약간 피곤해요", "health"),
    ("건강하세요", "health"),  # a greeting
    ("딸기를 샀어요", "family"),  # strawberries
    ("집중이 안 돼요", "housing"),
    ("방법을 몰라요", "housing"),
    ("방송을 봐요", "housing"),
    ("도자기를 빚어요", "money"),  # 빚다: to mould
    ("돈가스를 먹었어요", "money"),
    ("배가 불러요", "food"),
    ("배고파 죽겠어요", "crisis"),  # hyperbole, not a crisis
    ("밥솥", "food"),
]


@pytest.mark.parametrize(("text", "category"), NON_MATCHES)
def test_look_alike_words_do_not_match(needs: NeedList, text: str, category: str) -> None:
    assert category not in find_needs(text, needs)


def test_a_callers_sentence(needs: NeedList) -> None:
    found = find_needs("요즘 혼자 지내서 외로워요. 병원비가 걱정돼요!", needs)
    assert found["isolation"] == ["혼자", "외로워요"]
    assert found["health"] == ["병원비가"]
    assert found["money"] == ["병원비가"]
    assert list(found) == [c.key for c in needs.categories if c.key in found]


def test_a_phrase_reports_its_words_once(needs: NeedList) -> None:
    assert find_needs("돈이 없어요 돈이 없어요", needs) == {"money": ["돈이 없어요"]}


def test_eojeol_lose_punctuation() -> None:
    assert eojeols(" “외로워요…”  (혼자)  ,  ") == ["외로워요", "혼자"]


def test_malformed_lists_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        parse_needs({})
    with pytest.raises(ValueError, match="'ko'"):
        parse_needs({"category": [{"key": "x", "en": "x"}]})
    with pytest.raises(ValueError, match="unknown keys"):
        parse_needs({"category": [{"key": "x", "ko": "x", "en": "x", "prefix": ["a"]}]})
    with pytest.raises(ValueError, match="non-empty strings"):
        parse_needs({"category": [{"key": "x", "ko": "x", "en": "x", "nouns": [""]}]})
    one = {"key": "x", "ko": "x", "en": "x"}
    with pytest.raises(ValueError, match="duplicate"):
        parse_needs({"category": [one, one]})


@given(st.text(alphabet=st.sampled_from("외로워요 혼자병원돈밥약속집.!가나다 "), max_size=40))
def test_matches_are_words_of_the_text(text: str) -> None:
    needs = load_needs()
    words = eojeols(text)
    for hits in find_needs(text, needs).values():
        for hit in hits:
            assert all(part in words for part in hit.split())
