"""Illegal fund-raising language in store listings (rule R602): patterns from data/fundraising.json.

Three categories: promises of principal and interest or of no risk, unrealistic yields (a rate
annualised and compared with a threshold), and referral rebates. A hit is dropped when its
clause negates it before the hit ("不承诺保本保息") or warns against it ("谨防…骗局").
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .policy_text import load_json

__all__ = ["Hit", "PERIOD_FACTOR", "fundraising_data", "scan_listing_text"]

PERIOD_FACTOR = {"year": 1, "month": 12, "day": 365}  # simple-interest annualisation
_SENTENCE_END = re.compile(r"[。！？；!?;\n]|\.(?=\s|$)")
_CLAUSE_END = re.compile(r"[，,。！？；!?;\n]|\.(?=\s|$)")


@dataclass(frozen=True, slots=True)
class Hit:
    """One matched phrase: its category, span, sentence span and (yields) annualised rate."""

    category: str
    phrase: str
    start: int
    end: int
    sent_start: int
    sent_end: int
    annual_percent: float | None = None


@dataclass(frozen=True)
class _Matcher:
    category: str
    pattern: re.Pattern
    excludes: tuple[str, ...] = ()
    period: str | None = None  # yields only
    names_return: bool = True


@lru_cache(maxsize=1)
def fundraising_data() -> dict:
    return load_json("fundraising.json")


def _phrase_pattern(phrase: str) -> re.Pattern:
    if phrase.isascii():
        return re.compile(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])", re.IGNORECASE)
    return re.compile(re.escape(phrase))


@lru_cache(maxsize=1)
def _matchers() -> tuple[_Matcher, ...]:
    out = []
    for cat in fundraising_data()["categories"]:
        excludes = cat.get("exclude", {})
        for phrase in cat.get("phrases", ()):
            out.append(_Matcher(cat["id"], _phrase_pattern(phrase), tuple(excludes.get(phrase, ()))))
        for regex in cat.get("patterns", ()):
            out.append(_Matcher(cat["id"], re.compile(regex, re.IGNORECASE)))
        for rate in cat.get("rates", ()):
            english = rate.get("english", False)
            gap = cat["gap_en"] if english else cat["gap_zh"]
            regex = rate["regex"] + gap + cat["number"]
            if english:
                regex = r"(?<![a-z])" + regex
            out.append(_Matcher(cat["id"], re.compile(regex, re.IGNORECASE), period=rate["period"],
                                names_return=rate.get("names_return", True)))
    return tuple(out)


def _span(text: str, pos: int, end_pattern: re.Pattern) -> tuple[int, int]:
    """The sentence or clause around ``pos``: from after the previous end mark to its own end mark."""
    start = 0
    for m in end_pattern.finditer(text, 0, pos):
        start = m.end()
    m = end_pattern.search(text, pos)
    end = m.end() if m else len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _has_word(text: str, words) -> bool:
    lowered = text.lower()
    for w in words:
        if w.isascii():
            if re.search(rf"(?<![a-z']){re.escape(w)}(?![a-z'])", lowered):
                return True
        elif w in text:
            return True
    return False


def _negated(text: str, start: int, before_end: int) -> bool:
    """Negated before ``before_end`` (the hit's start; a rate's number) or a warning in the clause."""
    neg = fundraising_data()["negation"]
    c_start, c_end = _span(text, start, _CLAUSE_END)
    before, clause = text[c_start:before_end], text[c_start:c_end]
    for exception in neg["negation_exceptions"]:
        before = before.replace(exception, " ")
    return (_has_word(before, neg["before_zh"]) or _has_word(before, neg["before_en"])
            or _has_word(clause, neg["warning_zh"]) or _has_word(clause, neg["warning_en"]))


def _number(value: str | None) -> float | None:
    return None if value is None else float(unicodedata.normalize("NFKC", value))


def _category(category_id: str) -> dict:
    return next(c for c in fundraising_data()["categories"] if c["id"] == category_id)


def scan_listing_text(text: str) -> list[Hit]:
    """Every non-negated hit in one listing field, in text order (one or more per category)."""
    hits = []
    for matcher in _matchers():
        for m in matcher.pattern.finditer(text or ""):
            start, end = m.start(), m.end()
            if any(text.startswith(x, pos) for x in matcher.excludes
                   for pos in range(max(0, start - len(x)), start + 1) if pos + len(x) >= end):
                continue
            annual = None
            if matcher.period is not None:
                cat = _category(matcher.category)
                rate = max(v for v in (_number(m.group("num")), _number(m.group("num2"))) if v is not None)
                annual = round(rate * PERIOD_FACTOR[matcher.period], 4)
                if annual < float(cat["threshold_annual_percent"]):
                    continue
                c_start, c_end = _span(text, start, _CLAUSE_END)
                clause = text[c_start:c_end]
                if _has_word(clause, cat["history_cues"]):
                    continue
                if not matcher.names_return and _has_word(clause, cat["borrowing_cues"]):
                    continue
            if _negated(text, start, m.start("num") if matcher.period is not None else start):
                continue
            s_start, s_end = _span(text, start, _SENTENCE_END)
            hits.append(Hit(matcher.category, m.group(0), start, end, s_start, s_end, annual))
    hits.sort(key=lambda h: (h.start, -h.end))
    return hits
