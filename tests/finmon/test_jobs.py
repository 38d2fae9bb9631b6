"""End to end on the local market: crawl → analyse → index, checked against the simulator's truth."""
import json
from collections import defaultdict

import pytest

import analyzers
from finmon import jobs
from index.sqlite import SQLiteStore
from market.population import Market
from market.server import MarketServer

APPS, SEED = 300, 11
# The rules the market simulator models (its truth names the findings each app must produce).
# Other rules are scored by their own flagged/clean examples in tests/analyzers. R601 and R602
# must stay silent on the simulated market (see test_unsimulated_rules_stay_silent); the policy-clause
# rules (C203-C205, D302) may fire or not, as the simulator's policies do not model those clauses.
SIMULATED_RULES = {"P101", "P102", "C201", "C202", "D301", "D304", "D305", "R603",
                   "S401", "S402", "D303", "V501", "V502", "V503", "V504", "V505"}  # the last eight from APKs


@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
    import os

    assert not os.environ.get("FINMON_REGISTRY"), "the e2e run models no registry"
    out = tmp_path_factory.mktemp("e2e")
    with MarketServer(apps=APPS, seed=SEED) as market:
        runs = jobs.crawl(out / "crawl", market.store_urls, allow_hosts=["127.0.0.1"], timeout=300)
    store = SQLiteStore(out / "finmon.db")
    for run in runs:
        store.save_run(run)
    analysis = jobs.analyze(out / "crawl", store)
    return {"out": out, "runs": runs, "analysis": analysis, "store": store, "truth": Market(apps=APPS, seed=SEED).truth()}


def test_crawl_finds_at_least_99_percent_of_the_market(market_run):
    truth_keys = {app["key"] for app in market_run["truth"]["app_list"]}
    found = {row["key"] for row in market_run["store"].export("apps")}
    assert len(truth_keys & found) >= 0.99 * len(truth_keys)
    assert found <= truth_keys


def test_findings_match_ground_truth_per_rule(market_run):
    expected = {
        (app["key"], rule, key)
        for app in market_run["truth"]["app_list"]
        for rule, keys in app["expected"].items()
        for key in keys
    }
    got = {(f["app_key"], f["rule_id"], f["evidence"]["key"]) for f in market_run["store"].export("findings")}
    rule_ids = {rule["id"] for rule in analyzers.rules_table()}
    assert SIMULATED_RULES <= rule_ids
    scores = {}
    for rule in sorted(SIMULATED_RULES):
        exp = {t for t in expected if t[1] == rule}
        hit = {t for t in got if t[1] == rule}
        assert exp, f"the simulator never expects {rule}: the test would prove nothing"
        tp = len(exp & hit)
        scores[rule] = (tp / len(hit) if hit else 0.0, tp / len(exp))
    bad = {rule: s for rule, s in scores.items() if min(s) < 0.95}
    assert not bad, f"precision/recall below 0.95: {bad}"


def test_unsimulated_rules_stay_silent(market_run):
    """R601 without a registry is not applied (and says so); R602 finds nothing in simulator listings."""
    got = {f["rule_id"] for f in market_run["store"].export("findings")}
    assert not got & {"R601", "R602"}, got
    rules = {r["id"]: r for r in market_run["store"].rules()}
    assert rules["R601"]["applied"] is False and "FINMON_REGISTRY" in rules["R601"]["not_applied_en"]
    assert rules["R602"]["applied"] is True
    assert market_run["analysis"].counters["rules_not_applied"] == 1


def test_faults_cost_one_item_each_and_are_counted(market_run):
    counters = defaultdict(int)
    for run in market_run["runs"]:
        assert run.outcome == "ok", run
        for key, value in run.counters.items():
            if isinstance(value, int):
                counters[key] += value
    for kind in ("not_found", "malformed_json", "http_5xx", "apk_invalid"):
        assert counters[f"errors/{kind}"] >= 1, (kind, dict(counters))
    logged = [json.loads(line) for path in (market_run["out"] / "crawl").rglob("errors.jsonl") for line in path.read_text(encoding="utf-8").splitlines()]
    assert {e["kind"] for e in logged} >= {"not_found", "malformed_json", "http_5xx", "apk_invalid"}
    stored = {run["id"] for run in market_run["store"].runs()}
    assert {run.id for run in market_run["runs"]} <= stored


