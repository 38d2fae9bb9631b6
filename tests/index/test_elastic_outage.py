"""Elasticsearch stopped in the middle of indexing: a clear error, then a rerun leaves every
document exactly once and whole."""
import threading
import time
import uuid


from finmon.model import Analysis, AppSnapshot, Evidence, Finding, Listing
from index.base import StoreError
from index.elastic import ElasticStore
from index.es_node import LocalElasticsearch
from tests.support import required

APPS, PER_APP = 3000, 6
SEEN = "2026-11-23T08:00:00+00:00"


def market():
    apps, analyses = [], []
    for i in range(APPS):
        key = f"android:com.outage.app{i}"
        listing = Listing(store="xiaomi", store_id=f"com.outage.app{i}", platform="android", package=f"com.outage.app{i}",
                          name=f"测试借款{i}", developer="测试科技", category="金融理财", source_url=f"http://x/{i}",
                          fetched_at=SEEN, permissions=tuple(f"android.permission.P{j}" for j in range(PER_APP)))
        apps.append(AppSnapshot(key=key, platform="android", package=listing.package, name=listing.name,
                                developer=listing.developer, category=listing.category, listings=(listing,),
                                permissions=frozenset(listing.permissions)))
        findings = tuple(Finding("P102", "medium", "high", key, "不必要的危险权限",
                                 Evidence(kind="permission", key=p, text=p), "认定方法 四") for p in listing.permissions)
        analyses.append(Analysis(app_key=key, finance_type="lending", finance_confidence=0.9, findings=findings))
    return apps, analyses


def indexing_total(store):
    stats = store.es.indices.stats(index=store.alias("findings"), metric="indexing")
    return sum(i["primaries"]["indexing"]["index_total"] for i in stats["indices"].values())


def test_stopping_elasticsearch_mid_index_then_rerunning_loses_and_duplicates_nothing(es_url, drop_es_prefix):
    node = LocalElasticsearch()
    if node.url != es_url or node.pid() is None:
        required("the local Elasticsearch node", "this test stops and restarts it: unset FINMON_ES_URL")
    prefix = f"finmon-outage-{uuid.uuid4().hex[:8]}"
    store = ElasticStore(es_url, prefix=prefix)
    apps, analyses = market()
    failure = []

    def index_all():
        try:
            store.save_analysis(apps, analyses, SEEN)
        except StoreError as exc:
            failure.append(exc)

    worker = threading.Thread(target=index_all)
    worker.start()
    deadline = time.monotonic() + 120
    while indexing_total(store) == 0 and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    node.stop()
    worker.join(timeout=300)
    try:
        assert failure, "indexing finished before the node stopped: the test proved nothing"
        assert es_url.split("//")[1] in str(failure[0]) or "unavailable" in str(failure[0]).lower(), str(failure[0])
    finally:
        node.start()
    store = ElasticStore(es_url, prefix=prefix)
    try:
        store.save_analysis(apps, analyses, SEEN)
        exported = list(store.export("findings"))
        assert len(exported) == APPS * PER_APP
        assert len({f["id"] for f in exported}) == APPS * PER_APP
        assert all(f["evidence"]["key"] and f["status"] == "new" and f["first_seen"] for f in exported)
        assert len(list(store.export("apps"))) == APPS
    finally:
        drop_es_prefix(store.es, prefix)
        store.close()
