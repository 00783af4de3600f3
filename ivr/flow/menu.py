"""The 120 main menu as data: which key leads where, announced by which prompt.

Administrators change `config/menu.toml`; no code changes. The file is validated at start-up
(every key once, every destination a known queue, every prompt in the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.flow.commands import SurveyKind
from ivr.tomlfile import read_toml

VALID_KEYS = frozenset("0123456789#")


class MenuError(ValueError):
    """The menu file is malformed."""


@dataclass(frozen=True)
class Queue:
    """A ring group a menu option leads to."""

    name: str
    #: Prompt played once before the caller starts waiting.
    intro: str
    #: Which configured staff list rings: "counselors" or "agents".
    members: str
    #: Prompt played periodically to a waiting caller.
    reassurance: str = "hold_reassurance"
    #: Prompt played to the staff member when they answer, before the caller is bridged.
    whisper: str = ""
    #: Ask the caller's consent to keep a summary of the counseling (before queueing).
    consent: bool = False
    #: The post-call survey after the counselor hangs up (ivr.flow.survey): None = off.
    survey: SurveyKind | None = None
    #: Seconds to answer the survey once its question was played; then the thank-you.
    survey_timeout: float = 8.0


@dataclass(frozen=True)
class MenuOption:
    digit: str
    prompt: str
    queue: str
    #: Korean words a caller may say instead of pressing the key (recognised with vosk).
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Menu:
    greeting: tuple[str, ...]
    options: tuple[MenuOption, ...]
    repeat_hint: str
    queues: dict[str, Queue]

    def option(self, digit: str) -> MenuOption | None:
        return next((o for o in self.options if o.digit == digit), None)

    def option_for_phrase(self, phrase: str) -> MenuOption | None:
        return next((o for o in self.options if phrase in o.words), None)

    @property
    def voice_phrases(self) -> tuple[str, ...]:
        """Every word the menu listens for."""
        return tuple(dict.fromkeys(w for o in self.options for w in o.words))

    @property
    def option_prompts(self) -> tuple[str, ...]:
        return (*(o.prompt for o in self.options), self.repeat_hint)

    def prompt_ids(self) -> set[str]:
        """Every prompt the menu names (for the catalog check)."""
        ids = {*self.greeting, *self.option_prompts}
        for q in self.queues.values():
            ids |= {q.intro, q.reassurance}
            if q.whisper:
                ids.add(q.whisper)
        return ids


def parse_menu(data: dict[str, object], source: str = "menu") -> Menu:
    def fail(msg: str) -> MenuError:
        return MenuError(f"{source}: {msg}")

    queues: dict[str, Queue] = {}
    raw_queues = data.get("queues")
    if not isinstance(raw_queues, dict) or not raw_queues:
        raise fail("needs a [queues.NAME] table")
    for name, q in raw_queues.items():
        if not isinstance(q, dict) or not isinstance(q.get("intro"), str):
            raise fail(f"queue {name!r} needs an intro prompt")
        members = q.get("members")
        if members not in ("counselors", "agents"):
            raise fail(f"queue {name!r}: members must be 'counselors' or 'agents'")
        survey = q.get("survey", "off")
        if survey not in ("off", *SurveyKind):
            raise fail(f"queue {name!r}: survey must be 'off', 'score' or 'helped'")
        timeout = q.get("survey_timeout", 8.0)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise fail(f"queue {name!r}: survey_timeout must be a positive number of seconds")
        queues[name] = Queue(
            name=name,
            intro=q["intro"],
            members=str(members),
            reassurance=str(q.get("reassurance", "hold_reassurance")),
            whisper=str(q.get("whisper", "")),
            consent=bool(q.get("consent", False)),
            survey=None if survey == "off" else SurveyKind(survey),
            survey_timeout=timeout,
        )
    raw_opts = data.get("option")
    if not isinstance(raw_opts, list) or not raw_opts:
        raise fail("needs at least one [[option]]")
    options: list[MenuOption] = []
    for i, o in enumerate(raw_opts, 1):
        if not isinstance(o, dict):
            raise fail(f"option {i} is not a table")
        digit, prompt, queue = o.get("digit"), o.get("prompt"), o.get("queue")
        if not isinstance(digit, str) or digit not in VALID_KEYS:
            raise fail(f"option {i}: digit must be one of 0-9 or # (got {digit!r})")
        if any(x.digit == digit for x in options):
            raise fail(f"option {i}: digit {digit} is used twice")
        if not isinstance(prompt, str) or not prompt:
            raise fail(f"option {i}: needs a prompt id")
        if queue not in queues:
            raise fail(f"option {i}: queue {queue!r} is not defined under [queues]")
        words = o.get("words", [])
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            raise fail(f"option {i}: words must be a list of Korean words")
        for w in words:
            if any(w in x.words for x in options):
                raise fail(f"option {i}: the word {w!r} is used twice")
        options.append(MenuOption(digit, prompt, str(queue), tuple(words)))
    greeting = data.get("greeting", ["welcome"])
    if not isinstance(greeting, list) or not all(isinstance(g, str) for g in greeting):
        raise fail("greeting must be a list of prompt ids")
    return Menu(
        greeting=tuple(greeting),
        options=tuple(options),
        repeat_hint=str(data.get("repeat_hint", "menu_repeat")),
        queues=queues,
    )


def load_menu(path: Path) -> Menu:
    data = read_toml(path, MenuError, unreadable="cannot read menu file")
    return parse_menu(data, str(path))
