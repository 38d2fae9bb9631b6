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


@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
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
    rule_ids = [rule["id"] for rule in analyzers.rules_table()]
    scores = {}
    for rule in rule_ids:
        exp = {t for t in expected if t[1] == rule}
        hit = {t for t in got if t[1] == rule}
        assert exp, f"the simulator never expects {rule}: the test would prove nothing"
        tp = len(exp & hit)
        scores[rule] = (tp / len(hit) if hit else 0.0, tp / len(exp))
    bad = {rule: s for rule, s in scores.items() if min(s) < 0.95}
    assert not bad, f"precision/recall below 0.95: {bad}"


def test_faults_cost_one_item_each_and_are_counted(market_run):
    counters = defaultdict(int)
    for run in market_run["runs"]:
        assert run.outcome == "ok", run
        for key, value in run.counters.items():
            if isinstance(value, int):
                counters[key] += value
    for kind in ("not_found", "malformed_json", "http_5xx"):
        assert counters[f"errors/{kind}"] >= 1, (kind, dict(counters))
    logged = [json.loads(line) for path in (market_run["out"] / "crawl").rglob("errors.jsonl") for line in path.read_text(encoding="utf-8").splitlines()]
    assert {e["kind"] for e in logged} >= {"not_found", "malformed_json", "http_5xx"}
    stored = {run["id"] for run in market_run["store"].runs()}
    assert {run.id for run in market_run["runs"]} <= stored


def test_reanalysing_the_same_crawl_is_idempotent(market_run):
    store = market_run["store"]
    before = sorted(f["id"] for f in store.export("findings"))
    jobs.analyze(market_run["out"] / "crawl", store)
    after = sorted(f["id"] for f in store.export("findings"))
    assert before == after
    assert len(after) == len(set(after))
