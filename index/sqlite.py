"""The SQLite store: zero-setup default index, with FTS5 full text in Chinese and English.

FTS5's ``unicode61`` tokenizer takes a run of CJK characters for one token, so ``通讯录``
would never match inside ``我们会读取您的通讯录信息``. The full-text tables therefore index
:func:`index.base.index_text`: the text's tokens, every CJK character one of its own, blank-separated
(the original text is kept in the base tables), the same tokens the Elasticsearch store indexes.
A user's query becomes quoted FTS5 phrases of the same tokens: ``通讯录`` is the phrase
``"通 讯 录"``. Every word of a query is quoted, so no input reaches FTS5 as syntax.

One connection per store object (WAL mode, autocommit off only inside explicit
transactions); batches are written with ``executemany`` in one transaction.
"""
from __future__ import annotations

import functools
import json
import sqlite3
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from finmon import settings
from finmon.model import (
    Analysis,
    AppSnapshot,
    Evidence,
    Finding,
    Listing,
    PolicyVersion,
    Run,
    dumps,
    sha256_hex,
    utcnow,
)
from index.base import (
    EVIDENCE_FIELDS,
    EXPORT_KINDS,
    FACETS,
    LISTING_FIELDS,
    IndexMissing,
    StoreError,
    app_sdks,
    facet_counts,
    finding_fields,
    finding_snippet,
    index_text,
    iso_week,
    listing_hash,
    policy_body,
    query_words,
    risk_score,
    search_scope,
    shallow,
    snippet,
    statuses,
    timestamp,
    week_bounds,
)

