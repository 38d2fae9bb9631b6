"""Elasticsearch-specific behaviour: templates, aliases and mappings, bulk writes and their errors,
migration between mapping versions, unreachable servers, and search parity with SQLite."""
import re
import socket
import threading
import uuid
from datetime import datetime, timezone

import pytest
from elasticsearch import Elasticsearch
from hypothesis import given, settings
from hypothesis import strategies as st

from finmon.model import Analysis, AppSnapshot, Evidence, Finding, Listing, Run
from index.base import StoreError, StoreUnavailable
from index.elastic import KINDS, MAPPING_VERSION, MAPPINGS, ElasticStore, IndexingError, _Docs
from index.sqlite import SQLiteStore
from reports import weekly
from tests.reports.conftest import populate

T1, T2 = "2024-03-04T10:00:00+00:00", "2024-03-11T10:00:00+00:00"


def save_loan(store, build, at=T1):
    pol = build.policy()
    snap = build.app(build.listing(), build.listing(store="appgallery", store_id="C100123"), versions=[pol])
    findings = [build.perm(snap.key), build.quote(snap.key)]
    return snap, findings, store.save_analysis([snap], [build.analysis(snap, *findings)], at)


def counts(store):
    return {kind: store.es.count(index=store.alias(kind))["count"] for kind in KINDS}


@pytest.fixture
def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_templates_aliases_and_strict_mappings(es_store):
    es = es_store.es
    for kind in KINDS:
        alias = es_store.alias(kind)
        template = es.indices.get_index_template(name=alias)["index_templates"][0]["index_template"]
        assert template["index_patterns"] == [f"{alias}-v*"] and template["version"] == MAPPING_VERSION
        assert list(es.indices.get_alias(name=alias)) == [f"{alias}-v{MAPPING_VERSION}"]
        index = es.indices.get(index=alias)[f"{alias}-v{MAPPING_VERSION}"]
        assert index["mappings"]["dynamic"] == "strict"
        shape = index["settings"]["index"]
        assert (shape["number_of_shards"], shape["number_of_replicas"]) == ("1", "0")
    findings = es.indices.get_mapping(index=es_store.alias("findings"))
    props = next(iter(findings.values()))["mappings"]["properties"]
    assert props["evidence"]["properties"]["key"]["type"] == "keyword"
    assert props["title"]["fields"]["keyword"]["type"] == "keyword"
    assert props["last_seen"]["type"] == "date" and props["date"] == {"type": "alias", "path": "last_seen"}
    assert props["body"]["analyzer"] == "standard"


def test_runs_and_apps_mappings_of_the_new_fields(es_store):
    runs = es_store.es.indices.get_mapping(index=es_store.alias("runs"))
    props = next(iter(runs.values()))["mappings"]["properties"]
    assert props["job"]["type"] == "keyword" and props["attempt"]["type"] == "integer"
    assert props["error"] == {"type": "text", "index": False}
    apps = es_store.es.indices.get_mapping(index=es_store.alias("apps"))
    assert next(iter(apps.values()))["mappings"]["properties"]["input_hash"]["type"] == "keyword"


def test_runs_copied_from_a_v1_index_get_the_defaults(es_store):
    """A v1 run document (migrated as it was) has no job, attempt or error: it reads as a run by hand."""
    es_store._bulk([{"_index": es_store.alias("runs"), "_id": "crawl-v1", "_source": {
        "id": "crawl-v1", "kind": "crawl", "started": T1, "ended": None, "counters": {}, "outcome": "ok"}}])
    es_store.save_run(Run(id="crawl-v2", kind="crawl", started=T2, job="crawl:xiaomi", attempt=3, error="boom"))
    es_store.save_run(Run(id="demo", kind="demo", started=T2))
    assert [(r["id"], r["job"], r["attempt"], r["error"]) for r in es_store.runs()] == [
        ("demo", "", 1, ""), ("crawl-v2", "crawl:xiaomi", 3, "boom"), ("crawl-v1", "", 1, "")]
    assert [r["id"] for r in es_store.runs(job="")] == ["demo", "crawl-v1"]
    assert [r["id"] for r in es_store.runs(job="crawl:xiaomi")] == ["crawl-v2"]


