"""Two Elasticsearch nodes as one cluster, every index with a replica: a node stopped in the middle of
indexing loses nothing, whether the client talks to the other node or to the stopped one first."""
import logging
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from finmon import settings
from finmon.model import Analysis, AppSnapshot, Evidence, Finding, Listing, PolicyVersion, Run, sha256_hex
from index.elastic import ElasticStore
from index.es_node import LocalCluster, LocalElasticsearch, NodeError
from tests.support import required

pytestmark = pytest.mark.elasticsearch

APPS, PER_APP = 2000, 4
SEEN = "2026-11-23T08:00:00+00:00"


def taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_base_port(start: int = 9280) -> int:
    """The first HTTP port from ``start`` with it, the next one and both transport ports free."""
    for base in range(start, start + 60, 2):
        ports = [port + offset for port in (base, base + 1) for offset in (0, settings.FINMON_ES_TRANSPORT_OFFSET)]
        if not any(taken(port) for port in ports):
            return base
    raise AssertionError(f"no free ports from {start} on")


@pytest.fixture(scope="module")
def cluster():
    """A two-node cluster of its own (other ports than the session's node) on the installed distribution."""
    installed = LocalElasticsearch()
    if not installed.installed():
        required("the local Elasticsearch installation", "run `finmon es install`")
    home = Path(tempfile.mkdtemp(prefix="finmon-es-cluster-"))
    home.chmod(0o755)  # the nodes' user reads it
    (home / installed.es_dir.name).symlink_to(installed.es_dir)
    (home / installed.java_home.name).symlink_to(installed.java_home)
    nodes = LocalCluster(2, home=home, port=free_base_port())
    try:
        nodes.start()
    except NodeError as exc:
        nodes.stop()
        shutil.rmtree(home, ignore_errors=True)
        required("a two-node Elasticsearch cluster", str(exc))
    yield nodes
    nodes.stop()
    shutil.rmtree(home, ignore_errors=True)


