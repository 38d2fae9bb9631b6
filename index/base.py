"""The store interface every backend implements (SQLite now, Elasticsearch next).

The store knows no rules: it keeps what the crawler and the analyzers produced, tracks
each finding's life (new → open → resolved) by its stable id, and answers queries.
Timestamps are ISO-8601 UTC strings; a backend normalises what it is given.

Contract (tests/index/test_store_contract.py runs it against each backend):

- ``save_*`` are idempotent: saving the same thing twice changes nothing.
- ``save_analysis`` upserts apps and findings. A finding keeps its first ``first_seen``;
  one seen again at a later time becomes ``open``; an unresolved finding of an analysed
  app that the analysis no longer produces becomes ``resolved`` (``resolved_at`` = the
  analysis time); a resolved finding produced again is ``open`` again.
- ``search`` never raises on user input: any string is taken as plain words/phrases.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

from finmon.model import Analysis, AppSnapshot, Finding, Listing, PolicyVersion, Run

EXPORT_KINDS = ("findings", "apps")
HIT_KINDS = ("finding", "policy")


def risk_score(counts: dict[str, int], weights: dict[str, int | float]) -> float:
    """Severity-weighted count of unresolved findings, e.g. ``{"high": 2, "low": 1}``."""
    return float(sum(weights.get(sev, 0) * n for sev, n in counts.items()))


@runtime_checkable
class Store(Protocol):
    """What the CLI, the scheduler and the report need from an index backend."""

    def save_run(self, run: Run) -> None:
        """Insert or replace a run record (by id)."""

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Run records (``Run.to_dict()``), newest first."""

    def save_rules(self, rules: Iterable[dict[str, Any]]) -> None:
        """Upsert the rule table (id, family, severity, confidence, title, title_en, description, regulation)."""

    def rules(self) -> list[dict[str, Any]]:
        """The rule table, by id."""

    def save_listings(self, listings: Iterable[Listing]) -> int:
        """Upsert listings (latest per store and store id; each distinct content kept as history)."""

    def save_policy_versions(self, versions: Iterable[PolicyVersion]) -> int:
        """Add policy versions by sha256 (existing versions are kept unchanged); returns how many were new."""

    def save_analysis(
        self, apps: Iterable[AppSnapshot], analyses: Iterable[Analysis], seen_at: str | None = None
    ) -> dict[str, int]:
        """Upsert apps, their policy links and findings; returns ``{"new", "open", "resolved"}`` counts."""

    def findings(
        self,
        *,
        app_key: str | None = None,
        rule: str | None = None,
        family: str | None = None,
        severity: str | None = None,
        status: str | Iterable[str] | None = None,
        store: str | None = None,
        finance_type: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Finding]:
        """Findings matching every given filter, most severe first."""

    def changes(self, since: str, until: str | None = None) -> dict[str, list[Finding]]:
        """``{"new": first seen in [since, until), "resolved": resolved in [since, until)}``."""

    def apps(self) -> list[dict[str, Any]]:
        """Every app with its unresolved finding counts by severity (``counts``) and ``stores``."""

    def app(self, key: str) -> dict[str, Any] | None:
        """One app with ``listings``, ``policy`` (current version or None), ``policy_versions`` and ``findings``."""

    def policy(self, sha256: str) -> PolicyVersion | None:
        """One policy version by the sha256 of its normalised text."""

    def export(self, kind: str) -> Iterator[dict[str, Any]]:
        """Every finding (``Finding.to_dict()`` plus app fields) or every app, as JSON-able dicts."""

    def search(
        self,
        query: str,
        *,
        rule: str | None = None,
        severity: str | None = None,
        store: str | None = None,
        finance_type: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Full-text hits over findings and policies, best first.

        Each hit: ``kind`` ("finding" | "policy"), ``id``, ``app_key``, ``app_name``, ``stores``,
        ``snippet`` (plain text) and ``match`` ([start, end] of the hit in the snippet, or None);
        findings add ``rule_id``, ``rule_title``, ``severity``, ``status``, ``evidence``; policies add
        ``url``, ``title``, ``language``, ``fetched_at`` and ``apps`` (every app linked to it).
        """

    def close(self) -> None:
        """Release the backend's connection."""
