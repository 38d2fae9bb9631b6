import dataclasses
import json

import pytest
from scrapy.exceptions import DropItem

from crawler.items import ApkFetch, PolicyFetch
from crawler.parsers import parse_xiaomi_detail
from crawler.pipelines import ApkPipeline, ListingPipeline, PolicyPipeline
from finmon.model import ApkInfo
from market.apk import ApkSpec, build_apk
from crawler.snapshot import Snapshot
from finmon.evidence import read_capture, resolve
from tests.crawler.conftest import through

NOW = "2024-06-01T00:00:00+00:00"


def lines(crawler, name):
    Snapshot.of(crawler.settings).close()
    path = Snapshot.of(crawler.settings).path / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def listing(fx):
    return parse_xiaomi_detail(fx.text("xiaomi_detail.html"), "http://127.0.0.1/xiaomi/details?id=com.anxin.loan")


def test_listing_written(make_crawler, listing):
    crawler = make_crawler()
    assert ListingPipeline.from_crawler(crawler).process_item(listing) is listing
    assert lines(crawler, "listings") == [json.loads(json.dumps(listing.to_dict()))]
    assert crawler.stats.get_value("finmon/listings") == 1
    assert crawler.stats.get_value("finmon/listings/xiaomi") == 1


def test_invalid_listing_dropped_and_recorded(make_crawler, listing):
    crawler = make_crawler()
    with pytest.raises(DropItem):
        ListingPipeline.from_crawler(crawler).process_item(dataclasses.replace(listing, package="", platform="win"))
    (error,) = lines(crawler, "errors")
    assert error["kind"] == "layout_changed" and "package" in error["reason"] and "platform" in error["reason"]
    assert crawler.stats.get_value("finmon/errors/layout_changed") == 1


def test_other_items_pass_through(make_crawler):
    crawler = make_crawler()
    assert ListingPipeline.from_crawler(crawler).process_item({"x": 1}) == {"x": 1}
    assert through(PolicyPipeline.from_crawler(crawler), {"x": 1}) == [{"x": 1}]
    assert through(ApkPipeline.from_crawler(crawler), {"x": 1}) == [{"x": 1}]


def test_policy_lines_per_status(make_crawler, fx):
    crawler = make_crawler()
    pipeline = PolicyPipeline.from_crawler(crawler)
    ok = PolicyFetch("http://127.0.0.1/p/a.htm", "xiaomi", "ok", NOW, "http://127.0.0.1/p/a.htm", fx.bytes("policy_zh_gbk.htm"), "text/html")
    missing = PolicyFetch("http://127.0.0.1/p/b.html", "xiaomi", "not_found", NOW, error="not_found: HTTP 404")
    down = PolicyFetch("http://127.0.0.1/p/c.html", "xiaomi", "unavailable", NOW, error="http_5xx: HTTP 500")
    broken = PolicyFetch("http://127.0.0.1/p/d.pdf", "xiaomi", "ok", NOW, "http://127.0.0.1/p/d.pdf", b"%PDF-1.4 broken", "application/pdf")
    through(pipeline, ok, missing, down, broken)
    rows = {row["url"]: row for row in lines(crawler, "policies")}
    assert rows[ok.url]["status"] == "ok" and rows[ok.url]["error"] is None
    assert rows[ok.url]["version"]["effective_date"] == "2024-03-01"
    assert "手机号码" in rows[ok.url]["version"]["text"]
    assert rows[missing.url] == {"url": missing.url, "status": "not_found", "version": None, "error": "not_found: HTTP 404",
                                 "etag": "", "last_modified": "", "capture": ""}
    assert rows[down.url]["status"] == "unavailable"
    assert rows[broken.url]["status"] == "unavailable" and rows[broken.url]["error"].startswith("extraction_failed")
    assert [e["kind"] for e in lines(crawler, "errors")] == ["extraction_failed"]
    stats = crawler.stats.get_stats()
    assert stats["finmon/policies"] == 4
    assert (stats["finmon/policies/ok"], stats["finmon/policies/not_found"], stats["finmon/policies/unavailable"]) == (1, 1, 2)
    assert stats["finmon/warnings/charset_guessed"] == 1
    assert ok.body == b""


