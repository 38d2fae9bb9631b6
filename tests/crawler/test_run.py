"""End to end: ``python -m crawler.run`` against the market simulator on 127.0.0.1.

One crawl of 300 apps per module (Scrapy's reactor runs once per process, so the crawl is
a subprocess); the tests below read its snapshot and compare it with the market's truth.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from crawler.run import crawl_settings, main
from finmon.model import Listing

REPO = Path(__file__).resolve().parents[2]
APPS, SEED = 300, 7


@dataclass
class Crawl:
    out: Path
    proc: subprocess.CompletedProcess
    seconds: float
    truth: dict
    base_url: str

    def jsonl(self, name: str) -> list[dict]:
        return [json.loads(line) for line in (self.out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]

    @property
    def run(self) -> dict:
        return json.loads((self.out / "run.json").read_text(encoding="utf-8"))

    @property
    def listings(self) -> list[Listing]:
        return [Listing.from_dict(row) for row in self.jsonl("listings")]

    @property
    def policies(self) -> dict[str, dict]:
        return {row["url"]: row for row in self.jsonl("policies")}

    def apps(self, fault: str | None = None) -> list[dict]:
        return [app for app in self.truth["app_list"] if fault is None or fault in app["faults"]]


def run_crawl(out: Path, store_urls: dict[str, str], *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--log-level", "WARNING", *extra]
    for name, url in store_urls.items():
        cmd += ["--store", f"{name}={url}"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def crawl300(tmp_path_factory) -> Crawl:
    from market.server import MarketServer

    out = tmp_path_factory.mktemp("crawl300")
    with MarketServer(apps=APPS, seed=SEED) as market:
        started = time.monotonic()
        proc = run_crawl(out, market.store_urls, "--allow-host", "127.0.0.1")
        seconds = time.monotonic() - started
        truth, base_url = market.truth(), market.base_url
    return Crawl(out, proc, seconds, truth, base_url)


def test_crawl_completes(crawl300):
    assert crawl300.proc.returncode == 0, crawl300.proc.stderr[-3000:]
    run = json.loads(crawl300.proc.stdout.strip().splitlines()[-1])
    assert run == crawl300.run
    assert run["outcome"] == "ok" and run["kind"] == "crawl" and run["ended"]
    counters = run["counters"]
    assert counters["requests"] >= counters["responses"] > 0
    assert counters["listings"] == len(crawl300.jsonl("listings"))
    assert counters["policies"] == len(crawl300.jsonl("policies"))
    assert counters["errors"] == len(crawl300.jsonl("errors"))
    # every search ran to its last page, but Google Play's web search, which shows one page of results
    assert counters.get("discovery_capped", 0) == _play_searches_beyond_one_page()
    assert counters["apks"] == len(crawl300.jsonl("apks")) > 0
    assert counters["items"] == counters["listings"] + counters["policies"] + counters["apks"]


def _play_searches_beyond_one_page() -> int:
    from finmon import settings
    from market.googleplay import SEARCH_PAGE_SIZE
    from market.population import Market
    from market.server import MarketApp

    market = MarketApp(Market(apps=APPS, seed=SEED))
    return sum(len(market.search("googleplay", k)) > SEARCH_PAGE_SIZE for k in settings.FINMON_KEYWORDS)


def test_finds_at_least_99_percent_of_the_apps(crawl300):
    found = {listing.app_key for listing in crawl300.listings}
    expected = {app["key"] for app in crawl300.apps()}
    assert len(found & expected) >= 0.99 * len(expected)
    assert found <= expected


def test_one_listing_per_app_and_store(crawl300):
    keys = [(listing.store, listing.app_key) for listing in crawl300.listings]
    assert len(keys) == len(set(keys))


def test_listings_match_the_truth(crawl300):
    from market.population import load_data

    label_of = load_data("labels")["privacy_labels"]
    truth = {app["key"]: app for app in crawl300.apps()}
    for listing in crawl300.listings:
        app = truth[listing.app_key]
        assert listing.store in app["stores"]
        assert listing.name == app["name"] and listing.legal_entity == app["legal_entities"][listing.store]
        assert listing.developer and listing.developer in listing.legal_entity  # it, or the short name a store shows
        assert listing.privacy_url == app["policy"]["url"]
        if listing.platform == "android":
            assert sorted(listing.permissions) == sorted(app["permissions"])
        else:
            assert listing.permissions == ()
            declared = app["policy"]["declared"]
            assert listing.privacy_labels == tuple(dict.fromkeys(label_of[t] for t in declared if t in label_of))


def test_each_policy_url_fetched_once(crawl300):
    rows = crawl300.jsonl("policies")
    urls = {listing.privacy_url for listing in crawl300.listings if listing.privacy_url}
    assert len(rows) == len({row["url"] for row in rows}) == len(urls)


def test_policy_variants(crawl300):
    policies = crawl300.policies
    by_variant: dict[str, set[str]] = {}
    for app in crawl300.apps():
        if app["policy"]["url"] and not app["faults"]:
            by_variant.setdefault(app["policy"]["variant"], set()).add(app["policy"]["url"])
    for variant in ("html", "gbk", "pdf"):
        assert by_variant.get(variant), f"no {variant} policy in the market"
        for url in by_variant[variant]:
            row = policies[url]
            assert row["status"] == "ok", row
            version = row["version"]
            assert version["text"] and version["sha256"] and version["language"] in ("zh", "en")
            assert version["content_type"] == ("pdf" if variant == "pdf" else "html")
            assert version["effective_date"], url
    for url in by_variant.get("missing", ()):
        assert policies[url]["status"] == "not_found" and policies[url]["version"] is None
    gbk = by_variant["gbk"]
    assert crawl300.run["counters"]["warnings/charset_guessed"] >= len(gbk)
    zh_gbk = [policies[u]["version"] for u in gbk if policies[u]["version"]["language"] == "zh"]
    assert all("隐私" in v["text"] for v in zh_gbk)


def test_policy_text_has_no_navigation_boilerplate(crawl300):
    from market.population import load_data

    templates = load_data("policy_templates")
    furniture = [templates[lang]["nav"][1] for lang in ("zh", "en")] + ["版权所有", "Copyright"]
    texts = [row["version"]["text"] for row in crawl300.jsonl("policies") if row["status"] == "ok"]
    html = [t for t, row in zip(texts, [r for r in crawl300.jsonl("policies") if r["status"] == "ok"])
            if row["version"]["content_type"] == "html"]
    assert html
    for text in html:
        assert not any(term in text for term in furniture), text[:200]


def test_faults_cost_one_item_each(crawl300):
    errors = crawl300.jsonl("errors")
    counters = crawl300.run["counters"]
    found = {(listing.store, listing.app_key) for listing in crawl300.listings}
    for fault, store, kind in (("appgallery_malformed_json", "appgallery", "malformed_json"), ("xiaomi_503", "xiaomi", "http_5xx")):
        apps = crawl300.apps(fault)
        assert apps, f"no {fault} fault in the market"
        for app in apps:
            assert (store, app["key"]) not in found
            other = ({"appgallery", "xiaomi"} - {store}).pop()
            assert (other, app["key"]) in found  # still found through the other store
        assert sum(1 for e in errors if e["store"] == store and e["kind"] == kind) >= len(apps)
        assert counters[f"errors/{kind}"] >= len(apps)
    for fault in ("appgallery_transient_503", "xiaomi_transient_503"):
        for app in crawl300.apps(fault):
            assert (fault.split("_")[0], app["key"]) in found  # retried
    broken = {app["policy"]["url"] for app in crawl300.apps("policy_500")}
    assert broken
    for url in broken:
        row = crawl300.policies[url]
        assert row["status"] == "unavailable" and row["error"].startswith("http_5xx")
        assert any(e["url"] == url and e["kind"] == "http_5xx" for e in errors)
    missing = [u for u, row in crawl300.policies.items() if row["status"] == "not_found"]
    assert counters.get("errors/not_found", 0) == len(missing)
    for error in errors:
        assert set(error) == {"time", "store", "kind", "url", "reason"}


def test_crawl_speed(crawl300):
    """apps=300 takes seconds, not minutes (the measured figure is in the crawl's run.json)."""
    assert crawl300.seconds < 120


def test_without_allow_host_only_the_store_api_is_fetched_from_loopback(tmp_path):
    """App pages, policies and APKs the simulator links on loopback are refused and logged, one line each."""
    from market.server import MarketServer

    with MarketServer(apps=30, seed=3) as market:
        proc = run_crawl(tmp_path, market.store_urls, timeout=120)
        hits = dict(market.hits)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert hits.get("itunes_page", 0) == hits.get("policy", 0) == hits.get("apk", 0) == 0, hits
    assert hits["itunes_search"] and hits["appgallery"] and hits["xiaomi_details"]
    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    refused = {e["url"] for e in errors if e["kind"] == "private_address"}
    for name in ("policies", "apks"):
        rows = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert rows and all(row["status"] == "unavailable" and row["error"].startswith("private_address") for row in rows)
        assert {row["url"] for row in rows} <= refused
    assert any("/apple/cn/app/id" in url for url in refused)  # iTunes trackViewUrl detail pages
    counters = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))["counters"]
    assert counters["errors/private_address"] == len(refused) == sum(e["kind"] == "private_address" for e in errors)


