"""The partner-agency catalog for referrals (``config/agencies.toml``), as data.

A counselor who links a caller to help records a *referral* to one of these agencies
(ivr.followup.referrals); its monitoring call checks later that the linkage worked. The file
lists ``[[agency]]`` tables:

* ``id`` — a stable key (letters, digits, - and _), what referrals store;
* ``name`` — the Korean name staff read;
* ``category`` — one of 주거 (housing), 식사 (meals), 건강 (health), 정신건강 (mental health),
  일자리 (jobs), 돌봄 (care), 법률 (legal);
* ``district`` — the Seoul 자치구 it serves (e.g. 종로구), or 서울시 for the whole city;
* ``contact`` — the agency's public number (digits and dashes, e.g. 02-000-0000); never a
  person's number;
* ``hours`` — when it can be reached, as staff should read it (e.g. "평일 09:00–18:00");
* ``note`` (optional) — what the agency offers.

Pure: :func:`load_agencies` reads one TOML file; :func:`parse_agencies` checks parsed data.
Every problem in a file is reported at once (:class:`AgencyError`), one line per problem, in
Korean and English.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.tomlfile import read_toml

__all__ = [
    "CATEGORIES",
    "DISTRICTS",
    "Agencies",
    "Agency",
    "AgencyBook",
    "AgencyError",
    "load_agencies",
    "parse_agencies",
]

#: Korean category -> English, in the order staff see them.
CATEGORIES: Mapping[str, str] = {
    "주거": "housing",
    "식사": "meals",
    "건강": "health",
    "정신건강": "mental health",
    "일자리": "jobs",
    "돌봄": "care",
    "법률": "legal",
}
#: Seoul's 25 autonomous districts, and the city as a whole.
DISTRICTS = frozenset(
    {
        "서울시",
        *"종로구 중구 용산구 성동구 광진구 동대문구 중랑구 성북구 강북구 도봉구 노원구 은평구"
        " 서대문구 마포구 양천구 강서구 구로구 금천구 영등포구 동작구 관악구 서초구 강남구"
        " 송파구 강동구".split(),
    }
)

_ID = re.compile(r"^[A-Za-z0-9_-]+$")
#: A public number: 2-4 digit groups joined by dashes (02-000-0000, 1577-0199), or a short
#: public code (120, 129).
_CONTACT = re.compile(r"^(\d{3}|\d{2,4}(-\d{3,4}){1,2})$")
_KEYS = {"id", "name", "category", "district", "contact", "hours", "note"}


class AgencyError(ValueError):
    """The agency file is missing, not valid TOML, or has invalid entries."""


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    category: str  # Korean, a key of CATEGORIES
    district: str
    contact: str
    hours: str
    note: str = ""

    @property
    def category_en(self) -> str:
        return CATEGORIES[self.category]

    def view(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "category_en": self.category_en,
            "district": self.district,
            "contact": self.contact,
            "hours": self.hours,
            "note": self.note,
        }


@dataclass(frozen=True)
class Agencies:
    by_id: Mapping[str, Agency]

    def __iter__(self) -> Iterator[Agency]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, agency_id: object) -> bool:
        return agency_id in self.by_id

    def get(self, agency_id: str) -> Agency | None:
        return self.by_id.get(agency_id)

    def select(self, category: str | None = None, district: str | None = None) -> list[Agency]:
        """Agencies of a category (Korean or English) serving a district (its own or the
        whole city), in file order."""
        cat = {v: k for k, v in CATEGORIES.items()}.get(category or "", category)
        return [
            a
            for a in self
            if (cat is None or a.category == cat)
            and (district is None or a.district in (district, "서울시"))
        ]


@dataclass
class AgencyBook:
    """The catalog in force: replaced as a whole by a reload (ivr.reload)."""

    current: Agencies = field(default_factory=lambda: Agencies({}))


def load_agencies(path: str | Path) -> Agencies:
    file = Path(path)
    data = read_toml(
        file,
        AgencyError,
        missing="기관 목록이 없습니다 — agency catalog not found",
        unreadable="기관 목록을 읽을 수 없습니다 — cannot read the agency catalog",
        invalid="TOML 형식 오류 — not valid TOML",
    )
    return parse_agencies(data, source=str(file))


def _text(errors: list[str], where: str, entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is None:
        errors.append(f"{where}: `{key}` 항목이 없습니다 — missing `{key}`")
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(
            f"{where}: `{key}`은(는) 비어 있지 않은 문자열이어야 합니다 — "
            f"`{key}` must be a non-empty string, got {value!r}"
        )
        return None
    return value.strip()


def _agency(errors: list[str], n: int, entry: Any) -> Agency | None:
    where = f"[[agency]] #{n}"
    if not isinstance(entry, Mapping):
        errors.append(f"{where}: 표가 아닙니다 — expected a table")
        return None
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        errors.append(f"{where}: 알 수 없는 항목 — unknown key(s) {', '.join(unknown)}")
    values = {k: _text(errors, where, entry, k) for k in sorted(_KEYS - {"note"})}
    note = entry.get("note", "")
    if not isinstance(note, str):
        errors.append(f"{where}: `note`는 문자열이어야 합니다 — `note` must be a string")
        note = ""
    aid, category = values["id"], values["category"]
    district, contact = values["district"], values["contact"]
    if aid is not None:
        where = f"[[agency]] {aid}"
        if not _ID.match(aid):
            errors.append(
                f"{where}: id에는 영문, 숫자, -, _만 쓸 수 있습니다 — "
                "id must be letters, digits, - and _"
            )
    if category is not None and category not in CATEGORIES:
        errors.append(
            f"{where}: 알 수 없는 분류 {category!r} — unknown category; one of "
            + ", ".join(f"{k} ({v})" for k, v in CATEGORIES.items())
        )
    if district is not None and district not in DISTRICTS:
        errors.append(
            f"{where}: 서울의 자치구가 아닙니다 {district!r} — not a Seoul district "
            "(e.g. 종로구, or 서울시 for the whole city)"
        )
    if contact is not None and not _CONTACT.match(contact):
        errors.append(
            f"{where}: 연락처 형식이 잘못되었습니다 {contact!r} — contact must be the agency's "
            "public number, digits and dashes like 02-000-0000"
        )
    if any(v is None for v in values.values()) or len(errors) > 0:
        return None
    return Agency(
        id=str(aid),
        name=str(values["name"]),
        category=str(category),
        district=str(district),
        contact=str(contact),
        hours=str(values["hours"]),
        note=note.strip(),
    )


def parse_agencies(data: Mapping[str, Any], source: str = "agencies") -> Agencies:
    """Check already-parsed TOML data. `source` names the file in error messages."""
    errors: list[str] = []
    unknown = sorted(set(data) - {"agency"})
    if unknown:
        errors.append(f"알 수 없는 항목 — unknown key(s) {', '.join(unknown)}")
    raw = data.get("agency")
    if not isinstance(raw, list) or not raw:
        errors.append(
            "[[agency]]: 기관이 하나 이상 필요합니다 — the catalog needs at least one agency"
        )
        raw = []
    agencies: dict[str, Agency] = {}
    for n, entry in enumerate(raw, 1):
        mine: list[str] = []
        agency = _agency(mine, n, entry)
        errors += mine
        if agency is None:
            continue
        if agency.id in agencies:
            errors.append(
                f"[[agency]] #{n}: id {agency.id}가 중복됩니다 — duplicate agency id {agency.id}"
            )
            continue
        agencies[agency.id] = agency
    if errors:
        raise AgencyError(
            f"{source}: 기관 목록 오류 — invalid agency catalog:\n"
            + "\n".join(f"  {e}" for e in errors)
        )
    return Agencies(agencies)