def test_a_policy_or_apk_linked_from_two_stores_is_fetched_once(market_run):
    """The stores' crawls share their claims: the same app in two stores costs one fetch of its policy and APK."""
    for kind in ("policies", "apks"):
        fetched = defaultdict(list)
        for path in (market_run["out"] / "crawl").glob(f"*/{kind}.jsonl"):
            for line in path.read_text(encoding="utf-8").splitlines():
                fetched[json.loads(line)["url"]].append(path.parent.name)
        assert fetched and all(len(stores) == 1 for stores in fetched.values()), kind
    # the market does list apps with a policy and an APK in both Android stores
    assert any(a["stores"] == ["appgallery", "xiaomi"] and a["policy"] and a["apk"]
               for a in market_run["truth"]["app_list"])


def test_google_play_looks_up_every_android_app_the_other_stores_listed(market_run):
    """Its web search shows one page per query; the lookups find the rest, after the other crawls end."""
    runs = {run.job: run for run in market_run["runs"]}
    play = runs["crawl:googleplay"]
    assert play.started >= max(run.ended for job, run in runs.items() if job != "crawl:googleplay")
    listed = {json.loads(line)["package"] for line in
              (market_run["out"] / "crawl" / "googleplay" / "listings.jsonl").read_text(encoding="utf-8").splitlines()}
    on_play = {a["package"] for a in market_run["truth"]["app_list"] if "googleplay" in a["stores"]}
    assert on_play and listed == on_play
    assert play.counters["lookup_not_listed"] > 0  # the others' apps that Google Play does not list


def test_reanalysing_the_same_crawl_is_idempotent(market_run):
    store = market_run["store"]
    before = sorted(f["id"] for f in store.export("findings"))
    jobs.analyze(market_run["out"] / "crawl", store)
    after = sorted(f["id"] for f in store.export("findings"))
    assert before == after
    assert len(after) == len(set(after))


def test_analysis_in_small_batches_indexes_the_same_as_in_one(market_run, tmp_path, monkeypatch):
    from finmon import settings

    monkeypatch.setattr(settings, "FINMON_ANALYZE_BATCH", 7)
    with SQLiteStore(tmp_path / "batched.db") as batched:
        run = jobs.analyze(market_run["out"] / "crawl", batched)
        assert sorted(f["id"] for f in batched.export("findings")) == sorted(
            f["id"] for f in market_run["store"].export("findings"))
    whole = market_run["analysis"].counters
    assert {k: run.counters[k] for k in whole} == whole


PARITY_QUERIES = [
    ("通讯录", {}), ("位置信息", {}), ("短信", {}), ("借款", {}), ("contacts", {}), ("location", {}),
    ("通讯录", {"rule": "C202"}), ("READ_CONTACTS", {"severity": "high"}), ("隐私政策", {"kind": "policy"}),
    ("位置", {"store": "xiaomi"}), ("手机号码", {"finance_type": "lending"}), ("没有这个词组", {}),
]


@pytest.fixture(scope="module")
def es_twin(market_run, es_url, drop_es_prefix):
    """The same crawl analysed into Elasticsearch (a private index prefix, removed afterwards)."""
    import uuid

    from index.elastic import ElasticStore

    store = ElasticStore(es_url, prefix=f"finmon-parity-{uuid.uuid4().hex[:8]}")
    for run in market_run["runs"]:
        store.save_run(run)
    jobs.analyze(market_run["out"] / "crawl", store)
    yield store
    drop_es_prefix(store.es, store.prefix)
    store.close()