def test_a_search_stopped_by_the_page_cap_is_counted(tmp_path):
    """FINMON_MAX_PAGES guards against endless paging; a search it stops says so in the run's counters."""
    from market.server import MarketServer

    with MarketServer(apps=300, seed=SEED) as market:
        proc = run_crawl(tmp_path, market.store_urls, "--set", "FINMON_MAX_PAGES=1", "--allow-host", "127.0.0.1",
                         timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counters = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))["counters"]
    assert counters["discovery_capped"] > 0
    assert "stopped at FINMON_MAX_PAGES" in proc.stderr


def test_hostile_links_are_refused_and_logged(tmp_path):
    """With the simulator's host:port allowed, store data linking a private address, a file, another loopback
    port or a redirect into the metadata range is refused at every hop; a zip-bomb APK is one error line."""
    from market.server import METADATA_URL, MarketServer

    with MarketServer(apps=60, seed=5, hostile=0.5) as market:
        allowed = market.base_url.split("//", 1)[1]
        proc = run_crawl(tmp_path, market.store_urls, "--allow-host", allowed, timeout=180)
        links, hits = market.hostile_links(), dict(market.hits)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {link["kind"] for link in links.values()} == {"private", "file", "other_port", "loopback_name",
                                                         "redirect_private", "apk_bomb"}
    assert {link["target"] for link in links.values()} == {"detail", "policy", "apk"}
    errors = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    expected_kind = {"private": "private_address", "other_port": "private_address", "file": "unsupported_url",
                     "loopback_name": "private_address",
                     "redirect_private": "private_address", "apk_bomb": "apk_invalid"}
    for key, link in links.items():
        kind = expected_kind[link["kind"]]
        hop = METADATA_URL if link["kind"] == "redirect_private" else link["url"]  # the URL refused
        lines = [e for e in errors if e["kind"] == kind and (e["url"] == link["url"] or hop in e["reason"])]
        assert lines, (key, link)
        if link["kind"] == "apk_bomb":
            assert any("APK refused: classes.dex inflates beyond" in e["reason"] for e in lines)
    assert hits.get("hostile_redirect", 0) > 0 and hits["policy"] > 0 and hits["apk"] > 0


