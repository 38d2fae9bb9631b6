"""The Elasticsearch 9 store: the index of record in deployments. Implements :class:`index.base.Store`.

Layout. One index per kind (apps, listings, policies, findings, runs, rules), versioned behind an
alias that the code reads and writes: ``finmon-findings`` → ``finmon-findings-v1``. A composable
index template per kind (``finmon-findings`` for ``finmon-findings-v*``) holds the settings and the
explicit mapping, so every index of the kind gets them. Opening the store creates what is missing;
when :data:`MAPPING_VERSION` has grown, :meth:`ElasticStore.migrate` creates the new indices, copies
every document client-side (scan + bulk: the bare distribution has no ``_reindex``), checks the
counts and swaps each alias in one ``_aliases`` call before it drops the old index.

Mappings are ``dynamic: strict``: a field the code does not know is an error, not a guess. Names
are ``text`` with a ``keyword`` subfield; ids, codes, URLs and dates are ``keyword``/``date``; what
has unforeseen keys (a rule's extra data, a run's counters) is an ``object`` kept but not indexed.
A finding's evidence is a plain ``object`` with explicit fields, not ``nested``: there is one per
finding, and ``nested`` only matters for arrays of objects queried field against field.

Full text. Findings and policies carry a ``body``: exactly what the SQLite store gives FTS5,
:func:`index.base.index_text` (one token per CJK character, runs of letters and digits otherwise, so
``READ_CONTACTS`` is two tokens; blank-separated), which the standard analyzer only lower-cases. Each
query word becomes one ``match_phrase`` over the same tokens, so both backends find the same hits
and no input is ever read as query syntax. Snippets are cut from the original text, as SQLite's are.

Writes. There are no scripts (no painless), so a batch is read, updated in Python by the rules of
the SQLite store's upserts and written back in one bulk, each document on condition that it is
still the version that was read (or still absent): a concurrent writer makes the batch fail loudly
instead of losing an update, and a bulk request lost in flight is not re-sent (it may have been
applied). Every batch refreshes before it reads (searches see refreshed documents only, and an
interrupted batch leaves some unrefreshed) and after it writes, so reads after a save are
consistent and rerunning a failed save completes it. What ES refused before applying it, and a
request whose connection was refused, are sent again; a write ES ran twice because a node left
counts as written when the document is what was sent (:meth:`ElasticStore._bulk_chunk`). The app
fields that filters need (stores, finance type, developer) are copied onto findings and policies,
and rewritten there whenever the app changes.
"""
from __future__ import annotations

import copy
import functools
import logging
import os
import re
from collections import Counter, defaultdict
from contextlib import contextmanager
from itertools import chain
from typing import Any, Callable, Iterable, Iterator, Mapping

from elasticsearch import ApiError, Elasticsearch, TransportError, helpers
from elasticsearch import ConnectionError as TransportConnectionError
from elasticsearch.helpers import ScanError

from finmon import settings
from finmon.model import (Analysis, AppSnapshot, Evidence, Finding, Listing, PolicyVersion, Run, chunks, sha256_hex,
                          utcnow)
from index.base import (
    EVIDENCE_FIELDS,
    EXPORT_KINDS,
    FINDING_ONLY_FILTERS,
    LISTING_FIELDS,
    StoreError,
    StoreUnavailable,
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

log = logging.getLogger(__name__)

MAPPING_VERSION = 6  # 2: listings apk_url and HTTP validators, runs job/attempt/error, apps input_hash; 3: findings and listings their capture (finmon.evidence); 4: apps their SDKs; 5: apps and listings the developer's legal entity, listings its address and e-mail and the Data safety form; 6: listings the capture of that form
KINDS = ("apps", "listings", "policies", "findings", "runs", "rules")
SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}  # anything else ranks 3, as in SQLite's ORDER BY
TEMPLATE_PRIORITY = 200
RETRIED_STATUSES = (429, 503)  # bulk items ES refused before applying them: too busy, no active primary yet

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_NAME = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
_DATE = {"type": "date"}
_SHOWN = {"type": "text", "index": False}  # displayed, found through ``body``
_OPAQUE = {"type": "object", "enabled": False}  # kept as given, keys not known in advance
_BODY = {"type": "text", "analyzer": "standard"}


def _strict(*keywords: str, **fields: Any) -> dict[str, Any]:
    return {"dynamic": "strict", "properties": {**{name: _KEYWORD for name in keywords}, **fields}}


MAPPINGS: dict[str, dict[str, Any]] = {
    "apps": _strict(
        "key", "platform", "package", "category", "finance_type", "policy_status", "policy_url", "policy_sha256",
        "permissions", "privacy_labels", "stores", "input_hash",
        name=_NAME, developer=_NAME, legal_entity=_NAME, finance_confidence={"type": "float"},
        first_seen=_DATE, last_seen=_DATE, analysed_at=_DATE,
        policies={"properties": {"sha256": _KEYWORD, "url": _KEYWORD, "first_seen": _DATE, "last_seen": _DATE}},
        sdks=_OPAQUE,
    ),
    "listings": _strict(  # one document per distinct content of a store's listing
        "store", "store_id", "app_key", "platform", "package", "category", "source_url", "version", "updated",
        "privacy_url", "apk_url", "permissions", "privacy_labels", "content_hash", "etag", "last_modified", "capture",
        "data_safety_capture",
        "developer_email",
        name=_NAME, developer=_NAME, legal_entity=_NAME, legal_address=_SHOWN, data_safety=_OPAQUE,
        description={"type": "text"}, downloads={"type": "long"},
        rating_count={"type": "long"}, fetched_at=_DATE, first_fetched_at=_DATE,
    ),
    "policies": _strict(
        "sha256", "url", "final_url", "language", "effective_date", "content_type",
        "stores", "finance_types", "developers",  # of every linked app, for the search filters
        title=_NAME, text=_SHOWN, fetched_at=_DATE, body=_BODY,
        id={"type": "alias", "path": "sha256"}, date={"type": "alias", "path": "fetched_at"},  # shared sort keys
    ),
    "findings": _strict(
        "id", "rule_id", "family", "severity", "confidence", "app_key", "status", "capture",
        "stores", "finance_type", "developer",  # of the app, for the filters
        severity_rank={"type": "byte"}, title=_NAME, regulation=_NAME,
        evidence={"properties": {
            "kind": _KEYWORD, "key": _KEYWORD, "text": _SHOWN, "start": {"type": "integer"},
            "end": {"type": "integer"}, "url": _KEYWORD, "detail": _KEYWORD,
        }},
        first_seen=_DATE, last_seen=_DATE, resolved_at=_DATE, body=_BODY,
        date={"type": "alias", "path": "last_seen"},
    ),
    "runs": _strict("id", "kind", "outcome", "job", started=_DATE, ended=_DATE, counters=_OPAQUE,
                    attempt={"type": "integer"}, error=_SHOWN),
    "rules": _strict(
        "id", "family", "severity", "confidence",
        title=_NAME, title_en=_NAME, description={"type": "text"}, regulation=_NAME, data=_OPAQUE,
    ),
}

