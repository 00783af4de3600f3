"""The pure summary (ivr.summary.summarize) on crafted word lists: turns, talk share, key
sentences, needs, the note, and that the result is JSON."""

from __future__ import annotations

import json

import pytest

from ivr.summary.needs import NeedList, load_needs
from ivr.summary.summarize import (
    KEY_SENTENCES,
    Note,
    Word,
    build_summary,
    talk_seconds,
    turns,
    utterances,
    with_note,
)


@pytest.fixture(scope="module")
def needs() -> NeedList:
    return load_needs()


def said(text: str, start: float, step: float = 0.5) -> list[Word]:
    """Words of ``text``, each ``step`` seconds long, back to back from ``start``."""
    return [
        Word(w, round(start + i * step, 2), round(start + (i + 1) * step, 2), 0.9)
        for i, w in enumerate(text.split())
    ]


def call() -> dict[str, list[Word]]:
    """A short call: the counselor answers, the caller talks about being lonely and money."""
    staff = said("외로움안녕 상담 전화입니다", 0.0) + said("네 그러셨군요 병원은 다니세요", 9.0)
    caller = (
        said("안녕하세요", 2.0)
        + said("요즘 혼자 지내서 외로워요", 3.0)  # 0.5 s after the greeting: one utterance
        + said("병원비가 걱정돼요 월세도 밀렸어요", 12.0)
        + said("그냥 그래요", 20.0)
    )
    return {"caller": caller, "staff": staff}


def test_utterances_split_at_pauses() -> None:
    words = said("하나 둘", 0.0) + said("셋", 1.5) + said("넷", 3.0)
    parts = utterances("caller", words, gap=0.8)
    assert [u.text for u in parts] == ["하나 둘 셋", "넷"]  # a 0.5 s gap joins, 1.0 s splits
    assert parts[0].start == 0.0 and parts[0].end == 2.0


def test_turns_alternate_and_merge_a_partys_utterances(needs: NeedList) -> None:
    s = build_summary("c1", call(), needs)
    parties = [t["party"] for t in s["turns"]]
    assert parties == ["staff", "caller", "staff", "caller"]
    assert all(a != b for a, b in zip(parties, parties[1:], strict=False))
    # the caller's greeting and first sentence (0.5 s apart) are one turn
    assert s["turns"][1]["text"] == "안녕하세요 요즘 혼자 지내서 외로워요"
    assert s["turns"][1]["start"] == 2.0 and s["turns"][1]["end"] == 5.0
    # the last turn: two caller utterances (12 s and 20 s) with nobody between them
    assert s["turns"][3]["text"] == "병원비가 걱정돼요 월세도 밀렸어요 그냥 그래요"
    assert s["parties"]["caller"]["turns"] == 2 and s["parties"]["staff"]["turns"] == 2
    assert s["parties"]["caller"]["utterances"] == 3


def test_talk_share_and_duration(needs: NeedList) -> None:
    s = build_summary("c1", call(), needs, durations={"caller": 25.0, "staff": 24.0})
    caller, staff = s["parties"]["caller"], s["parties"]["staff"]
    assert caller["talk_seconds"] == pytest.approx(0.5 * 11)
    assert staff["talk_seconds"] == pytest.approx(0.5 * 7)
    assert caller["share"] == pytest.approx(11 / 18, abs=0.001)
    assert caller["share"] + staff["share"] == pytest.approx(1.0, abs=0.002)
    assert s["duration_seconds"] == 25.0
    assert build_summary("c1", call(), needs)["duration_seconds"] == 21.0  # the last word


def test_overlapping_words_count_once() -> None:
    words = [Word("a", 0.0, 1.0), Word("b", 0.5, 1.5), Word("c", 3.0, 3.5)]
    assert talk_seconds(words) == pytest.approx(2.0)
    assert talk_seconds([]) == 0.0


def test_key_sentences_prefer_the_callers_needs(needs: NeedList) -> None:
    words = call()
    words["caller"] += said("날씨가 좋네요 오늘은 산책을 좀 했어요 공원이 예뻤어요", 30.0)
    s = build_summary("c1", words, needs)
    texts = [k["text"] for k in s["key_sentences"]]
    assert len(texts) == KEY_SENTENCES
    # the two need-bearing utterances, then the longest other one; in time order
    assert texts == [
        "안녕하세요 요즘 혼자 지내서 외로워요",
        "병원비가 걱정돼요 월세도 밀렸어요",
        "날씨가 좋네요 오늘은 산책을 좀 했어요 공원이 예뻤어요",
    ]
    assert s["key_sentences"][0]["needs"] == ["isolation"]
    assert s["key_sentences"][1]["needs"] == ["health", "housing", "money"]
    assert all(k["party"] == "caller" for k in s["key_sentences"])


def test_needs_are_the_callers_and_the_counselors_are_apart(needs: NeedList) -> None:
    s = build_summary("c1", call(), needs)
    assert s["needs"]["isolation"]["words"] == ["혼자", "외로워요"]
    assert s["needs"]["isolation"]["ko"] == "고립/외로움"
    assert s["needs"]["housing"]["words"] == ["월세도"]
    assert s["needs"]["money"]["words"] == ["병원비가"]
    assert s["staff_mentions"] == {
        "health": {"ko": "건강", "en": "health", "words": ["병원은"]},
    }
    assert s["crisis"] is False
    crisis = build_summary("c2", {"caller": said("요즘은 죽고 싶어요", 0.0)}, needs)
    assert crisis["crisis"] is True
    assert crisis["needs"]["crisis"]["words"] == ["죽고 싶어요"]


def test_offsets_place_a_later_recording(needs: NeedList) -> None:
    words = {"caller": said("여보세요", 0.0), "staff": said("네 상담원입니다", 0.0)}
    s = build_summary("c1", words, needs, offsets={"staff": 3.0})
    assert [(t["party"], t["start"]) for t in s["turns"]] == [("caller", 0.0), ("staff", 3.0)]


def test_note_missing_parties_and_json(needs: NeedList) -> None:
    note = Note("다음 주 화요일에 다시 전화하기로 함", "counselor03", 1_700_000_000.0)
    s = build_summary("c1", {"caller": said("외로워요", 0.0)}, needs, note=note, missing=["staff"])
    assert s["note"] == {"text": note.text, "by": "counselor03", "at": 1_700_000_000.0}
    assert s["missing_parties"] == ["staff"]
    assert json.loads(json.dumps(s, ensure_ascii=False)) == s
    assert with_note(s, None)["note"] is None and s["note"] is not None


def test_an_empty_call(needs: NeedList) -> None:
    s = build_summary("c1", {"caller": [], "staff": []}, needs)
    assert s["turns"] == [] and s["key_sentences"] == [] and s["needs"] == {}
    assert s["duration_seconds"] == 0.0
    assert s["parties"]["caller"]["share"] == 0.0
    assert turns([]) == []