def test_crawl_settings(tmp_path):
    settings = crawl_settings(tmp_path, {"xiaomi": "http://127.0.0.1:1/xiaomi"}, {"FINMON_MAX_PAGES": 3})
    assert settings.getdict("FINMON_STORES")["xiaomi"] == "http://127.0.0.1:1/xiaomi"
    assert settings["FINMON_SNAPSHOT_DIR"] == str(tmp_path) and settings.getint("FINMON_MAX_PAGES") == 3
    assert settings["FINMON_RUN_ID"].startswith("crawl-")
    assert settings.getbool("ROBOTSTXT_OBEY") and not settings.getbool("REMOTE_CONTROL_ENABLED")


def test_apk_downloads_share_one_slot_of_bounded_concurrency(tmp_path):
    settings = crawl_settings(tmp_path, {}, {"FINMON_APK_DOWNLOADS_AT_ONCE": 3})
    assert settings.getdict("DOWNLOAD_SLOTS")["finmon-apk"] == {"concurrency": 3}
    assert crawl_settings(tmp_path, {}).getdict("DOWNLOAD_SLOTS")["finmon-apk"] == {"concurrency": 2}


def test_main_refuses_a_malformed_allow_host(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--out", str(tmp_path), "--store", "itunes=http://127.0.0.1:1/itunes", "--allow-host", "[::1]:x"])
    assert exit_.value.code == 2 and "not a host or host:port" in capsys.readouterr().err


def test_main_without_a_store_url_is_a_clear_error(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 2
    assert "FINMON_STORES" in capsys.readouterr().err


def test_sigusr1_stops_the_crawl_gracefully_once_however_often_it_comes(tmp_path):
    """The parent's death arrives as SIGUSR1, once per exiting thread: the crawl checkpoints, not a forced stop."""
    import signal

    from market.server import MarketServer

    out = tmp_path / "snap"
    with MarketServer(apps=1500, seed=8) as market:
        cmd = [sys.executable, "-m", "crawler.run", "--out", str(out), "--store",
               f"appgallery={market.store_urls['appgallery']}", "--allow-host", "127.0.0.1",
               "--set", f"JOBDIR={json.dumps(str(tmp_path / 'jobdir'))}"]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            listings = out / "listings.jsonl"
            if listings.exists() and len(listings.read_text(encoding="utf-8").splitlines()) >= 50:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGUSR1)
        proc.send_signal(signal.SIGUSR1)
        _, err = proc.communicate(timeout=120)
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["outcome"] == "interrupted" and proc.returncode == 1
    assert "forcing unclean shutdown" not in err and "stopping gracefully" in err
    assert (tmp_path / "jobdir" / "requests.seen").exists()
