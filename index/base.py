"""The store interface every backend implements (SQLite and Elasticsearch), and what they share.

The store knows no rules: it keeps what the crawler and the analyzers produced, tracks
each finding's life (new → open → resolved) by its stable id, and answers queries.
Timestamps are ISO-8601 UTC strings; a backend normalises what it is given.

Contract (tests/index/test_store_contract.py runs it against each backend):

- ``save_*`` are idempotent: saving the same thing twice changes nothing.
- ``save_analysis`` upserts apps and findings. A finding keeps its first ``first_seen``;
  one seen again at a later time becomes ``open``; an unresolved finding of an analysed
  app that the analysis no longer produces becomes ``resolved`` (``resolved_at`` = the
  analysis time); a resolved finding produced again is ``open`` again. Only the apps of the batch
  are touched: an app left out of a later ``save_analysis`` keeps its findings and its input hash.
- ``search`` never raises on user input: any string is taken as plain words/phrases, each
  word a phrase that must occur (CJK characters adjacent and in order, other tokens whole).
- A backend that cannot be reached raises :class:`StoreUnavailable`.
- The SQLite store opened ``read_only`` writes, locks and creates nothing: a missing index raises
  :class:`IndexMissing`, and a file that is not a finmon index raises :class:`StoreError` (Elasticsearch
  readers never wait for writers, so that store has no read-only mode).
"""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, runtime_checkable

from finmon import settings
from finmon.model import (
    Analysis,
    AppSnapshot,
    Evidence,
    Finding,
    Listing,
    PolicyVersion,
    Run,
    parse_utc,
)

EXPORT_KINDS = ("findings", "apps")
HIT_KINDS = ("finding", "policy")
SORTS = ("relevance", "newest", "severity")
# What the hits of a search are counted by (``Store.facets``): finding fields, the app's, and the ISO week first seen.
FACETS = ("rule", "family", "severity", "status", "store", "finance_type", "developer", "week")
# Filters that only a finding has: a search given one leaves policies out.
FINDING_ONLY_FILTERS = ("rule", "family", "severity", "status", "week")


class StoreError(Exception):
    """The index could not do what was asked."""


class StoreUnavailable(StoreError):
    """The index server cannot be reached; the message names its URL and the cause."""


class IndexMissing(StoreError):
    """A command that only reads found no index to read (the message names where it looked)."""


def risk_score(counts: dict[str, int], weights: dict[str, int | float]) -> float:
    """Severity-weighted count of unresolved findings, e.g. ``{"high": 2, "low": 1}``."""
    return float(sum(weights.get(sev, 0) * n for sev, n in counts.items()))