# Raised for changes older code cannot work with (it refuses a newer file). Added columns are not
# such a change: opening a file adds the columns of _ADDED_COLUMNS it lacks.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    key TEXT PRIMARY KEY, platform TEXT, package TEXT, name TEXT, developer TEXT, category TEXT,
    finance_type TEXT, finance_confidence REAL, policy_status TEXT, policy_url TEXT, policy_sha256 TEXT,
    permissions TEXT NOT NULL DEFAULT '[]', privacy_labels TEXT NOT NULL DEFAULT '[]',
    first_seen TEXT, last_seen TEXT, analysed_at TEXT, input_hash TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS listings (
    store TEXT NOT NULL, store_id TEXT NOT NULL, app_key TEXT NOT NULL, platform TEXT, package TEXT,
    name TEXT, developer TEXT, category TEXT, source_url TEXT, fetched_at TEXT, version TEXT, updated TEXT,
    description TEXT, downloads INTEGER, rating_count INTEGER, privacy_url TEXT,
    permissions TEXT NOT NULL DEFAULT '[]', privacy_labels TEXT NOT NULL DEFAULT '[]', content_hash TEXT,
    PRIMARY KEY (store, store_id)
);
CREATE INDEX IF NOT EXISTS listings_app ON listings (app_key);
CREATE TABLE IF NOT EXISTS listing_history (
    store TEXT NOT NULL, store_id TEXT NOT NULL, content_hash TEXT NOT NULL, fetched_at TEXT, data TEXT,
    PRIMARY KEY (store, store_id, content_hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS policies (
    sha256 TEXT PRIMARY KEY, url TEXT, final_url TEXT, fetched_at TEXT, language TEXT, title TEXT,
    text TEXT, effective_date TEXT, content_type TEXT
);
CREATE INDEX IF NOT EXISTS policies_url ON policies (url);
CREATE TABLE IF NOT EXISTS app_policies (
    app_key TEXT NOT NULL, sha256 TEXT NOT NULL, url TEXT, first_seen TEXT, last_seen TEXT,
    PRIMARY KEY (app_key, sha256)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS app_policies_sha ON app_policies (sha256);
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, family TEXT, severity TEXT, confidence TEXT,
    app_key TEXT NOT NULL, title TEXT, evidence TEXT, evidence_kind TEXT, evidence_key TEXT,
    regulation TEXT, first_seen TEXT, last_seen TEXT, status TEXT NOT NULL, resolved_at TEXT, fts_hash TEXT,
    capture TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS findings_app ON findings (app_key);
CREATE INDEX IF NOT EXISTS findings_rule ON findings (rule_id);
CREATE INDEX IF NOT EXISTS findings_status ON findings (status, severity);
CREATE INDEX IF NOT EXISTS findings_first_seen ON findings (first_seen);
CREATE INDEX IF NOT EXISTS findings_resolved_at ON findings (resolved_at);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, kind TEXT, started TEXT, ended TEXT, counters TEXT, outcome TEXT,
    job TEXT NOT NULL DEFAULT '', attempt INTEGER NOT NULL DEFAULT 1, error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS rules (
    id TEXT PRIMARY KEY, family TEXT, severity TEXT, confidence TEXT, title TEXT, title_en TEXT,
    description TEXT, regulation TEXT, data TEXT
);
-- Full text, CJK spaced out (see the module docstring); rowid = the base table's rowid.
-- Policies never change (a new text is a new sha256), so their index needs no stored copy.
CREATE VIRTUAL TABLE IF NOT EXISTS findings_fts USING fts5(body, tokenize = 'unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE IF NOT EXISTS policies_fts USING fts5(
    body, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
"""

# Columns added since tables were first created (also in _SCHEMA): added to an older file when
# missing, with their defaults for the rows it holds. Then _INDEXES, which may need them.
_ADDED_COLUMNS = {
    "apps": {"input_hash": "TEXT NOT NULL DEFAULT ''", "sdks": "TEXT NOT NULL DEFAULT '[]'",
             "legal_entity": "TEXT NOT NULL DEFAULT ''"},
    "listings": {"legal_entity": "TEXT NOT NULL DEFAULT ''", "legal_address": "TEXT NOT NULL DEFAULT ''",
                 "developer_email": "TEXT NOT NULL DEFAULT ''", "data_safety": "TEXT"},
    "findings": {"capture": "TEXT NOT NULL DEFAULT ''"},
    "runs": {"job": "TEXT NOT NULL DEFAULT ''", "attempt": "INTEGER NOT NULL DEFAULT 1",
             "error": "TEXT NOT NULL DEFAULT ''"},
}
_INDEXES = ("CREATE INDEX IF NOT EXISTS runs_job ON runs (job, started)",)

_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS batch_ids (id TEXT PRIMARY KEY);
CREATE TEMP TABLE IF NOT EXISTS batch_apps (key TEXT PRIMARY KEY);
"""

_SEVERITY_ORDER = "CASE f.severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 WHEN 'low' THEN 2 ELSE 3 END"

_LISTING_COLUMNS = (
    "store", "store_id", "app_key", "platform", "package", "name", "developer", "category", "source_url",
    "fetched_at", "version", "updated", "description", "downloads", "rating_count", "privacy_url",
    "permissions", "privacy_labels", "content_hash", "legal_entity", "legal_address", "developer_email", "data_safety",
)
_UPSERT_LISTING = (
    f"INSERT INTO listings ({', '.join(_LISTING_COLUMNS)}) VALUES ({', '.join('?' * len(_LISTING_COLUMNS))}) "
    "ON CONFLICT (store, store_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _LISTING_COLUMNS[2:])
    + " WHERE excluded.fetched_at >= listings.fetched_at"
)
_UPSERT_APP_FROM_LISTING = """
INSERT INTO apps (key, platform, package, name, developer, category, first_seen, last_seen, legal_entity)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    name = CASE WHEN coalesce(apps.name, '') = '' THEN excluded.name ELSE apps.name END,
    developer = CASE WHEN coalesce(apps.developer, '') = '' THEN excluded.developer ELSE apps.developer END,
    legal_entity = CASE WHEN apps.legal_entity = '' THEN excluded.legal_entity ELSE apps.legal_entity END,
    category = CASE WHEN coalesce(apps.category, '') = '' THEN excluded.category ELSE apps.category END,
    first_seen = min(apps.first_seen, excluded.first_seen),
    last_seen = max(apps.last_seen, excluded.last_seen)
"""
_UPSERT_APP = """
INSERT INTO apps (key, platform, package, name, developer, category, finance_type, finance_confidence,
                  policy_status, policy_url, policy_sha256, permissions, privacy_labels, first_seen, last_seen,
                  analysed_at, input_hash, sdks, legal_entity)
VALUES (:key, :platform, :package, :name, :developer, :category, :finance_type, :finance_confidence,
        :policy_status, :policy_url, :policy_sha256, :permissions, :privacy_labels, :first_seen, :seen, :seen,
        :input_hash, :sdks, :legal_entity)
ON CONFLICT (key) DO UPDATE SET
    platform = excluded.platform, package = excluded.package, name = excluded.name,
    developer = excluded.developer, category = excluded.category, legal_entity = excluded.legal_entity,
    finance_type = coalesce(excluded.finance_type, apps.finance_type),
    finance_confidence = coalesce(excluded.finance_confidence, apps.finance_confidence),
    policy_status = excluded.policy_status, policy_url = excluded.policy_url,
    policy_sha256 = excluded.policy_sha256, permissions = excluded.permissions,
    privacy_labels = excluded.privacy_labels,
    first_seen = min(coalesce(apps.first_seen, excluded.first_seen), excluded.first_seen),
    last_seen = max(coalesce(apps.last_seen, ''), excluded.last_seen),
    analysed_at = excluded.analysed_at, input_hash = excluded.input_hash, sdks = excluded.sdks
WHERE excluded.analysed_at >= coalesce(apps.analysed_at, '')
"""
_UPSERT_LINK = """
INSERT INTO app_policies (app_key, sha256, url, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (app_key, sha256) DO UPDATE SET
    url = excluded.url, last_seen = max(app_policies.last_seen, excluded.last_seen)
"""
_UPSERT_FINDING = """
INSERT INTO findings (id, rule_id, family, severity, confidence, app_key, title, evidence, evidence_kind,
                      evidence_key, regulation, first_seen, last_seen, status, resolved_at, fts_hash, capture)
VALUES (:id, :rule_id, :family, :severity, :confidence, :app_key, :title, :evidence, :evidence_kind,
        :evidence_key, :regulation, :seen, :seen, 'new', NULL, :fts_hash, :capture)
ON CONFLICT (id) DO UPDATE SET
    rule_id = excluded.rule_id, family = excluded.family, severity = excluded.severity,
    confidence = excluded.confidence, title = excluded.title, evidence = excluded.evidence,
    evidence_kind = excluded.evidence_kind, evidence_key = excluded.evidence_key,
    regulation = excluded.regulation, fts_hash = excluded.fts_hash, capture = excluded.capture,
    status = CASE WHEN findings.status = 'resolved' OR excluded.last_seen > findings.first_seen
                  THEN 'open' ELSE findings.status END,
    last_seen = excluded.last_seen, resolved_at = NULL
WHERE excluded.last_seen >= findings.last_seen
  AND (findings.resolved_at IS NULL OR excluded.last_seen >= findings.resolved_at)
"""
_RESOLVE = """
UPDATE findings SET status = 'resolved', resolved_at = :seen
WHERE status != 'resolved' AND last_seen <= :seen
  AND app_key IN (SELECT key FROM temp.batch_apps)
  AND id NOT IN (SELECT id FROM temp.batch_ids)
  AND rule_id NOT IN (SELECT value FROM json_each(:skipped))
"""


def fts_match(words: list[str]) -> str | None:
    """An FTS5 MATCH expression: every word a quoted phrase of its tokens (implicit AND)."""
    if not words:
        return None
    return " ".join(f'"{index_text(word)}"' for word in words)  # tokens hold no quote


_CORE_TABLES = {"apps", "listings", "policies", "findings", "runs", "rules", "findings_fts", "policies_fts"}


def _connect(path: str, timeout: float, read_only: bool) -> sqlite3.Connection:
    """A connection in autocommit mode; read-only through a ``mode=ro`` URI (no file created, nothing written)."""
    if read_only:
        uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
    else:
        db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    db.row_factory = sqlite3.Row
    return db


def _among(column: str, keys: Iterable[str]) -> tuple[str, list[str]]:
    """The condition that ``column`` holds one of ``keys``, and its parameters: any number of keys in one JSON
    parameter (SQLite limits the number of parameters)."""
    return f"{column} IN (SELECT value FROM json_each(?))", [json.dumps(sorted(set(keys)))]


# per kind of search hit: its FTS table, and the ranked columns of a match joined to its row
_MATCHES = {
    "finding": ("findings_fts", "SELECT 'finding' AS kind, f.id AS id, bm25(findings_fts) AS score, "
                f"f.last_seen AS date, {_SEVERITY_ORDER} AS rank "
                "FROM findings_fts JOIN findings f ON f.rowid = findings_fts.rowid"),
    "policy": ("policies_fts", "SELECT 'policy' AS kind, p.sha256 AS id, bm25(policies_fts) AS score, "
               "p.fetched_at AS date, 9 AS rank FROM policies_fts JOIN policies p ON p.rowid = policies_fts.rowid"),
}


class _Tiers:
    """The matches of a query in one FTS table, in tiers by age: tier k holds the newest W·4^k matches but those of
    the tiers before it (W = FINMON_SEARCH_RANK_WINDOW: the newest 2,000, the rest of the newest 8,000, …). A
    search orders by tier before anything else and reads one more tier only while its page is not full: ranking
    every match of a word found in most of the index (收集) costs bm25 and a join per match, a third of a second at
    100,000 apps, and most pages fill from the newest few thousand. Each tier is read once, as a range of rowids,
    so a page that never fills (a filter few matches pass) costs one pass over the matches, not one per tier. The
    tiers depend on the query only, so pages stay stable."""

    def __init__(self, db: sqlite3.Connection, table: str, match: str) -> None:
        self.db, self.table, self.match = db, table, match
        self.floors: list[int] = []  # lowest rowid of each tier; the last tier known reaches the oldest match
        self.complete = False

    def tier(self, k: int) -> tuple[int, int | None, bool] | None:
        """Tier k as rowids ``[low, high)`` (``high`` None: no bound) and whether older matches exist; None when
        the matches end before it."""
        while len(self.floors) <= k and not self.complete:
            row = self.db.execute(
                f"SELECT rowid FROM {self.table} WHERE {self.table} MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (self.match, settings.FINMON_SEARCH_RANK_WINDOW * 4 ** len(self.floors))).fetchone()
            self.complete = row is None
            self.floors.append(0 if row is None else row[0] + 1)
        if k >= len(self.floors):
            return None
        return self.floors[k], self.floors[k - 1] if k else None, len(self.floors) > k + 1 or not self.complete


class SQLiteStore:
    """The index in one SQLite file (``":memory:"`` works too). Implements :class:`index.base.Store`."""

    def __init__(self, path: str | Path, busy_timeout: float | None = None, read_only: bool = False) -> None:
        """Open (for writing: create or upgrade) the index at ``path``.

        ``read_only``: the file must be an existing finmon index; nothing is written and no lock is taken
        (in WAL mode a reader never waits for a writer). Raises :class:`StoreError` naming the file when it
        is missing (read-only), not SQLite, corrupt, another program's database, or from a newer finmon.
        """
        self.path = str(path)
        self.read_only = read_only
        timeout = settings.FINMON_SQLITE_BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        if read_only and (self.path == ":memory:" or not Path(self.path).is_file()):
            raise IndexMissing(f"no index at {self.path}")
        self.db = _connect(self.path, timeout, read_only)
        try:
            self._check_is_finmon()
            if not read_only:
                self._create_schema()
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"{self.path}: not a readable finmon index ({exc})") from None
            raise

    def _check_is_finmon(self) -> None:
        """Refuse another program's database (finmon marks its files with a schema version), an index this
        finmon cannot read, and, to read, a file without finmon's tables."""
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: index schema is newer than this finmon understands")
        if (tables and not version) or (self.read_only and not _CORE_TABLES <= tables):
            raise StoreError(f"{self.path}: not a finmon index (an SQLite database without finmon's tables)")
        if self.read_only and any(self._missing_columns().values()):
            raise StoreError(f"{self.path}: index made by an older finmon; a writing command (finmon analyze) "
                             "upgrades it")

    def _create_schema(self) -> None:
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        # One transaction. executescript() leaves it open, but would commit it before a second script.
        try:
            self.db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}")
            self._add_columns()
            for statement in (*_INDEXES, f"PRAGMA user_version = {SCHEMA_VERSION}", "COMMIT"):
                self.db.execute(statement)
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.db.executescript(_TEMP)

    def _missing_columns(self) -> dict[str, list[str]]:
        """Per table, the columns of _ADDED_COLUMNS a file made by an older finmon lacks."""
        missing = {}
        for table, columns in _ADDED_COLUMNS.items():
            have = {row["name"] for row in self.db.execute(f"PRAGMA table_info({table})")}
            missing[table] = [name for name in columns if name not in have]
        return missing

    def _add_columns(self) -> None:
        """Adds the columns of _ADDED_COLUMNS a file made by an older finmon lacks."""
        for table, names in self._missing_columns().items():
            for name in names:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {_ADDED_COLUMNS[table][name]}")

    # -- plumbing -------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        """Let SQLite refresh its planner statistics if it wants to (when writing), then close."""
        try:
            if not self.read_only:
                self.db.execute("PRAGMA optimize")
        finally:
            self.db.close()

    def __enter__(self) -> "SQLiteStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs and rules -------------------------------------------------------
    def save_run(self, run: Run) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO runs (id, kind, started, ended, counters, outcome, job, attempt, error) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, run.kind, timestamp(run.started), run.ended and timestamp(run.ended), dumps(run.counters),
                 run.outcome, run.job, run.attempt, run.error),
            )

    def runs(self, limit: int = 20, job: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE job = ?", [job]) if job is not None else ("", [])
        rows = self.db.execute(f"SELECT * FROM runs {where} ORDER BY started DESC, id DESC LIMIT ?", (*params, limit))
        return [
            {"id": r["id"], "kind": r["kind"], "started": r["started"], "ended": r["ended"],
             "counters": json.loads(r["counters"] or "{}"), "outcome": r["outcome"], "job": r["job"],
             "attempt": r["attempt"], "error": r["error"]}
            for r in rows
        ]

    def save_rules(self, rules: Iterable[dict[str, Any]]) -> None:
        rows = [
            (r["id"], r.get("family") or r["id"][:1], r.get("severity"), r.get("confidence"), r.get("title", ""),
             r.get("title_en", ""), r.get("description", ""), r.get("regulation", ""), dumps(r))
            for r in rules
        ]
        with self._tx() as db:
            db.executemany("INSERT OR REPLACE INTO rules VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def rules(self) -> list[dict[str, Any]]:
        out = []
        for r in self.db.execute("SELECT * FROM rules ORDER BY id"):
            rule = json.loads(r["data"] or "{}")
            rule.update({k: r[k] for k in ("id", "family", "severity", "confidence", "title", "title_en",
                                           "description", "regulation")})
            out.append(rule)
        return out

    # -- listings and policies ------------------------------------------------
    def save_listings(self, listings: Iterable[Listing]) -> int:
        with self._tx() as db:
            return self._save_listings(db, listings)

    def _save_listings(self, db: sqlite3.Connection, listings: Iterable[Listing]) -> int:
        rows, history, apps = [], [], {}
        for lst in listings:
            fetched, content_hash = timestamp(lst.fetched_at), listing_hash(lst)
            rows.append((
                lst.store, lst.store_id, lst.app_key, lst.platform, lst.package, lst.name, lst.developer,
                lst.category, lst.source_url, fetched, lst.version, lst.updated, lst.description, lst.downloads,
                lst.rating_count, lst.privacy_url, dumps(list(lst.permissions)), dumps(list(lst.privacy_labels)),
                content_hash, lst.legal_entity, lst.legal_address, lst.developer_email,
                None if lst.data_safety is None else dumps(lst.data_safety),
            ))
            history.append((lst.store, lst.store_id, content_hash, fetched, dumps(shallow(lst, LISTING_FIELDS))))
            known = apps.get(lst.app_key)
            first = min(fetched, known[6]) if known else fetched
            last = max(fetched, known[7]) if known else fetched
            apps[lst.app_key] = (lst.app_key, lst.platform, lst.package, lst.name, lst.developer, lst.category,
                                 first, last, lst.legal_entity)
        db.executemany(_UPSERT_LISTING, rows)
        db.executemany("INSERT OR IGNORE INTO listing_history VALUES (?, ?, ?, ?, ?)", history)
        db.executemany(_UPSERT_APP_FROM_LISTING, apps.values())
        return len(rows)

    def save_policy_versions(self, versions: Iterable[PolicyVersion]) -> int:
        with self._tx() as db:
            return self._save_policies(db, versions)

    def _save_policies(self, db: sqlite3.Connection, versions: Iterable[PolicyVersion]) -> int:
        new = 0
        for v in {v.sha256: v for v in versions}.values():
            cur = db.execute(
                "INSERT OR IGNORE INTO policies VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (v.sha256, v.url, v.final_url, timestamp(v.fetched_at), v.language, v.title, v.text, v.effective_date,
                 v.content_type),
            )
            if cur.rowcount:
                db.execute("INSERT INTO policies_fts (rowid, body) VALUES (?, ?)",
                           (cur.lastrowid, index_text(policy_body(v))))
                new += 1
        return new

    def policy(self, sha256: str) -> PolicyVersion | None:
        row = self.db.execute("SELECT * FROM policies WHERE sha256 = ?", (sha256,)).fetchone()
        return PolicyVersion.from_dict(dict(row)) if row else None

    # -- analysis ---------------------------------------------------------------
    def save_analysis(
        self, apps: Iterable[AppSnapshot], analyses: Iterable[Analysis], seen_at: str | None = None,
        skipped_rules: Iterable[str] = (), inputs: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Apps, their listings, policy and policy link, and findings, in one transaction (see Store)."""
        seen = timestamp(seen_at or utcnow())
        apps = list(apps)
        by_key = {a.app_key: a for a in analyses}
        inputs = inputs or {}
        findings = {f.id: f for a in by_key.values() for f in a.findings}
        with self._tx() as db:
            self._save_policies(db, (app.policy for app in apps if app.policy))
            self._save_listings(db, (lst for app in apps for lst in app.listings))
            db.executemany(_UPSERT_APP, [self._app_row(app, by_key.get(app.key), seen, inputs.get(app.key) or "")
                                         for app in apps])
            db.executemany(
                _UPSERT_LINK,
                [(app.key, app.policy.sha256, app.policy_url or app.policy.url, seen, seen)
                 for app in apps if app.policy],
            )
            db.execute("DELETE FROM temp.batch_ids")
            db.execute("DELETE FROM temp.batch_apps")
            db.executemany("INSERT INTO temp.batch_ids (id) VALUES (?)", ((fid,) for fid in findings))
            db.executemany("INSERT INTO temp.batch_apps (key) VALUES (?)", ((key,) for key in by_key))
            batch = "SELECT f.id, f.rowid, f.fts_hash FROM findings f JOIN temp.batch_ids USING (id)"
            before = {r[0]: r[2] for r in db.execute(batch)}
            names = {app.key: (app.name, app.developer) for app in apps}
            missing = {f.app_key for f in findings.values()} - names.keys()
            for key in missing:
                row = db.execute("SELECT name, developer FROM apps WHERE key = ?", (key,)).fetchone()
                names[key] = (row["name"] or "", row["developer"] or "") if row else ("", "")
            rows, bodies, hashes = [], {}, {}
            for fid, f in findings.items():
                bodies[fid] = body = "\n".join(finding_fields(f, *names[f.app_key]))
                hashes[fid] = sha256_hex(body)[:16]
                rows.append({
                    "id": fid, "rule_id": f.rule_id, "family": f.family, "severity": f.severity,
                    "confidence": f.confidence, "app_key": f.app_key, "title": f.title,
                    "evidence": dumps(shallow(f.evidence, EVIDENCE_FIELDS)), "evidence_kind": f.evidence.kind,
                    "evidence_key": f.evidence.key, "regulation": f.regulation, "seen": seen,
                    "fts_hash": hashes[fid], "capture": f.capture,
                })
            db.executemany(_UPSERT_FINDING, rows)
            after = db.execute(batch)
            changed = [(r[0], r[1]) for r in after if r[2] != before.get(r[0]) and r[2] == hashes[r[0]]]
            db.executemany("DELETE FROM findings_fts WHERE rowid = ?",
                           [(rowid,) for fid, rowid in changed if fid in before])
            db.executemany("INSERT INTO findings_fts (rowid, body) VALUES (?, ?)",
                           [(rowid, index_text(bodies[fid])) for fid, rowid in changed])
            resolved = db.execute(_RESOLVE, {"seen": seen, "skipped": dumps(sorted(set(skipped_rules)))}).rowcount
            counts = dict(db.execute(
                "SELECT f.status, count(*) FROM findings f JOIN temp.batch_ids USING (id) GROUP BY f.status"
            ).fetchall())
        return {"new": counts.get("new", 0), "open": counts.get("open", 0), "resolved": resolved}

    @staticmethod
    def _app_row(app: AppSnapshot, analysis: Analysis | None, seen: str, input_hash: str) -> dict[str, Any]:
        fetched = [timestamp(lst.fetched_at) for lst in app.listings]
        return {
            "key": app.key, "platform": app.platform, "package": app.package, "name": app.name,
            "developer": app.developer, "legal_entity": app.legal_entity, "category": app.category,
            "finance_type": analysis.finance_type if analysis else None,
            "finance_confidence": analysis.finance_confidence if analysis else None,
            "policy_status": app.policy_status, "policy_url": app.policy_url,
            "policy_sha256": app.policy.sha256 if app.policy else None,
            "permissions": dumps(sorted(app.permissions)), "privacy_labels": dumps(sorted(app.privacy_labels)),
            "first_seen": min([seen, *fetched]), "seen": seen, "input_hash": input_hash,
            "sdks": dumps(app_sdks(app)),
        }

    def analysis_inputs(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, input_hash FROM apps WHERE input_hash != '' ORDER BY key").fetchall())

    # -- queries ----------------------------------------------------------------
    @staticmethod
    def _finding(row: sqlite3.Row) -> Finding:
        return Finding(
            rule_id=row["rule_id"], severity=row["severity"], confidence=row["confidence"], app_key=row["app_key"],
            title=row["title"], evidence=Evidence.from_dict(json.loads(row["evidence"])),
            regulation=row["regulation"], first_seen=row["first_seen"], last_seen=row["last_seen"],
            status=row["status"], capture=row["capture"],
        )

    def finding(self, finding_id: str) -> Finding | None:
        row = self.db.execute("SELECT * FROM findings WHERE id = ?", (finding_id,)).fetchone()
        return self._finding(row) if row else None

    def captures(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT DISTINCT capture FROM findings WHERE capture != ''")}

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
        where, params = self._filters(app_key=app_key, rule=rule, family=family, severity=severity,
                                      status=status, store=store, finance_type=finance_type)
        sql = f"SELECT f.* FROM findings f WHERE {where} ORDER BY {_SEVERITY_ORDER}, f.rule_id, f.app_key, f.id"
        sql += " LIMIT ? OFFSET ?"
        params += [-1 if limit is None else max(0, int(limit)), max(0, int(offset))]
        return [self._finding(r) for r in self.db.execute(sql, params)]

    @staticmethod
    def _filters(**given: Any) -> tuple[str, list[Any]]:
        """A WHERE clause over findings ``f`` for the filters of ``findings`` and ``search``."""
        where, params = ["1"], []
        if given.get("week"):
            given["first_seen_from"], given["first_seen_before"] = week_bounds(given["week"])
        simple = {"app_key": "f.app_key = ?", "rule": "f.rule_id = ?", "family": "f.family = ?",
                  "severity": "f.severity = ?", "since": "f.last_seen >= ?", "until": "f.last_seen < ?",
                  "first_seen_from": "f.first_seen >= ?", "first_seen_before": "f.first_seen < ?",
                  "store": "EXISTS (SELECT 1 FROM listings l WHERE l.app_key = f.app_key AND l.store = ?)",
                  "finance_type": "EXISTS (SELECT 1 FROM apps a WHERE a.key = f.app_key AND a.finance_type = ?)",
                  "developer": "EXISTS (SELECT 1 FROM apps a WHERE a.key = f.app_key AND a.developer = ?)"}
        for name, condition in simple.items():
            if given.get(name):
                where.append(condition)
                params.append(given[name])
        wanted = statuses(given.get("status"))
        if wanted:
            where.append(f"f.status IN ({', '.join('?' * len(wanted))})")
            params += wanted
        return " AND ".join(where), params

    @staticmethod
    def _policy_filters(**given: Any) -> tuple[str, list[Any]]:
        """A WHERE clause over policies ``p``: a linked app on ``store``, of ``finance_type``, by ``developer``."""
        where, params = ["1"], []
        linked = "EXISTS (SELECT 1 FROM app_policies ap CROSS JOIN {} WHERE ap.sha256 = p.sha256 AND {} = ?)"
        simple = {"since": "p.fetched_at >= ?", "until": "p.fetched_at < ?",
                  "store": linked.format("listings l ON l.app_key = ap.app_key", "l.store"),
                  "finance_type": linked.format("apps a ON a.key = ap.app_key", "a.finance_type"),
                  "developer": linked.format("apps a ON a.key = ap.app_key", "a.developer")}
        for name, condition in simple.items():
            if given.get(name):
                where.append(condition)
                params.append(given[name])
        return " AND ".join(where), params

    def changes(self, since: str, until: str | None = None, limit: int | None = None) -> dict[str, Any]:
        window = (timestamp(since), timestamp(until) if until else "9999")
        where = {"new": "f.first_seen >= ? AND f.first_seen < ?",
                 "resolved": "f.status = 'resolved' AND f.resolved_at >= ? AND f.resolved_at < ?"}
        out: dict[str, Any] = {"counts": {}}
        for name, condition in where.items():
            rows = self.db.execute(f"SELECT f.* FROM findings f WHERE {condition} ORDER BY {_SEVERITY_ORDER}, f.id "
                                   "LIMIT ?", (*window, -1 if limit is None else max(0, int(limit))))
            out[name] = [self._finding(r) for r in rows]
            out["counts"][name] = (len(out[name]) if limit is None else
                                   self.db.execute(f"SELECT count(*) FROM findings f WHERE {condition}", window).fetchone()[0])
        return out

    def first_seen(self, since: str, until: str | None = None, *, severity: str | None = None, after: str = "",
                   limit: int = 1000) -> list[Finding]:
        where = "f.first_seen >= ? AND f.first_seen < ? AND f.id > ?" + (" AND f.severity = ?" if severity else "")
        params = [timestamp(since), timestamp(until) if until else "9999", after, *([severity] if severity else [])]
        rows = self.db.execute(f"SELECT f.* FROM findings f WHERE {where} ORDER BY f.id LIMIT ?",
                               (*params, max(0, int(limit))))
        return [self._finding(r) for r in rows]

    def rule_counts(self, status: str | Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        where, params = self._filters(status=status)
        out: dict[str, dict[str, Any]] = {}
        for rule, apps in self.db.execute(
                f"SELECT rule_id, count(DISTINCT app_key) FROM findings f WHERE {where} GROUP BY rule_id", params):
            out[rule] = {"count": 0, "apps": apps, "severity": {}}
        for rule, severity, n in self.db.execute(
                f"SELECT rule_id, severity, count(*) FROM findings f WHERE {where} GROUP BY rule_id, severity", params):
            out[rule]["count"] += n
            out[rule]["severity"][severity] = n
        return out

    def opener(self) -> Callable[[], SQLiteStore] | None:
        return None if self.path == ":memory:" else functools.partial(SQLiteStore, self.path, read_only=True)

    def _stores(self, keys: Iterable[str] | None = None) -> dict[str, list[str]]:
        """The stores of each app (of ``keys``, or every app), by app key."""
        where, params = ("1", []) if keys is None else _among("app_key", keys)
        out: dict[str, list[str]] = {}
        rows = self.db.execute(f"SELECT DISTINCT app_key, store FROM listings WHERE {where} ORDER BY store", params)
        for key, store in rows:
            out.setdefault(key, []).append(store)
        return out

    def _app_dict(self, row: Mapping[str, Any], stores: list[str], counts: dict[str, int]) -> dict[str, Any]:
        app = dict(row)
        del app["input_hash"]  # the store's bookkeeping (analysis_inputs), not a property of the app
        app["permissions"] = json.loads(app["permissions"] or "[]")
        app["privacy_labels"] = json.loads(app["privacy_labels"] or "[]")
        app["sdks"] = json.loads(app["sdks"] or "[]")
        app["stores"] = stores
        app["counts"] = {sev: counts.get(sev, 0) for sev in ("high", "medium", "low")}
        app["risk_score"] = risk_score(counts, settings.FINMON_RISK_WEIGHTS)
        return app

    def apps(self, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        return self._apps(*(("1", []) if keys is None else _among("a.key", keys)))

    def _apps(self, where: str, params: list[str]) -> Iterator[dict[str, Any]]:
        """The apps ``where`` selects (a condition on ``apps a``), each with its stores and unresolved counts."""
        for row in self.db.execute(
                "SELECT a.*, (SELECT json_group_array(store) FROM (SELECT DISTINCT store FROM listings "
                "WHERE app_key = a.key ORDER BY store)) AS app_stores, (SELECT json_group_object(severity, n) FROM "
                "(SELECT coalesce(severity, '') AS severity, count(*) AS n FROM findings "
                "WHERE app_key = a.key AND status != 'resolved' GROUP BY severity)) AS app_counts "
                f"FROM apps a WHERE {where} ORDER BY a.key", params):
            app = dict(row)
            stores, counts = json.loads(app.pop("app_stores")), json.loads(app.pop("app_counts"))
            yield self._app_dict(app, stores, counts)

    def app(self, key: str) -> dict[str, Any] | None:
        app = next(self._apps("a.key = ?", [key]), None)
        if app is None:
            return None
        app["listings"] = []
        for r in self.db.execute("SELECT * FROM listings WHERE app_key = ? ORDER BY store, store_id", (key,)):
            listing = dict(r)
            listing["permissions"] = json.loads(listing["permissions"] or "[]")
            listing["privacy_labels"] = json.loads(listing["privacy_labels"] or "[]")
            listing["data_safety"] = None if listing["data_safety"] is None else json.loads(listing["data_safety"])
            app["listings"].append(listing)
        app["history"] = [
            {**json.loads(r["data"]), "app_key": key, "content_hash": r["content_hash"], "first_fetched_at": r["fetched_at"]}
            for r in self.db.execute(
                "SELECT h.* FROM listing_history h JOIN listings l ON l.store = h.store AND l.store_id = h.store_id "
                "WHERE l.app_key = ? ORDER BY h.fetched_at DESC, h.store, h.store_id, h.content_hash", (key,))]
        for listing in app["history"]:
            listing.pop("fetched_at", None)
            listing["permissions"], listing["privacy_labels"] = (list(listing.get("permissions") or []),
                                                                 list(listing.get("privacy_labels") or []))
        app["policy"] = self.policy(app["policy_sha256"]) if app["policy_sha256"] else None
        app["policy_versions"] = [dict(r) for r in self.db.execute(
            "SELECT p.sha256, p.url, p.final_url, p.fetched_at, p.title, p.language, p.effective_date, "
            "ap.first_seen, ap.last_seen FROM app_policies ap JOIN policies p USING (sha256) "
            "WHERE ap.app_key = ? ORDER BY p.fetched_at DESC", (key,))]
        app["findings"] = self.findings(app_key=key)
        return app

    def export(self, kind: str) -> Iterator[dict[str, Any]]:
        if kind not in EXPORT_KINDS:
            raise ValueError(f"export kind must be one of {EXPORT_KINDS}, not {kind!r}")
        return self._export_findings() if kind == "findings" else self.apps()

    def _export_findings(self) -> Iterator[dict[str, Any]]:
        stores = self._stores()
        cur = self.db.execute(
            "SELECT f.*, a.name AS app_name, a.developer, a.finance_type FROM findings f "
            "LEFT JOIN apps a ON a.key = f.app_key ORDER BY f.app_key, f.rule_id, f.id")
        for row in cur:
            out = self._finding(row).to_dict()
            out.update(family=row["family"], resolved_at=row["resolved_at"], app_name=row["app_name"],
                       developer=row["developer"], finance_type=row["finance_type"],
                       stores=stores.get(row["app_key"], []))
            yield out

    # -- search -------------------------------------------------------------------
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
        kinds, since, until, limit, offset = search_scope(kind, sort, since, until,
                                                          any((rule, family, severity, status, week)), limit, offset)
        words = query_words(query)
        match = fts_match(words)
        if match is None or limit == 0 or not kinds:
            return []
        common = {"store": store, "finance_type": finance_type, "developer": developer, "since": since, "until": until}
        order = {"relevance": "", "newest": "date DESC, ", "severity": "rank, "}[sort]
        filters = {"finding": self._filters(rule=rule, family=family, severity=severity, status=status, week=week,
                                            **common),
                   "policy": self._policy_filters(**common)}
        tiers = {source: _Tiers(self.db, _MATCHES[source][0], match) for source in kinds}
        ranked: list[sqlite3.Row] = []
        k = 0
        while True:
            parts, params, more = [], [], False
            for source in kinds:
                tier = tiers[source].tier(k)
                if tier is None:
                    continue
                low, high, older = tier
                table, select = _MATCHES[source]
                where, wparams = filters[source]
                below = "" if high is None else f" AND {table}.rowid < {high}"
                parts.append(f"{select} WHERE {table} MATCH ? AND {table}.rowid >= {low}{below} AND {where}")
                params += [match, *wparams]
                more |= older
            if parts:
                sql = " UNION ALL ".join(parts) + f" ORDER BY {order}score, kind, id LIMIT ?"
                ranked += self.db.execute(sql, [*params, limit + offset - len(ranked)]).fetchall()
            if len(ranked) >= limit + offset or not more:
                return self._hits(ranked[offset:offset + limit], words)
            k += 1

    def facets(self, query: str, **filters: Any) -> dict[str, Any]:
        given = {name: filters.get(name) for name in ("rule", "family", "severity", "status", "week")}
        common = {name: filters.get(name) for name in ("store", "finance_type", "developer")}
        kinds, common["since"], common["until"], _, _ = search_scope(
            filters.get("kind"), "relevance", filters.get("since"), filters.get("until"), any(given.values()), 0, 0)
        match = fts_match(query_words(query))
        counters: dict[str, Counter] = {name: Counter() for name in FACETS}
        total = {"finding": 0, "policy": 0}
        if match is None:
            return facet_counts(counters, total)
        if "finding" in kinds:
            where, params = self._filters(**given, **common)
            rows = self.db.execute(
                "SELECT f.rule_id, f.family, f.severity, f.status, f.app_key, f.first_seen FROM findings_fts "
                f"JOIN findings f ON f.rowid = findings_fts.rowid WHERE findings_fts MATCH ? AND {where}",
                [match, *params]).fetchall()
            keys = list({row[4] for row in rows})
            among, among_params = _among("key", keys)
            apps = {r[0]: (r[1], r[2]) for r in self.db.execute(
                f"SELECT key, finance_type, developer FROM apps WHERE {among}", among_params)}
            stores = self._stores(keys)
            weeks: dict[str, str] = {}
            for rule, family, severity, status, key, first_seen in rows:
                finance_type, developer = apps.get(key, ("", ""))
                day = (first_seen or "")[:10]
                if day not in weeks:
                    weeks[day] = iso_week(day)
                for name, value in (("rule", rule), ("family", family), ("severity", severity), ("status", status),
                                    ("finance_type", finance_type), ("developer", developer), ("week", weeks[day])):
                    counters[name][value or ""] += 1
                counters["store"].update(stores.get(key, []))
            total["finding"] = len(rows)
        if "policy" in kinds:
            where, params = self._policy_filters(**common)
            total["policy"] = self.db.execute(
                "SELECT count(*) FROM policies_fts JOIN policies p ON p.rowid = policies_fts.rowid "
                f"WHERE policies_fts MATCH ? AND {where}", [match, *params]).fetchone()[0]
        return facet_counts(counters, total)

    def _hits(self, ranked: list[sqlite3.Row], words: list[str]) -> list[dict[str, Any]]:
        finding_ids = [r["id"] for r in ranked if r["kind"] == "finding"]
        policy_ids = [r["id"] for r in ranked if r["kind"] == "policy"]
        marks = lambda ids: ", ".join("?" * len(ids))  # noqa: E731
        findings = {r["id"]: r for r in self.db.execute(
            f"SELECT f.*, a.name AS app_name, a.developer FROM findings f LEFT JOIN apps a ON a.key = f.app_key "
            f"WHERE f.id IN ({marks(finding_ids)})", finding_ids)}
        policies = {r["sha256"]: r for r in self.db.execute(
            f"SELECT * FROM policies WHERE sha256 IN ({marks(policy_ids)})", policy_ids)}
        linked: dict[str, list[dict[str, str]]] = {}
        for r in self.db.execute(
            f"SELECT ap.sha256, a.key, a.name FROM app_policies ap JOIN apps a ON a.key = ap.app_key "
            f"WHERE ap.sha256 IN ({marks(policy_ids)}) ORDER BY a.key", policy_ids):
            linked.setdefault(r["sha256"], []).append({"key": r["key"], "name": r["name"]})
        keys = {r["app_key"] for r in findings.values()} | {a["key"] for apps in linked.values() for a in apps}
        stores = self._stores(keys)
        titles = {r[0]: (r[1], r[2]) for r in self.db.execute("SELECT id, title, title_en FROM rules")}
        hits = []
        for r in ranked:
            if r["kind"] == "finding":
                row = findings[r["id"]]
                finding = self._finding(row)
                text, match = finding_snippet(finding, row["app_name"] or "", row["developer"] or "", words)
                title, title_en = titles.get(finding.rule_id, (finding.title, ""))
                hits.append({
                    "kind": "finding", "id": r["id"], "app_key": finding.app_key, "app_name": row["app_name"],
                    "rule_id": finding.rule_id, "rule_title": title or finding.title, "rule_title_en": title_en,
                    "severity": finding.severity, "status": finding.status,
                    "evidence": finding.evidence.to_dict(), "stores": stores.get(finding.app_key, []),
                    "snippet": text, "match": match, "score": r["score"],
                })
            else:
                row = policies[r["id"]]
                apps = linked.get(r["id"], [])
                text, match = snippet("\n".join(p for p in (row["title"], row["text"]) if p), words)
                hits.append({
                    "kind": "policy", "id": r["id"], "app_key": apps[0]["key"] if apps else None,
                    "app_name": apps[0]["name"] if apps else None, "apps": apps,
                    "stores": sorted({s for a in apps for s in stores.get(a["key"], [])}),
                    "url": row["url"], "title": row["title"], "language": row["language"],
                    "fetched_at": row["fetched_at"], "snippet": text, "match": match, "score": r["score"],
                })
        return hits
