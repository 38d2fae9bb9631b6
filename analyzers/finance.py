"""Finance type of an app (lending, payment, …) from its listing and its privacy policy.

Every signal counts: the app's name, its store category, its developer (a legal entity such as
XX消费金融有限公司 or XX证券股份有限公司), its description and, when it was fetched, its privacy
policy: the company the policy names as its operator, and the services it describes (借款, 开户,
基金申购, 转账, …). Cues and weights live in data/finance_types.json (``classifier``), with each type's
necessary-information scope under the 2021 rules.

Three kinds of cue:

* type cues score for one finance type;
* general-finance cues (a store category such as 金融理财 or 财务) say the app is some finance app
  without saying which: they add a little to every type that has a cue of its own, so a finance
  category lets weaker evidence (usually the policy's) decide, but never decide alone;
* not-finance cues (记账, 账本, a game category) count against every type.

Listing fields count a cue once. In the policy a service cue counts per occurrence, up to a cap, and
a licensed-entity cue (消费金融有限公司, 证券股份有限公司, …) counts in full only where it names the
policy's operator: as the first company its opening names, or followed by the policy's name for
itself ((以下简称“我们”)). Elsewhere (a partner, a payment channel) it counts
a fraction. A type's policy score is capped, so that a developer's policy shared by apps of several
types does not drown their listings. Every field is read as Simplified Chinese
(:func:`analyzers.policy_text.simplified`), so Traditional names and policies count alike.

:func:`explain_app` gives the verdict with the cues that decided it; :func:`classify_app` just its
(type, confidence).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import ahocorasick

from finmon.model import POLICY_OK, AppSnapshot

from .policy_text import load_json, simplified

__all__ = ["FinanceType", "FinanceVerdict", "OTHER", "classify", "classify_app", "explain", "explain_app",
           "finance_data", "finance_types"]

OTHER = "other"
GENERAL = "general"  # pseudo-type of the general-finance cues
NOT_FINANCE = "not_finance"  # pseudo-type of the cues that count against every type
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")  # QuickLoan → Quick Loan
FIELDS = ("name", "category", "developer", "description")
POLICY_FIELDS = ("policy", "policy_operator")
_MASK = "\x00"


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
class FinanceVerdict:
    """A finance type, its confidence in [0, 1] and the cues behind it ("developer: 消费金融", …)."""

    value: str
    confidence: float
    evidence: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Cue:
    type: str  # a finance type id, GENERAL or NOT_FINANCE
    field: str  # a listing field, "policy" (services, counted) or "policy_operator" (licensed entities)
    text: str
    weight: float
    excludes: tuple[str, ...]
    pattern: re.Pattern | None  # English cues: whole words, case-insensitive

    def starts(self, value: str, lowered: str) -> list[int]:
        """Start offsets of the cue's non-overlapping occurrences, those inside an exclude phrase left out."""
        if self.pattern is not None:
            if self.text.lower() not in lowered:
                return []
            masked = _masked(lowered, tuple(p.lower() for p in self.excludes))
            return [m.start() for m in self.pattern.finditer(masked)]
        if self.text not in value:
            return []
        masked = _masked(value, self.excludes)
        out, at = [], masked.find(self.text)
        while at >= 0:
            out.append(at)
            at = masked.find(self.text, at + len(self.text))
        return out

    def present(self, value: str, lowered: str) -> bool:
        return bool(self.starts(value, lowered))


def _masked(value: str, phrases: tuple[str, ...]) -> str:
    """``value`` with every exclude phrase blanked out, longest first (same length, so offsets hold)."""
    for phrase in sorted(phrases, key=len, reverse=True):
        if phrase and phrase in value:
            value = value.replace(phrase, _MASK * len(phrase))
    return value


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
    config = finance_data()["classifier"]
    specs = [*config["cues"].items(), (GENERAL, config.get(GENERAL, {})), (NOT_FINANCE, config.get(NOT_FINANCE, {}))]
    out = []
    for type_id, spec in specs:
        excludes = spec.get("exclude", {})
        for field in FIELDS + POLICY_FIELDS:
            for text, weight in spec.get(field, {}).items():
                pattern = None
                if text.isascii():
                    pattern = re.compile(rf"(?<![a-z0-9]){re.escape(text.lower())}(?![a-z0-9])")
                out.append(_Cue(type_id, field, simplified(text), float(weight), tuple(excludes.get(text, ())),
                                pattern))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Hit:
    cue: _Cue
    score: float
    label: str  # the evidence string


