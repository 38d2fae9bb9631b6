"""Privacy-policy clauses: does a policy give a way to withdraw consent, to delete or correct, a complaint
channel; does it share personal information without naming any recipient.

The cues are regular expressions in ``data/policy_clauses.json`` (zh and en), compiled once. A sharing
sentence is negated when a negation cue of that file occurs before its sharing cue.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .policy_text import load_json, sentence_spans

__all__ = ["ClauseCues", "clause_cues", "has_clause", "has_contact_channel", "names_recipient",
           "sharing_sentences"]

_FLAGS = re.IGNORECASE


def _alternation(patterns: list[str]) -> re.Pattern:
    if not patterns:
        raise ValueError("an empty cue list")
    return re.compile("|".join(f"(?:{p})" for p in patterns), _FLAGS)


@dataclass(frozen=True)
class ClauseCues:
    clauses: dict[str, re.Pattern]
    contact: re.Pattern
    negation: re.Pattern
    company: re.Pattern
    generic_company: frozenset[str]
    listed: re.Pattern


@lru_cache(maxsize=1)
def clause_cues() -> ClauseCues:
    """The cues of data/policy_clauses.json, compiled once."""
    data = load_json("policy_clauses.json")
    clauses = {cid: _alternation(c.get("zh", []) + c.get("en", [])) for cid, c in data["clauses"].items()}
    neg = data["negation"]
    negation = _alternation([re.escape(p) for p in neg["zh"]] + [rf"\b{re.escape(p)}\b" for p in neg["en"]])
    named = data["named_recipient"]
    return ClauseCues(clauses, _alternation(data["contact_patterns"]), negation,
                      _alternation(named["company_in_sentence"]), frozenset(named["generic_company"]),
                      _alternation(named["anywhere"]))


def has_clause(text: str, clause_id: str) -> bool:
    """Whether one of the clause's cues occurs in ``text``."""
    return clause_cues().clauses[clause_id].search(text) is not None


def has_contact_channel(text: str) -> bool:
    """A complaint/contact cue and a contact detail (e-mail, phone or address) both occur in ``text``."""
    cues = clause_cues()
    return cues.clauses["complaint_channel"].search(text) is not None and cues.contact.search(text) is not None


@lru_cache(maxsize=512)
def sharing_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence that affirmatively says personal information is shared or provided."""
    cues = clause_cues()
    sharing = cues.clauses["third_party_sharing"]
    if sharing.search(text) is None:
        return ()
    out = []
    for start, end in sentence_spans(text):
        m = sharing.search(text, start, end)
        if m is not None and cues.negation.search(text, start, m.start()) is None:
            out.append((start, end))
    return tuple(out)


def names_recipient(text: str, sentences: tuple[tuple[int, int], ...]) -> bool:
    """Whether the policy names a recipient: a company in a sharing sentence, or an SDK or third-party list."""
    cues = clause_cues()
    if cues.listed.search(text) is not None:
        return True
    for start, end in sentences:
        for m in cues.company.finditer(text, start, end):
            if not any(m.group(0).endswith(g) for g in cues.generic_company):
                return True
    return False
