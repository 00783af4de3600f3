"""The prompt catalog: what the IVR says, in Korean, with an English gloss.

The catalog lives in ``prompts/catalog.toml`` (see ``prompts/README.md``)::

    version = 3

    [welcome]
    ko = "안녕하세요. ..."
    en = "Hello. ..."
    note = "optional remark for administrators"

:func:`load_catalog` reads and validates it and returns an immutable :class:`Catalog`.
Every problem found is reported at once, each line naming the file and the entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.tomlfile import read_toml

__all__ = [
    "DEFAULT_CATALOG_PATH",
    "Catalog",
    "CatalogError",
    "MissingPromptError",
    "Prompt",
    "load_catalog",
    "parse_catalog",
]

#: ``prompts/catalog.toml`` at the root of the source tree.
DEFAULT_CATALOG_PATH = Path(__file__).resolve().parents[2] / "prompts" / "catalog.toml"

ID_PATTERN = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_ASCII_DIGIT = re.compile(r"[0-9]")
_FIELDS = frozenset({"ko", "en", "note"})


class CatalogError(ValueError):
    """The catalog file is missing, not valid TOML, or has invalid entries."""


class MissingPromptError(LookupError):
    """Some prompt ids that the code needs are not in the catalog."""

    def __init__(self, missing: Iterable[str], source: str = "prompt catalog") -> None:
        self.missing: tuple[str, ...] = tuple(sorted(set(missing)))
        self.source = source
        super().__init__(
            f"{source}: {len(self.missing)} prompt(s) missing from the catalog: "
            + ", ".join(self.missing)
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Prompt:
    """One prompt: ``ko`` is what the caller hears, ``en`` is for administrators."""

    id: str
    ko: str
    en: str
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    """All prompts, by id. ``version`` is bumped whenever a text changes."""

    version: int
    prompts: Mapping[str, Prompt]
    source: str = field(default="prompt catalog", compare=False)

    def __post_init__(self) -> None:
        # Freeze the mapping so that a shared Catalog cannot be mutated behind our back.
        if not isinstance(self.prompts, MappingProxyType):
            object.__setattr__(self, "prompts", MappingProxyType(dict(self.prompts)))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.prompts)

    def __contains__(self, prompt_id: object) -> bool:
        return prompt_id in self.prompts

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self.prompts.values())

    def __len__(self) -> int:
        return len(self.prompts)

    def __getitem__(self, prompt_id: str) -> Prompt:
        try:
            return self.prompts[prompt_id]
        except KeyError:
            raise MissingPromptError([prompt_id], self.source) from None

    def require(self, ids: Iterable[str]) -> None:
        """Raise :class:`MissingPromptError` naming every id in ``ids`` not in the catalog."""
        missing = [i for i in ids if i not in self.prompts]
        if missing:
            raise MissingPromptError(missing, self.source)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (default: ``prompts/catalog.toml``)."""
    file = Path(path) if path is not None else DEFAULT_CATALOG_PATH
    data = read_toml(
        file,
        CatalogError,
        missing="prompt catalog not found",
        unreadable="cannot read prompt catalog",
    )
    return parse_catalog(data, source=str(file))


def parse_catalog(data: Mapping[str, Any], source: str = "prompt catalog") -> Catalog:
    """Validate already-parsed TOML data. ``source`` names the file in error messages."""
    errors: list[str] = []

    version = data.get("version")
    if version is None:
        errors.append("missing top-level `version = <integer>`")
    elif isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append(f"`version` must be a positive integer, got {version!r}")

    prompts: dict[str, Prompt] = {}
    for key, entry in data.items():
        if key == "version":
            continue
        where = f"[{key}]"
        if not isinstance(entry, Mapping):
            errors.append(f"{where}: expected a table with `ko` and `en`, got {entry!r}")
            continue
        if not ID_PATTERN.match(key):
            errors.append(f"{where}: prompt id must be lowercase snake_case (e.g. `menu_1`)")
        entry_errors = _validate_entry(entry)
        errors.extend(f"{where}: {msg}" for msg in entry_errors)
        if not entry_errors:
            note = entry.get("note")
            prompts[key] = Prompt(
                id=key,
                ko=entry["ko"].strip(),
                en=entry["en"].strip(),
                note=note.strip() if isinstance(note, str) and note.strip() else None,
            )

    if not prompts and not errors:
        errors.append("the catalog has no prompts")
    if errors:
        raise CatalogError(
            f"{source}: invalid prompt catalog:\n" + "\n".join(f"  {e}" for e in errors)
        )
    assert isinstance(version, int)
    return Catalog(version=version, prompts=prompts, source=source)


def _validate_entry(entry: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        errors.append(f"unknown field(s) {', '.join(unknown)} (allowed: ko, en, note)")
    for name in ("ko", "en"):
        value = entry.get(name)
        if value is None:
            errors.append(f"missing `{name}`")
        elif not isinstance(value, str):
            errors.append(f"`{name}` must be a string, got {type(value).__name__}")
        elif not value.strip():
            errors.append(f"`{name}` is empty")
    note = entry.get("note")
    if note is not None and not isinstance(note, str):
        errors.append(f"`note` must be a string, got {type(note).__name__}")
    ko = entry.get("ko")
    if isinstance(ko, str) and ko.strip():
        if not _HANGUL.search(ko):
            errors.append("`ko` contains no Korean text (are `ko` and `en` swapped?)")
        if _ASCII_DIGIT.search(ko):
            errors.append(
                "`ko` contains digits; write numbers the way they are spoken "
                "(e.g. 120 as 일이공, 1번 as 일 번)"
            )
    return errors