def _lowered(value: str) -> str:
    return _CAMEL.sub(" ", value).lower()


def _listing_hits(values: dict[str, str]) -> list[_Hit]:
    lowered = {k: _lowered(v) for k, v in values.items()}
    return [_Hit(cue, cue.weight, f"{cue.field}: {cue.text}")
            for cue in _cues() if cue.field in FIELDS and cue.present(values[cue.field], lowered[cue.field])]


def _names_itself(text: str, end: int, config: dict) -> bool:
    """Whether the entity ending at ``end`` is followed by a parenthesis that gives the policy's short name for
    it ((以下简称“我们”)): the policy names its operator there."""
    after = text[end:end + int(config["self_reference_chars"])].lstrip()
    return after[:1] in config["self_reference_open"] and any(m in after for m in config["self_reference"])


@lru_cache(maxsize=1)
def _policy_automaton() -> ahocorasick.Automaton:
    """The lower-cased texts of the policy cues, in one automaton."""
    automaton = ahocorasick.Automaton()
    for cue in _cues():
        if cue.field in POLICY_FIELDS:
            automaton.add_word(cue.text.lower(), cue.text.lower())
    automaton.make_automaton()
    return automaton


@lru_cache(maxsize=256)
def _policy_hits(text: str) -> tuple[_Hit, ...]:
    """Cue hits in a policy text (already Simplified), cached: a policy is often shared by several apps.

    A licensed entity is the operator where the policy gives its short name for itself after it
    (:func:`_names_itself`), or when it is the first company the text names and stands in its opening. Partners
    (named after the operator, or anywhere else) are mentions.
    """
    config = finance_data()["classifier"]["policy"]
    cap, mention = int(config["count_cap"]), float(config["mention_factor"])
    lowered = text.lower()  # English cues only count occurrences, so a fold that shifts offsets does no harm
    present = {key for _, key in _policy_automaton().iter(lowered)}  # one pass finds which cues can occur
    services, entities = [], []
    for cue in _cues():
        if cue.field in POLICY_FIELDS and cue.text.lower() in present:
            starts = cue.starts(text, lowered)
            if starts:
                (services if cue.field == "policy" else entities).append((cue, starts))
    out = [_Hit(cue, cue.weight * min(len(starts), cap), f"policy: {cue.text} ×{len(starts)}")
           for cue, starts in services]
    first = min((starts[0] for _, starts in entities), default=-1)
    opening = text[:min(first, int(config["opening_chars"]))]
    heads = first >= 0 and first < int(config["opening_chars"]) and not any(s in opening for s in config["company"])
    for cue, starts in entities:
        if (heads and starts[0] == first) or any(_names_itself(text, s + len(cue.text), config) for s in starts):
            out.append(_Hit(cue, cue.weight, f"policy: {cue.text}"))
        else:
            out.append(_Hit(cue, cue.weight * mention, f"policy: {cue.text} (not as operator)"))
    return tuple(out)


def _round(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 2)