def test_elasticsearch_holds_the_same_apps_and_findings_as_sqlite(market_run, es_twin):
    def rows(store, kind):
        return {row["key"] if kind == "apps" else row["id"]: row for row in store.export(kind)}

    for kind in ("apps", "findings"):
        lite, elastic = rows(market_run["store"], kind), rows(es_twin, kind)
        assert lite.keys() == elastic.keys(), kind
    lite, elastic = rows(market_run["store"], "findings"), rows(es_twin, "findings")
    assert all(lite[i]["evidence"] == elastic[i]["evidence"] for i in lite)


@pytest.mark.parametrize("query,filters", PARITY_QUERIES, ids=[f"{q}-{'-'.join(f.values())}" for q, f in PARITY_QUERIES])
def test_search_returns_the_same_hits_from_both_backends(market_run, es_twin, query, filters):
    def hits(store):
        return {(h["kind"], h["id"]) for h in store.search(query, limit=1000, **filters)}

    lite = hits(market_run["store"])
    assert lite == hits(es_twin)
    if query != "没有这个词组":
        assert lite, "a parity query that finds nothing proves nothing"


def test_an_index_failure_is_raised_and_the_run_recorded_as_failed(market_run, tmp_path):
    from index.base import StoreUnavailable

    class Failing(SQLiteStore):
        def save_analysis(self, *args, **kwargs):
            raise StoreUnavailable("index down (test)")

    store = Failing(tmp_path / "failing.db")
    with pytest.raises(StoreUnavailable):
        jobs.analyze(market_run["out"] / "crawl", store)
    (run,) = [r for r in store.runs() if r["kind"] == "analyze"]
    assert run["outcome"] == "failed" and run["ended"]


def test_a_crawl_that_cannot_import_its_libraries_fails_loudly(tmp_path, monkeypatch):
    """A broken install (e.g. trafilatura's lxml.html.clean missing) kills the crawl subprocess at import: the run
    is failed with the import error as its reason, and `finmon crawl` exits non-zero."""
    from click.testing import CliRunner

    from finmon.cli import main

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "trafilatura.py").write_text('raise ImportError("lxml.html.clean module is now a separate project")\n',
                                           encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(broken))
    runs = jobs.crawl(tmp_path / "crawl", {"itunes": "http://127.0.0.1:1/itunes"})
    assert [run.outcome for run in runs] == ["failed"]
    assert "ImportError: lxml.html.clean" in runs[0].error
    result = CliRunner().invoke(main, ["crawl", "--out", str(tmp_path / "again"), "--store",
                                       "itunes=http://127.0.0.1:1/itunes"])
    assert result.exit_code == 1 and "ImportError: lxml.html.clean" in result.output, result.output