def test_reopening_migrates_nothing_and_keeps_the_data(es_store, es_url, build):
    save_loan(es_store, build)
    again = ElasticStore(es_url, prefix=es_store.prefix)
    assert again.migrate() == {} and len(again.findings()) == 2
    again.close()


def test_saving_the_same_analysis_twice_writes_nothing_new(es_store, build):
    snap, findings, first = save_loan(es_store, build)
    before = counts(es_store)
    seq = {h["_id"]: h["_seq_no"] for h in es_store._scan(es_store.alias("findings"), {"match_all": {}})}
    assert save_loan(es_store, build)[2] == first == {"new": 2, "open": 0, "resolved": 0}
    assert counts(es_store) == before
    assert before == {"apps": 1, "listings": 2, "policies": 1, "findings": 2, "runs": 0, "rules": 0}
    after = {h["_id"]: h["_seq_no"] for h in es_store._scan(es_store.alias("findings"), {"match_all": {}})}
    assert after == seq and set(seq) == {f.id for f in findings}  # the finding ids are the document ids


def test_document_errors_are_collected_and_named(es_store):
    alias = es_store.alias("runs")
    docs = [{"_index": alias, "_id": f"r{i}", "_source": Run(id=f"r{i}", kind="crawl", started=T1).to_dict()}
            for i in range(3)]
    docs[1]["_source"]["surprise"] = 1  # not in the strict mapping
    with pytest.raises(IndexingError, match=r"1 of 3 documents failed.*strict_dynamic_mapping_exception") as info:
        es_store._bulk(docs)
    assert len(info.value.errors) == 1 and info.value.errors[0]["_id"] == "r1"
    assert [r["id"] for r in es_store.runs()] == ["r2", "r0"]  # the others were written
    with pytest.raises(IndexingError, match=r"1 of 1 documents failed.*started"):
        es_store.save_run(Run(id="bad", kind="crawl", started="yesterday"))


def test_a_concurrent_change_fails_the_write_instead_of_being_lost(es_store, build):
    snap, _, _ = save_loan(es_store, build)
    docs = _Docs(es_store.alias("apps"))
    docs.load(es_store._get("apps", [snap.key]))
    es_store.es.update(index=es_store.alias("apps"), id=snap.key, doc={"category": "借贷"}, refresh=True)
    docs.src[snap.key]["name"] = "stale write"
    with pytest.raises(IndexingError, match="version_conflict"):
        es_store._bulk(docs.actions())
    assert es_store.app(snap.key)["category"] == "借贷"


def test_an_unreachable_server_is_a_clear_error(closed_port_url, es_store, build):
    with pytest.raises(StoreUnavailable, match=rf"{re.escape(closed_port_url)}.*(refused|Connection)"):
        ElasticStore(closed_port_url, prefix="finmon-test-none")
    save_loan(es_store, build)
    es_store.url, good = closed_port_url, es_store.es
    es_store.es = Elasticsearch(closed_port_url, max_retries=0)  # the server went away
    try:
        for call in (lambda: es_store.search("通讯录"), lambda: list(es_store.apps()), lambda: list(es_store.export("findings")),
                     lambda: es_store.save_listings([build.listing()])):
            with pytest.raises(StoreUnavailable, match=re.escape(closed_port_url)):
                call()
    finally:
        es_store.es.close()
        es_store.es = good


