"""Silent loss: a fault-injection crawl loses no app, its request ledger adds up, and crawls that reach nothing
or lose too much are failed (with a non-zero exit of `finmon crawl` and of `finmon demo` when all failed)."""
import json
from collections import Counter

import pytest
from click.testing import CliRunner

from bench.fault_crawl import LEDGER, account, ledger_adds_up
from finmon import jobs
from finmon.cli import main
from finmon.model import Listing, Run
from market.population import DATA_FAULTS
from market.server import FAULTED, MarketServer

APPS, SEED, FAULT_RATE = 200, 7, 0.5


@pytest.fixture(scope="module")
def fault_crawl(tmp_path_factory):
    out = tmp_path_factory.mktemp("fault-crawl")
    with MarketServer(apps=APPS, seed=SEED, fault_rate=FAULT_RATE) as market:
        # the simulator's host on any port: an unreachable app page is tried (and refused), not stopped by the guard
        runs = jobs.crawl(out, market.store_urls, allow_hosts=[market.host], timeout=300,
                          overrides={"FINMON_ITUNES_PAGE_SIZE": 10})  # pages with a bad result must still page on
        truth, hits = market.truth(), dict(market.hits)
    return {"out": out, "runs": runs, "truth": truth, "hits": hits, "account": account(truth, out)}


def _lines(out, name):
    return [json.loads(line) for path in out.glob(f"*/{name}.jsonl") for line in path.read_text("utf-8").splitlines()]


def test_the_truth_names_every_data_fault(fault_crawl):
    faults = Counter(f for app in fault_crawl["truth"]["app_list"] for f in app["faults"])
    assert all(faults[kind] >= 3 for kind in DATA_FAULTS), faults
    assert fault_crawl["hits"][FAULTED] > 0.15 * sum(fault_crawl["hits"].values())


def test_no_app_is_lost_and_every_ledger_adds_up(fault_crawl):
    result = fault_crawl["account"]
    assert result["apps"].get("lost", 0) == 0 and result["listings"].get("lost", 0) == 0, result["lost_apps"]
    assert result["apps"]["failed"] > 0 and result["apps"]["crawled"] > 0.6 * APPS
    assert set(result["ledgers"]) == {"itunes", "appgallery", "xiaomi", "googleplay", "myapp"}
    for store, ledger in result["ledgers"].items():
        assert ledger_adds_up(ledger) and ledger["ledger/errors"] > 0, (store, ledger)
    for run in fault_crawl["runs"]:
        assert run.outcome == "ok" and run.job.startswith("crawl:"), run
        assert all(name in run.counters for name in LEDGER)


def test_error_lines_name_store_url_item_and_field(fault_crawl):
    errors = _lines(fault_crawl["out"], "errors")
    kinds = Counter(e["kind"] for e in errors)
    assert kinds["malformed_field"] and kinds["redirect_loop"] and kinds["connection"], kinds
    field_errors = [e for e in errors if e["kind"] == "malformed_field"]
    assert all(e["store"] and e["url"].startswith("http") and e["item"] and e["field"] for e in field_errors)
    wrong = {app["store_ids"]["itunes"] for app in fault_crawl["truth"]["app_list"] if "itunes_wrong_type" in app["faults"]}
    assert wrong <= {int(e["item"]) for e in field_errors if e["store"] == "itunes"}


def test_plain_string_permission_lists_are_read(fault_crawl):
    listings = {(row["store"], row["store_id"]): Listing.from_dict(row) for row in _lines(fault_crawl["out"], "listings")}
    apps = [app for app in fault_crawl["truth"]["app_list"] if "appgallery_string_permissions" in app["faults"]]
    assert apps
    for app in apps:
        listing = listings[("appgallery", app["store_ids"]["appgallery"])]
        assert sorted(listing.permissions) == sorted(app["permissions"]), app["key"]


def test_an_unreachable_store_fails_the_crawl_with_a_non_zero_exit(tmp_path):
    out = tmp_path / "crawl"
    result = CliRunner().invoke(main, ["crawl", "--out", str(out), "--store", "itunes=http://127.0.0.1:1/itunes"])
    assert result.exit_code == 1, result.output
    assert "crawl:itunes failed" in result.output and "reached nothing" in result.output
    run = json.loads((out / "itunes" / "run.json").read_text("utf-8"))
    assert run["outcome"] == "failed" and run["error"].startswith("reached nothing")
    ledger = {name: run["counters"][name] for name in LEDGER}
    assert ledger_adds_up(ledger) and ledger["ledger/requests"] == ledger["ledger/errors"] > 0
    assert {e["kind"] for e in _lines(out, "errors")} == {"connection"}


def test_losing_more_than_the_configured_share_fails_the_crawl(tmp_path):
    with MarketServer(apps=40, seed=SEED, fault_rate=1.0) as market:
        (run,) = jobs.crawl(tmp_path, {"xiaomi": market.store_urls["xiaomi"]}, timeout=300,
                            allow_hosts=[f"{market.host}:{market.port}"], overrides={"FINMON_MAX_LOSS_SHARE": 0.05})
    assert run.outcome == "failed" and "FINMON_MAX_LOSS_SHARE=0.05" in run.error, run


def test_demo_exits_non_zero_when_every_crawl_failed(tmp_path, monkeypatch):
    def failed_crawls(out_dir, store_urls, **kwargs):
        return [Run(id=f"crawl-{store}", kind="crawl", started="2026-12-05T00:00:00+00:00", outcome="failed",
                    job=f"crawl:{store}", error="reached nothing: none of 13 requests was answered")
                for store in store_urls]

    monkeypatch.setattr(jobs, "crawl", failed_crawls)
    result = CliRunner(env={"FINMON_ES_URL": ""}).invoke(main, ["demo", "--apps", "10", "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "every crawl failed" in result.output
    for store in ("itunes", "appgallery", "xiaomi"):
        assert f"crawl:{store} failed" in result.output
    assert not (tmp_path / "report").exists()