def explain(name: str, category: str = "", developer: str = "", description: str = "",
            policy: str = "") -> FinanceVerdict:
    """The finance type of an app from its listing fields and its policy text, and the cues that decided it."""
    config = finance_data()["classifier"]
    values = {"name": name or "", "category": category or "", "developer": developer or "",
              "description": description or ""}
    values = {k: simplified(v) for k, v in values.items()}
    hits = _listing_hits(values)
    if policy:
        hits.extend(_policy_hits(simplified(policy)))
    policy_cap = float(config["policy"]["type_cap"])
    specific: dict[str, float] = {}
    from_policy: dict[str, float] = {}
    strongest: dict[tuple[str, str], _Hit] = {}  # general and not-finance cues: the strongest of each field
    for hit in hits:
        if hit.cue.type in (GENERAL, NOT_FINANCE):
            key = (hit.cue.type, "policy" if hit.cue.field in POLICY_FIELDS else hit.cue.field)
            if key not in strongest or hit.score > strongest[key].score:
                strongest[key] = hit
        elif hit.cue.field in POLICY_FIELDS:
            from_policy[hit.cue.type] = from_policy.get(hit.cue.type, 0.0) + hit.score
        else:
            specific[hit.cue.type] = specific.get(hit.cue.type, 0.0) + hit.score
    for type_id, score in from_policy.items():  # a policy may be shared by apps of several types: capped
        specific[type_id] = specific.get(type_id, 0.0) + min(score, policy_cap)
    counted = [h for h in hits if h.cue.type not in (GENERAL, NOT_FINANCE)] + list(strongest.values())
    general = min(sum(h.score for h in counted if h.cue.type == GENERAL), float(config["general_cap"]))
    against = min(sum(h.score for h in counted if h.cue.type == NOT_FINANCE), float(config["not_finance_cap"]))

    def labels(kind: str) -> list[str]:  # strongest first
        chosen = sorted((h for h in counted if h.cue.type == kind), key=lambda h: -h.score)
        suffix = " (not finance)" if kind == NOT_FINANCE else ""
        return [h.label + suffix for h in chosen]

    order = list(finance_types())
    ranked = sorted(((t, s) for t, s in specific.items() if s > 0), key=lambda kv: (-kv[1], order.index(kv[0])))
    min_score, saturation = float(config["min_score"]), float(config["saturation"])
    if ranked:
        best_type, best_specific = ranked[0]
        best = best_specific + general - against
    else:
        best_type, best_specific, best = OTHER, 0.0, general - against
    if best_type != OTHER and best >= min_score:
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        confidence = best_specific / (best_specific + runner_up) * min(1.0, best / saturation)
        evidence = labels(best_type) + labels(GENERAL) + labels(NOT_FINANCE)
        return FinanceVerdict(best_type, _round(confidence), tuple(evidence))
    # other: confident when there is no finance signal at all, doubtful when a weak one falls short
    confidence = 1.0 - max(0.0, best) / min_score
    evidence = labels(GENERAL) + labels(NOT_FINANCE)
    if best_type != OTHER:
        evidence = labels(best_type) + evidence
        evidence.append(f"{best_type} scores {max(0.0, best):.1f} < {min_score:g}")
    elif general > 0:
        evidence.append("no type-specific cue")
    if not evidence:
        evidence.append("no finance cue")
    return FinanceVerdict(OTHER, _round(confidence), tuple(evidence))


def classify(name: str, category: str = "", developer: str = "", description: str = "",
             policy: str = "") -> tuple[str, float]:
    """(finance type id, confidence in [0, 1]) from an app's listing fields and policy text."""
    verdict = explain(name, category, developer, description, policy)
    return verdict.value, verdict.confidence


def explain_app(app: AppSnapshot) -> FinanceVerdict:
    """:func:`explain` on a snapshot's merged listing fields (the developer: its legal entity and the name the
    store shows) and its policy, when one was fetched."""
    policy = app.policy.text if app.policy_status == POLICY_OK and app.policy is not None else ""
    developer = "；".join(dict.fromkeys(name for name in (app.legal_entity, app.developer) if name))
    return explain(app.name, app.category, developer, app.description, policy or "")


def classify_app(app: AppSnapshot) -> tuple[str, float]:
    """(finance type id, confidence) of a snapshot: :func:`explain_app` without the evidence."""
    verdict = explain_app(app)
    return verdict.value, verdict.confidence
