"""Conditional requests from the previous capture, and reuse of its records on 304."""
import json

from crawler.items import PolicyFetch
from crawler.pipelines import ApkPipeline, PolicyPipeline
from crawler.previous import PreviousCapture
from crawler.snapshot import Snapshot
from crawler.spiders.xiaomi import XiaomiSpider
from tests.crawler.conftest import through

NOW = "2026-11-23T00:00:00+00:00"
POLICY = "http://127.0.0.1:9/policies/a/p.html"
APK = "http://127.0.0.1:9/apk/com.a.apk"


def previous_snapshot(path, **extra):
    path.mkdir()
    policy = {"url": POLICY, "status": "ok", "error": None, "etag": '"v1"', "last_modified": "Mon, 02 Nov 2026 00:00:00 GMT",
              "version": {"url": POLICY, "final_url": POLICY, "fetched_at": NOW, "sha256": "s" * 64, "text": "旧文本"}}
    lines = ["not json", json.dumps({"url": "http://127.0.0.1:9/p/none", "status": "ok", "version": None}),
             json.dumps(policy, ensure_ascii=False)]
    (path / "policies.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    apk = {"url": APK, "status": "ok", "apk": {"sha256": "a" * 64, "size": 3, "package": "com.a"}, "etag": '"k"'}
    (path / "apks.jsonl").write_text(json.dumps(apk) + "\n", encoding="utf-8")
    return path


def test_requests_are_conditional_when_the_previous_capture_has_validators(make_spider, tmp_path):
    spider = make_spider(XiaomiSpider, FINMON_PREVIOUS_SNAPSHOT=str(previous_snapshot(tmp_path / "prev")))
    (request,) = spider.policy(POLICY)
    assert request.headers["If-None-Match"] == b'"v1"'
    assert request.headers["If-Modified-Since"] == b"Mon, 02 Nov 2026 00:00:00 GMT"
    assert request.meta["handle_httpstatus_list"] == [304]
    (fresh,) = spider.policy("http://127.0.0.1:9/policies/new.html")
    assert b"If-None-Match" not in fresh.headers and "handle_httpstatus_list" not in fresh.meta
    (apk,) = spider.apk(APK)
    assert apk.headers["If-None-Match"] == b'"k"'


def test_a_304_reuses_the_previous_record_and_a_200_keeps_its_validators(make_spider, respond, tmp_path):
    spider = make_spider(XiaomiSpider, FINMON_PREVIOUS_SNAPSHOT=str(previous_snapshot(tmp_path / "prev")))
    (item,) = spider.parse_policy(respond(POLICY, b"", status=304), url=POLICY)
    assert item.unchanged and item.body == b""
    crawler = spider.crawler
    through(PolicyPipeline.from_crawler(crawler), item)
    changed = respond(POLICY, "<html><body><p>我们会收集您的手机号码，用于登录。</p></body></html>".encode(), status=200)
    changed.headers["ETag"] = '"v2"'
    (fresh,) = spider.parse_policy(changed, url=POLICY)
    assert not fresh.unchanged and fresh.etag == '"v2"'
    (apk_item,) = spider.parse_apk(respond(APK, b"", status=304), url=APK)
    through(ApkPipeline.from_crawler(crawler), apk_item)
    Snapshot.of(crawler.settings).close()
    out = Snapshot.of(crawler.settings).path
    (policy_row,) = [json.loads(line) for line in (out / "policies.jsonl").read_text(encoding="utf-8").splitlines()]
    assert policy_row["unchanged"] and policy_row["status"] == "ok" and policy_row["version"]["text"] == "旧文本"
    assert policy_row["checked_at"] == item.fetched_at
    (apk_row,) = [json.loads(line) for line in (out / "apks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert apk_row["apk"]["package"] == "com.a" and apk_row["unchanged"]
    stats = crawler.stats.get_stats()
    assert stats["finmon/policies/unchanged"] == 1 and stats["finmon/apks/unchanged"] == 1


def test_a_304_without_an_earlier_record_is_an_error_not_a_silent_loss(make_crawler):
    crawler = make_crawler()
    through(PolicyPipeline.from_crawler(crawler), PolicyFetch(POLICY, "xiaomi", "ok", NOW, unchanged=True))
    Snapshot.of(crawler.settings).close()
    out = Snapshot.of(crawler.settings).path
    (row,) = [json.loads(line) for line in (out / "policies.jsonl").read_text(encoding="utf-8").splitlines()]
    assert row["status"] == "unavailable" and "304" in row["error"]
    assert crawler.stats.get_value("finmon/errors/other") == 1


def test_no_previous_capture_means_no_validators(tmp_path):
    empty = PreviousCapture(None)
    assert empty.validators("policies", POLICY) == {} and empty.record("apks", APK) is None and len(empty) == 0
    loaded = PreviousCapture(previous_snapshot(tmp_path / "prev"))
    assert len(loaded) == 2  # lines without a validator or unreadable are not indexed


def test_a_detail_page_304_reuses_the_previous_listing(make_spider, respond, fx, tmp_path):
    from crawler.spiders.appgallery import AppGallerySpider
    from finmon.model import Listing

    url = "http://127.0.0.1:9/appgallery/uowap/index?method=internal.getTabDetail&serviceType=20&uri=C1"
    first = make_spider(AppGallerySpider)
    page = respond(url, fx.bytes("appgallery_detail.json"), "application/json")
    page.headers["ETag"] = '"d1"'
    listing = next(x for x in first.parse_detail(page) if isinstance(x, Listing))
    assert listing.etag == '"d1"' and listing.source_url == url
    prev = tmp_path / "prev"
    prev.mkdir()
    (prev / "listings.jsonl").write_text(json.dumps(listing.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
    Snapshot.close_all()
    PreviousCapture.forget_all()
    again = make_spider(AppGallerySpider, FINMON_PREVIOUS_SNAPSHOT=str(prev),
                        FINMON_SNAPSHOT_DIR=str(tmp_path / "again"))
    request = again.detail_request(url, again.parse_detail)
    assert request.headers["If-None-Match"] == b'"d1"' and request.meta["handle_httpstatus_list"] == [304]
    reused, policy, apk = list(again.parse_detail(respond(url, b"", "application/json", status=304)))
    assert reused.content_hash == listing.content_hash and reused.permissions == listing.permissions
    assert reused.fetched_at >= listing.fetched_at and policy.url == listing.privacy_url
    assert apk.url == listing.apk_url
    missing = again.parse_detail(respond(url.replace("C1", "C2"), b"", "application/json", status=304))
    assert list(missing) == [] and again.crawler.stats.get_value("finmon/errors/other") == 1


def test_a_304_cites_the_archived_response_of_the_earlier_capture(make_spider, respond, fx, tmp_path):
    from crawler.pipelines import ListingPipeline
    from crawler.spiders.appgallery import AppGallerySpider
    from finmon.evidence import read_capture, resolve
    from finmon.model import Listing

    url = "http://127.0.0.1:9/appgallery/uowap/index?method=internal.getTabDetail&serviceType=20&uri=C1"
    prev, again_dir = tmp_path / "prev", tmp_path / "again"
    first = make_spider(AppGallerySpider, FINMON_SNAPSHOT_DIR=str(prev))
    page = respond(url, fx.bytes("appgallery_detail.json"), "application/json")
    page.headers["ETag"] = '"d1"'
    listing = next(x for x in first.parse_detail(page) if isinstance(x, Listing))
    ListingPipeline.from_crawler(first.crawler).process_item(listing)
    served = respond(POLICY, "<html><body><p>我们会收集您的手机号码。</p><script>alert(1)</script></body></html>".encode())
    served.headers["ETag"] = '"p1"'
    (policy,) = first.parse_policy(served, url=POLICY)
    through(PolicyPipeline.from_crawler(first.crawler), policy)
    Snapshot.close_all()
    PreviousCapture.forget_all()

    again = make_spider(AppGallerySpider, FINMON_PREVIOUS_SNAPSHOT=str(prev), FINMON_SNAPSHOT_DIR=str(again_dir))
    reused = next(x for x in again.parse_detail(respond(url, b"", "application/json", status=304))
                  if isinstance(x, Listing))
    assert reused.capture.startswith("../prev/captures.warc.gz#")  # relative to the new snapshot's folder
    assert read_capture(resolve(reused.capture, again_dir)).body == fx.bytes("appgallery_detail.json")
    (unchanged,) = again.parse_policy(respond(POLICY, b"", status=304), url=POLICY)
    through(PolicyPipeline.from_crawler(again.crawler), unchanged)
    Snapshot.close_all()
    (row,) = [json.loads(line) for line in (again_dir / "policies.jsonl").read_text(encoding="utf-8").splitlines()]
    assert row["unchanged"] and row["capture"] == row["version"]["capture"] != ""
    kept = read_capture(resolve(row["capture"], again_dir))
    assert kept.body == served.body and (kept.status, kept.url) == (200, POLICY)  # the script kept verbatim
    assert not list(again_dir.glob("*.warc.gz"))  # a 304 archives nothing new