APP_FIELDS = (
    "key", "platform", "package", "name", "developer", "legal_entity", "category", "finance_type",
    "finance_confidence", "policy_status", "policy_url", "policy_sha256", "permissions", "privacy_labels", "first_seen",
    "last_seen", "analysed_at",
)
LISTING_COLUMNS = ("app_key", *LISTING_FIELDS)


class IndexingError(StoreError):
    """Documents a bulk write could not store, all named: none is dropped silently.

    When every failure is the server's (5xx, 429 after the retries), StoreUnavailable is raised from it.
    """

    def __init__(self, errors: list[dict[str, Any]], total: int) -> None:
        self.errors = errors
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in errors:
            by_type[(item.get("error") or {}).get("type") or f"status {item.get('status')}"].append(item)
        reasons = []
        for kind, items in by_type.items():
            error = items[0].get("error") or {}
            cause = (error.get("caused_by") or {}).get("reason")
            reasons.append(f"{len(items)}× {kind}: {error.get('reason')}" + (f" ({cause})" if cause else "")
                           + f" [e.g. {items[0].get('_index')}/{items[0].get('_id')}]")
        super().__init__(f"{len(errors)} of {total} documents failed to index: " + "; ".join(reasons))


def _slot(index: str, doc_id: str) -> tuple[str, str]:
    """A bulk action's document, whether named through the alias (``finmon-apps``) or the index
    (``finmon-apps-v6``, as results name it)."""
    return re.sub(r"-v\d+$", "", index), doc_id


def _never_connected(exc: BaseException) -> bool:
    """Whether a connection error is a refused connection: the request never left."""
    cause = exc.__cause__ or exc.__context__
    while cause is not None and not isinstance(cause, ConnectionRefusedError):
        cause = cause.__cause__ or cause.__context__
    return cause is not None


def listing_id(store: str, store_id: str, content_hash: str) -> str:
    return sha256_hex(f"{store}\x1f{store_id}\x1f{content_hash}")[:32]


@contextmanager
def _reachable(url: str) -> Iterator[None]:
    """Turns a failing server (unreachable, timing out, 429 or 5xx after the retries) into StoreUnavailable."""
    try:
        yield
    except (TransportError, ApiError, ScanError) as exc:
        if isinstance(exc, ApiError) and exc.meta.status < 500 and exc.meta.status != 429:
            raise
        raise StoreUnavailable(f"Elasticsearch at {url} is unavailable: {exc}") from exc


def _guarded(method: Callable) -> Callable:
    @functools.wraps(method)
    def wrapper(self: ElasticStore, *args: Any, **kwargs: Any) -> Any:
        with _reachable(self.url):
            return method(self, *args, **kwargs)

    return wrapper


class _Docs:
    """One index's documents in a batch: as read, as updated, and the version each write depends on."""

    def __init__(self, index: str) -> None:
        self.index = index
        self.read: dict[str, dict[str, Any]] = {}
        self.src: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, tuple[int, int]] = {}

    def load(self, hits: Iterable[dict[str, Any]]) -> None:
        """Adds documents read from the index (those already here keep their updated state)."""
        for hit in hits:
            if hit["_id"] not in self.read:
                self.read[hit["_id"]] = hit["_source"]
                self.src.setdefault(hit["_id"], copy.deepcopy(hit["_source"]))
                self.versions[hit["_id"]] = (hit["_seq_no"], hit["_primary_term"])

    def actions(self) -> Iterator[dict[str, Any]]:
        """Bulk actions for the documents that changed: create if absent when read, else if still as read."""
        for doc_id, src in self.src.items():
            if src == self.read.get(doc_id):
                continue
            action: dict[str, Any] = {"_index": self.index, "_id": doc_id, "_source": src}
            if doc_id in self.versions:
                action["if_seq_no"], action["if_primary_term"] = self.versions[doc_id]
            else:
                action["_op_type"] = "create"
            yield action


def _app_filters(app: dict[str, Any] | None) -> dict[str, Any]:
    """The app fields a finding carries for the search filters."""
    app = app or {}
    return {"stores": app.get("stores") or [], "finance_type": app.get("finance_type"),
            "developer": app.get("developer")}


