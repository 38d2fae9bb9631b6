"""Analyzers: an app snapshot in, its finance type and findings out. Pure: no I/O but data files.

``analyze(app, registry=None)`` classifies the app's finance type and runs every rule of :data:`RULES`;
``rules_table()`` lists the table for the CLI and the store.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from finmon.model import POLICY_UNAVAILABLE, Analysis, ApkInfo, AppSnapshot, app_key, dumps

from .finance import classify_app
from .registry import Registry, RegistryError
from .rules import RULES, Context, Rule, not_applied, rules_table

__all__ = ["RULES", "Registry", "RegistryError", "Rule", "analysis_version", "analyze", "analyze_apk", "not_applied",
           "rules_table"]


def analyze(app: AppSnapshot, registry: Registry | None = None) -> Analysis:
    """Finance type and findings of one app, findings sorted by (rule id, evidence key).

    ``registry`` (built by the caller from ``FINMON_REGISTRY``) is what R601 looks apps up in;
    without it R601 is not applied (see :func:`not_applied`).
    """
    finance_type, confidence = classify_app(app)
    ctx = Context(app, finance_type, confidence, registry)
    findings = [f for r in RULES for f in r.findings(ctx)]
    findings.sort(key=lambda f: (f.rule_id, f.evidence.key))
    return Analysis(app_key=app.key, finance_type=finance_type, finance_confidence=confidence,
                    findings=tuple(findings))


def analyze_apk(apk: ApkInfo) -> Analysis:
    """Findings of one APK on its own, without a listing or a policy (``finmon apk``).

    The policy counts as unknown, so only the rules that read the manifest, the permissions and the SDKs
    (and R602 on the label) can fire; the finance type comes from the label and the package name.
    """
    app = AppSnapshot(key=app_key("android", apk.package), platform="android", package=apk.package,
                      name=apk.label, developer="", category="", apk=apk, policy_status=POLICY_UNAVAILABLE)
    return analyze(app)


def analysis_version(registry: Registry | None = None) -> str:
    """A digest of what an analysis depends on besides the app: the rule table, the detection data and the
    registry. An app whose inputs and this digest are unchanged would get the same findings again."""
    entries = repr(registry.entries) if registry is not None else ""
    return hashlib.sha256(f"{_code_and_data_digest()}\x1f{entries}".encode()).hexdigest()


@lru_cache(maxsize=1)
def _code_and_data_digest() -> str:
    digest = hashlib.sha256(dumps(rules_table()).encode())
    root = Path(__file__).parent
    for path in sorted(root.glob("*.py")) + sorted((root / "data").glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
