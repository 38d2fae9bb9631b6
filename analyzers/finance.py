"""Finance type of an app (lending, payment, …) from its name, category, developer and description.

Cues and weights live in data/finance_types.json, with each type's necessary-information
scope under the 2021 rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from finmon.model import AppSnapshot

from .policy_text import load_json

__all__ = ["FinanceType", "OTHER", "classify", "classify_app", "finance_data", "finance_types"]

OTHER = "other"
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")  # QuickLoan → Quick Loan
FIELDS = ("name", "category", "developer", "description")


@dataclass(frozen=True, slots=True)
class FinanceType:
    """A finance type and its necessary personal information (None: the rules define no scope)."""

    id: str
    name_zh: str
    name_en: str
    necessary: frozenset[str] | None
    necessary_text_zh: str
    regulation: str | None


@dataclass(frozen=True, slots=True)
class _Cue:
    type: str
    field: str
    text: str
    weight: float
    excludes: tuple[str, ...]
    pattern: re.Pattern | None  # English cues: whole words, case-insensitive

    def present(self, value: str, lowered: str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(lowered) is not None
        if self.text not in value:
            return False
        for phrase in self.excludes:
            value = value.replace(phrase, "\x00")
        return self.text in value


@lru_cache(maxsize=1)
def finance_data() -> dict:
    return load_json("finance_types.json")


@lru_cache(maxsize=1)
def finance_types() -> dict[str, FinanceType]:
    """Finance types by id, in data-file order."""
    out = {}
    for raw in finance_data()["types"]:
        necessary = raw.get("necessary")
        out[raw["id"]] = FinanceType(
            id=raw["id"], name_zh=raw["name_zh"], name_en=raw["name_en"],
            necessary=None if necessary is None else frozenset(necessary),
            necessary_text_zh=raw.get("necessary_text_zh", ""), regulation=raw.get("regulation"),
        )
    return out


@lru_cache(maxsize=1)
def _cues() -> tuple[_Cue, ...]:
    out = []
    for type_id, spec in finance_data()["classifier"]["cues"].items():
        excludes = spec.get("exclude", {})
        for field in FIELDS:
            for text, weight in spec.get(field, {}).items():
                pattern = None
                if text.isascii():
                    pattern = re.compile(rf"(?<![a-z0-9]){re.escape(text.lower())}(?![a-z0-9])")
                out.append(_Cue(type_id, field, text, float(weight), tuple(excludes.get(text, ())), pattern))
    return tuple(out)


def classify(name: str, category: str = "", developer: str = "", description: str = "") -> tuple[str, float]:
    """(finance type id, confidence in [0, 1]) from an app's listing fields."""
    config = finance_data()["classifier"]
    values = {"name": name or "", "category": category or "", "developer": developer or "",
              "description": description or ""}
    lowered = {k: _CAMEL.sub(" ", v).lower() for k, v in values.items()}
    scores: dict[str, float] = {}
    for cue in _cues():
        if cue.present(values[cue.field], lowered[cue.field]):
            scores[cue.type] = scores.get(cue.type, 0.0) + cue.weight
    order = list(finance_types())
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], order.index(kv[0])))
    best_type, best = ranked[0] if ranked else (OTHER, 0.0)
    min_score, saturation = float(config["min_score"]), float(config["saturation"])
    if best < min_score:
        return OTHER, round(1.0 - best / min_score, 2)
    confidence = best / sum(scores.values()) * min(1.0, best / saturation)
    return best_type, round(confidence, 2)


def classify_app(app: AppSnapshot) -> tuple[str, float]:
    """:func:`classify` on a snapshot's merged listing fields."""
    return classify(app.name, app.category, app.developer, app.description)