def test_line_counter_reads_only_what_was_appended(tmp_path, monkeypatch):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b'{"x": 1}\n{"x": 2}\n{"x"')  # the last line is still being written
    count = jobs.LineCounter()
    assert count([a, b]) == 2  # b does not exist yet
    reads = []
    real_open = open

    def spy(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        original = handle.read
        handle.read = lambda *a: reads.append(len(data := original(*a))) or data
        return handle

    monkeypatch.setattr("builtins.open", spy)
    with real_open(a, "ab") as fh:
        fh.write(b': 3}\n')
    b.write_bytes(b"{}\n" * 5)
    assert count([a, b]) == 1 + 2 + 5
    assert reads == [len(b'{"x": 3}\n'), 15]  # a: from the unfinished line on; b: whole
    a.write_bytes(b"{}\n")  # rewritten from the start
    assert count([a, b]) == 1 + 5


def test_jobs_crawl_shares_each_store_over_processes_and_the_analysis_reads_the_parts(redis_url, tmp_path):
    with MarketServer(apps=300, seed=5, fault_rate=0) as market:
        urls = {s: market.store_urls[s] for s in ("itunes", "xiaomi")}
        runs = jobs.crawl(tmp_path / "shared", urls, allow_hosts=["127.0.0.1"], processes=2,
                          overrides={"FINMON_FRONTIER": redis_url, "FINMON_FRONTIER_PREFIX": "finmon-test"})
        alone = jobs.crawl(tmp_path / "alone", urls, allow_hosts=["127.0.0.1"])
    assert sorted(run.job for run in runs) == ["crawl:itunes", "crawl:xiaomi"]
    assert all(run.outcome == "ok" and run.counters["processes"] == 2 for run in runs)
    assert len(list((tmp_path / "shared" / "xiaomi").glob("part-*/listings.jsonl"))) == 2
    shared, single = jobs.load_snapshot(tmp_path / "shared"), jobs.load_snapshot(tmp_path / "alone")
    assert sorted((lst.store, lst.store_id) for lst in shared.listings) == sorted(
        (lst.store, lst.store_id) for lst in single.listings)
    assert set(shared.policies) == set(single.policies) and set(shared.apks) == set(single.apks)
    assert sum(run.counters["listings"] for run in runs) == len(single.listings)


def test_a_crawler_host_joins_the_crawls_announced_on_the_frontier_and_writes_its_own_parts(redis_url, tmp_path):
    import threading
    import uuid

    prefix = f"finmon-test-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    joined: list = []
    worker = threading.Thread(target=lambda: joined.extend(
        jobs.crawl_worker(redis_url, processes=1, stop=stop, poll=0.2, prefix=prefix)))
    worker.start()
    try:
        with MarketServer(apps=1000, seed=5, fault_rate=0) as market:
            (run,) = jobs.crawl(tmp_path / "crawl", {"xiaomi": market.store_urls["xiaomi"]}, allow_hosts=["127.0.0.1"],
                                overrides={"FINMON_FRONTIER": redis_url, "FINMON_FRONTIER_PREFIX": prefix})
            truth = market.truth()["app_list"]
    finally:
        stop.set()
        worker.join(120)
    assert run.outcome == "ok" and len(joined) == 1 and joined[0].counters["listings"] > 0  # it did part of it
    parts = list((tmp_path / "crawl" / "xiaomi").glob("part-*"))
    assert len(parts) == 2
    snap = jobs.load_snapshot(tmp_path / "crawl")
    assert {lst.store_id for lst in snap.listings} == {
        a["store_ids"]["xiaomi"] for a in truth if "xiaomi" in a["stores"] and "xiaomi_503" not in a["faults"]}
    assert len(snap.listings) == run.counters["listings"] + joined[0].counters["listings"]


def test_a_crawler_host_takes_only_the_crawl_settings_it_knows_from_an_announcement(redis_url, tmp_path, monkeypatch):
    import threading
    import uuid

    import redis

    from crawler.frontier import publish

    prefix, stop, calls = f"finmon-test-{uuid.uuid4().hex[:8]}", threading.Event(), []

    def crawl(out, store_urls, allow_hosts, **kwargs):
        calls.append((out, store_urls, kwargs["overrides"]))
        stop.set()
        return []

    monkeypatch.setattr(jobs, "crawl", crawl)
    client = redis.Redis.from_url(redis_url)
    publish(client, prefix, "crawl-1", "xiaomi", {
        "url": "https://store.example/xiaomi", "out": str(tmp_path), "allow_hosts": [],
        "settings": {"FINMON_RUN_ID": "crawl-1", "ITEM_PIPELINES": {"somewhere.Else": 1}, "LOG_FILE": "/etc/x"}})
    client.close()
    jobs.crawl_worker(redis_url, stop=stop, poll=0.05, prefix=prefix)
    ((out, urls, overrides),) = calls
    assert (out, urls) == (tmp_path, {"xiaomi": "https://store.example/xiaomi"})
    assert overrides == {"FINMON_RUN_ID": "crawl-1", "FINMON_FRONTIER": redis_url, "FINMON_FRONTIER_CRAWL": "crawl-1",
                         "FINMON_FRONTIER_PREFIX": prefix}