def market(tag):
    """Apps with a listing each, a policy per ten apps, findings, as a crawl and an analysis give them."""
    policies = []
    for i in range(APPS // 10):
        url, text = f"http://p.test/{tag}/{i}", f"隐私政策 {i}：我们收集您的通讯录和位置信息。"
        policies.append(PolicyVersion(url=url, final_url=url, fetched_at=SEEN, sha256=sha256_hex(f"{tag} {text}"),
                                      text=text, language="zh", title=f"隐私政策 {i}"))
    apps, analyses = [], []
    for i in range(APPS):
        package, policy = f"com.{tag}.app{i}", policies[i // 10]
        key, permissions = f"android:{package}", tuple(f"android.permission.P{j}" for j in range(PER_APP))
        listing = Listing(store="xiaomi", store_id=package, platform="android", package=package, name=f"集群借款{i}",
                          developer=f"集群科技{i % 50}", category="金融理财", source_url=f"http://x.test/{package}",
                          fetched_at=SEEN, permissions=permissions, privacy_url=policy.url)
        apps.append(AppSnapshot(key=key, platform="android", package=package, name=listing.name,
                                developer=listing.developer, category=listing.category, listings=(listing,),
                                permissions=frozenset(permissions), policy=policy, policy_url=policy.url,
                                policy_status="ok"))
        findings = tuple(Finding("P102", "medium", "high", key, "不必要的危险权限",
                                 Evidence(kind="permission", key=p, text=p), "认定方法 四") for p in permissions)
        analyses.append(Analysis(app_key=key, finance_type="lending", finance_confidence=0.9, findings=findings))
    return policies, apps, analyses


def master_and_other(nodes: LocalCluster):
    """The elected master and the other node (of two, only the master votes: the other can go)."""
    with Elasticsearch(nodes.nodes[0].url) as es:
        master = es.cat.master(format="json")[0]["node"]
    return (next(n for n in nodes.nodes if n.name == master), next(n for n in nodes.nodes if n.name != master))


def index_while_stopping(store: ElasticStore, stopped, tag: str):
    """Saves a market in a thread and stops ``stopped`` once the first listings are in; returns what it saved."""
    policies, apps, analyses = market(tag)
    failures = []

    def index_all():
        try:
            store.save_policy_versions(policies)
            store.save_listings([lst for app in apps for lst in app.listings])
            store.save_analysis(apps, analyses, SEEN)
            store.save_run(Run(id=f"run-{tag}", kind="analyze", started=SEEN, ended=SEEN, outcome="ok"))
        except Exception as exc:  # noqa: BLE001 -- reported by the test
            failures.append(exc)

    worker = threading.Thread(target=index_all)
    worker.start()
    deadline = time.monotonic() + 300
    while worker.is_alive() and time.monotonic() < deadline and not store.es.count(
            index=store.alias("listings"))["count"]:
        time.sleep(0.05)
    still_indexing = worker.is_alive()
    stopped.stop()
    worker.join(timeout=600)
    assert still_indexing, "indexing finished before the node stopped: the test proved nothing"
    assert not failures, f"indexing failed after a node stopped: {failures[0]!r}"
    return policies, apps, analyses


def assert_all_there(store: ElasticStore, policies, apps, analyses, tag):
    health = store.es.cluster.health(wait_for_status="yellow", timeout="60s")
    assert health["status"] in ("yellow", "green") and health["number_of_nodes"] == 1
    count = {kind: store.es.count(index=store.alias(kind))["count"] for kind in ("apps", "listings", "policies",
                                                                                "findings", "runs")}
    assert count == {"apps": APPS, "listings": APPS, "policies": len(policies), "findings": APPS * PER_APP,
                     "runs": 1}
    for i in range(0, APPS, 97):
        app = store.app(apps[i].key)
        assert app["name"] == apps[i].name and app["finance_type"] == "lending"
        assert [lst["store_id"] for lst in app["listings"]] == [apps[i].package]
        assert app["policy"].sha256 == apps[i].policy.sha256
        assert sorted(f.evidence.key for f in app["findings"]) == sorted(apps[i].permissions)
        assert all(f.status == "new" and f.first_seen == SEEN for f in app["findings"])
        finding = analyses[i].findings[0]
        assert store.finding(finding.id).evidence.key == finding.evidence.key
    assert store.runs(job="")[0]["id"] == f"run-{tag}"


def test_a_node_stopped_mid_index_loses_nothing(cluster, drop_es_prefix):
    cluster.start()  # both nodes (a test before may have stopped one)
    master, other = master_and_other(cluster)
    tag = uuid.uuid4().hex[:8]
    # The client talks to the master only; two shards per index put primaries on the node that goes.
    store = ElasticStore(master.url, prefix=f"finmon-cluster-{tag}", shards=2, replicas=1)
    try:
        store.es.cluster.health(wait_for_status="green", timeout="60s")
        primaries = store.es.cat.shards(index=f"{store.prefix}-*", format="json", h="node,prirep")
        assert any(s["node"] == other.name and s["prirep"] == "p" for s in primaries)
        written = index_while_stopping(store, other, tag)
        assert_all_there(store, *written, tag)
    finally:
        drop_es_prefix(store.es, store.prefix)
        store.close()


def test_a_client_given_every_node_survives_losing_the_one_it_talks_to_first(cluster, drop_es_prefix, caplog):
    cluster.start()
    master, other = master_and_other(cluster)
    tag = uuid.uuid4().hex[:8]
    # The client takes turns between the nodes it is given, the one that goes first.
    store = ElasticStore(f"{other.url},{master.url}", prefix=f"finmon-cluster-{tag}", shards=2, replicas=1,
                         randomize_nodes_in_pool=False)
    try:
        store.es.cluster.health(wait_for_status="green", timeout="60s")
        with caplog.at_level(logging.WARNING, logger="elastic_transport"):
            written = index_while_stopping(store, other, tag)
        assert any(other.url in r.getMessage() for r in caplog.records), "the client never met the stopped node"
        assert_all_there(store, *written, tag)
    finally:
        drop_es_prefix(store.es, store.prefix)
        store.close()