def _policy_filters(apps: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The app fields a policy carries for the search filters: those of every linked app."""
    return {
        "stores": sorted({store for app in apps for store in app.get("stores") or []}),
        "finance_types": sorted({app["finance_type"] for app in apps if app.get("finance_type")}),
        "developers": sorted({app["developer"] for app in apps if app.get("developer")}),
    }


def _links(app: dict[str, Any] | None) -> set[str]:
    """The sha256 of every policy version an app document links to."""
    return {link["sha256"] for link in (app or {}).get("policies") or []}


def _finding(src: dict[str, Any]) -> Finding:
    return Finding(
        rule_id=src["rule_id"], severity=src["severity"], confidence=src["confidence"], app_key=src["app_key"],
        title=src["title"], evidence=Evidence.from_dict(src["evidence"]), regulation=src["regulation"],
        first_seen=src["first_seen"], last_seen=src["last_seen"], status=src["status"],
        capture=src.get("capture") or "",  # none in documents copied from mapping v2
    )


class ElasticStore:
    """The index in Elasticsearch 9 (see the module docstring). Implements :class:`index.base.Store`."""

    mapping_version = MAPPING_VERSION
    mappings = MAPPINGS

    def __init__(self, es: str | Elasticsearch, *, prefix: str | None = None, shards: int | None = None,
                 replicas: int | None = None, **client_options: Any) -> None:
        """``es``: a URL, or several comma-separated (nodes of one cluster: the client goes on with the others
        when one fails; it gets the settings' timeout and retries, and ``client_options``), or a client.
        ``shards`` and ``replicas``: of new indices (default: the settings'), in the index templates.

        Opening creates or migrates the indices (:meth:`migrate`).
        """
        self.prefix = prefix or settings.FINMON_ES_PREFIX
        self._opener: Callable[[], ElasticStore] | None = None
        if isinstance(es, str):
            self.url = es
            self._opener = functools.partial(ElasticStore, es, prefix=self.prefix, shards=shards, replicas=replicas,
                                             **client_options)
            es = Elasticsearch(
                [url.strip() for url in es.split(",") if url.strip()], request_timeout=settings.FINMON_ES_TIMEOUT,
                retry_on_timeout=settings.FINMON_ES_RETRY_ON_TIMEOUT, max_retries=settings.FINMON_ES_MAX_RETRIES,
                **client_options,
            )
        else:
            self.url = ", ".join(node.base_url for node in es.transport.node_pool.all())
        self.es = es
        self.shards, self.replicas = shards, replicas
        self.migrate()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **kwargs: Any) -> ElasticStore:
        """The store at FINMON_ES_URL (default: the local node; several comma-separated: nodes of one cluster),
        with credentials from the environment only: FINMON_ES_API_KEY, or FINMON_ES_USERNAME and
        FINMON_ES_PASSWORD; FINMON_ES_CA_CERTS; FINMON_ES_PREFIX; FINMON_ES_SHARDS and FINMON_ES_REPLICAS
        of new indices."""
        options: dict[str, Any] = {}
        for name in ("shards", "replicas"):
            if environ.get(f"FINMON_ES_{name.upper()}"):
                options[name] = int(environ[f"FINMON_ES_{name.upper()}"])
        if environ.get("FINMON_ES_API_KEY"):
            options["api_key"] = environ["FINMON_ES_API_KEY"]
        elif environ.get("FINMON_ES_USERNAME"):
            options["basic_auth"] = (environ["FINMON_ES_USERNAME"], environ.get("FINMON_ES_PASSWORD", ""))
        if environ.get("FINMON_ES_CA_CERTS"):
            options["ca_certs"] = environ["FINMON_ES_CA_CERTS"]
        url = environ.get("FINMON_ES_URL") or f"http://127.0.0.1:{settings.FINMON_ES_PORT}"
        return cls(url, prefix=environ.get("FINMON_ES_PREFIX"), **options, **kwargs)

    def opener(self) -> Callable[[], ElasticStore] | None:
        return self._opener

    def alias(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def close(self) -> None:
        self.es.close()

    def __enter__(self) -> ElasticStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- templates, indices, aliases ----------------------------------------------
    @_guarded
    def migrate(self) -> dict[str, int]:
        """Brings every kind to this code's mapping version; returns the documents copied per migrated kind.

        Puts the index templates, creates a missing index behind its alias, and moves an older
        index to a new one (copy, compare counts, swap the alias atomically, drop the old one).
        """
        targets = self._targets()
        newer = {kind: v for kind, (_, v) in targets.items() if v > self.mapping_version}
        if newer:
            raise StoreError(f"{self.url}: indices {newer} are newer than this finmon's mapping "
                             f"v{self.mapping_version}")
        for kind in KINDS:
            self.es.indices.put_index_template(
                name=self.alias(kind), index_patterns=[f"{self.alias(kind)}-v*"], priority=TEMPLATE_PRIORITY,
                version=self.mapping_version, meta={"managed_by": "finmon", "mapping_version": self.mapping_version},
                template={"settings": self._index_settings(),
                          "mappings": self.mappings[kind]},
            )
        copied, added = {}, []
        for kind in KINDS:
            old, version = targets.get(kind, (None, 0))
            if version == self.mapping_version:
                continue
            new = f"{self.alias(kind)}-v{self.mapping_version}"
            if not self.es.indices.exists(index=new):
                self.es.indices.create(index=new)  # settings and mappings from the template
            if old is None:
                added.append({"add": {"index": new, "alias": self.alias(kind)}})
                continue
            copied[kind] = self._bulk({"_index": new, "_id": hit["_id"], "_source": hit["_source"]}
                                      for hit in self._scan(old, {"match_all": {}}))
            before, after = (self.es.count(index=i)["count"] for i in (old, new))
            if after < before:
                raise StoreError(f"migrating {old} → {new}: {after} of {before} documents copied; alias not moved")
            self.es.indices.update_aliases(actions=[
                {"remove": {"index": old, "alias": self.alias(kind)}},
                {"add": {"index": new, "alias": self.alias(kind)}},
            ])
            self.es.indices.delete(index=old)
            log.warning("migrated %s to %s (%d documents)", old, new, copied[kind])
        if added:
            self.es.indices.update_aliases(actions=added)
        return copied

    def _index_settings(self) -> dict[str, int]:
        """Shards and replicas of a new index: the constructor's, else the settings'."""
        return {"number_of_shards": self.shards or settings.FINMON_ES_SHARDS,
                "number_of_replicas": settings.FINMON_ES_REPLICAS if self.replicas is None else self.replicas}

    def _targets(self) -> dict[str, tuple[str, int]]:
        """The index and mapping version behind each existing alias."""
        out = {}
        for index, info in self.es.indices.get_alias(index=f"{self.prefix}-*").items():
            for kind in KINDS:
                if self.alias(kind) in info.get("aliases", {}):
                    found = re.fullmatch(re.escape(self.alias(kind)) + r"-v(\d+)", index)
                    if not found or kind in out:
                        raise StoreError(f"{self.url}: alias {self.alias(kind)} must point at one "
                                         f"{self.alias(kind)}-v<N> index, not at {index}")
                    out[kind] = (index, int(found[1]))
        return out

    # -- reading and writing --------------------------------------------------------
    def _bulk(self, actions: Iterable[dict[str, Any]]) -> int:
        """Writes ``actions`` in chunks and refreshes what it wrote; raises IndexingError naming each failure."""
        written: set[str] = set()
        done, errors = 0, []
        for chunk in chunks(actions, settings.FINMON_ES_BULK_DOCS):
            written.update(action["_index"] for action in chunk)
            applied, failed = self._bulk_chunk(chunk)
            done, errors = done + applied, errors + failed
        if written:
            self.es.indices.refresh(index=",".join(sorted(written)))
        if errors:
            error = IndexingError(errors, done + len(errors))
            if all(item.get("status", 500) >= 500 or item.get("status") == 429 for item in errors):
                raise StoreUnavailable(f"Elasticsearch at {self.url} is unavailable: {error}") from error
            raise error
        return done

    def _bulk_chunk(self, chunk: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """One chunk of writes: how many were applied, and the results of those that failed.

        A bulk request lost in flight may have been applied, and its writes are conditional: it is not sent
        again (a rerun of the batch does it right). What ES refused before applying it (RETRIED_STATUSES) is
        sent again after a backoff; a chunk whose connection was refused (nothing was sent) goes again at
        once, to the next node when the client has several. A write sent twice conflicts with itself, and
        counts as applied when its document is exactly what was sent (:meth:`_unapplied`).
        """
        for attempt in range(settings.FINMON_ES_MAX_RETRIES + 1):
            try:
                results = [next(iter(item.values())) for _, item in helpers.streaming_bulk(
                    self.es.options(max_retries=0), chunk, chunk_size=settings.FINMON_ES_BULK_DOCS,
                    max_chunk_bytes=settings.FINMON_ES_BULK_BYTES, raise_on_error=False,
                    retry_on_status=RETRIED_STATUSES, max_retries=settings.FINMON_ES_MAX_RETRIES,
                    initial_backoff=settings.FINMON_ES_BACKOFF, max_backoff=settings.FINMON_ES_MAX_BACKOFF,
                )]
                break
            except TransportConnectionError as exc:
                if attempt == settings.FINMON_ES_MAX_RETRIES or not _never_connected(exc):
                    raise
        sent = {_slot(action["_index"], action["_id"]): action for action in chunk}
        failed, conflicts = [], []
        for result in results:
            action = sent.get(_slot(result.get("_index", ""), result.get("_id", "")))
            if result.get("status") == 409 and action is not None:
                conflicts.append((result, action))
            elif not 200 <= result.get("status", 500) < 300:
                failed.append(result)
        failed += self._unapplied(conflicts)
        return len(results) - len(failed), failed

    def _unapplied(self, conflicts: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
        """The results of the conflicting writes that were not applied. When a node leaves in the middle of a
        write, ES runs the write again on the copy that takes over, where it already is: the document then
        conflicts with itself. A write whose document now is exactly what was sent is applied."""
        serializer = self.es.transport.serializers.get_serializer("application/json")
        unapplied = []
        for chunk in chunks(conflicts, settings.FINMON_ES_PAGE_SIZE):
            docs = self.es.mget(docs=[{"_index": result["_index"], "_id": result["_id"]} for result, _ in chunk])
            for (result, action), doc in zip(chunk, docs["docs"]):
                if not doc.get("found") or doc["_source"] != serializer.loads(serializer.dumps(action["_source"])):
                    unapplied.append(result)
        return unapplied

    def _get(self, kind: str, ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The documents of ``kind`` that exist among ``ids``."""
        for chunk in chunks(dict.fromkeys(ids), settings.FINMON_ES_PAGE_SIZE):
            yield from (doc for doc in self.es.mget(index=self.alias(kind), ids=chunk)["docs"] if doc.get("found"))

    def _scan(self, index: str, query: dict[str, Any], **body: Any) -> Iterator[dict[str, Any]]:
        """Every hit of ``query``, in no order, with the versions a conditional write needs."""
        return helpers.scan(self.es, index=index, size=settings.FINMON_ES_PAGE_SIZE,
                            query={"query": query, "seq_no_primary_term": True, **body})

    def _terms(self, kind: str, field: str, values: Iterable[str]) -> Iterator[dict[str, Any]]:
        """Every document of ``kind`` whose ``field`` holds one of ``values``."""
        for chunk in chunks(sorted(set(values)), settings.FINMON_ES_PAGE_SIZE):
            yield from self._scan(self.alias(kind), {"terms": {field: chunk}})

    def _sorted(self, index: str, query: dict[str, Any], sort: list[Any], offset: int = 0,
                limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Hits ``offset``… in ``sort`` order (which ends in a unique field), paged with search_after."""
        want = None if limit is None else offset + limit
        after, count = None, 0
        while want is None or count < want:
            size = settings.FINMON_ES_PAGE_SIZE if want is None else min(settings.FINMON_ES_PAGE_SIZE, want - count)
            hits = self.es.search(index=index, query=query, sort=sort, size=size, search_after=after,
                                  track_total_hits=False)["hits"]["hits"]
            for hit in hits:
                if count >= offset:
                    yield hit
                count += 1
            if len(hits) < size:
                return
            after = hits[-1]["sort"]

    # -- runs and rules -------------------------------------------------------------
    @_guarded
    def save_run(self, run: Run) -> None:
        self._bulk([{"_index": self.alias("runs"), "_id": run.id, "_source": {
            "id": run.id, "kind": run.kind, "started": timestamp(run.started),
            "ended": run.ended and timestamp(run.ended), "counters": run.counters, "outcome": run.outcome,
            "job": run.job, "attempt": run.attempt, "error": run.error,
        }}])

    @_guarded
    def runs(self, limit: int = 20, job: str | None = None) -> list[dict[str, Any]]:
        # Runs copied from a mapping v1 index have no job, attempt or error: Run's defaults.
        query: dict[str, Any] = {"match_all": {}}
        if job == "":
            query = {"bool": {"should": [{"term": {"job": ""}}, {"bool": {"must_not": {"exists": {"field": "job"}}}}],
                              "minimum_should_match": 1}}
        elif job is not None:
            query = {"term": {"job": job}}
        hits = self._sorted(self.alias("runs"), query, [{"started": "desc"}, {"id": "desc"}], limit=max(0, int(limit)))
        return [{**{k: hit["_source"][k] for k in ("id", "kind", "started", "ended", "counters", "outcome")},
                 "job": hit["_source"].get("job") or "", "attempt": hit["_source"].get("attempt") or 1,
                 "error": hit["_source"].get("error") or ""}
                for hit in hits]

    @_guarded
    def save_rules(self, rules: Iterable[dict[str, Any]]) -> None:
        self._bulk({"_index": self.alias("rules"), "_id": r["id"], "_source": {
            "id": r["id"], "family": r.get("family") or r["id"][:1], "severity": r.get("severity"),
            "confidence": r.get("confidence"), "title": r.get("title", ""), "title_en": r.get("title_en", ""),
            "description": r.get("description", ""), "regulation": r.get("regulation", ""), "data": r,
        }} for r in rules)

    @_guarded
    def rules(self) -> list[dict[str, Any]]:
        out = []
        for hit in self._sorted(self.alias("rules"), {"match_all": {}}, [{"id": "asc"}]):
            src = hit["_source"]
            out.append({**src["data"], **{k: v for k, v in src.items() if k != "data"}})
        return out

    # -- listings, policies, analyses ----------------------------------------------
    @_guarded
    def save_listings(self, listings: Iterable[Listing]) -> int:
        done = 0
        for chunk in chunks(listings, settings.FINMON_ES_BATCH):
            self._save(listings=chunk)
            done += len(chunk)
        return done

    @_guarded
    def save_policy_versions(self, versions: Iterable[PolicyVersion]) -> int:
        return sum(self._save(versions=chunk)[1] for chunk in chunks(versions, settings.FINMON_ES_BATCH))

    @_guarded
    def save_analysis(
        self, apps: Iterable[AppSnapshot], analyses: Iterable[Analysis], seen_at: str | None = None,
        skipped_rules: Iterable[str] = (), inputs: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Apps, their listings, policy and policy link, and findings, in batches of apps (see Store)."""
        skipped = frozenset(skipped_rules)
        seen = timestamp(seen_at or utcnow())
        apps_by_key = {app.key: app for app in apps}
        by_key = {a.app_key: a for a in analyses}
        counts = Counter({"new": 0, "open": 0, "resolved": 0})
        for keys in chunks(sorted(apps_by_key.keys() | by_key.keys()), settings.FINMON_ES_BATCH):
            counts.update(self._save(apps=[apps_by_key[k] for k in keys if k in apps_by_key],
                                     analyses=[by_key[k] for k in keys if k in by_key], seen=seen,
                                     skipped_rules=skipped, inputs=inputs)[0])
        return dict(counts)

    @_guarded
    def analysis_inputs(self) -> dict[str, str]:
        # Filtered here too: a hash longer than ignore_above is kept in _source but not indexed.
        hits = self._scan(self.alias("apps"), {"bool": {"must_not": [{"term": {"input_hash": ""}}]}},
                          _source=["input_hash"])
        return dict(sorted((hit["_id"], hit["_source"]["input_hash"]) for hit in hits
                           if hit["_source"].get("input_hash")))

    def _save(
        self, *, listings: Iterable[Listing] = (), versions: Iterable[PolicyVersion] = (),
        apps: Iterable[AppSnapshot] = (), analyses: Iterable[Analysis] = (), seen: str = "",
        skipped_rules: frozenset[str] = frozenset(), inputs: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, int], int]:
        """One batch: read, update as SQLite's upserts do, write in one bulk. Returns the finding
        counts and how many policy versions were new."""
        apps, analyses = list(apps), {a.app_key: a for a in analyses}
        versions = {v.sha256: v for v in chain(versions, (app.policy for app in apps if app.policy))}
        listings = [*listings, *(lst for app in apps for lst in app.listings)]
        findings = {f.id: f for a in analyses.values() for f in a.findings}
        docs = {kind: _Docs(self.alias(kind)) for kind in ("apps", "listings", "policies", "findings")}
        # Searches see refreshed documents only (mget sees all): show what an interrupted write left.
        self.es.indices.refresh(index=f"{self.alias('apps')},{self.alias('findings')}")
        docs["apps"].load(self._get("apps", chain((lst.app_key for lst in listings), (app.key for app in apps),
                                                   (f.app_key for f in findings.values()))))
        docs["policies"].load(self._get("policies", versions))
        new_policies = {sha for sha in versions if sha not in docs["policies"].src}
        for sha in new_policies:
            v = versions[sha]
            docs["policies"].src[sha] = {
                "sha256": sha, "url": v.url, "final_url": v.final_url, "fetched_at": timestamp(v.fetched_at),
                "language": v.language, "title": v.title, "text": v.text, "effective_date": v.effective_date,
                "content_type": v.content_type, "body": index_text(policy_body(v)), **_policy_filters([]),
            }
        self._put_listings(docs, listings)
        for app in apps:
            self._put_app(docs["apps"], app, analyses.get(app.key), seen, (inputs or {}).get(app.key) or "")
        adocs = docs["apps"]
        changed = {key for key, app in adocs.src.items() if _app_filters(app) != _app_filters(adocs.read.get(key))}
        docs["findings"].load(self._terms("findings", "app_key", changed | analyses.keys()
                                          | {f.app_key for f in findings.values()}))
        counts = self._put_findings(docs, findings, analyses.keys(), {app.key: app for app in apps}, seen,
                                     skipped_rules)
        self._put_policy_filters(docs, changed)
        self._bulk(chain.from_iterable(d.actions() for d in docs.values()))
        return counts, len(new_policies)

    def _put_listings(self, docs: dict[str, _Docs], listings: list[Listing]) -> None:
        """Listing documents (latest capture per content), and apps created or completed from them."""
        rows = [(lst, timestamp(lst.fetched_at), listing_hash(lst)) for lst in listings]
        ldocs, adocs = docs["listings"], docs["apps"]
        ldocs.load(self._get("listings", (listing_id(lst.store, lst.store_id, h) for lst, _, h in rows)))
        from_listings: dict[str, tuple[Listing, str, str, set[str]]] = {}
        for lst, fetched, content_hash in rows:
            doc_id = listing_id(lst.store, lst.store_id, content_hash)
            old = ldocs.src.get(doc_id)
            doc = {**shallow(lst, LISTING_FIELDS), "app_key": lst.app_key, "permissions": list(lst.permissions),
                   "privacy_labels": list(lst.privacy_labels), "content_hash": content_hash,
                   "fetched_at": fetched, "first_fetched_at": fetched}
            if old is not None:
                doc = doc if fetched >= old["fetched_at"] else dict(old)
                doc["first_fetched_at"] = min(old["first_fetched_at"], fetched)
            ldocs.src[doc_id] = doc
            known = from_listings.get(lst.app_key)
            first, last, stores = (min(fetched, known[1]), max(fetched, known[2]), known[3]) if known else (
                fetched, fetched, set())
            from_listings[lst.app_key] = (lst, first, last, stores | {lst.store})
        for key, (lst, first, last, stores) in from_listings.items():
            app = adocs.src.get(key)
            if app is None:
                adocs.src[key] = app = {
                    **dict.fromkeys(APP_FIELDS), "key": key, "platform": lst.platform, "package": lst.package,
                    "name": lst.name, "developer": lst.developer, "category": lst.category, "permissions": [],
                    "privacy_labels": [], "first_seen": first, "last_seen": last, "stores": [], "policies": [],
                }
            for name in ("name", "developer", "legal_entity", "category"):
                app[name] = app.get(name) or getattr(lst, name)
            app["first_seen"], app["last_seen"] = min(app["first_seen"], first), max(app["last_seen"], last)
            app["stores"] = sorted(set(app["stores"]) | stores)

    @staticmethod
    def _put_app(adocs: _Docs, app: AppSnapshot, analysis: Analysis | None, seen: str, input_hash: str) -> None:
        """An analysed app and its input hash (unless a later analysis is stored already), and its link to
        its policy."""
        first = min([seen, *(timestamp(lst.fetched_at) for lst in app.listings)])
        doc = adocs.src.get(app.key) or {**dict.fromkeys(APP_FIELDS), "stores": [], "policies": []}
        if seen >= (doc["analysed_at"] or ""):
            doc.update(
                key=app.key, platform=app.platform, package=app.package, name=app.name, developer=app.developer,
                legal_entity=app.legal_entity, category=app.category, policy_status=app.policy_status,
                policy_url=app.policy_url,
                policy_sha256=app.policy.sha256 if app.policy else None, permissions=sorted(app.permissions),
                privacy_labels=sorted(app.privacy_labels), first_seen=min(doc["first_seen"] or first, first),
                last_seen=max(doc["last_seen"] or "", seen), analysed_at=seen, input_hash=input_hash,
                sdks=app_sdks(app),
            )
            if analysis and analysis.finance_type is not None:
                doc["finance_type"] = analysis.finance_type
            if analysis and analysis.finance_confidence is not None:
                doc["finance_confidence"] = analysis.finance_confidence
        if app.policy:
            url = app.policy_url or app.policy.url
            link = next((link for link in doc["policies"] if link["sha256"] == app.policy.sha256), None)
            if link is None:
                doc["policies"].append({"sha256": app.policy.sha256, "url": url, "first_seen": seen, "last_seen": seen})
            else:
                link.update(url=url, last_seen=max(link["last_seen"], seen))
        adocs.src[app.key] = doc

    @staticmethod
    def _put_findings(docs: dict[str, _Docs], findings: dict[str, Finding], analysed: Iterable[str],
                      apps: dict[str, AppSnapshot], seen: str, skipped_rules: frozenset[str]) -> dict[str, int]:
        """The finding life cycle (new → open → resolved → open), exactly as SQLite's upsert and resolve."""
        fdocs, adocs, analysed = docs["findings"], docs["apps"], set(analysed)
        for fid, f in findings.items():
            old = fdocs.src.get(fid)
            if old is None:
                first, status = seen, "new"
            elif seen >= old["last_seen"] and (old["resolved_at"] is None or seen >= old["resolved_at"]):
                first = old["first_seen"]
                status = "open" if old["status"] == "resolved" or seen > old["first_seen"] else old["status"]
            else:
                continue  # an older analysis replayed late changes nothing
            app = adocs.src.get(f.app_key) or {}
            name, developer = ((apps[f.app_key].name, apps[f.app_key].developer) if f.app_key in apps
                               else (app.get("name") or "", app.get("developer") or ""))
            fdocs.src[fid] = {
                "id": fid, "rule_id": f.rule_id, "family": f.family, "severity": f.severity,
                "severity_rank": SEVERITY_RANK.get(f.severity, 3), "confidence": f.confidence, "app_key": f.app_key,
                "title": f.title, "evidence": shallow(f.evidence, EVIDENCE_FIELDS), "regulation": f.regulation,
                "first_seen": first, "last_seen": seen, "status": status, "resolved_at": None,
                "body": index_text("\n".join(finding_fields(f, name, developer))), "capture": f.capture,
            }
        resolved = 0
        for fid, doc in fdocs.src.items():
            if (doc["app_key"] in analysed and fid not in findings and doc["status"] != "resolved"
                    and doc["last_seen"] <= seen and doc["rule_id"] not in skipped_rules):
                doc.update(status="resolved", resolved_at=seen)
                resolved += 1
            doc.update(_app_filters(adocs.src.get(doc["app_key"])))
        statuses_now = Counter(fdocs.src[fid]["status"] for fid in findings if fid in fdocs.src)
        return {"new": statuses_now["new"], "open": statuses_now["open"], "resolved": resolved}

    def _put_policy_filters(self, docs: dict[str, _Docs], changed: set[str]) -> None:
        """Adds the fields of apps updated in this batch to the policies they link to; recounts a policy
        from every app linked to it when one of its apps ``changed`` them (a value may have gone)."""
        pdocs, adocs = docs["policies"], docs["apps"]
        grown = {sha for key, app in adocs.src.items() if app != adocs.read.get(key) for sha in _links(app)}
        stale = {sha for key in changed for sha in _links(adocs.read.get(key))}
        pdocs.load(self._get("policies", (grown | stale) - pdocs.src.keys()))
        adocs.load(self._terms("apps", "policies.sha256", stale))  # apps of this batch keep their new state
        linked: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for app in adocs.src.values():
            for sha in _links(app):
                linked[sha].append(app)
        for sha in (grown | stale) & pdocs.src.keys():
            fields = _policy_filters(linked[sha])
            if sha not in stale:
                fields = {name: sorted(set(values) | set(pdocs.src[sha][name])) for name, values in fields.items()}
            pdocs.src[sha].update(fields)

    @_guarded
    def policy(self, sha256: str) -> PolicyVersion | None:
        found = next(self._get("policies", [sha256]), None)
        return PolicyVersion.from_dict(found["_source"]) if found else None

    # -- queries ----------------------------------------------------------------------
    @staticmethod
    def _filters(kind: str, **given: Any) -> list[dict[str, Any]]:
        """Filter clauses on findings or policies (``kind``) for the options of ``findings`` and ``search``;
        a policy is filtered on the apps linked to it, never on rule, severity or status."""
        fields = {"app_key": "app_key", "rule": "rule_id", "family": "family", "severity": "severity",
                  "store": "stores", "finance_type": "finance_type", "developer": "developer"}
        if kind == "policies":
            fields = {"store": "stores", "finance_type": "finance_types", "developer": "developers"}
        out: list[dict[str, Any]] = [{"term": {fields[name]: value}} for name, value in given.items()
                                     if name in fields and value]
        if kind == "findings" and statuses(given.get("status")):
            out.append({"terms": {"status": statuses(given["status"])}})
        window = {op: given[name] for op, name in (("gte", "since"), ("lt", "until")) if given.get(name)}
        if window:
            out.append({"range": {"date": window}})
        if kind == "findings" and given.get("week"):
            monday, next_monday = week_bounds(given["week"])
            out.append({"range": {"first_seen": {"gte": monday, "lt": next_monday}}})
        return out

    @_guarded
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
        if limit is not None and limit <= 0:
            return []
        query = {"bool": {"filter": self._filters("findings", app_key=app_key, rule=rule, family=family,
                                                  severity=severity, status=status, store=store,
                                                  finance_type=finance_type)}}
        sort = [{"severity_rank": "asc"}, {"rule_id": "asc"}, {"app_key": "asc"}, {"id": "asc"}]
        return [_finding(hit["_source"]) for hit in self._sorted(self.alias("findings"), query, sort,
                                                                 max(0, int(offset)), limit)]

    @_guarded
    def finding(self, finding_id: str) -> Finding | None:
        found = next(self._get("findings", [finding_id]), None) if finding_id else None
        return _finding(found["_source"]) if found else None

    @_guarded
    def captures(self) -> set[str]:
        # Read from _source: a reference longer than ignore_above is kept there but not indexed.
        hits = self._scan(self.alias("findings"), {"bool": {"must_not": [{"term": {"capture": ""}}]}},
                          _source=["capture"])
        return {hit["_source"]["capture"] for hit in hits if hit["_source"].get("capture")}

    @_guarded
    def changes(self, since: str, until: str | None = None, limit: int | None = None) -> dict[str, Any]:
        window = {"gte": timestamp(since), **({"lt": timestamp(until)} if until else {})}
        sort = [{"severity_rank": "asc"}, {"id": "asc"}]
        queries = {"new": {"range": {"first_seen": window}}, "resolved": {"bool": {"filter": [
            {"term": {"status": "resolved"}}, {"range": {"resolved_at": window}}]}}}
        out: dict[str, Any] = {"counts": {}}
        for name, query in queries.items():
            hits = self._sorted(self.alias("findings"), query, sort, 0, None if limit is None else max(0, int(limit)))
            out[name] = [_finding(h["_source"]) for h in hits]
            out["counts"][name] = (len(out[name]) if limit is None else
                                   self.es.count(index=self.alias("findings"), query=query)["count"])
        return out

    @_guarded
    def first_seen(self, since: str, until: str | None = None, *, severity: str | None = None, after: str = "",
                   limit: int = 1000) -> list[Finding]:
        if limit <= 0:
            return []
        window = {"gte": timestamp(since), **({"lt": timestamp(until)} if until else {})}
        where: list[dict[str, Any]] = [{"range": {"first_seen": window}}]
        if severity:
            where.append({"term": {"severity": severity}})
        if after:
            where.append({"range": {"id": {"gt": after}}})
        hits = self._sorted(self.alias("findings"), {"bool": {"filter": where}}, [{"id": "asc"}], 0, int(limit))
        return [_finding(h["_source"]) for h in hits]

    def _composite(self, query: dict[str, Any], fields: list[str], size: int) -> Iterator[dict[str, Any]]:
        """Every bucket of a composite aggregation of findings over ``fields`` (in their order), paged."""
        sources = [{name: {"terms": {"field": name}}} for name in fields]
        after = None
        while True:
            composite = {"size": size, "sources": sources, **({"after": after} if after else {})}
            agg = self.es.search(index=self.alias("findings"), query=query, size=0,
                                 aggs={"buckets": {"composite": composite}})["aggregations"]["buckets"]
            yield from agg["buckets"]
            after = agg.get("after_key")
            if not agg["buckets"] or not after:
                return

    def _counts(self, keys: list[str]) -> dict[str, dict[str, int]]:
        """Unresolved findings of the apps of ``keys`` by severity."""
        query = {"bool": {"must_not": [{"term": {"status": "resolved"}}], "filter": [{"terms": {"app_key": keys}}]}}
        out: dict[str, dict[str, int]] = {}
        for bucket in self._composite(query, ["app_key", "severity"], settings.FINMON_ES_PAGE_SIZE):
            out.setdefault(bucket["key"]["app_key"], {})[bucket["key"]["severity"]] = bucket["doc_count"]
        return out

    @_guarded
    def rule_counts(self, status: str | Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        query = {"bool": {"filter": self._filters("findings", status=status)}}
        out: dict[str, dict[str, Any]] = {}
        for bucket in self._composite(query, ["rule_id", "severity"], settings.FINMON_ES_PAGE_SIZE):
            counted = out.setdefault(bucket["key"]["rule_id"], {"count": 0, "apps": 0, "severity": {}})
            counted["count"] += bucket["doc_count"]
            counted["severity"][bucket["key"]["severity"]] = bucket["doc_count"]
        # exact: a cardinality aggregation only estimates; each (rule, app) pair is a bucket
        for bucket in self._composite(query, ["rule_id", "app_key"], settings.FINMON_ES_AGGREGATION_PAGE):
            out[bucket["key"]["rule_id"]]["apps"] += 1
        return out

    @staticmethod
    def _app_dict(src: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
        app = {name: src.get(name) for name in APP_FIELDS}
        app["stores"], app["sdks"] = src.get("stores") or [], src.get("sdks") or []
        app["counts"] = {sev: counts.get(sev, 0) for sev in ("high", "medium", "low")}
        app["risk_score"] = risk_score(counts, settings.FINMON_RISK_WEIGHTS)
        return app

    def apps(self, keys: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
        with _reachable(self.url):
            hits = (self._sorted(self.alias("apps"), {"match_all": {}}, [{"key": "asc"}]) if keys is None
                    else self._get("apps", sorted(set(keys))))
            for page in chunks(hits, settings.FINMON_ES_PAGE_SIZE):
                counts = self._counts([hit["_id"] for hit in page])
                yield from (self._app_dict(hit["_source"], counts.get(hit["_id"], {})) for hit in page)

    @_guarded
    def app(self, key: str) -> dict[str, Any] | None:
        found = next(self._get("apps", [key]), None)
        if found is None:
            return None
        src = found["_source"]
        app = self._app_dict(src, self._counts([key]).get(key, {}))
        current: dict[tuple[str, str], dict[str, Any]] = {}
        contents = []
        for hit in self._scan(self.alias("listings"), {"term": {"app_key": key}}):
            lst = hit["_source"]
            contents.append(lst)
            slot = (lst["store"], lst["store_id"])
            if slot not in current or lst["fetched_at"] > current[slot]["fetched_at"]:
                current[slot] = lst
        # .get: documents copied from mapping v2 have no capture
        app["listings"] = [{name: current[slot].get(name, "") for name in LISTING_COLUMNS} for slot in sorted(current)]
        app["history"] = sorted(
            ({**{name: lst.get(name) for name in LISTING_COLUMNS if name != "fetched_at"},
              "content_hash": lst["content_hash"], "first_fetched_at": lst["first_fetched_at"]} for lst in contents),
            key=lambda h: (h["first_fetched_at"], h["store"], h["store_id"], h["content_hash"]), reverse=True)
        app["policy"] = self.policy(src["policy_sha256"]) if src.get("policy_sha256") else None
        links = {link["sha256"]: link for link in src.get("policies") or []}
        versions = [hit["_source"] for hit in self._get("policies", links)]
        app["policy_versions"] = [
            {**{k: p[k] for k in ("sha256", "url", "final_url", "fetched_at", "title", "language", "effective_date")},
             "first_seen": links[p["sha256"]]["first_seen"], "last_seen": links[p["sha256"]]["last_seen"]}
            for p in sorted(versions, key=lambda p: (p["fetched_at"], p["sha256"]), reverse=True)
        ]
        app["findings"] = self.findings(app_key=key)
        return app

    @_guarded
    def export(self, kind: str) -> Iterator[dict[str, Any]]:
        if kind not in EXPORT_KINDS:
            raise ValueError(f"export kind must be one of {EXPORT_KINDS}, not {kind!r}")
        return self._export_findings() if kind == "findings" else self.apps()

    def _export_findings(self) -> Iterator[dict[str, Any]]:
        with _reachable(self.url):
            apps = {hit["_id"]: hit["_source"] for hit in self._scan(
                self.alias("apps"), {"match_all": {}}, _source=["name", "developer", "finance_type", "stores"])}
            sort = [{"app_key": "asc"}, {"rule_id": "asc"}, {"id": "asc"}]
            for hit in self._sorted(self.alias("findings"), {"match_all": {}}, sort):
                src, app = hit["_source"], apps.get(hit["_source"]["app_key"], {})
                yield {**_finding(src).to_dict(), "family": src["family"], "resolved_at": src["resolved_at"],
                       "app_name": app.get("name"), "developer": app.get("developer"),
                       "finance_type": app.get("finance_type"), "stores": app.get("stores") or []}

    # -- search ---------------------------------------------------------------------
    @_guarded
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
        if not words or limit == 0 or not kinds:
            return []
        options = {"rule": rule, "family": family, "severity": severity, "status": status, "week": week,
                   "store": store, "finance_type": finance_type, "developer": developer, "since": since, "until": until}
        indices = ["findings" if hit_kind == "finding" else "policies" for hit_kind in kinds]
        query_dsl = self._search_query(words, indices, options)
        tail = [{"_score": "desc"}, {"_index": "asc"}, {"id": "asc"}]
        order = {"relevance": tail, "newest": [{"date": "desc"}, *tail],
                 "severity": [{"severity_rank": {"order": "asc", "unmapped_type": "byte"}}, *tail]}[sort]
        hits = self._sorted(",".join(map(self.alias, indices)), query_dsl, order, offset, limit)
        return self._hits(list(hits), words)

    def _search_query(self, words: list[str], indices: list[str], options: dict[str, Any]) -> dict[str, Any]:
        """Every word as a phrase, in the given indices, each filtered by the options that apply to it."""
        scopes = [{"bool": {"filter": [{"term": {"_index": self.alias(index)}}, *self._filters(index, **options)]}}
                  for index in indices]
        return {"bool": {"must": [{"match_phrase": {"body": index_text(word)}} for word in words],
                         "filter": [{"bool": {"should": scopes, "minimum_should_match": 1}}]}}

    @_guarded
    def facets(self, query: str, **filters: Any) -> dict[str, Any]:
        options = {name: filters.get(name) for name in ("rule", "family", "severity", "status", "week", "store",
                                                        "finance_type", "developer")}
        kinds, options["since"], options["until"], _, _ = search_scope(
            filters.get("kind"), "relevance", filters.get("since"), filters.get("until"),
            any(options[name] for name in FINDING_ONLY_FILTERS), 0, 0)
        words = query_words(query)
        counters: dict[str, dict[str, int]] = {}
        total = {"finding": 0, "policy": 0}
        if not words:
            return facet_counts(counters, total)
        if "finding" in kinds:
            order = [{"_count": "desc"}, {"_key": "asc"}]
            fields = {"rule": "rule_id", "family": "family", "severity": "severity", "status": "status",
                      "store": "stores", "finance_type": "finance_type", "developer": "developer"}
            aggs = {name: {"terms": {"field": field, "size": settings.FINMON_FACET_VALUES, "order": order}}
                    for name, field in fields.items()}
            aggs["week"] = {"date_histogram": {"field": "first_seen", "calendar_interval": "week", "min_doc_count": 1}}
            found = self.es.search(index=self.alias("findings"), size=0, track_total_hits=True, aggs=aggs,
                                   query=self._search_query(words, ["findings"], options))
            total["finding"] = found["hits"]["total"]["value"]
            for name, agg in found["aggregations"].items():
                counters[name] = {(iso_week(b["key_as_string"]) if name == "week" else b["key"]): b["doc_count"]
                                  for b in agg["buckets"]}
        if "policy" in kinds:
            total["policy"] = self.es.count(index=self.alias("policies"),
                                            query=self._search_query(words, ["policies"], options))["count"]
        return facet_counts(counters, total)

    def _hits(self, ranked: list[dict[str, Any]], words: list[str]) -> list[dict[str, Any]]:
        """Search hits shaped as SQLite's, with app names, stores and rule titles as they are now."""
        is_finding = [hit["_index"].startswith(self.alias("findings") + "-v") for hit in ranked]
        shas = {hit["_id"] for hit, finding in zip(ranked, is_finding) if not finding}
        linked: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for app in self._terms("apps", "policies.sha256", shas):
            for link in app["_source"]["policies"]:
                if link["sha256"] in shas:
                    linked[link["sha256"]].append(app["_source"])
        apps = {doc["_id"]: doc["_source"] for doc in self._get(
            "apps", (hit["_source"]["app_key"] for hit, finding in zip(ranked, is_finding) if finding))}
        rules = {doc["_id"]: doc["_source"] for doc in self._get(
            "rules", (hit["_source"]["rule_id"] for hit, finding in zip(ranked, is_finding) if finding))}
        hits = []
        for hit, finding in zip(ranked, is_finding):
            src = hit["_source"]
            if finding:
                f, app = _finding(src), apps.get(src["app_key"], {})
                text, match = finding_snippet(f, app.get("name") or "", app.get("developer") or "", words)
                rule = rules.get(f.rule_id, {"title": f.title, "title_en": ""})
                hits.append({
                    "kind": "finding", "id": hit["_id"], "app_key": f.app_key, "app_name": app.get("name"),
                    "rule_id": f.rule_id, "rule_title": rule["title"] or f.title, "rule_title_en": rule["title_en"],
                    "severity": f.severity, "status": f.status, "evidence": f.evidence.to_dict(),
                    "stores": app.get("stores") or [], "snippet": text, "match": match, "score": hit["_score"],
                })
            else:
                owners = sorted(linked[hit["_id"]], key=lambda a: a["key"])
                text, match = snippet(policy_body(PolicyVersion.from_dict(src)), words)
                hits.append({
                    "kind": "policy", "id": hit["_id"], "app_key": owners[0]["key"] if owners else None,
                    "app_name": owners[0]["name"] if owners else None,
                    "apps": [{"key": a["key"], "name": a["name"]} for a in owners],
                    "stores": sorted({s for a in owners for s in a.get("stores") or []}),
                    "url": src["url"], "title": src["title"], "language": src["language"],
                    "fetched_at": src["fetched_at"], "snippet": text, "match": match, "score": hit["_score"],
                })
        return hits
