"""One privacy policy checked on its own, without a crawl (``finmon check``, ``finmon eval clauses``).

Pure: a policy version and what is known of the app in, a plain dict out: the finance type with the cues that
decided it, every data type the policy declares collecting (the quoted mention and its sentence), which clauses
it has, and the findings of every rule that can read a policy without an APK.
"""
from __future__ import annotations

from typing import Iterable

from finmon.model import POLICY_OK, AppSnapshot, PolicyVersion, app_key

from .clauses import channel_at, clause_at, declarations
from .finance import explain_app, finance_types
from .policy_text import lexicon, scan, sentence_spans
from .rules import RULES, Context

__all__ = ["CLAUSES", "check_policy"]

# clause name in the output -> its clause cue in data/policy_clauses.json (C203, C204, C205 fire when it is absent)
CLAUSES = {"withdrawal": "consent_withdrawal", "deletion": "deletion_correction", "complaint": "complaint_channel"}


def check_policy(policy: PolicyVersion, *, name: str = "", developer: str = "", category: str = "",
                 permissions: Iterable[str] = (), finance_type: str | None = None) -> dict:
    """The check of one policy as a JSON-ready dict (see ``finmon check --json`` in the README).

    ``finance_type`` (an id of data/finance_types.json) overrides the classifier; ``permissions`` (Android
    names, ``android.permission.`` may be left out) let the permission rules run too.
    """
    app = AppSnapshot(key=app_key("android", "policy"), platform="android", package="", name=name,
                      developer=developer, category=category, permissions=frozenset(permissions), policy=policy,
                      policy_status=POLICY_OK, policy_url=policy.url or None)
    if finance_type is not None:
        if finance_type not in finance_types():
            raise ValueError(f"unknown finance type {finance_type!r}; one of {', '.join(finance_types())}")
        verdict = {"value": finance_type, "confidence": 1.0, "evidence": ["given: --finance-type"]}
    else:
        found = explain_app(app)
        verdict = {"value": found.value, "confidence": found.confidence, "evidence": list(found.evidence)}
    text = policy.text
    ctx = Context(app, verdict["value"], verdict["confidence"])
    findings = [f for r in RULES for f in r.findings(ctx)]
    declared = declarations(text, scan(text), lexicon().types)
    sentences = sentence_spans(text)
    return {
        "finance_type": verdict,
        "lang": policy.language,
        "declared": [{"type": m.type, "start": m.start, "end": m.end, "text": text[m.start:m.end],
                      "sentence": {"start": m.sent_start, "end": m.sent_end, "text": text[m.sent_start:m.sent_end]}}
                     for m in sorted(declared.values(), key=lambda m: m.start)],
        "clauses": {name: _clause(text, cue, sentences) for name, cue in CLAUSES.items()},
        "findings": [{"rule_id": f.rule_id, "severity": f.severity, "confidence": f.confidence, "title": f.title,
                      "evidence": f.evidence.to_dict()} for f in findings],
    }


def _clause(text: str, cue: str, sentences: list[tuple[int, int]]) -> dict:
    """Whether the policy has the clause (as its rule judges it) and the sentence of the cue that decided it."""
    at = channel_at(text) if cue == "complaint_channel" else clause_at(text, cue)
    if at is None:
        return {"present": False, "evidence": None}
    start, end = next(((s, e) for s, e in sentences if at < e), (at, len(text)))
    return {"present": True, "evidence": {"start": start, "end": end, "text": text[start:end]}}