def test_apk_lines_per_status(make_crawler):
    crawler = make_crawler()
    pipeline = ApkPipeline.from_crawler(crawler)
    body = build_apk(ApkSpec(package="com.anxin.loan", classes=("cn.jpush.android.api.JPushInterface",)))
    ok = ApkFetch("http://127.0.0.1/apk/a.apk", "xiaomi", "ok", NOW, body)
    broken = ApkFetch("http://127.0.0.1/apk/b.apk", "xiaomi", "ok", NOW, body[: len(body) // 3])
    down = ApkFetch("http://127.0.0.1/apk/c.apk", "xiaomi", "unavailable", NOW, error="too_large: over the limit")
    assert through(pipeline, ok, broken, down) == [ok, broken, down]
    rows = {row["url"]: row for row in lines(crawler, "apks")}
    info = ApkInfo.from_dict(rows[ok.url]["apk"])
    assert info.package == "com.anxin.loan" and info.url == ok.url and [s["id"] for s in info.sdks] == ["jpush"]
    assert rows[broken.url]["status"] == "invalid" and rows[broken.url]["error"].startswith("apk_invalid: ")
    assert rows[down.url] == {"url": down.url, "status": "unavailable", "fetched_at": NOW, "apk": None,
                              "error": "too_large: over the limit", "etag": "", "last_modified": "", "capture": ""}
    # the inspection is archived as a metadata record (the APK itself is not kept), and the line cites it
    capture = read_capture(resolve(rows[ok.url]["capture"], Snapshot.of(crawler.settings).path))
    assert rows[ok.url]["apk"]["capture"] == rows[ok.url]["capture"] and rows[broken.url]["capture"] == ""
    assert (capture.record_type, capture.url, capture.status, capture.content_type) == (
        "metadata", ok.url, None, "application/json")
    assert json.loads(capture.body) == {k: v for k, v in rows[ok.url]["apk"].items() if k != "capture"}
    assert [e["kind"] for e in lines(crawler, "errors")] == ["apk_invalid"]
    stats = crawler.stats.get_stats()
    assert (stats["finmon/apks"], stats["finmon/apks/ok"], stats["finmon/apks/invalid"]) == (3, 1, 1)
    assert ok.body == b"" and broken.body == b""


def test_apks_over_the_size_cap_are_refused(make_crawler):
    crawler = make_crawler(FINMON_APK_MAX_BYTES=100)
    through(ApkPipeline.from_crawler(crawler),
            ApkFetch("http://127.0.0.1/apk/a.apk", "xiaomi", "ok", NOW, build_apk(ApkSpec(package="a.b"))))
    (row,) = lines(crawler, "apks")
    assert row["status"] == "invalid" and "limit" in row["error"]


def test_apks_inflating_beyond_the_caps_are_refused(make_crawler):
    from market.apk import zip_bomb

    crawler = make_crawler(FINMON_APK_MAX_ENTRY_BYTES=1024 ** 2)
    through(ApkPipeline.from_crawler(crawler),
            ApkFetch("http://127.0.0.1/apk/a.apk", "xiaomi", "ok", NOW, zip_bomb(ApkSpec(package="a.b"), 2 * 1024 ** 2)))
    (row,) = lines(crawler, "apks")
    assert row["status"] == "invalid"
    assert row["error"] == "apk_invalid: APK refused: classes.dex inflates beyond 1,048,576 bytes (FINMON_APK_MAX_ENTRY_BYTES)"


def test_a_resumed_crawl_appends_to_its_snapshot(make_crawler, listing):
    first = make_crawler()
    ListingPipeline.from_crawler(first).process_item(listing)
    Snapshot.close_all()
    resumed = make_crawler(FINMON_RESUME=True)
    ListingPipeline.from_crawler(resumed).process_item(listing)
    assert len(lines(resumed, "listings")) == 2