class CuttingProxy:
    """Forwards to Elasticsearch until the ``cut_at``-th bulk request: ES applies it, its answer is
    swallowed, and from then on every connection is dropped (the server "went away" mid-write)."""

    def __init__(self, upstream, cut_at):
        host, port = upstream.split("//")[1].rsplit(":", 1)
        self.upstream, self.cut_at, self.bulks, self.dead = (host, int(port)), cut_at, 0, threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.server.accept()
            if self.dead.is_set():
                client.close()
                continue
            upstream, doomed = socket.create_connection(self.upstream), threading.Event()
            threading.Thread(target=self.pump, args=(client, upstream, doomed, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, doomed, False), daemon=True).start()

    def pump(self, source, sink, doomed, to_server):
        try:
            while data := source.recv(65536):
                if to_server and b"/_bulk" in data:
                    self.bulks += 1
                    if self.bulks == self.cut_at:
                        doomed.set()
                if not to_server and doomed.is_set():  # ES has answered: it applied the request
                    self.dead.set()
                    break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump's recv; close() alone would not
            except OSError:
                pass
            sock.close()


def test_a_server_lost_mid_write_is_unavailable_and_a_rerun_is_whole(es_url, es_store, monkeypatch):
    from finmon import settings as finmon_settings

    monkeypatch.setattr(finmon_settings, "FINMON_ES_BATCH", 100)  # 100 apps: 600 documents, 2 bulk requests
    apps, analyses, seen = [], [], "2024-03-04T10:00:00+00:00"
    for i in range(300):
        lst = Listing(store="xiaomi", store_id=str(i), platform="android", package=f"com.cut.app{i}", name=f"借款{i}",
                      developer="某科技", category="金融", source_url=f"http://xiaomi.test/{i}", fetched_at=seen,
                      permissions=tuple(f"android.permission.P{j}" for j in range(4)))
        apps.append(AppSnapshot(key=lst.app_key, platform="android", package=lst.package, name=lst.name,
                                developer=lst.developer, category=lst.category, listings=(lst,)))
        analyses.append(Analysis(lst.app_key, "lending", 0.9, tuple(
            Finding("P102", "medium", "high", lst.app_key, "t", Evidence(kind="permission", key=p, text=p), "r")
            for p in lst.permissions)))
    # No periodic refresh: only the store's own refreshes make what it wrote visible to searches.
    es_store.es.indices.put_settings(index=f"{es_store.alias('apps')},{es_store.alias('findings')}",
                                     settings={"refresh_interval": "-1"})
    proxy = CuttingProxy(es_url, cut_at=3)  # the first request of the second batch
    cut = ElasticStore(proxy.url, prefix=es_store.prefix)
    with pytest.raises(StoreUnavailable, match=re.escape(proxy.url)):
        cut.save_analysis(apps, analyses, seen)
    assert proxy.dead.is_set() and proxy.bulks == 3
    assert es_store.save_analysis(apps, analyses, seen) == {"new": 1200, "open": 0, "resolved": 0}
    exported = list(es_store.export("findings"))
    assert len(exported) == len({f["id"] for f in exported}) == 1200 and {f["status"] for f in exported} == {"new"}
    assert len(list(es_store.apps())) == 300 and len(es_store.findings(store="xiaomi", finance_type="lending")) == 1200

def test_from_env_takes_the_server_and_secrets_from_the_environment(es_url, drop_es_prefix):
    prefix = f"finmon-test-{uuid.uuid4().hex[:12]}"
    env = {"FINMON_ES_URL": es_url, "FINMON_ES_PREFIX": prefix, "FINMON_ES_USERNAME": "finmon",
           "FINMON_ES_PASSWORD": "s3cret"}
    store = ElasticStore.from_env(env)
    try:
        assert store.url == es_url and store.prefix == prefix
        assert store.es._headers["authorization"].startswith("Basic ")
        api = ElasticStore.from_env({**env, "FINMON_ES_API_KEY": "a2V5"})
        assert api.es._headers["authorization"] == "ApiKey a2V5"
        api.close()
    finally:
        drop_es_prefix(store.es, prefix)
        store.close()


# -- migration --------------------------------------------------------------------------


