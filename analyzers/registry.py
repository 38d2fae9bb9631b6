"""The supplied registry of finance apps and licensed institutions (rule R601).

Pure: built from rows (dicts) that the CLI/jobs layer reads from the CSV named by
``FINMON_REGISTRY`` (format: docs/registry.md). An app is registered when its package is
listed, or else when its normalised name *and* normalised developer (its legal entity where a store
gives one, else the name the store shows) are listed together.
Rows without an app (no package, no app name) are institution licences: they never register
an app, but the finding says whether the developer holds a listed licence.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Mapping

from finmon.model import AppSnapshot

__all__ = ["COLUMNS", "Match", "Registry", "RegistryEntry", "RegistryError", "developer_names", "normalise_developer",
           "normalise_name"]

COLUMNS = ("app_name", "package", "developer", "licence_no", "licence_type", "registered_on")

# Legal-form suffixes and the "(中国)" marker are dropped from developer names; descriptive words
# (科技, 网络, 信息技术, 金融服务) are kept: they are part of the registered name and dropping
# them would merge different companies (某某科技 vs 某某金融信息服务).
_ZH_FORMS = ("股份有限公司", "有限责任公司", "有限公司")
_EN_FORM = re.compile(
    r"[\s,.]*\b(?:co\.?\s*,?\s*ltd|company\s+limited|limited|ltd|incorporated|inc|corporation|corp|llc|plc)\.?\s*$"
)
_NOISE = re.compile(r"[\s\-_·•.,，。、'\"“”‘’:：/\\|]+")


class RegistryError(ValueError):
    """The registry file is unusable (missing columns, a row without a developer)."""


def _base(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return text.replace("（", "(").replace("）", ")")


def normalise_name(name: str) -> str:
    """App name for matching: NFKC, case-folded, without spaces and punctuation."""
    return _NOISE.sub("", _base(name))


def normalise_developer(developer: str) -> str:
    """Developer for matching: NFKC, case-folded, "(中国)" and legal-form suffixes (有限公司, Co., Ltd.) removed,
    then spaces and punctuation removed."""
    text = _base(developer).replace("(中国)", "").strip()
    while True:
        before = text
        text = _EN_FORM.sub("", text).strip()
        for form in _ZH_FORMS:
            if text.endswith(form):
                text = text[: -len(form)].strip()
        if text == before:
            break
    return _NOISE.sub("", text)


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    app_name: str
    package: str
    developer: str
    licence_no: str = ""
    licence_type: str = ""
    registered_on: str = ""
    line: int = 0  # line of the source file, for messages

    @property
    def is_app(self) -> bool:
        return bool(self.package or self.app_name)


@dataclass(frozen=True, slots=True)
class Match:
    by: str  # "package" | "name_developer"
    entry: RegistryEntry


class Registry:
    """Registered apps (by package, by name + developer) and licensed institutions (by developer)."""

    def __init__(self, entries: Iterable[RegistryEntry], source: str = ""):
        self.entries = tuple(entries)
        self.source = source  # a label for reports (the file's name), never read again
        self._packages: dict[str, RegistryEntry] = {}
        self._names: dict[tuple[str, str], RegistryEntry] = {}
        self._licences: dict[str, RegistryEntry] = {}
        for e in self.entries:
            dev = normalise_developer(e.developer)
            if e.package:
                self._packages.setdefault(e.package.strip().lower(), e)
            if e.app_name:
                self._names.setdefault((normalise_name(e.app_name), dev), e)
            if e.licence_no and dev:
                self._licences.setdefault(dev, e)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, str]], source: str = "", first_line: int = 2) -> "Registry":
        """Entries from CSV-like rows (a header naming :data:`COLUMNS` was read already).

        Rows whose first value starts with ``#`` are comments; blank rows are skipped.
        """
        entries = []
        for line, row in enumerate(rows, first_line):
            values = {k.strip().lower(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
            if not any(values.values()) or next(iter(values.values()), "").startswith("#"):
                continue
            missing = [c for c in COLUMNS if c not in values]
            if missing:
                raise RegistryError(f"{source or 'registry'}: columns missing: {', '.join(missing)} "
                                    f"(expected {', '.join(COLUMNS)})")
            if not values["developer"]:
                raise RegistryError(f"{source or 'registry'}:{line}: a row needs a developer")
            entries.append(RegistryEntry(**{c: values[c] for c in COLUMNS}, line=line))
        return cls(entries, source)

    @property
    def app_count(self) -> int:
        return sum(1 for e in self.entries if e.is_app)

    @property
    def licence_count(self) -> int:
        return len(self._licences)

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, app: AppSnapshot) -> Match | None:
        """The registration of ``app``: by package first, then by normalised name + developer."""
        entry = self._packages.get((app.package or "").strip().lower())
        if entry is not None:
            return Match("package", entry)
        for developer in developer_names(app):
            entry = self._names.get((normalise_name(app.name), normalise_developer(developer)))
            if entry is not None and entry.app_name:
                return Match("name_developer", entry)
        return None

    def licence(self, app: AppSnapshot) -> RegistryEntry | None:
        """The listed licence of the app's developer (any row with a licence number), if any: by its legal
        entity first, then by the name the store shows."""
        return next((entry for developer in developer_names(app)
                     if (entry := self._licences.get(normalise_developer(developer))) is not None), None)


def developer_names(app: AppSnapshot) -> tuple[str, ...]:
    """The names a registry may list the app's developer under: its legal entity first (what a licence names),
    then the name the store shows."""
    return tuple(dict.fromkeys(name for name in (app.legal_entity, app.developer) if name))
