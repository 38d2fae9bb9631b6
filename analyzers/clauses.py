"""Privacy-policy clauses: does a policy give a way to withdraw consent, to delete or correct, a complaint
channel; does it share personal information without naming any recipient; which sentences state a purpose of
processing, and which sensitive data it declares collecting without stating any purpose.

The cues are regular expressions in ``data/policy_clauses.json`` (zh and en), compiled once. A sharing
sentence is negated when a negation cue of that file occurs before its sharing cue. Every cue is matched
against the text read as Simplified Chinese (:func:`analyzers.policy_text.simplified`, offsets unchanged).

Speed: each cue list is one alternation, and Python's ``re`` tries every alternative at every position of a
text (about a millisecond per policy and cue). But almost every alternative starts with one of a few literal
strings (撤回, 与第三方, share…), read off the parsed expression (:func:`cue_prefixes`). These prefixes are
markers of the lexicon's automaton (analyzers.policy_text), so the pass that finds the data-type mentions also
finds where each prefix starts; a cue's expression is then tried only at those positions, in text order
(``Pattern.match``), which finds exactly the match ``Pattern.search`` finds. A cue with an alternative that has
no literal prefix, or a text whose marker offsets are unknown, is searched with ``re`` as before.
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as sre
from re import _parser as sre_parse
from typing import Iterable, Iterator, NamedTuple

from .policy_text import Mention, _strip, load_json, reading, sentence_spans, simplified

__all__ = ["ClauseCues", "Cue", "cache_clear", "clause_cues", "clause_sentences", "cue_prefixes", "has_clause",
           "has_contact_channel",
           "names_recipient", "purpose_sentences", "sharing_sentences", "without_purpose"]

_FLAGS = re.IGNORECASE
_MAX_PREFIXES = 256  # literal prefixes kept per alternative; past that the prefix is cut shorter
_MAX_CLASS = 16  # a character class of up to this many characters is expanded into its characters
_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)
# cues only ever searched inside one sentence, where a plain search is as fast: no prefixes, no markers
_IN_SENTENCE = frozenset({"negation", "collection", "definition"})


class Cue(NamedTuple):
    """One cue list compiled into an alternation, and the literal prefixes that every match starts with."""

    name: str  # the name of its marker set in the lexicon
    pattern: re.Pattern
    prefixes: frozenset[str] | None  # lower-case; None: some alternative has no literal prefix


@dataclass(frozen=True)
class ClauseCues:
    clauses: dict[str, Cue]
    contact: Cue
    negation: Cue
    company: re.Pattern
    generic_company: frozenset[str]
    listed: Cue
    purpose: Cue
    sensitive_types: tuple[str, ...]  # data types whose collection needs a stated purpose (C206)
    collection: Cue
    definition: Cue


def _alternation(patterns: list[str]) -> re.Pattern:
    if not patterns:
        raise ValueError("an empty cue list")
    return re.compile("|".join(f"(?:{p})" for p in patterns), _FLAGS)


@lru_cache(maxsize=1)
def clause_cues() -> ClauseCues:
    """The cues of data/policy_clauses.json, compiled once."""
    data = load_json("policy_clauses.json")
    lists = {f"clause:{cid}": c.get("zh", []) + c.get("en", []) for cid, c in data["clauses"].items()}
    neg = data["negation"]
    lists["negation"] = [re.escape(p) for p in neg["zh"]] + [rf"\b{re.escape(p)}\b" for p in neg["en"]]
    lists["contact"] = data["contact_patterns"]
    named = data["named_recipient"]
    lists["listed"] = named["anywhere"]
    lists["purpose"] = data["purpose"]["zh"] + data["purpose"]["en"]
    sensitive = data["sensitive_collection"]
    for part in ("collection", "definition"):
        lists[part] = sensitive[part]["zh"] + sensitive[part]["en"]
    cues = {name: Cue(name, _alternation(patterns), None if name in _IN_SENTENCE else _cue_prefixes(patterns))
            for name, patterns in lists.items()}
    clauses = {name.removeprefix("clause:"): cue for name, cue in cues.items() if name.startswith("clause:")}
    return ClauseCues(clauses, cues["contact"], cues["negation"], _alternation(named["company_in_sentence"]),
                      frozenset(named["generic_company"]), cues["listed"], cues["purpose"], tuple(sensitive["types"]),
                      cues["collection"], cues["definition"])


def cue_prefixes() -> dict[str, frozenset[str]]:
    """The literal prefixes of each cue searched across a text, by cue name (the lexicon's markers)."""
    cues = clause_cues()
    every = [*cues.clauses.values(), cues.contact, cues.listed, cues.purpose]
    return {cue.name: cue.prefixes for cue in every if cue.prefixes is not None}


def has_clause(text: str, clause_id: str) -> bool:
    """Whether one of the clause's cues occurs in ``text``."""
    return _search(text, clause_cues().clauses[clause_id], 0, len(text)) is not None


def has_contact_channel(text: str) -> bool:
    """A complaint/contact cue and a contact detail (e-mail, phone or address) both occur in ``text``."""
    cues = clause_cues()
    return (_search(text, cues.clauses["complaint_channel"], 0, len(text)) is not None
            and _search(text, cues.contact, 0, len(text)) is not None)


@lru_cache(maxsize=1024)
def clause_sentences(text: str, clause_id: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence where the clause's cue occurs with no negation cue before it."""
    cues = clause_cues()
    return tuple((start, end) for (start, end), m in _sentence_matches(text, cues.clauses[clause_id])
                 if _search(text, cues.negation, start, m.start()) is None)


def sharing_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence that affirmatively says personal information is shared or provided."""
    return clause_sentences(text, "third_party_sharing")


def names_recipient(text: str, sentences: tuple[tuple[int, int], ...]) -> bool:
    """Whether the policy names a recipient: a company in a sharing sentence, or an SDK or third-party list."""
    cues = clause_cues()
    if _search(text, cues.listed, 0, len(text)) is not None:
        return True
    for start, end in sentences:
        for m in cues.company.finditer(simplified(text), start, end):
            if not any(m.group(0).endswith(g) for g in cues.generic_company):
                return True
    return False


@lru_cache(maxsize=512)
def purpose_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence that states a purpose of processing (为了…, 用于…, in order to…)."""
    return tuple(span for span, _ in _sentence_matches(text, clause_cues().purpose))


def without_purpose(text: str, mentions: Iterable[Mention], types: Iterable[str] | None = None) -> list[Mention]:
    """For each data type that ``text`` declares collecting but never next to a stated purpose, the first
    declaring mention, in the order of ``types`` (by default the sensitive types of data/policy_clauses.json).

    A declaration is an affirmative mention in a sentence with a collection cue (收集, 获取, collect…) that is not
    a definition (是指, 一旦泄露…, means…). A type has a stated purpose when any affirmative mention of it sits in a
    sentence, or next to a non-blank sentence right before or after it, that states one
    (:func:`purpose_sentences`): policies often give the purpose in the next sentence (我们会收集您的位置信息。该信息
    用于…) or in a lead-in line (为了向您提供借款服务，您需要提供：).
    """
    cues = clause_cues()
    types = cues.sensitive_types if types is None else tuple(types)
    ends = reading(text).sentence_ends
    stated = {bisect_right(ends, start) for start, _ in purpose_sentences(text)}  # raw sentence indices
    wanted = set(types)
    first: dict[str, Mention] = {}
    explained: set[str] = set()
    for m in mentions:
        if m.negated or m.type not in wanted or m.type in explained:
            continue
        i = bisect_right(ends, m.sent_start)
        if i in stated or _neighbour(text, ends, i, -1) in stated or _neighbour(text, ends, i, 1) in stated:
            explained.add(m.type)
        elif m.type not in first and _declares(text, m.sent_start, m.sent_end):
            first[m.type] = m
    return [first[t] for t in types if t in first and t not in explained]


def _declares(text: str, start: int, end: int) -> bool:
    cues = clause_cues()
    return (_search(text, cues.collection, start, end) is not None
            and _search(text, cues.definition, start, end) is None)


def _neighbour(text: str, ends: list[int], i: int, step: int) -> int:
    """Index of the nearest raw sentence before (step -1) or after (step 1) raw sentence ``i`` that is not blank."""
    i += step
    while 0 <= i < len(ends):
        start, end = _strip(text, ends[i - 1] if i else 0, ends[i])
        if start < end:
            return i
        i += step
    return -1


def cache_clear() -> None:
    """Forget the per-text answers (for timing)."""
    for cached in (clause_sentences, purpose_sentences):
        cached.cache_clear()


# -- searching only where a prefix starts ------------------------------------------------------------------------
def _search(text: str, cue: Cue, start: int, end: int) -> re.Match | None:
    """``cue.pattern.search(text, start, end)``, trying only the positions where one of its prefixes starts."""
    markers = reading(text).markers
    text = simplified(text)
    if cue.prefixes is None or markers is None:
        return cue.pattern.search(text, start, end)
    positions = markers[cue.name]
    match = cue.pattern.match
    for i in range(bisect_left(positions, start), len(positions)):
        pos = positions[i]
        if pos >= end:
            break
        m = match(text, pos, end)
        if m is not None:
            return m
    return None


def _sentence_matches(text: str, cue: Cue) -> Iterator[tuple[tuple[int, int], re.Match]]:
    """Each sentence of ``text`` (as :func:`~analyzers.policy_text.sentence_spans` has them) where ``cue`` matches,
    with its first match (``cue.pattern.search(text, start, end)``)."""
    read = reading(text)
    text = simplified(text)
    if cue.prefixes is None or read.markers is None:
        for start, end in sentence_spans(text):
            m = cue.pattern.search(text, start, end)
            if m is not None:
                yield (start, end), m
        return
    ends, match = read.sentence_ends, cue.pattern.match
    sentence, index, found = (0, 0), -1, -1
    for pos in read.markers[cue.name]:  # in text order: the first match in a sentence is its search result
        i = bisect_right(ends, pos)
        if i == found:
            continue
        if i != index:
            sentence, index = _strip(text, ends[i - 1] if i else 0, ends[i]), i
        if sentence[0] <= pos < sentence[1]:
            m = match(text, pos, sentence[1])
            if m is not None:
                found = i
                yield sentence, m


# -- literal prefixes of a regular expression ------------------------------------------------------------------
def _cue_prefixes(patterns: list[str]) -> frozenset[str] | None:
    """Case-folded literal strings one of which starts every match of one of ``patterns`` (None: unknown).

    Only prefixes whose letters are ASCII (or uncased, as Chinese is) are used: case-insensitive matching of
    other letters knows equivalences that lower-casing does not.
    """
    found: set[str] = set()
    for pattern in patterns:
        prefixes = _prefixes(list(sre_parse.parse(pattern, _FLAGS)))
        if prefixes is None:
            return None
        for prefix in prefixes:
            if any(not c.isascii() and c.lower() != c.upper() for c in prefix):
                return None
            found.add(prefix.lower())
    shortest: list[str] = []
    for prefix in sorted(found, key=len):  # a prefix that starts with another one adds no position
        if not any(prefix.startswith(p) for p in shortest):
            shortest.append(prefix)
    return frozenset(shortest)


def _prefixes(items: list) -> set[str] | None:
    """Literal strings one of which starts every match of the parsed sequence ``items`` (None: none known)."""
    out = {""}
    for op, av in items:
        whole = _strings(op, av)
        heads = whole if whole is not None else _head_strings(op, av)
        if heads is None:
            break
        grown = {a + b for a in out for b in heads}
        if len(grown) > _MAX_PREFIXES:
            break
        out = grown
        if whole is None:  # only the item's own prefixes are known: the literal prefix ends there
            break
    return None if "" in out else out


def _head_strings(op, av) -> set[str] | None:
    """Prefixes of a group or an alternation that is not a small finite set of strings."""
    if op is sre.SUBPATTERN and not av[1] and not av[2]:
        return _prefixes(av[3])
    if op is sre.BRANCH:
        return _union(av[1], _prefixes)
    return None


def _union(alternatives, strings_of) -> set[str] | None:
    """The union of ``strings_of`` each alternative (None when one of them is None)."""
    out: set[str] = set()
    for alternative in alternatives:
        strings = strings_of(alternative)
        if strings is None:
            return None
        out |= strings
    return out


def _strings(op, av) -> set[str] | None:
    """Every string one parsed item can match, when that is a small finite set (zero-width items match "")."""
    if op in _ZERO_WIDTH:
        return {""}
    if op is sre.LITERAL:
        return {chr(av)}
    if op is sre.IN:
        chars: set[str] = set()
        for kind, value in av:
            if kind is sre.LITERAL:
                chars.add(chr(value))
            elif kind is sre.RANGE and value[1] - value[0] < _MAX_CLASS:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:
                return None
        return chars if len(chars) <= _MAX_CLASS else None
    if op is sre.SUBPATTERN:
        return None if av[1] or av[2] else _sequence_strings(av[3])
    if op is sre.BRANCH:
        out = _union(av[1], _sequence_strings)
        return out if out is not None and len(out) <= _MAX_PREFIXES else None
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, item = av
        strings = _sequence_strings(item) if high <= 4 else None
        if strings is None:
            return None
        out, repeated = set(), {""}
        for count in range(high + 1):
            if count >= low:
                out |= repeated
            repeated = {a + b for a in repeated for b in strings}
            if len(repeated) > _MAX_PREFIXES:
                return None
        return out
    return None


def _sequence_strings(items) -> set[str] | None:
    out = {""}
    for op, av in items:
        strings = _strings(op, av)
        if strings is None:
            return None
        out = {a + b for a in out for b in strings}
        if len(out) > _MAX_PREFIXES:
            return None
    return out