@runtime_checkable
class Store(Protocol):
    """What the CLI, the scheduler and the report need from an index backend."""

    def save_run(self, run: Run) -> None:
        """Insert or replace a run record (by id)."""

    def runs(self, limit: int = 20, job: str | None = None) -> list[dict[str, Any]]:
        """Run records (``Run.to_dict()``: with ``job``, ``attempt`` and ``error``), newest first.

        ``job``: only the runs of that scheduler job (e.g. "crawl:appgallery"; "" for runs started by
        hand); None: every run.
        """

    def save_rules(self, rules: Iterable[dict[str, Any]]) -> None:
        """Upsert the rule table (id, family, severity, confidence, title, title_en, description, regulation)."""

    def rules(self) -> list[dict[str, Any]]:
        """The rule table, by id."""

    def save_listings(self, listings: Iterable[Listing]) -> int:
        """Upsert listings (latest per store and store id; each distinct content kept as history)."""

    def save_policy_versions(self, versions: Iterable[PolicyVersion]) -> int:
        """Add policy versions by sha256 (existing versions are kept unchanged); returns how many were new."""

    def save_analysis(
        self, apps: Iterable[AppSnapshot], analyses: Iterable[Analysis], seen_at: str | None = None,
        skipped_rules: Iterable[str] = (), inputs: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Upsert apps, their policy links and findings; returns ``{"new", "open", "resolved"}`` counts.

        Findings of ``skipped_rules`` (rules the analysis could not apply, e.g. R601 without a
        registry) are left as they are: their absence proves nothing, so they are not resolved.

        ``inputs``: app key → input hash, an opaque string naming what the app's analysis was computed
        from (for incremental analysis, see :meth:`analysis_inputs`). It is stored with the app, as the
        rest of the app is (not when a later analysis is stored already); an app of ``apps`` without
        an entry gets "" (unknown). Entries for apps not in ``apps`` are ignored.
        """

    def analysis_inputs(self) -> dict[str, str]:
        """App key → the input hash stored by the app's latest ``save_analysis``, for every app that has one."""

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

    def rule_counts(self, status: str | Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Findings (of ``status`` when given) counted by the index, per rule id: ``count``, ``apps`` (distinct apps)
        and ``severity`` (severity -> count). Exact, and nothing market-wide is held."""

    def finding(self, finding_id: str) -> Finding | None:
        """One finding by its id (with its ``capture``), or None."""

    def captures(self) -> set[str]:
        """The capture reference of every finding in the index that has one, resolved findings included (what
        retention keeps the WARC files of)."""

    def changes(self, since: str, until: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """``{"new": first seen in [since, until), "resolved": resolved in [since, until), "counts": {"new": n,
        "resolved": m}}``, each list most severe first and at most ``limit`` long; the counts are of all."""

    def first_seen(self, since: str, until: str | None = None, *, severity: str | None = None, after: str = "",
                   limit: int = 1000) -> list[Finding]:
        """Findings first seen in [since, until) (of ``severity`` when given) by id: the first ``limit`` whose id
        sorts after ``after``. To read them all, page on with the last id read (the alerts read a week's new
        findings this way without holding them)."""

    def apps(self, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        """Every app (or those of ``keys``) by key, streamed: with its unresolved finding counts by severity
        (``counts``), ``stores`` and ``sdks`` (the SDKs and trackers found in its APK: id, name, category, evidence)."""

    def app(self, key: str) -> dict[str, Any] | None:
        """One app with ``listings`` (the latest of each store), ``history`` (every distinct content a store showed:
        the listing's fields, ``content_hash`` and ``first_fetched_at``, newest first), ``policy`` (current version or
        None), ``policy_versions`` and ``findings``."""

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
        developer: str | None = None,
        status: str | Iterable[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        kind: str | None = None,
        family: str | None = None,
        week: str | None = None,
        sort: str = "relevance",
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Full-text hits over findings and policies matching every given filter.

        ``rule``, ``family``, ``severity``, ``status`` and ``week`` (ISO week first seen, "2024-W10") apply to
        findings only (policies are left out when one is given); ``store``, ``finance_type`` and ``developer``
        (exact) to the app of a finding or any app linked to a policy; [``since``, ``until``) to a finding's
        ``last_seen`` or a policy's ``fetched_at``. ``sort``: "relevance" (best first), "newest" or "severity" (most severe first,
        policies last); ties are broken by kind and id, so ``limit``/``offset`` pages are stable.

        Each hit: ``kind`` ("finding" | "policy"), ``id``, ``app_key``, ``app_name``, ``stores``,
        ``snippet`` (plain text), ``match`` ([start, end] of the hit in the snippet, or None) and
        ``score`` (the backend's relevance); findings add ``rule_id``, ``rule_title``,
        ``rule_title_en``, ``severity``, ``status``, ``evidence``; policies add ``url``, ``title``,
        ``language``, ``fetched_at`` and ``apps`` (every app linked to it).
        """

    def facets(self, query: str, **filters: Any) -> dict[str, Any]:
        """What the hits of ``search(query, **filters)`` are, counted: ``{"total": {"finding": n, "policy": m},
        <facet>: [{"value", "count"}, …]}`` for each of :data:`FACETS`, over the matching findings (a finding counts
        once under each store of its app). Values most frequent first (ties by value), at most
        FINMON_FACET_VALUES of each; weeks newest first. ``filters``: those of ``search`` but the paging and sort."""

    def opener(self) -> Callable[[], Store] | None:
        """A picklable callable that opens this index again, for reading in another process; None when it cannot
        be opened again (an in-memory SQLite index, an Elasticsearch store made from a client object)."""

    def close(self) -> None:
        """Release the backend's connection."""


# -- shared by the backends ----------------------------------------------------------
# Han (with radicals, extensions and compatibility forms), kana, bopomofo, Hangul syllables.
_CJK_RANGES = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_CJK = re.compile(f"[{_CJK_RANGES}]")
# A full-text token: a run of letters and digits, or one CJK letter on its own (``通讯录`` is three).
TOKEN = re.compile(f"[^\\W_{_CJK_RANGES}]+|[^\\W_]")
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # control characters, lone surrogates


def nfkc(text: str) -> str:
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


def index_text(text: str) -> str:
    """Text as both full-text indexes take it: its tokens (NFKC, Latin diacritics folded), blank-separated.

    Each backend splits it at the blanks only and lower-cases it, so a phrase matches alike in both.
    """
    return " ".join(TOKEN.findall(_fold(nfkc(text))))


@lru_cache(maxsize=1)
def _latin_bases() -> tuple[dict[int, str], re.Pattern]:
    """Each Latin letter of the Basic Multilingual Plane that carries a diacritic → its base letter, and a
    pattern finding any of them."""
    table = {}
    for code in range(0x80, 0x10000):
        char = chr(code)
        if unicodedata.name(char, "").startswith("LATIN"):
            base = unicodedata.normalize("NFD", char)[0]
            if base != char:
                table[code] = base
    return table, re.compile("[" + re.escape("".join(map(chr, table))) + "]")


def _fold(text: str) -> str:
    """``text`` without the diacritics of its Latin letters (as FTS5's ``remove_diacritics``); a letter stays a
    letter, so the tokens are those of the text."""
    if text.isascii():
        return text
    table, marked = _latin_bases()
    return text.translate(table) if marked.search(text) else text


def timestamp(value: Any) -> str:
    """A timestamp as an ISO-8601 UTC string (seconds); unparseable strings are kept as given."""
    moment = parse_utc(value)
    return str(value) if moment is None else moment.replace(microsecond=0).isoformat()


def query_words(query: str, max_terms: int | None = None) -> list[str]:
    """The words of a user's query (blank-separated), each holding at least one token character."""
    text = nfkc(_UNSAFE.sub(" ", query or ""))
    words = [word for word in text.split() if TOKEN.search(word)]
    return words[: max_terms or settings.FINMON_SEARCH_MAX_TERMS]


def search_scope(
    kind: str | None, sort: str, since: str | None, until: str | None, findings_only: bool, limit: int, offset: int
) -> tuple[tuple[str, ...], str | None, str | None, int, int]:
    """Checks ``search`` options: the hit kinds to search, [since, until) as UTC timestamps, and the
    page (``limit`` capped at FINMON_SEARCH_MAX_HITS, neither negative)."""
    if kind is not None and kind not in HIT_KINDS:
        raise ValueError(f"kind must be one of {HIT_KINDS} or None, not {kind!r}")
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, not {sort!r}")
    bounds = []
    for name, value in (("since", since), ("until", until)):
        if value is not None and parse_utc(value) is None:
            raise ValueError(f"{name} must be an ISO-8601 date or time, not {value!r}")
        bounds.append(None if value is None else timestamp(value))
    kinds = tuple(k for k in HIT_KINDS if kind in (None, k) and not (findings_only and k == "policy"))
    page = max(0, min(int(limit), settings.FINMON_SEARCH_MAX_HITS)), max(0, int(offset))
    return kinds, bounds[0], bounds[1], *page


def iso_week(value: Any) -> str:
    """The ISO week of a timestamp, "2024-W10" (weeks start on Monday, UTC); "" when it is no time."""
    moment = parse_utc(value)
    if moment is None:
        return ""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


_ISO_WEEK = re.compile(r"(\d{4})-W(\d{2})")


def week_bounds(week: str) -> tuple[str, str]:
    """[Monday 00:00, next Monday 00:00) UTC of an ISO week such as "2024-W10"; ValueError for anything else."""
    found = _ISO_WEEK.fullmatch(str(week).strip())
    try:
        if found is None:
            raise ValueError
        monday = datetime.fromisocalendar(int(found[1]), int(found[2]), 1).replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"week must be an ISO week such as 2024-W10, not {week!r}") from None
    return monday.isoformat(), (monday + timedelta(days=7)).isoformat()


def app_sdks(app: AppSnapshot) -> list[dict[str, Any]]:
    """The SDKs and trackers found in an app's APK, as stored with the app: id, name, category and the class that
    matched, by id."""
    sdks = app.apk.sdks if app.apk else ()
    return sorted(({name: sdk.get(name) for name in ("id", "name", "category", "evidence")} for sdk in sdks),
                  key=lambda sdk: str(sdk["id"]))


def facet_counts(counters: Mapping[str, Mapping[str, int]], total: dict[str, int]) -> dict[str, Any]:
    """The shape ``Store.facets`` returns, from a count per facet and value."""
    out: dict[str, Any] = {"total": total}
    for name in FACETS:
        counts = counters.get(name, {})
        order = (sorted(counts.items(), reverse=True) if name == "week" else
                 sorted(counts.items(), key=lambda item: (-item[1], item[0])))
        out[name] = [{"value": value, "count": n} for value, n in order[:settings.FINMON_FACET_VALUES] if value]
    return out


def statuses(status: str | Iterable[str] | None) -> list[str]:
    if status is None:
        return []
    return [status] if isinstance(status, str) else list(status)


def _word_pattern(word: str) -> re.Pattern[str]:
    """A regex finding ``word`` in original text roughly as the full-text index matched it (for snippets)."""
    parts = []
    for token in TOKEN.findall(word):
        escaped = re.escape(token)
        parts.append(escaped if _CJK.fullmatch(token) else f"(?<![A-Za-z0-9]){escaped}(?![A-Za-z0-9])")
    return re.compile(r"[\W_]*".join(parts), re.IGNORECASE)


def snippet(text: str, words: list[str], width: int | None = None) -> tuple[str, list[int] | None]:
    """A window of ``text`` around the earliest match of any word, and the match's [start, end] in it."""
    width = width or settings.FINMON_SEARCH_SNIPPET_CHARS
    found = [m for m in (_word_pattern(w).search(text) for w in words) if m]
    if not found:
        window = text[:width]
        return " ".join(window.split()) + ("…" if len(text) > width else ""), None
    first = min(found, key=lambda m: m.start())
    start = max(0, min(first.start() - width // 3, len(text) - width))
    end = min(len(text), start + width)
    prefix = "…" if start > 0 else ""
    window = re.sub(r"\s", " ", text[start:end])  # one character for one: offsets stay valid
    match = [len(prefix) + first.start() - start, len(prefix) + min(first.end(), end) - start]
    return prefix + window + ("…" if end < len(text) else ""), match


LISTING_FIELDS = tuple(f.name for f in dataclasses.fields(Listing))
EVIDENCE_FIELDS = tuple(f.name for f in dataclasses.fields(Evidence))


def shallow(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """``to_dict()`` for flat records, without ``dataclasses.asdict``'s deep copies (hot path)."""
    return {name: getattr(obj, name) for name in names}


def listing_hash(listing: Listing) -> str:
    """The listing's content hash (given, or :meth:`Listing.content_digest`)."""
    return listing.content_hash or listing.content_digest()


def finding_fields(finding: Finding, name: str, developer: str) -> list[str]:
    """What a finding is found by, evidence first (so a snippet prefers it)."""
    ev = finding.evidence
    return [p for p in (ev.text, ev.detail, finding.title, name, developer, finding.rule_id, ev.key) if p]


def finding_snippet(finding: Finding, name: str, developer: str, words: list[str]) -> tuple[str, list[int] | None]:
    """The snippet of the first field of a finding that holds a match (the evidence, usually)."""
    fields = finding_fields(finding, name, developer)
    for field in fields:
        found = snippet(field, words)
        if found[1] is not None:
            return found
    return snippet(fields[0] if fields else "", words)


def policy_body(version: PolicyVersion) -> str:
    """A policy's searchable text: its title and text."""
    return "\n".join(p for p in (version.title, version.text) if p)
