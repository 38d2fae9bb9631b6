"""Analyzers: an app snapshot in, its finance type and findings out. Pure: no I/O but data files.

``analyze(app, registry=None)`` classifies the app's finance type and runs every rule of :data:`RULES`;
``rules_table()`` lists the table for the CLI and the store.
"""
from __future__ import annotations

from finmon.model import POLICY_UNAVAILABLE, Analysis, ApkInfo, AppSnapshot, app_key

from .finance import classify_app
from .registry import Registry, RegistryError
from .rules import RULES, Context, Rule, not_applied, rules_table

__all__ = ["RULES", "Registry", "RegistryError", "Rule", "analyze", "analyze_apk", "not_applied", "rules_table"]


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