class StoreV2(ElasticStore):
    """The code after a mapping change: findings gain a field."""

    mapping_version = MAPPING_VERSION + 1
    mappings = {**MAPPINGS, "findings": {**MAPPINGS["findings"], "properties": {
        **MAPPINGS["findings"]["properties"], "reviewed_by": {"type": "keyword"}}}}


def test_migration_copies_everything_and_swaps_the_aliases(es_store, es_url, build):
    snap, findings, _ = save_loan(es_store, build)
    es_store.save_run(Run(id="crawl-1", kind="crawl", started=T1, counters={"requests": 3}))
    es_store.save_rules([{"id": "P101", "title": "借贷类App申请禁止权限", "extra": [1, 2]}])
    before = {"counts": counts(es_store), "export": list(es_store.export("findings")), "app": es_store.app(snap.key),
              "hits": es_store.search("通讯录"), "runs": es_store.runs(), "rules": es_store.rules()}
    v2 = StoreV2(es_url, prefix=es_store.prefix)  # opening migrates
    try:
        es = v2.es
        for kind in KINDS:
            assert list(es.indices.get_alias(name=v2.alias(kind))) == [f"{v2.alias(kind)}-v{v2.mapping_version}"]
            assert not es.indices.exists(index=f"{v2.alias(kind)}-v{MAPPING_VERSION}")  # dropped once the alias moved
        mapping = es.indices.get_mapping(index=v2.alias("findings"))[f"{v2.alias('findings')}-v{v2.mapping_version}"]
        mapping = mapping["mappings"]
        props = mapping["properties"]
        assert props["reviewed_by"] == {"type": "keyword"}
        after = {"counts": counts(v2), "export": list(v2.export("findings")), "app": v2.app(snap.key),
                 "hits": v2.search("通讯录"), "runs": v2.runs(), "rules": v2.rules()}
        for hit in before["hits"] + after["hits"]:
            hit.pop("score")
        assert after == before
        assert v2.save_analysis([snap], [build.analysis(snap, *findings)], T2) == {"new": 0, "open": 2, "resolved": 0}
        with pytest.raises(StoreError, match="newer"):
            ElasticStore(es_url, prefix=es_store.prefix)  # old code refuses newer indices
    finally:
        v2.close()


# -- parity with SQLite -------------------------------------------------------------------


@pytest.fixture(scope="module")
def both(es_url, drop_es_prefix, tmp_path_factory):
    """The report's hand-made index (two weeks, five apps, hostile names) in both backends."""
    sqlite = SQLiteStore(tmp_path_factory.mktemp("parity") / "finmon.db")
    elastic = ElasticStore(es_url, prefix=f"finmon-test-{uuid.uuid4().hex[:12]}")
    populate(sqlite)
    populate(elastic)
    yield sqlite, elastic
    drop_es_prefix(elastic.es, elastic.prefix)
    elastic.close()
    sqlite.close()


def hit_keys(hits):
    return sorted((h["kind"], h["id"]) for h in hits)


WORDS = ["通讯录", "通讯", "录信", "精确位置", "位置", "借款", "快乐", "android", "permission", "READ_CONTACTS", "READ",
         "contacts", "sms", "script", "alert", "无隐私政策", "银行", "img", "src", "x", "404", "政策", "保险", "Insurance"]
SPECIAL = ['"', "'", "AND", "OR", "NOT", "NEAR", "(", ")", "*", ":", "^", "-", "+", "{", "}", "[", "]", "\\", "\x00",
           "/", "~", "?", "&&", "||", "!", "<", ">", "=", " ", "\t", "🙂", "ｘ", "\u200b", "\u3000"]


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=120) | st.lists(st.sampled_from(WORDS + SPECIAL), max_size=8).map(" ".join)
       | st.lists(st.sampled_from(WORDS + SPECIAL), max_size=8).map("".join))
def test_any_query_is_safe_and_finds_what_sqlite_finds(both, query):
    sqlite, elastic = both
    hits = elastic.search(query)
    assert hit_keys(hits) == hit_keys(sqlite.search(query))
    for hit in hits:
        if hit["match"]:
            start, end = hit["match"]
            assert 0 <= start < end <= len(hit["snippet"])


FILTERS = [
    {}, {"kind": "finding"}, {"kind": "policy"}, {"rule": "C202"}, {"severity": "medium"}, {"store": "appgallery"},
    {"store": "itunes"}, {"finance_type": "lending"}, {"finance_type": "payment"}, {"developer": "某某科技有限公司"},
    {"status": "resolved"}, {"status": ["new", "open"]}, {"since": "2024-03-11"}, {"until": "2024-03-11"},
    {"since": "2024-03-04T09:00:00Z", "until": "2024-03-11T10:00:00Z", "store": "xiaomi"},
]


@pytest.mark.parametrize("options", FILTERS, ids=lambda o: ",".join(o) or "none")
@pytest.mark.parametrize("query", ["通讯录", "android", "政策", "permission READ"])
def test_filters_give_the_same_hits_as_sqlite(both, query, options):
    sqlite, elastic = both
    for sort in ("relevance", "newest", "severity"):
        expected = sqlite.search(query, sort=sort, **options)
        got = elastic.search(query, sort=sort, **options)
        assert hit_keys(got) == hit_keys(expected)
        if sort == "severity":  # the same order wherever it does not rest on the scores
            assert [(h["kind"], h["severity"] if h["kind"] == "finding" else None) for h in got] == [
                (h["kind"], h["severity"] if h["kind"] == "finding" else None) for h in expected]
        for mine, theirs in zip(sorted(got, key=lambda h: h["id"]), sorted(expected, key=lambda h: h["id"])):
            assert {k: v for k, v in mine.items() if k != "score"} == {k: v for k, v in theirs.items() if k != "score"}



def test_tiny_batches_and_pages_give_the_same_index(both, es_store, monkeypatch):
    """Batches of 2 apps and pages of 2 documents: every chunked and paged path, compared with SQLite."""
    from finmon import settings as finmon_settings

    monkeypatch.setattr(finmon_settings, "FINMON_ES_BATCH", 2)
    monkeypatch.setattr(finmon_settings, "FINMON_ES_PAGE_SIZE", 2)
    sqlite, _ = both
    populate(es_store)
    for kind in ("apps", "findings"):
        assert list(es_store.export(kind)) == list(sqlite.export(kind)), kind
    for query, options in [("通讯录", {}), ("android", {"store": "xiaomi"}), ("政策", {"finance_type": "investment"})]:
        assert hit_keys(es_store.search(query, **options)) == hit_keys(sqlite.search(query, **options))
    assert es_store.search("android", limit=3, offset=1) == es_store.search("android")[1:4]
    assert es_store.runs(limit=2) == sqlite.runs(limit=2)

class FrozenTime(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2024, 3, 18, 8, 0, tzinfo=timezone.utc)


def test_the_report_is_the_same_on_both_backends(both, tmp_path, monkeypatch):
    """reports/weekly.py reads only Store methods: the same index renders the same pages (by worker processes that
    open the index again, as at market scale)."""
    monkeypatch.setattr(weekly, "datetime", FrozenTime)
    monkeypatch.setattr(weekly.settings, "FINMON_REPORT_BATCH", 2)
    sqlite, elastic = both
    for lang in ("zh", "en"):
        pages = {}
        for name, store in (("sqlite", sqlite), ("elastic", elastic)):
            index = weekly.render_report(store, tmp_path / name / lang, lang=lang, week="2024-W11")
            pages[name] = {p.relative_to(index.parent).as_posix(): p.read_text(encoding="utf-8")
                           for p in [index, *(index.parent / "apps").glob("*.html")]}
        assert len(pages["sqlite"]) == 6 and pages["elastic"].keys() == pages["sqlite"].keys()
        for page, html in pages["sqlite"].items():
            assert pages["elastic"][page] == html, page
